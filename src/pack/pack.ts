// `criu-ts pack`: an image set and its whole parent chain as one tar stream.
//
//   load + validate the chain ─► list each set's files ─► sha256 of each (first read)
//   ─► MANIFEST.json ─► every file again, streamed into the tar and hashed once more
//      (a file that changed in between is an error, not a silent mismatch) ─► end blocks
//
// Pages stay in their zstd frames: nothing is compressed twice. Layout: see layout.ts.
import { createHash } from 'node:crypto';
import { closeSync, lstatSync, readSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import tar from 'tar-stream';
import { CriuError, throwIfAborted } from '../errors.js';
import { ImageError } from '../images/errors.js';
import { loadChain } from '../images/imageset.js';
import { INVENTORY } from '../images/inventory.js';
import { openImageFile } from '../images/io.js';
import { kindOf } from '../images/registry.js';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import { toolVersion } from '../paths.js';
import type { ProgressFn } from '../progress.js';
import { entryName, MANIFEST, parentLink, setFolder } from './layout.js';
import { ARCHIVE_FORMAT, ARCHIVE_VERSION, encodeManifest, type Manifest } from './manifest.js';
import { fileSink, streamSink, type Sink } from './sink.js';

export interface PackOptions {
  /** The set to pack (its parents come along). */
  imagesDir: string;
  /** A file (written whole, then renamed into place) or a stream (written to, left open). */
  output: string | NodeJS.WritableStream;
  signal?: AbortSignal;
  /** Phases 'checksum' then 'pack', in bytes of file data. */
  onProgress?: ProgressFn;
  log?: Logger;
}

export interface PackResult {
  imagesDir: string;
  /** The archive file, or '-' for a stream. */
  output: string;
  rootPid: number;
  /** The chain as packed, newest first: where each set came from and its folder in the archive. */
  sets: Array<{ folder: string; from: string; kind: string; id: string }>;
  files: number;
  /** File data in the archive (the archive adds 512 bytes per entry, padding and the manifest). */
  bytes: number;
  archiveBytes: number;
  /** Files in a set's directory that belong to no image kind: not packed. */
  skipped: string[];
}

/** One file to pack: from disk, or made here (a rewritten inventory). */
interface Item {
  name: string;
  path: string;
  data?: Buffer;
  size: number;
  sha256: string;
  mtime: Date;
}

const CHUNK = 1 << 20;

/** A file's content in chunks, opened without following a symlink. */
function* readChunks(path: string): Generator<Buffer> {
  const fd = openImageFile(dirname(path), basename(path));
  try {
    for (let pos = 0; ; ) {
      const buf = Buffer.allocUnsafe(CHUNK);
      let n: number;
      try {
        n = readSync(fd, buf, 0, CHUNK, pos);
      } catch (e) {
        throw new ImageError(path, `cannot read: ${(e as Error).message}`, { cause: e });
      }
      if (n === 0) return;
      pos += n;
      yield buf.subarray(0, n);
    }
  } finally {
    closeSync(fd);
  }
}

export async function pack(o: PackOptions): Promise<PackResult> {
  const log = o.log ?? silentLogger;
  throwIfAborted(o.signal, 'pack');
  const chain = loadChain(o.imagesDir);
  const n = chain.length;
  const skipped: string[] = [];
  const perSet: Item[][] = [];
  let total = 0;
  for (const [i, set] of chain.entries()) {
    const folder = setFolder(i);
    const items: Item[] = [];
    for (const file of set.source.list()) {
      const kind = kindOf(file);
      const path = set.source.path(file);
      if (!kind) {
        skipped.push(path);
        continue;
      }
      // Sub-sets (iterative passes, an unpacked archive's parents) come in through the chain.
      if (kind.directory || file === MANIFEST) continue;
      const st = lstatSync(path);
      if (!st.isFile()) throw new ImageError(path, 'is not a regular file (refused)');
      const item: Item = { name: entryName(folder, file), path, size: st.size, sha256: '', mtime: st.mtime };
      if (file === INVENTORY) {
        // The one file that changes: its parent link now names the folder inside the archive.
        item.data = Buffer.from(JSON.stringify({ ...set.inventory, parent: parentLink(i, n) }, null, 1) + '\n');
        item.size = item.data.length;
      }
      items.push(item);
      total += item.size;
    }
    // The inventory last: an unpack cut short never has it before the rest of its set.
    items.sort((a, b) => Number(a.name.endsWith(INVENTORY)) - Number(b.name.endsWith(INVENTORY)));
    perSet.push(items);
  }
  // Oldest set first, the root set last (see manifest.ts).
  const items = perSet.reverse().flat();
  for (const s of skipped) log.warn(`not packed (not an image file): ${s}`);

  let hashed = 0;
  for (const it of items) {
    throwIfAborted(o.signal, 'pack');
    const h = createHash('sha256');
    let size = 0;
    for (const c of it.data ? [it.data] : readChunks(it.path)) {
      h.update(c);
      size += c.length;
      hashed += c.length;
      o.onProgress?.({ phase: 'checksum', bytesDone: hashed, bytesTotal: total });
    }
    if (size !== it.size) throw new ImageError(it.path, `changed while being packed (${it.size} bytes, then ${size})`);
    it.sha256 = h.digest('hex');
  }

  const manifest: Manifest = {
    format: ARCHIVE_FORMAT,
    version: ARCHIVE_VERSION,
    createdAt: new Date().toISOString(),
    toolVersion: toolVersion(),
    rootPid: chain[0]!.inventory.rootPid,
    sets: chain.map((s, i) => ({ folder: setFolder(i), id: s.inventory.id, kind: s.inventory.kind, createdAt: s.inventory.createdAt })),
    files: items.map((it) => ({ name: it.name, sizeBytes: it.size, sha256: it.sha256 })),
    totalBytes: total,
  };

  const sink: Sink = typeof o.output === 'string' ? await fileSink(o.output) : streamSink(o.output);
  let archiveBytes = 0;
  try {
    archiveBytes = await writeTar(manifest, items, sink, o, total);
    await sink.finish();
  } catch (e) {
    await sink.abort();
    throw e;
  }
  log.info(`packed ${n} set${n === 1 ? '' : 's'} of pid ${manifest.rootPid} (${items.length} files, ${total} bytes) into ${sink.name}`);
  return {
    imagesDir: o.imagesDir,
    output: sink.name,
    rootPid: manifest.rootPid,
    sets: chain.map((s, i) => ({ folder: setFolder(i), from: s.dir, kind: s.inventory.kind, id: s.inventory.id })),
    files: items.length,
    bytes: total,
    archiveBytes,
    skipped,
  };
}

/** Produces the tar (tar-stream) and drains it into the sink, one backpressured pipe. */
async function writeTar(manifest: Manifest, items: Item[], sink: Sink, o: PackOptions, total: number): Promise<number> {
  const out = tar.pack();
  // Its failures reach us through the drain loop and the entries' callbacks, not as events.
  out.on('error', () => {});
  let written = 0;
  const drained = (async () => {
    for await (const chunk of out as AsyncIterable<Buffer>) {
      await sink.write(chunk);
      written += chunk.length;
    }
  })();
  // A failed output stops the producer at once (its next write fails).
  drained.catch((e: unknown) => out.destroy(e as Error));
  const onAbort = () => out.destroy(new CriuError('ECANCELED', 'pack: cancelled', { cause: o.signal?.reason }));
  o.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const mtime = new Date(manifest.createdAt);
    const m = encodeManifest(manifest);
    await addEntry(out, { name: MANIFEST, size: m.length, mtime }, [m]);
    let done = 0;
    for (const it of items) {
      throwIfAborted(o.signal, 'pack');
      const h = createHash('sha256');
      let size = 0;
      const chunks = function* () {
        for (const c of it.data ? [it.data] : readChunks(it.path)) {
          size += c.length;
          if (size > it.size) break; // grew since it was hashed: caught below
          h.update(c);
          yield c;
          done += c.length;
          o.onProgress?.({ phase: 'pack', bytesDone: done, bytesTotal: total });
        }
        if (size !== it.size || h.digest('hex') !== it.sha256) {
          throw new ImageError(it.path, 'changed while being packed (its content differs from when it was checksummed)');
        }
      };
      await addEntry(out, { name: it.name, size: it.size, mtime: it.mtime }, chunks());
    }
    out.finalize();
    await drained;
    return written;
  } catch (e) {
    out.destroy();
    // The root cause: a cancel, or the output that failed (EPIPE ...), not the tar's echo of it.
    const outputFailure = await drained.then(
      () => undefined,
      (x: unknown) => x,
    );
    throwIfAborted(o.signal, 'pack');
    throw outputFailure ?? e;
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
  }
}

/** One regular-file entry, 0600, owned by root: the archive says nothing about the host. */
async function addEntry(out: tar.Pack, h: { name: string; size: number; mtime: Date }, chunks: Iterable<Buffer>): Promise<void> {
  let settle!: { resolve: () => void; reject: (e: Error) => void };
  const finished = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  finished.catch(() => {}); // awaited below; this only keeps an early failure from going unhandled
  const header: Partial<tar.Header> & { name: string } = { name: h.name, size: h.size, mode: 0o600, uid: 0, gid: 0, uname: '', gname: '', mtime: h.mtime, type: 'file' };
  const entry = out.entry(header, (err) => (err ? settle.reject(err) : settle.resolve()));
  entry.on('error', () => {}); // reported through the callback above
  for (const c of chunks) {
    if (!entry.write(c)) await Promise.race([onceDrained(entry), finished]);
  }
  entry.end(null);
  await finished;
}

function onceDrained(s: { once(name: 'drain', fn: () => void): unknown }): Promise<void> {
  return new Promise((resolve) => s.once('drain', resolve));
}
