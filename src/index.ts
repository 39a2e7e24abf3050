// The package's API: each CLI command is also a typed function here.
export { check, PROBE_NAMES, UnknownFeatureError, type CheckOptions, type CheckReport, type ProbeResult, type ProbeStatus } from './check/index.js';
export { createLogger, silentLogger, type Logger, type Level } from './log.js';
