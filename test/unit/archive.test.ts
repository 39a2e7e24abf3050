// pack, unpack and the in-place archive reader on a small synthetic chain (no process needed):
// the round trip, the layout and the manifest; then every kind of malicious or damaged
// archive, built with tar-stream, refused by unpack (from a stream) and by the in-place reader
// with a message naming the entry and the problem, leaving nothing behind, inside DIR or out.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pack, show, unpack } from '../../src/index.js';
import { CriuError } from '../../src/errors.js';
import { encodePagemap } from '../../src/images/pagemap.js';
import { Archive } from '../../src/pack/archive.js';
import type { Manifest } from '../../src/pack/manifest.js';
import { main, parseArgv } from '../../src/cli/main.js';
import type { CliIo } from '../../src/cli/command.js';
import { formatProgress, progressLine } from '../../src/cli/progress.js';
import { removeDir, tempDir } from '../helpers/cli.js';

const PID = 4242;
let work = '';
let chainDir = '';
let good: Entry[] = [];
let cases = 0;

interface Entry {
  name: string;
  data?: Buffer;
  type?: 'file' | 'symlink' | 'link' | 'directory' | 'character-device';
  linkname?: string;
}

/** A pre-dump set with no pages: everything loadChain checks, nothing a process must give. */
function writeSet(dir: string, id: string, parent: string | null, parentId: string | null): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const zero = '0x0';
  const json = (v: unknown) => JSON.stringify(v, null, 1) + '\n';
  writeFileSync(join(dir, 'pstree.json'), json({ processes: [{ pid: PID, ppid: 1, pgid: PID, sid: PID, threads: [PID] }] }));
  const fields = { startCode: zero, endCode: zero, startData: zero, endData: zero, startBrk: zero, brk: zero, startStack: zero, argStart: zero, argEnd: zero, envStart: zero, envEnd: zero };
  writeFileSync(join(dir, `mm-${PID}.json`), json({ pid: PID, vmas: [], mmFields: fields, auxv: [], exe: null }));
  writeFileSync(join(dir, `pagemap-${PID}.bin`), encodePagemap({ frameRawSize: 65536, ranges: [], frames: [], pagesBytes: 0, rawBytes: 0 }));
  writeFileSync(join(dir, `pages-${PID}.zst`), Buffer.alloc(0));
  writeFileSync(
    join(dir, 'inventory.json'),
    json({
      format: 'criu-ts', version: 1, id, kind: 'pre-dump', createdAt: new Date().toISOString(), toolVersion: '0.1.0', kernel: 'test',
      arch: 'x86_64', pageSize: 4096, rootPid: PID, pids: [PID], parent, parentId, options: { shellJob: false, leaveRunning: true }, stats: { pagesSaved: 0 },
    }),
  );
}

