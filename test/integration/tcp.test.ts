// Established TCP connections (--tcp-established): test/fixtures/fx_tcp.c is connected to a
// server here, with data waiting both ways (its receive queue holds what we sent, its send
// queue what we did not read). It is dumped, kept away for a while (our kernel keeps probing
// its closed window meanwhile: only the network lock keeps those probes from drawing a
// reset), and restored; then every byte must arrive, in order, both ways, and the
// connection end cleanly. Also: --leave-running, a dump that fails and a restore that fails
// leave the connection as it was, and the lock only as long as it is needed.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CliProcess, killAndReap, removeDir, runCli, startCli, tempDir } from '../helpers/cli.js';
import { PASSED, VERDICT } from '../helpers/fixture-cases.js';
import { fixture } from '../helpers/fixtures.js';
import { waitAsleep } from '../helpers/process-state.js';
import { startTarget, type Target } from '../helpers/target.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** What fx_tcp.c sends (seed 2) and expects (seed 1). */
const pattern = (i: number, seed: number) => (Math.floor(i / 1024) + i * 7 + seed * 101) & 0xff;
const patternBuf = (len: number, seed: number) => Buffer.from(Array.from({ length: len }, (_, i) => pattern(i, seed)));
const SERVER_BYTES = 2 << 20;

interface Peer {
  port: number;
  /** The accepted connection, paused (nothing read from it) until resume(). */
  socket: Promise<Socket>;
  received: Buffer[];
  errors: Error[];
  ended: Promise<void>;
}

