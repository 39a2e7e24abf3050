// memfd: memfd_create with its name (always sealable, so that its seals can be added back),
// its content written from the ghost file, its mode, then its seals. An fd that was not
// read-write (a reopen through /proc) is opened again with its own mode.
import { fchmodSync, writeSync } from 'node:fs';
import { CriuError } from '../../errors.js';
import type { FdEntry } from '../../images/files.js';
import { native } from '../../kernel/native.js';
import { O, SYS } from '../../kernel/syscalls.js';
import { openInStub } from '../mm.js';
import { putString } from '../remote-args.js';
import type { FdRestoreContext } from './context.js';
import { ghostContent } from './ghost.js';

const MFD_ALLOW_SEALING = 2;
const F_ADD_SEALS = 1033;

/** `firstOf`: the saved fd that made each memfd (by its saved inode); its object is parked already. */
export function createMemfd(ctx: FdRestoreContext, e: FdEntry, firstOf: Map<number, number>): number {
  const { stub } = ctx;
  const m = e.memfd!;
  const first = firstOf.get(m.id);
  if (first !== undefined) return openInStub(stub, `/proc/self/fd/${ctx.place.temp.get(first)!}`, e.flags & O.ACCMODE);
  if (m.ghost === undefined) throw new CriuError('EINVAL', `fd ${e.fd}: memfd ${m.name} has no content in the image`);
  const content = ghostContent(ctx.src, m.ghost, m.size);
  const fd = stub.remote.call(SYS.memfd_create, `memfd_create(${m.name})`, putString(stub, m.name), MFD_ALLOW_SEALING);
  ctx.withOurs(fd, (ours) => {
    for (let off = 0; off < content.length; ) off += writeSync(ours, content, off, content.length - off, off);
    fchmodSync(ours, m.mode);
    // A memfd made without MFD_ALLOW_SEALING shows only F_SEAL_SEAL: adding it gives the same.
    if (m.seals) native.fcntl(ours, F_ADD_SEALS, m.seals);
  });
  firstOf.set(m.id, e.fd);
  if ((e.flags & O.ACCMODE) === O.RDWR) return fd;
  // Opened another way (read-only through /proc): a description of its own.
  const reopened = openInStub(stub, `/proc/self/fd/${fd}`, e.flags & O.ACCMODE);
  stub.remote.call(SYS.close, 'close', fd);
  return reopened;
}
