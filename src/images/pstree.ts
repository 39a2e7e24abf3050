// pstree.json: the processes of the dumped tree, their threads and session/group ids.
import { readJson, writeJson, type DeferredSyncs } from './io.js';
import type { SetLocation } from './source.js';
import { arr, literal, obj, opt, uint, type Infer } from './schema.js';

export const PSTREE = 'pstree.json';

export const pstreeSchema = obj({
  processes: arr(
    obj({
      pid: uint,
      ppid: uint,
      pgid: uint,
      sid: uint,
      threads: arr(uint),
      /**
       * 'stopped': in a group stop when dumped, restored stopped. 'zombie': dead, not yet
       * waited for by its parent; restored dead with the same wait status (exitStatus).
       */
      state: opt(literal('running', 'stopped', 'zombie')),
      exitStatus: opt(uint),
    }),
  ),
});

export type Pstree = Infer<typeof pstreeSchema>;
export type PstreeEntry = Pstree['processes'][number];

export const writePstree = (dir: string, t: Pstree, syncs?: DeferredSyncs) => writeJson(dir, PSTREE, t, syncs);
export const readPstree = (from: SetLocation): Pstree => readJson(from, PSTREE, pstreeSchema);
