// A socket's options, as the ones that differ from a fresh socket of the same family, type
// and protocol: defaults stay defaults (and sizes the kernel tunes itself are not frozen).
import { closeSync } from 'node:fs';
import { native } from '../../kernel/native.js';
import { getInt, getOption, SO, SOCK, SOCK_OPTIONS, SOL } from '../../kernel/sockets.js';

export interface SockKind {
  family: number;
  type: number;
  protocol: number;
}

export function sockKind(ours: number): SockKind {
  return { family: getInt(ours, SOL.SOCKET, SO.DOMAIN), type: getInt(ours, SOL.SOCKET, SO.TYPE), protocol: getInt(ours, SOL.SOCKET, SO.PROTOCOL) };
}

function tryGet(fd: number, o: (typeof SOCK_OPTIONS)[number]): number | undefined {
  try {
    return getOption(fd, o);
  } catch {
    return undefined; // not an option of this kind of socket
  }
}

export function changedOptions(ours: number, k: SockKind): Record<string, number> {
  const fresh = native.socket(k.family, k.type | SOCK.CLOEXEC, k.protocol);
  try {
    const out: Record<string, number> = {};
    for (const o of SOCK_OPTIONS) {
      if (!o.applies(k)) continue;
      const v = tryGet(ours, o);
      if (v !== undefined && v !== tryGet(fresh, o)) out[o.name] = v;
    }
    return out;
  } finally {
    closeSync(fresh);
  }
}
