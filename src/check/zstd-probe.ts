// The compressor page images are written with: zstd-napi is built from source at install,
// so a failed build shows up here rather than in the middle of a dump.
import { PAGE_SIZE } from '../kernel/syscalls.js';
import { ProbeMismatch, type Probe } from './probe.js';

export const zstdProbe: Probe = {
  name: 'zstd',
  title: 'zstd-napi loads and round-trips a page frame',
  required: true,
  affects: 'dump, pre-dump, restore (page images are zstd frames)',
  needs: [],
  run: async () => {
    // Imported here, not at the top: a broken build must make this probe fail, not the CLI.
    const { compress, decompress } = await import('zstd-napi');
    const data = Buffer.alloc(16 * PAGE_SIZE);
    for (let i = 0; i < data.length; i += 8) data.writeUInt32LE((i * 2654435761) >>> 0, i);
    const packed = compress(data);
    const back = decompress(packed);
    if (!back.equals(data)) throw new ProbeMismatch('zstd round trip changed the data');
    return `64 KiB -> ${packed.length} bytes and back`;
  },
};
