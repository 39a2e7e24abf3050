// Errors from injected syscalls, shaped like the addon's own (code = errno name).
import { native } from './native.js';

export { CriuError, inStage } from '../errors.js';

/** An injected syscall's -errno as an Error with `code`, `errno` and `syscall`. */
export function remoteErrno(errno: number, call: string): Error {
  const code = native.errnoName(errno);
  const e = new Error(`${call}: ${native.strerror(errno)} (${code})`) as Error & {
    code: string;
    errno: number;
    syscall: string;
  };
  e.code = code;
  e.errno = errno;
  e.syscall = call;
  return e;
}
