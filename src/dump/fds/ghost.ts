// Content of a file the process holds but that has no name any more (a deleted file, a
// memfd), read through /proc/PID/fd/N and saved as ghost-PID-FD.zst beside the fd table.
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { CriuError } from '../../errors.js';
import { ghostFile } from '../../images/files.js';
import { writeImageFile } from '../../images/io.js';
import { zstd } from '../../images/zstd.js';

export function saveGhost(pid: number, fd: number, dir: string): { name: string; size: number } {
  const name = ghostFile(pid, fd);
  const fdr = openSync(`/proc/${pid}/fd/${fd}`, 'r');
  try {
    const content = readFileSync(fdr);
    if (content.length !== fstatSync(fdr).size) throw new CriuError('EIO', `fd ${fd} of pid ${pid}: short read of its content`);
    const out = Buffer.allocUnsafe(zstd.compressBound(content.length));
    writeImageFile(dir, name, out.subarray(0, zstd.compress(out, content, 3)));
    return { name, size: content.length };
  } finally {
    closeSync(fdr);
  }
}
