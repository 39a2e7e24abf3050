// What a pass needs from its parent set, and the inventory every set ends with.
import { randomUUID } from 'node:crypto';
import { release } from 'node:os';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { ImageError } from '../images/errors.js';
import { loadChain } from '../images/imageset.js';
import { writeInventory, type Inventory } from '../images/inventory.js';
import { decodePagemap } from '../images/pagemap.js';
import { pagemapFile } from '../images/pages.js';
import { readImageFile } from '../images/io.js';
import { toolVersion } from '../paths.js';
import type { ParentPages } from './plan.js';

export interface Parent {
  /** As written into the child's inventory: relative to the child set's directory. */
  rel: string;
  dir: string;
  inventory: Inventory;
  pages: Map<number, ParentPages>;
}

/**
 * The parent set named by --prev-images-dir (relative to -D, as in CRIU), checked whole
 * (with its own chain) before any process is touched.
 */
export function openParent(imagesDir: string, prev: string, pid: number): Parent {
  const dir = resolve(imagesDir, prev);
  const chain = loadChain(dir);
  const set = chain[0]!;
  if (set.inventory.kind !== 'pre-dump') {
    throw new ImageError(join(dir, 'inventory.json'), 'the parent set is a dump; a chain continues from pre-dumps');
  }
  if (set.inventory.rootPid !== pid) {
    throw new ImageError(join(dir, 'inventory.json'), `the parent set is of process ${set.inventory.rootPid}, not ${pid}`);
  }
  const pages = new Map<number, ParentPages>();
  for (const p of set.pstree.processes) {
    const index = decodePagemap(readImageFile(dir, pagemapFile(p.pid)), join(dir, pagemapFile(p.pid)));
    pages.set(p.pid, { vmas: set.mms.get(p.pid)!.vmas, index });
  }
  const rel = isAbsolute(prev) ? relative(resolve(imagesDir), dir) || '.' : prev;
  return { rel, dir, inventory: set.inventory, pages };
}

export function newInventory(
  kind: Inventory['kind'],
  pid: number,
  parent: Parent | undefined,
  options: Inventory['options'],
  stats: Record<string, number>,
  extra: Pick<Inventory, 'tracking' | 'notes'> = {},
  id: string = randomUUID(),
): Inventory {
  return {
    format: 'criu-ts',
    version: 1,
    id,
    kind,
    createdAt: new Date().toISOString(),
    toolVersion: toolVersion(),
    kernel: release(),
    arch: 'x86_64',
    pageSize: 4096,
    rootPid: pid,
    pids: [pid],
    parent: parent?.rel ?? null,
    parentId: parent?.inventory.id ?? null,
    options,
    stats,
    ...extra,
  };
}

export { writeInventory };
