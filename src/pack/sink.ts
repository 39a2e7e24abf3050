// Where pack's bytes go: a file (written beside its final name and renamed into place only
// when complete, so a failed pack leaves no archive that looks whole) or a stream (a pipe,
// stdout, a socket), with backpressure and its errors surfacing here rather than as events.
import { randomBytes } from 'node:crypto';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { CriuError, errorCode } from '../errors.js';
import { syncDir } from '../images/io.js';

export interface Sink {
  /** What the output is called in messages ('-' for a stream). */
  readonly name: string;
  write(chunk: Buffer): Promise<void>;
  /** Makes the output complete (file: fsync and rename into place). */
  finish(): Promise<void>;
  /** Leaves nothing behind after a failure (file: remove the partial one). */
  abort(): Promise<void>;
}

export async function fileSink(path: string): Promise<Sink> {
  const tmp = join(dirname(path), `.${basename(path)}.partial-${randomBytes(4).toString('hex')}`);
  // 0600: the archive holds process memory.
  const fh: FileHandle = await open(tmp, 'wx', 0o600);
  let closed = false;
  const close = async () => {
    if (!closed) await fh.close();
    closed = true;
  };
  return {
    name: path,
    async write(chunk) {
      for (let off = 0; off < chunk.length; ) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
    },
    async finish() {
      await fh.sync();
      await close();
      await rename(tmp, path);
      syncDir(dirname(path));
    },
    async abort() {
      await close().catch(() => {});
      await unlink(tmp).catch(() => {});
    },
  };
}

/** A stream we write to and never end: it belongs to the caller (stdout, a socket ...). */
export function streamSink(out: NodeJS.WritableStream, name = '-'): Sink {
  let failure: Error | undefined;
  const where = name === '-' ? 'stdout' : name;
  // EPIPE and friends, said as what they mean here.
  const onError = (e: Error) => (failure ??= new CriuError(errorCode(e) ?? 'EIO', `writing the archive to ${where}: ${e.message}${errorCode(e) === 'EPIPE' ? ' (the reader went away)' : ''}`, { cause: e }));
  out.on('error', onError);
  const check = () => {
    if (failure) throw failure;
    if ((out as { destroyed?: boolean }).destroyed) throw new CriuError('EPIPE', `writing the archive to ${where}: the stream was closed`);
  };
  return {
    name,
    async write(chunk) {
      check();
      if (out.write(chunk)) return;
      // Wait for room, or for the reason there will never be any.
      await new Promise<void>((resolve, reject) => {
        const done = (e?: Error) => {
          out.off('drain', onDrain);
          out.off('error', onErr);
          out.off('close', onClose);
          if (e) reject(e);
          else resolve();
        };
        const onDrain = () => done();
        const onErr = (e: Error) => {
          onError(e);
          done(failure);
        };
        const onClose = () => done(failure ?? new CriuError('EPIPE', `writing the archive to ${where}: the stream was closed`));
        out.on('drain', onDrain);
        out.on('error', onErr);
        out.on('close', onClose);
      });
    },
    async finish() {
      check();
      out.off('error', onError);
    },
    async abort() {
      out.off('error', onError);
    },
  };
}