async function tarOf(entries: Entry[]): Promise<Buffer> {
  const p = tar.pack();
  for (const e of entries) {
    const header = { name: e.name, type: e.type ?? 'file', mode: 0o600, ...(e.linkname ? { linkname: e.linkname } : {}) };
    if (header.type === 'file') p.entry(header, e.data ?? Buffer.alloc(0));
    else p.entry(header); // links, devices, directories: a header alone
  }
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

async function entriesOf(buf: Buffer): Promise<Entry[]> {
  const out: Entry[] = [];
  const ex = tar.extract();
  ex.end(buf);
  for await (const e of ex) {
    const chunks: Buffer[] = [];
    for await (const c of e as AsyncIterable<Buffer>) chunks.push(c);
    out.push({ name: e.header.name, data: Buffer.concat(chunks) });
  }
  return out;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const manifestOf = (es: Entry[]) => JSON.parse(es[0]!.data!.toString()) as Manifest;
const withManifest = (es: Entry[], m: Manifest): Entry[] => [{ name: 'MANIFEST.json', data: Buffer.from(JSON.stringify(m)) }, ...es.slice(1)];
const copyOf = (es: Entry[]) => es.map((e) => ({ ...e, ...(e.data ? { data: Buffer.from(e.data) } : {}) }));

/** Replaces one file's content and its manifest record (size, sha, total) to match. */
function replaceFile(es: Entry[], name: string, data: Buffer): Entry[] {
  const m = manifestOf(es);
  const f = m.files.find((x) => x.name === name)!;
  m.totalBytes += data.length - f.sizeBytes;
  Object.assign(f, { sizeBytes: data.length, sha256: sha(data) });
  return withManifest(es, m).map((e) => (e.name === name ? { ...e, data } : e));
}

beforeAll(async () => {
  work = tempDir('criu-ts-archive-');
  chainDir = join(work, 'chain');
  writeSet(join(chainDir, '1'), 'id-1', null, null);
  writeSet(join(chainDir, '2'), 'id-2', '../1', 'id-1');
  writeSet(join(chainDir, '3'), 'id-3', '../2', 'id-2');
  writeFileSync(join(chainDir, '3', 'notes.txt'), 'not an image file\n');
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  await pack({ imagesDir: join(chainDir, '3'), output: out });
  good = await entriesOf(Buffer.concat(chunks));
});

afterAll(() => {
  if (work) removeDir(work);
});

describe('pack and unpack a chain', () => {
  it('writes the manifest first, the oldest set first, each inventory last, parent links rewritten', () => {
    const names = good.map((e) => e.name);
    expect(names[0]).toBe('MANIFEST.json');
    const m = manifestOf(good);
    expect(m.sets.map((s) => [s.folder, s.id])).toEqual([['.', 'id-3'], ['parents/1', 'id-2'], ['parents/2', 'id-1']]);
    expect(m.files.map((f) => f.name)).toEqual(names.slice(1));
    expect(names.slice(1, 6)).toEqual(['parents/2/mm-4242.json', 'parents/2/pagemap-4242.bin', 'parents/2/pages-4242.zst', 'parents/2/pstree.json', 'parents/2/inventory.json']);
    expect(names.at(-1)).toBe('inventory.json');
    expect(names).not.toContain('notes.txt'); // foreign: skipped, not shipped
    for (const e of good.slice(1)) expect(m.files.find((f) => f.name === e.name)).toEqual({ name: e.name, sizeBytes: e.data!.length, sha256: sha(e.data!) });
    const parentOf = (name: string) => (JSON.parse(good.find((e) => e.name === name)!.data!.toString()) as { parent: string | null }).parent;
    expect([parentOf('inventory.json'), parentOf('parents/1/inventory.json'), parentOf('parents/2/inventory.json')]).toEqual(['parents/1', '../2', null]);
  });

  it('unpacks from a file into DIR: the set at the top, parents below, 0600/0700, and it loads', async () => {
    const archive = join(work, 'a.tar');
    const r = await pack({ imagesDir: join(chainDir, '3'), output: archive });
    expect(r).toMatchObject({ rootPid: PID, files: 15, skipped: [join(chainDir, '3', 'notes.txt')] });
    expect(statSync(archive).mode & 0o777).toBe(0o600);
    const dir = join(work, 'unpacked');
    const u = await unpack({ input: archive, imagesDir: dir });
    expect(u).toMatchObject({ rootPid: PID, files: 15, sets: [{ dir }, { dir: join(dir, 'parents/1') }, { dir: join(dir, 'parents/2') }] });
    expect(readdirSync(dir).sort()).toEqual(['MANIFEST.json', 'inventory.json', `mm-${PID}.json`, `pagemap-${PID}.bin`, `pages-${PID}.zst`, 'parents', 'pstree.json']);
    for (const d of [dir, join(dir, 'parents'), join(dir, 'parents/1'), join(dir, 'parents/2')]) expect(statSync(d).mode & 0o777).toBe(0o700);
    for (const e of good.slice(1)) {
      expect(statSync(join(dir, e.name)).mode & 0o777).toBe(0o600);
      expect(readFileSync(join(dir, e.name))).toEqual(e.data);
    }
    const s = await show({ imagesDir: dir });
    expect(s.chain.map((c) => c.dir)).toEqual([join(dir, 'parents/1'), join(dir, 'parents/2')]);
    expect(s.foreignFiles).toEqual([]);
    expect(readdirSync(work).filter((n) => n.startsWith('.'))).toEqual([]); // no temporary left
    // An unpacked set packs again, to the same files (its MANIFEST and parents/ are not files of it).
    const again = new PassThrough();
    const chunks: Buffer[] = [];
    again.on('data', (c: Buffer) => chunks.push(c));
    await pack({ imagesDir: dir, output: again });
    expect((await entriesOf(Buffer.concat(chunks))).slice(1)).toEqual(good.slice(1));
  });

  it('reads an archive in place: show sees what it sees in the directory', async () => {
    const archive = join(work, 'b.tar');
    await pack({ imagesDir: join(chainDir, '3'), output: archive });
    const [fromDir, fromArchive] = [await show({ imagesDir: join(chainDir, '3') }), await show({ archive })];
    expect(fromArchive.dir).toBe(archive);
    expect(fromArchive.chain.map((c) => c.dir)).toEqual([`${archive}:parents/1`, `${archive}:parents/2`]);
    const strip = (s: typeof fromDir) => ({ ...s, dir: '', parent: null, chain: s.chain.map((c) => ({ ...c, dir: '' })), foreignFiles: [] });
    expect(strip(fromArchive)).toEqual(strip(fromDir));
    expect(fromArchive.foreignFiles).toEqual([]);
    await expect(show({ imagesDir: join(chainDir, '3'), archive })).rejects.toMatchObject({ code: 'EINVAL' });
  });

  it('refuses a DIR that holds something, and cancels between entries (nothing left)', async () => {
    const full = join(work, 'full');
    mkdirSync(full);
    writeFileSync(join(full, 'x'), 'x');
    await expect(unpack({ input: Readable.from([await tarOf(good)]), imagesDir: full })).rejects.toThrow(/exists and is not empty/);
    const ac = new AbortController();
    const dir = join(work, 'cancelled');
    const p = unpack({ input: Readable.from([await tarOf(good)]), imagesDir: dir, signal: ac.signal, onProgress: () => ac.abort() });
    await expect(p).rejects.toMatchObject({ code: 'ECANCELED' });
    expect(existsSync(dir)).toBe(false);
    const out = join(work, 'cancelled.tar');
    const ac2 = new AbortController();
    await expect(pack({ imagesDir: join(chainDir, '3'), output: out, signal: ac2.signal, onProgress: (pr) => pr.phase === 'pack' && ac2.abort() })).rejects.toMatchObject({
      code: 'ECANCELED',
    });
    expect(readdirSync(work).filter((n) => n.includes('cancelled'))).toEqual([]);
  });
});

interface Bad {
  name: string;
  make(): Entry[] | Promise<Buffer>;
  /** unpack's message (after "ARCHIVE: "). */
  problem: RegExp;
  /** The in-place reader's, when it differs; 'read' when only reading the damaged file sees it. */
  inPlace?: RegExp | 'read';
}

const victim = () => join(work, 'victim');

const bad: Bad[] = [
  { name: 'an entry named ../x', make: () => [...good, { name: '../victim', data: Buffer.from('pwned') }], problem: /entry "\.\.\/victim": leads out of the target directory/ },
  {
    name: 'an entry deep in ../',
    make: () => [...good.slice(0, 2), { name: 'parents/1/../../../victim', data: Buffer.from('pwned') }, ...good.slice(2)],
    problem: /leads out of the target directory/,
  },
  { name: 'an absolute path', make: () => [...good, { name: victim(), data: Buffer.from('pwned') }], problem: /is an absolute path \(refused\)/ },
  {
    name: 'a symlink in place of a file',
    make: () => good.map((e) => (e.name === 'pstree.json' ? { name: e.name, type: 'symlink' as const, linkname: victim() } : e)),
    problem: /entry "pstree\.json": is a symbolic link to ".*victim" \(refused\)/,
  },
  {
    name: 'a hard link',
    make: () => [...good, { name: 'core-4242.json', type: 'link' as const, linkname: '../victim' }],
    problem: /entry "core-4242\.json": is a hard link to "\.\.\/victim" \(refused\)/,
  },
  { name: 'a device', make: () => [...good, { name: 'dev', type: 'character-device' as const }], problem: /entry "dev": is a character-device \(refused/ },
  { name: 'a directory outside the layout', make: () => [...good, { name: 'extra/', type: 'directory' as const }], problem: /entry "extra": is a directory that is not in the manifest/ },
  { name: 'a duplicate entry', make: () => [...good, good[3]!], problem: /entry "parents\/2\/pages-4242\.zst": appears twice in the archive/ },
  { name: 'a file not in the manifest', make: () => [...good, { name: 'core-4242.json', data: Buffer.from('{}') }], problem: /entry "core-4242\.json": is not in the manifest/ },
  {
    name: 'a size that differs from the manifest',
    make: () => good.map((e) => (e.name === 'pstree.json' ? { ...e, data: Buffer.concat([e.data!, Buffer.from(' ')]) } : e)),
    problem: /entry "pstree\.json": is \d+ bytes, the manifest says \d+/,
  },
  {
    name: 'content that differs from its sha256',
    make: () =>
      copyOf(good).map((e) => {
        if (e.name === 'pstree.json') e.data![5] ^= 1;
        return e;
      }),
    problem: /entry "pstree\.json": damaged: its sha256 is [0-9a-f]{64}, the manifest says [0-9a-f]{64}/,
    inPlace: 'read',
  },
  {
    name: 'a truncated stream',
    make: async () => {
      const whole = await tarOf(good);
      return whole.subarray(0, whole.length - 1024 - 700); // into the last entry's data
    },
    problem: /truncated/,
  },
  {
    name: 'a stream cut inside a file\'s data',
    make: async () => {
      const whole = await tarOf(good);
      return whole.subarray(0, whole.length - 1024 - 400); // into the root inventory's data
    },
    problem: /entry "inventory\.json": truncated: the archive ends inside its data/,
    inPlace: /entry "inventory\.json": truncated: its \d+ bytes of data run past the end of the archive/,
  },
  { name: 'a file missing', make: () => good.filter((e) => e.name !== 'parents/1/pstree.json'), problem: /entry "parents\/1\/pstree\.json": is in the manifest but not in the archive/ },
  { name: 'no manifest first', make: () => [...good.slice(1), good[0]!], problem: /entry "parents\/2\/mm-4242\.json": is the first entry; an archive made by criu-ts pack starts with MANIFEST\.json/ },
  {
    name: 'a manifest listing a file outside the layout',
    make: () => {
      const m = manifestOf(good);
      m.files.push({ name: '../victim', sizeBytes: 0, sha256: sha(Buffer.alloc(0)) });
      return withManifest(good, m);
    },
    problem: /MANIFEST\.json": files\[15\]\.name: "\.\.\/victim" is not a file of this layout/,
  },
  {
    name: 'a parent link leading out of the archive (sha256 fixed up)',
    make: () => {
      const inv = JSON.parse(good.at(-1)!.data!.toString()) as Record<string, unknown>;
      return replaceFile(good, 'inventory.json', Buffer.from(JSON.stringify({ ...inv, parent: '../victim' })));
    },
    problem: /entry "inventory\.json": links to parent "\.\.\/victim", the archive's layout says "parents\/1" \(refused\)/,
    inPlace: 'read',
  },
  { name: 'not a tar archive', make: async () => Buffer.from('hello, this is not a tar archive at all '.repeat(40)), problem: /not a tar archive, or damaged/, inPlace: /checksum mismatch \(damaged, or not a tar archive\)/ },
];

describe('malicious and damaged archives are refused, and nothing is written', () => {
  for (const b of bad) {
    it(b.name, async () => {
      const made = await b.make();
      const bytes = Buffer.isBuffer(made) ? made : await tarOf(made);
      // DIR's parent is empty before; after, it still is (no DIR, no temporary, no ../x).
      const parent = join(work, `case-${++cases}`);
      mkdirSync(parent);
      const dir = join(parent, 'ckpt');
      const err = await unpack({ input: Readable.from([bytes]), imagesDir: dir }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(CriuError);
      expect((err as Error).message).toMatch(/^\(stdin\): /);
      expect((err as Error).message).toMatch(b.problem);
      expect((err as CriuError).code).toMatch(/^E(ARCHIVE|IMAGE)$/);
      expect(readdirSync(parent)).toEqual([]);
      expect(existsSync(victim())).toBe(false);

      // The same archive read in place.
      const file = join(parent, 'x.tar');
      writeFileSync(file, bytes);
      const inPlace = b.inPlace ?? b.problem;
      if (inPlace === 'read') {
        const a = Archive.open(file); // names, types and sizes are right: it opens
        a.close();
        await expect(show({ archive: file })).rejects.toThrow(/damaged: its sha256|does not exist/);
      } else {
        expect(() => Archive.open(file)).toThrow(inPlace);
        await expect(show({ archive: file })).rejects.toMatchObject({ code: 'EARCHIVE' });
      }
      expect(readdirSync(parent)).toEqual(['x.tar']);
      expect(existsSync(victim())).toBe(false);
    });
  }
});

describe('the CLI around pack and unpack', () => {
  const io = (tty: { stdout?: boolean; stdin?: boolean }): CliIo & { err: string[] } => {
    const err: string[] = [];
    return {
      err,
      stdout: () => {},
      stderr: (t) => void err.push(t),
      binary: { stdout: Object.assign(new PassThrough(), { isTTY: tty.stdout }), stdin: Object.assign(new PassThrough(), { isTTY: tty.stdin }) },
    };
  };

  it('takes -o after pack as the archive, and before it (or --log-file) as the log file', () => {
    const opts = (argv: string[]) => {
      const inv = parseArgv(argv, io({}));
      return { options: inv.options, logFile: inv.globals.logFile };
    };
    expect(opts(['pack', '-D', 'd', '-o', 'a.tar'])).toEqual({ options: { imagesDir: 'd', output: 'a.tar' }, logFile: undefined });
    expect(opts(['pack', '-D', 'd', '-oa.tar'])).toEqual({ options: { imagesDir: 'd', output: 'a.tar' }, logFile: undefined });
    expect(opts(['-o', 'pack', 'pack', '-D', 'd', '-o', '-'])).toEqual({ options: { imagesDir: 'd', output: '-' }, logFile: 'pack' });
    expect(opts(['pack', '-D', 'd', '--log-file', 'l', '-o', 'a.tar'])).toEqual({ options: { imagesDir: 'd', output: 'a.tar' }, logFile: 'l' });
    expect(opts(['show', '-D', 'd', '-o', 'l'])).toEqual({ options: { imagesDir: 'd' }, logFile: 'l' });
    expect(opts(['unpack', '-i', 'a.tar', '-D', 'd'])).toEqual({ options: { imagesDir: 'd', input: 'a.tar' }, logFile: undefined });
  });

  it('refuses to write an archive to a terminal or read one from it, and --json on the archive stream', async () => {
    const t = io({ stdout: true, stdin: true });
    expect(await main(['pack', '-D', join(chainDir, '3')], t)).toBe(2);
    expect(await main(['unpack', '-D', join(work, 'never')], t)).toBe(2);
    expect(await main(['pack', '-D', join(chainDir, '3'), '--json'], t)).toBe(2);
    expect(t.err.join('')).toMatch(/refusing to write an archive to a terminal.*\n.*no archive on stdin \(it is a terminal\).*\n.*--json needs -o FILE/);
    expect(existsSync(join(work, 'never'))).toBe(false);
    expect(await main(['show'], t)).toBe(2);
  });

  it('draws progress only on a terminal', () => {
    expect(progressLine({ stdout: () => {}, stderr: () => {} }).onProgress).toBeUndefined();
    const out: string[] = [];
    let now = 0;
    const line = progressLine({ stdout: () => {}, stderr: (t) => void out.push(t), stderrIsTTY: true }, () => now);
    line.onProgress!({ phase: 'pages', bytesDone: 0, bytesTotal: 8 << 20 });
    now = 50;
    line.onProgress!({ phase: 'pages', bytesDone: 1 << 20, bytesTotal: 8 << 20 }); // too soon: not drawn
    now = 1000;
    line.onProgress!({ phase: 'pages', bytesDone: 4 << 20, bytesTotal: 8 << 20 });
    line.end();
    line.onProgress!({ phase: 'pages', bytesDone: 8 << 20, bytesTotal: 8 << 20 }); // after end: the terminal is someone else's
    expect(out).toEqual([
      '\rpages: 0 pages, 0.0 of 8.0 MiB (0%)\x1b[K',
      '\rpages: 1024 pages, 4.0 of 8.0 MiB (50%), 4 MiB/s\x1b[K',
      '\r\x1b[K',
    ]);
    expect(formatProgress({ phase: 'restore', bytesDone: 3 << 20 }, 500)).toBe('restore: 3.0 MiB, 6 MiB/s');
  });
});
