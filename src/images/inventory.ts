// inventory.json: what this set is (dump or pre-dump), its format version, its parent in a
// pre-dump chain, and statistics. Written last: a set without it is incomplete.
import { ImageError } from './errors.js';
import { readJson, writeJson } from './io.js';
import { sourceOf, type SetLocation } from './source.js';
import { arr, literal, nullable, num, obj, opt, record, str, uint, bool, type Infer } from './schema.js';

export const INVENTORY = 'inventory.json';
export const FORMAT_NAME = 'criu-ts';
export const FORMAT_VERSION = 1;


export const inventorySchema = obj({
  format: literal(FORMAT_NAME),
  version: literal(FORMAT_VERSION),
  /** Random id of this set; a child set names its parent's id, so a swapped parent is caught. */
  id: str,
  kind: literal('dump', 'pre-dump'),
  createdAt: str,
  toolVersion: str,
  kernel: str,
  arch: literal('x86_64'),
  pageSize: literal(4096),
  rootPid: uint,
  pids: arr(uint),
  /** Relative path of the parent set (pre-dump chains), or null. */
  parent: nullable(str),
  parentId: nullable(str),
  /** catchUp: a pre-dump pass made by a final dump before its freeze (see src/dump/catch-up.ts). */
  options: obj({ shellJob: bool, leaveRunning: bool, trackMem: opt(bool), catchUp: opt(bool) }),
  /**
   * Write tracking of a pre-dump chain (see src/dump/tracking.ts): the tracker process
   * holding the uffd between passes, and how to recognise it and the target again.
   */
  tracking: opt(
    arr(
      obj({
      /** The tracked process (one tracker per process of the tree). */
      targetPid: uint,
      trackerPid: uint,
      trackerStartTime: uint,
      trackerFd: uint,
      /** The tracker's record of the chain's last pass (see tracking.ts); chains from before it have none. */
      recordFd: opt(uint),
      targetStartTime: uint,
      userModeOnly: bool,
    }),
    ),
  ),
  /** Numbers only: durations in ms, sizes in bytes, counts. */
  stats: record(num),
  notes: opt(arr(str)),
});

export type Inventory = Infer<typeof inventorySchema>;

export function writeInventory(dir: string, inv: Inventory): void {
  writeJson(dir, INVENTORY, inv);
}

/** Reads the inventory, refusing foreign files and newer format versions with a clear message. */
export function readInventory(from: SetLocation): Inventory {
  const path = sourceOf(from).path(INVENTORY);
  // Look at format and version alone first, so a newer set gets "upgrade", not a field error.
  const h = readJson(from, INVENTORY, (v) => (typeof v === 'object' && v !== null ? (v as { format?: unknown; version?: unknown }) : {}));
  if (h.format !== FORMAT_NAME) throw new ImageError(path, 'not a criu-ts image set (format field missing or foreign)');
  if (typeof h.version !== 'number' || !Number.isInteger(h.version)) throw new ImageError(path, 'version: expected an integer');
  if (h.version > FORMAT_VERSION) {
    throw new ImageError(path, `image format version ${h.version} is newer than this tool understands (${FORMAT_VERSION}); upgrade criu-ts`);
  }
  if (h.version !== FORMAT_VERSION) throw new ImageError(path, `image format version ${h.version} is not supported (this tool reads ${FORMAT_VERSION})`);
  return readJson(from, INVENTORY, inventorySchema);
}
