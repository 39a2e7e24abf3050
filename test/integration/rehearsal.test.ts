// The rehearsal before a final dump's freeze is best effort: one that fails (here: the process
// is gone) only says so in the debug log and leaves no throwaway set behind.
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { rehearsalPrefix, rehearse } from '../../src/dump/rehearsal.js';
import { CompressPool } from '../../src/images/compress-pool.js';
import { silentLogger, type Logger } from '../../src/log.js';
import { deadPid } from '../native/util.js';

describe('rehearse', () => {
  it('swallows a failure, logs it, and leaves nothing in /dev/shm', async () => {
    const pid = deadPid();
    const lines: string[] = [];
    const log: Logger = { ...silentLogger, debug: (m: string) => void lines.push(m) };
    const pool = new CompressPool(0, 1);
    try {
      await rehearse({ pid, vmas: [], tracking: { fd: -1, final: true }, parent: undefined, pool }, log);
    } finally {
      await pool.close();
    }
    expect(lines).toEqual([expect.stringMatching(new RegExp(`^rehearsal \\(pid ${pid}\\) failed after [\\d.]+ ms: `))]);
    expect(readdirSync('/dev/shm').filter((n) => n.startsWith(rehearsalPrefix(pid)))).toEqual([]);
  });
});
