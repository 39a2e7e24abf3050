// Open file descriptions shared between processes of a tree (fork inheritance: a parent and
// its children holding the same file, socket or pipe end). Found with kcmp across processes;
// each is saved by the first process that holds it (tree order) and taken from there at
// restore. A pipe whose ends are in different processes of the tree is made by the first
// of them; its data is read (tee, nothing consumed) from whichever process holds a read end.
import type { FdEntry, Files } from '../../images/files.js';
import { native } from '../../kernel/native.js';
import { TakenFds } from '../../kernel/taken-fds.js';
import { O } from '../../kernel/syscalls.js';
import { teePipe } from './pipes.js';

const KCMP_FILE = 0;

export function shareAcrossTree(procs: Array<{ pid: number; files: Files }>, notes: string[]): void {
  const seen: Array<{ pid: number; e: FdEntry }> = [];
  for (const { pid, files } of procs) {
    for (const e of files.fds) {
      if (e.kind === 'inherited' || e.dupOf !== undefined) continue;
      const owner = seen.find((s) => s.pid !== pid && s.e.target === e.target && native.kcmp(s.pid, pid, KCMP_FILE, s.e.fd, e.fd) === 0);
      if (owner) e.sharedWith = { pid: owner.pid, fd: owner.e.fd };
      else seen.push({ pid, e });
    }
  }
  // Pipes with ends in several processes: no longer "outside" if every end is in the tree.
  const ends = new Map<number, Array<{ pid: number; e: FdEntry }>>();
  for (const { pid, files } of procs) {
    for (const e of files.fds) if (e.kind === 'pipe' && e.pipe && e.dupOf === undefined) ends.set(e.pipe.id, [...(ends.get(e.pipe.id) ?? []), { pid, e }]);
  }
  for (const [id, list] of ends) {
    const pids = new Set(list.map((x) => x.pid));
    if (pids.size < 2) continue;
    const modes = new Set(list.map((x) => x.e.flags & O.ACCMODE));
    if (!modes.has(O.RDONLY) || !modes.has(O.WRONLY)) continue; // an end is outside the tree
    const creator = list[0]!.pid;
    for (const { e } of list) {
      delete e.pipe!.outside;
      e.pipe!.creator = creator;
    }
    if (!list.some((x) => x.e.pipe!.data !== undefined)) {
      const reader = list.find((x) => (x.e.flags & O.ACCMODE) === O.RDONLY)!;
      const fds = new TakenFds(reader.pid);
      try {
        const { size, data } = fds.with(reader.e.fd, teePipe);
        reader.e.pipe!.size = size;
        if (data.length) reader.e.pipe!.data = data.toString('base64');
      } finally {
        fds.close();
      }
    }
    const resolved = `pipe:[${id}]`;
    for (let i = notes.length - 1; i >= 0; i--) if (notes[i]!.includes(resolved) && notes[i]!.includes('outside the process')) notes.splice(i, 1);
  }
}
