// A real program nobody here wrote: a Node.js HTTP server (about ten threads, epoll,
// eventfd, pipes, a listening TCP socket) with a few hundred MiB of state in JS objects.
// After the restore (eager and lazy) it must accept new connections and answer with its
// state intact and its request counter where it was.
import http from 'node:http';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fixturesDir } from '../helpers/fixtures.js';
import { killAndReap, removeDir, runCli, startCli, tempDir } from '../helpers/cli.js';
import { PASSED, VERDICT } from '../helpers/fixture-cases.js';
import { startTarget } from '../helpers/target.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function get(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent: false }, (r) => {
        let body = '';
        r.setEncoding('utf8').on('data', (d: string) => (body += d));
        r.on('end', () => resolve(body.trim()));
      })
      .on('error', reject);
  });
}

describe('a Node.js HTTP server', () => {
  for (const mode of ['eager', 'lazy'] as const) {
    it(`comes back (${mode}) and serves new connections with its state intact`, async () => {
      const images = tempDir();
      cleanups.push(() => removeDir(images));
      const target = await startTarget(process.execPath, [join(fixturesDir, 'node_server.cjs'), '192']);
      cleanups.push(() => target.stop());
      const ready = await target.waitFor(/^ready /, 60_000);
      const [, port, sum] = ready.split(' ');
      expect(await get(Number(port), '/')).toBe('counter=1');
      expect(await get(Number(port), '/')).toBe('counter=2');

      const d = await runCli(['dump', '-t', String(target.pid), '-D', join(images, 'd'), '--shell-job']);
      expect(d.code, d.stderr).toBe(0);
      await target.exited;
      const r = startCli(['-v2', 'restore', '-D', join(images, 'd'), '--shell-job', ...(mode === 'lazy' ? ['--lazy'] : [])]);
      cleanups.push(() => killAndReap(target.pid));
      await r.waitFor('err', /restored pid/);
      expect(await get(Number(port), '/')).toBe('counter=3');
      expect(await get(Number(port), '/state')).toMatch(new RegExp(`^counter=4 sum=${sum} expected=${sum} `));
      process.kill(target.pid, 'SIGTERM');
      const [code] = await r.exited;
      expect(r.out.filter((l) => VERDICT.test(l)).at(-1)).toMatch(PASSED);
      expect(code).toBe(0);
    }, 120_000);
  }
});
