// `criu-ts unpack`: an archive from a file or a stream, into DIR, verified before DIR exists.
//
//   DIR must be absent or an empty directory ─► a fresh directory beside it (.DIR.unpack-XXXX)
//   ─► MANIFEST.json first ─► every entry checked (verify.ts) and written 0600, hashed as it
//      goes ─► all listed files present ─► each set's parent link is the layout's ─► the chain
//      loads as restore would load it ─► fsync ─► rename into place as DIR
//
// Any failure removes the temporary directory: DIR appears complete or not at all, and no
// entry can write outside it (names are checked before anything is created, files are opened
// O_EXCL|O_NOFOLLOW in directories we made).
import { createHash } from 'node:crypto';
import { closeSync, constants, createReadStream, fsyncSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import tar from 'tar-stream';
import { CriuError, throwIfAborted } from '../errors.js';
import { loadChain } from '../images/imageset.js';
import { INVENTORY, readInventory } from '../images/inventory.js';
import { syncDir, writeAll } from '../images/io.js';
import { silentLogger, type Logger } from '../log.js';
import type { ProgressFn } from '../progress.js';
import { ArchiveError } from './errors.js';
import { MANIFEST, PARENTS, parentLink, setFolder, splitEntry } from './layout.js';
import { parseManifest, type Manifest } from './manifest.js';
import { EntryVerifier } from './verify.js';

export interface UnpackOptions {
  /** An archive file, or a stream of one (stdin, a socket); a stream is read to its end. */
  input: string | NodeJS.ReadableStream;
  /** Becomes the root set (its parents in DIR/parents/1 ...); must not exist, or be empty. */
  imagesDir: string;
  signal?: AbortSignal;
  /** Phase 'unpack', in bytes of file data (the manifest's total). */
  onProgress?: ProgressFn;
  log?: Logger;
}

export interface UnpackResult {
  imagesDir: string;
  rootPid: number;
  sets: Array<{ dir: string; kind: string; id: string }>;
  files: number;
  bytes: number;
}

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;

/** DIR may be replaced only if it is nothing yet, or an empty real directory. */
function checkTarget(dir: string): void {
  let st;
  try {
    st = lstatSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new CriuError('EIO', `${dir}: ${(e as Error).message}`, { cause: e });
  }
  if (!st.isDirectory()) throw new CriuError('EEXIST', `${dir}: exists and is not a directory (symlinks are not followed)`);
  if (readdirSync(dir).length) throw new CriuError('EEXIST', `${dir}: exists and is not empty; unpack into a new directory`);
}

export async function unpack(o: UnpackOptions): Promise<UnpackResult> {
  const log = o.log ?? silentLogger;
  throwIfAborted(o.signal, 'unpack');
  const target = resolve(o.imagesDir);
  const name = typeof o.input === 'string' ? o.input : '(stdin)';
  checkTarget(target);
  let input: NodeJS.ReadableStream;
  if (typeof o.input === 'string') {
    let fd: number;
    try {
      fd = openSync(o.input, 'r');
    } catch (e) {
      throw new ArchiveError(o.input, undefined, `cannot open: ${(e as Error).message}`, { cause: e });
    }
    input = createReadStream('', { fd });
  } else input = o.input;

  let tmp: string;
  try {
    tmp = mkdtempSync(join(dirname(target), `.${basename(target)}.unpack-`));
  } catch (e) {
    if (typeof o.input === 'string') (input as NodeJS.ReadableStream & { destroy(): void }).destroy();
    throw new CriuError((e as NodeJS.ErrnoException).code ?? 'EIO', `${target}: cannot make a directory beside it: ${(e as Error).message}`, { cause: e });
  }
  try {
    const manifest = await extractInto(tmp, input, name, o);
    await settle(tmp, manifest, name);
    renameIntoPlace(tmp, target);
    log.info(`unpacked ${manifest.sets.length} set(s) of pid ${manifest.rootPid} (${manifest.files.length} files) into ${target}`);
    return {
      imagesDir: o.imagesDir,
      rootPid: manifest.rootPid,
      sets: manifest.sets.map((s) => ({ dir: s.folder === '.' ? o.imagesDir : join(o.imagesDir, s.folder), kind: s.kind, id: s.id })),
      files: manifest.files.length,
      bytes: manifest.totalBytes,
    };
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** Reads the whole stream into dir, entry by entry; returns the manifest it was checked against. */
async function extractInto(dir: string, input: NodeJS.ReadableStream, name: string, o: UnpackOptions): Promise<Manifest> {
  const ex = tar.extract();
  // Its failures reach us through the entry loop, not as events.
  ex.on('error', () => {});
  const verifier = new EntryVerifier(name);
  // Where we are, for an error that the tar parser raises without naming anything.
  let current: { name: string; inData: boolean } | undefined;
  const pump = (async () => {
    for await (const chunk of input) {
      if (ex.destroyed) return;
      if (!ex.write(chunk)) await drainedOrClosed(ex);
    }
    ex.end(null);
  })();
  pump.catch((e: unknown) => ex.destroy(e as Error));
  const onAbort = () => ex.destroy(new CriuError('ECANCELED', 'unpack: cancelled', { cause: o.signal?.reason }));
  o.signal?.addEventListener('abort', onAbort, { once: true });
  let manifest: Manifest | undefined;
  let done = 0;
  const madeDirs = new Set<string>(['.']);
  try {
    for await (const entry of ex) {
      throwIfAborted(o.signal, 'unpack');
      const h = entry.header;
      const header = { name: h.name, type: h.pax ? 'pax-header' : h.type, size: h.size, linkname: h.linkname };
      current = { name: h.name, inData: false };
      if (!manifest) {
        verifier.admitManifest(header);
        current.inData = true;
        const buf = Buffer.concat(await collect(entry));
        manifest = parseManifest(buf, name);
        verifier.setManifest(manifest);
        writeFile(dir, MANIFEST, [buf]);
        continue;
      }
      const f = verifier.admit(header);
      if (!f) {
        await collect(entry); // a directory: nothing to read, made when its files come
        continue;
      }
      const at = splitEntry(f.name)!;
      const folder = setFolder(at.set);
      if (!madeDirs.has(folder)) {
        mkdirSync(join(dir, folder), { recursive: true, mode: 0o700 });
        madeDirs.add(folder);
      }
      current.inData = true;
      const hash = createHash('sha256');
      const fd = openSync(join(dir, f.name), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
      try {
        for await (const chunk of entry as AsyncIterable<Buffer>) {
          hash.update(chunk);
          writeAll(fd, chunk);
          done += chunk.length;
          o.onProgress?.({ phase: 'unpack', bytesDone: done, bytesTotal: manifest.totalBytes });
        }
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      const sha = hash.digest('hex');
      if (sha !== f.sha256) throw new ArchiveError(name, f.name, `damaged: its sha256 is ${sha}, the manifest says ${f.sha256}`);
      current.inData = false;
    }
    current = undefined;
    verifier.finish();
    return manifest!;
  } catch (e) {
    // Stop reading: the rest of the stream is of no use (a pipe's writer sees it closed).
    ex.destroy();
    (input as { destroy?(): void }).destroy?.();
    throw explain(e, name, current);
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
  }
}

/** Room to write again, or the end of the parser (we stop then): listeners removed either way. */
function drainedOrClosed(s: { once(e: 'drain' | 'close', f: () => void): unknown; off(e: 'drain' | 'close', f: () => void): unknown }): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      s.off('drain', done);
      s.off('close', done);
      resolve();
    };
    s.once('drain', done);
    s.once('close', done);
  });
}

async function collect(entry: AsyncIterable<unknown>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const c of entry) out.push(c as Buffer);
  return out;
}