async function startPeer(): Promise<Peer> {
  const received: Buffer[] = [];
  const errors: Error[] = [];
  let accepted!: (s: Socket) => void;
  let ended!: () => void;
  const socket = new Promise<Socket>((r) => (accepted = r));
  const endedP = new Promise<void>((r) => (ended = r));
  const server: Server = createServer((s) => {
    s.pause();
    s.on('data', (d: Buffer) => received.push(d));
    s.on('error', (e) => errors.push(e));
    s.on('end', ended);
    const header = Buffer.alloc(8);
    header.writeBigUInt64LE(BigInt(SERVER_BYTES));
    s.write(Buffer.concat([header, patternBuf(SERVER_BYTES, 1)]));
    accepted(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => {
    server.close();
    void socket.then((s) => s.destroy());
  });
  return { port: (server.address() as { port: number }).port, socket, received, errors, ended: endedP };
}

const table = (pid: number) => `criu_ts_${pid}`;
const locked = (pid: number) => spawnSync('nft', ['list', 'table', 'inet', table(pid)]).status === 0;

/** A fresh peer, fx_tcp connected to it and ready, and a directory for images. */
async function startVictim(): Promise<{ peer: Peer; t: Target; sent: number; sock: Socket; images: string }> {
  const images = tempDir();
  cleanups.push(() => removeDir(images));
  const peer = await startPeer();
  const t = await startTarget(fixture('fx_tcp'), [String(peer.port)]);
  cleanups.push(() => t.stop());
  const sent = Number((await t.waitFor(/^sent \d+$/)).split(' ')[1]);
  await t.waitFor('ready');
  await waitAsleep(t.pid);
  return { peer, t, sent, sock: await peer.socket, images };
}

/** The dump of a victim that is killed: the lock stays, removed after the test whatever happens. */
async function dumpKilled(t: Target, images: string): Promise<void> {
  const d = await runCli(['dump', '-t', String(t.pid), '-D', images, '--shell-job', '--tcp-established']);
  expect(d.code, d.stderr).toBe(0);
  expect(d.stderr).toMatch(/note: 1 established TCP connection\(s\) saved/);
  await t.exited;
  cleanups.push(() => void spawnSync('nft', ['delete', 'table', 'inet', table(t.pid)]));
}

/** A foreground restore, until the process runs (killed after the test). */
async function restoreRunning(images: string, pid: number, extra: string[] = []): Promise<CliProcess> {
  const r = startCli(['-v2', 'restore', '-D', images, '--shell-job', ...extra]);
  cleanups.push(() => killAndReap(pid));
  await r.waitFor('err', /restored pid/);
  return r;
}

async function passed(r: CliProcess): Promise<void> {
  const [code] = await r.exited;
  expect(r.out.filter((l) => VERDICT.test(l)).at(-1), r.err.join('\n')).toMatch(PASSED);
  expect(code).toBe(0);
}

/** Lets the data flow, wakes the victim, and checks what we got: its bytes, then END. */
async function finish(peer: Peer, sock: Socket, pid: number, sent: number): Promise<void> {
  sock.resume();
  await waitAsleep(pid);
  process.kill(pid, 'SIGTERM');
  await Promise.race([peer.ended, new Promise((_, rej) => setTimeout(() => rej(new Error(`no END after ${Buffer.concat(peer.received).length} bytes`)), 30_000))]);
  const all = Buffer.concat(peer.received);
  expect(peer.errors).toEqual([]);
  expect(all.length).toBe(sent + 4);
  expect(all.subarray(sent).toString()).toBe('END\n');
  expect(all.subarray(0, sent).equals(patternBuf(sent, 2))).toBe(true);
  sock.end();
}

/** The connection as the image holds it. */
function savedConnection(images: string, pid: number): { sendQueue: number; unsent: number; recvQueue: number } {
  const files = JSON.parse(readFileSync(join(images, `files-${pid}.json`), 'utf8')) as { fds: Array<{ inet?: { state: string; tcp?: { sendQueue: string; unsent: number; recvQueue: string } } }> };
  const tcp = files.fds.find((e) => e.inet?.state === 'established')!.inet!.tcp!;
  return { sendQueue: Buffer.from(tcp.sendQueue, 'base64').length, unsent: tcp.unsent, recvQueue: Buffer.from(tcp.recvQueue, 'base64').length };
}

describe('fx_tcp judges itself', () => {
  it('PASS alone, FAIL when a byte goes missing', async () => {
    for (const broken of [false, true]) {
      const peer = await startPeer();
      const t = await startTarget(fixture('fx_tcp'), [String(peer.port)], { ...process.env, ...(broken ? { FX_BREAK: 'tcp' } : {}) });
      cleanups.push(() => t.stop());
      const sent = Number((await t.waitFor(/^sent \d+$/)).split(' ')[1]);
      await t.waitFor('ready');
      const sock = await peer.socket;
      if (broken) {
        sock.resume();
        await waitAsleep(t.pid);
        t.kill('SIGTERM');
        expect(await t.waitFor(VERDICT)).toMatch(/^FAIL: server's byte 0 /);
      } else {
        await finish(peer, sock, t.pid, sent);
        expect(await t.waitFor(VERDICT)).toMatch(PASSED);
      }
    }
  });
});

describe('an established TCP connection', () => {
  for (const mode of ['eager', 'lazy'] as const) {
    it(`moves (${mode}) with data waiting both ways, and nothing is lost`, async () => {
      const { peer, t, sent, sock, images } = await startVictim();
      await dumpKilled(t, images);
      const saved = savedConnection(images, t.pid);
      expect(saved.recvQueue).toBeGreaterThan(0);
      expect(saved.sendQueue).toBeGreaterThan(0);
      expect(locked(t.pid)).toBe(true);
      // Our kernel probes the victim's closed window meanwhile; the lock drops the probes.
      await new Promise((r) => setTimeout(r, 1500));
      const r = await restoreRunning(images, t.pid, mode === 'lazy' ? ['--lazy'] : []);
      expect(locked(t.pid)).toBe(false);
      await finish(peer, sock, t.pid, sent);
      await passed(r);
    }, 60_000);
  }

  it('with --leave-running carries on in place, unlocked', async () => {
    const { peer, t, sent, sock, images } = await startVictim();
    const d = await runCli(['dump', '-t', String(t.pid), '-D', images, '--shell-job', '--tcp-established', '-R']);
    expect(d.code, d.stderr).toBe(0);
    expect(locked(t.pid)).toBe(false);
    await finish(peer, sock, t.pid, sent);
    expect(await t.waitFor(VERDICT)).toMatch(PASSED);
  }, 60_000);

  it('survives a dump that fails and a restore that fails; the retried restore finds the peer waiting', async () => {
    const { peer, t, sent, sock, images } = await startVictim();
    const failed = await runCli(['dump', '-t', String(t.pid), '-D', join(images, 'failed'), '--shell-job', '--tcp-established'], { CRIU_TS_FAULT: 'write:fail' });
    expect(failed.code).not.toBe(0);
    expect(locked(t.pid)).toBe(false);
    await waitAsleep(t.pid);

    await dumpKilled(t, join(images, 'd'));
    const bad = await runCli(['restore', '-D', join(images, 'd'), '--shell-job'], { CRIU_TS_FAULT: 'finish:fail' });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/fault injected at finish/);
    expect(locked(t.pid)).toBe(true); // still: the next try needs it

    const r = await restoreRunning(join(images, 'd'), t.pid);
    await finish(peer, sock, t.pid, sent);
    await passed(r);
  }, 60_000);
});
