// zstd-napi's low-level binding (compress into / decompress into caller buffers, no
// intermediate allocations). It is CommonJS without an exports map, hence createRequire.
import { createRequire } from 'node:module';
import type * as Binding from 'zstd-napi/binding.js';

export type ZstdBinding = typeof Binding;
export const zstd: ZstdBinding = createRequire(import.meta.url)('zstd-napi/binding') as ZstdBinding;

export function newCompressor(level: number): { compress(dst: Uint8Array, src: Uint8Array): number } {
  const cctx = new zstd.CCtx();
  cctx.setParameter(zstd.CParameter.compressionLevel, level);
  // The frame carries its own content checksum too: a wrong page never decompresses silently.
  cctx.setParameter(zstd.CParameter.checksumFlag, 1);
  return { compress: (dst, src) => cctx.compress2(dst, src) };
}