function writeFile(dir: string, name: string, chunks: Buffer[]): void {
  const fd = openSync(join(dir, name), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
  try {
    for (const c of chunks) writeAll(fd, c);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** tar-stream's errors say what went wrong, not where: add the archive and the entry. */
function explain(e: unknown, archive: string, at: { name: string; inData: boolean } | undefined): unknown {
  if (e instanceof CriuError) return e;
  const msg = (e as Error).message ?? String(e);
  const io = e as NodeJS.ErrnoException;
  if (io.syscall && io.code) return new CriuError(io.code, `${archive}: ${at ? `entry ${JSON.stringify(at.name)}: ` : ''}${msg}`, { cause: e });
  if (/Unexpected end of data/.test(msg)) {
    return at?.inData
      ? new ArchiveError(archive, at.name, 'truncated: the archive ends inside its data', { cause: e })
      : new ArchiveError(archive, at?.name, `truncated: the archive ends ${at ? 'after this entry, before the next header is whole' : 'inside its first header'}`, { cause: e });
  }
  if (/Invalid tar header|unknown format/.test(msg)) {
    return new ArchiveError(archive, at?.name, `not a tar archive, or damaged${at ? ' after this entry' : ''} (${msg})`, { cause: e });
  }
  return new ArchiveError(archive, at?.name, `cannot be read: ${msg}`, { cause: e });
}

/**
 * What unpack made must be what restore will accept: each set's inventory links to the next
 * folder of the layout (never anywhere else), is the set the manifest names, and the chain
 * loads whole. Then everything is on disk.
 */
async function settle(dir: string, m: Manifest, archive: string): Promise<void> {
  m.sets.forEach((s, i) => {
    const folder = join(dir, s.folder);
    const inv = readInventory(folder);
    const want = parentLink(i, m.sets.length);
    if (inv.parent !== want) {
      throw new ArchiveError(archive, join(s.folder, INVENTORY), `links to parent ${JSON.stringify(inv.parent)}, the archive's layout says ${JSON.stringify(want)} (refused)`);
    }
    if (inv.id !== s.id || inv.kind !== s.kind) throw new ArchiveError(archive, join(s.folder, INVENTORY), `is set ${inv.id} (${inv.kind}), the manifest says ${s.id} (${s.kind})`);
  });
  try {
    loadChain(dir);
  } catch (e) {
    throw new ArchiveError(archive, undefined, `holds an image set that restore would refuse: ${(e as Error).message}`, { cause: e });
  }
  for (let i = m.sets.length - 1; i >= 1; i--) syncDir(join(dir, setFolder(i)));
  if (m.sets.length > 1) syncDir(join(dir, PARENTS));
  syncDir(dir);
}

function renameIntoPlace(tmp: string, target: string): void {
  try {
    // Onto a missing name, or onto an empty directory (rename(2) replaces one).
    renameSync(tmp, target);
  } catch (e) {
    throw new CriuError((e as NodeJS.ErrnoException).code ?? 'EIO', `${target}: cannot put the unpacked set in place: ${(e as Error).message}`, { cause: e });
  }
  syncDir(dirname(target));
}
