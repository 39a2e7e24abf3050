// Loads the addon and the restore stub built by `npm install` (binding.gyp at the root).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { packageRoot } from '../paths.js';
import type { NativeApi, NativeError } from './native-api.js';

export type { NativeApi, NativeError } from './native-api.js';
export { packageRoot } from '../paths.js';

const root = packageRoot();
const addonPath = join(root, 'build', 'Release', 'criu_native.node');

function load(): NativeApi {
  if (!existsSync(addonPath)) {
    throw new Error(`criu-ts: the native addon is not built (${addonPath}); run npm install`);
  }
  return createRequire(import.meta.url)(addonPath) as NativeApi;
}

export const native: NativeApi = load();

/** The static program a restore grows a process out of. */
export const stubPath = join(root, 'build', 'Release', 'stub');

export function isNativeError(e: unknown): e is NativeError {
  return e instanceof Error && typeof (e as NativeError).code === 'string' && typeof (e as NativeError).errno === 'number';
}

export function hasCode(e: unknown, ...codes: string[]): boolean {
  return e instanceof Error && codes.includes((e as { code?: string }).code ?? '');
}
