// The package's API: each CLI command is also a typed function here, taking the command's
// options and returning what its --json prints. Failures are CriuError (code, cause); long
// calls take an AbortSignal and an onProgress callback (see src/api/options.ts).
export { check, PROBE_NAMES, UnknownFeatureError, type CheckOptions, type CheckReport, type ProbeResult, type ProbeStatus } from './check/index.js';
export { dump, preDump, stopTracking, type DumpApiOptions, type PreDumpApiOptions } from './api/dump.js';
export { restore, type RestoreApiOptions } from './api/restore.js';
export { show } from './api/show.js';
export type { ImagesFrom } from './api/images-from.js';
export { pack, unpack } from './api/pack.js';
export type { ApiOptions } from './api/options.js';
export type { DumpResult } from './dump/dump.js';
export type { PreDumpResult } from './dump/predump.js';
export type { RestoreResult } from './restore/restore.js';
export type { SetSummary } from './images/describe.js';
export type { PackOptions, PackResult } from './pack/pack.js';
export type { UnpackOptions, UnpackResult } from './pack/unpack.js';
export type { Progress, ProgressFn } from './progress.js';
export { CriuError } from './errors.js';
export { ImageError } from './images/errors.js';
export { ArchiveError } from './pack/errors.js';
export { createLogger, silentLogger, type Logger, type Level } from './log.js';
