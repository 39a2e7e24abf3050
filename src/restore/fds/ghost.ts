// The content of a ghost file (ghost-PID-FD.zst), checked against the size the fd table gives.
import { ImageError } from '../../images/errors.js';
import type { ImageSource } from '../../images/source.js';
import { zstd } from '../../images/zstd.js';

export function ghostContent(src: ImageSource, name: string, expected: number): Buffer {
  const comp = src.readFile(name);
  let size: number | null;
  try {
    size = zstd.getFrameContentSize(comp);
  } catch (err) {
    throw new ImageError(src.path(name), `not a zstd frame (${(err as Error).message})`, { cause: err });
  }
  if (size !== expected) throw new ImageError(src.path(name), `holds ${size} bytes, the fd table says ${expected}`);
  const out = Buffer.alloc(size);
  try {
    zstd.decompress(out, comp);
  } catch (err) {
    throw new ImageError(src.path(name), `damaged (${(err as Error).message})`, { cause: err });
  }
  return out;
}
