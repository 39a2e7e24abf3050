// CRIU-style two-step lazy restore: `criu-ts lazy-pages -D DIR` waits on a unix socket in
// DIR; `criu-ts restore -D DIR --lazy-pages` builds the process and offers its uffd there.
// No fd passing over the socket: the server takes the fd out of the restorer with
// pidfd_getfd (both run as root), and answers once its guardian holds it too.
//
//   restore ──{"pid", "from", "fd"}──► lazy-pages: pidfd_getfd(from, fd), guardian holds it
//   restore ◄──────── "ok" ─────────── lazy-pages         then restore lets the process run
import { createConnection, createServer, type Socket } from 'node:net';
import { once } from 'node:events';
import { closeSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CriuError } from '../errors.js';
import { native } from '../kernel/native.js';

export const socketPath = (dir: string) => join(dir, 'lazy-pages.sock');

export interface Offer {
  pid: number;
  from: number;
  fd: number;
}

/** One line from the socket, leaving it open (an async iterator would destroy it on return). */
function line(sock: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString();
      const nl = text.indexOf('\n');
      if (nl < 0) return;
      sock.off('data', onData).off('end', onEnd).off('error', reject);
      resolve(text.slice(0, nl));
    };
    const onEnd = () => reject(new CriuError('EPIPE', 'the other side closed the lazy-pages socket'));
    sock.on('data', onData).on('end', onEnd).on('error', reject);
  });
}

/** restore's side: offers the uffd and waits until the server has it. */
export async function offerUffd(dir: string, o: Offer): Promise<void> {
  const sock = createConnection(socketPath(dir));
  try {
    await Promise.race([
      once(sock, 'connect'),
      once(sock, 'error').then(([e]) => {
        throw new CriuError('ECONNREFUSED', `no lazy-pages server at ${socketPath(dir)} (start \`criu-ts lazy-pages -D ${dir}\` first): ${(e as Error).message}`);
      }),
    ]);
    sock.write(JSON.stringify(o) + '\n');
    const answer = await line(sock);
    if (answer !== 'ok') throw new CriuError('EIO', `lazy-pages server: ${answer}`);
  } finally {
    sock.destroy();
  }
}

/**
 * The server's side: waits for one offer, takes the fd, lets `accept` prepare (guardian),
 * then answers. Returns the taken fd and the offer.
 */
export async function takeOffer(dir: string, accept: (o: Offer, fd: number) => void): Promise<{ offer: Offer; fd: number }> {
  const path = socketPath(dir);
  rmSync(path, { force: true });
  const server = createServer();
  server.listen(path);
  await once(server, 'listening');
  try {
    const [sock] = (await once(server, 'connection')) as [Socket];
    try {
      const offer = JSON.parse(await line(sock)) as Offer;
      const pidfd = native.pidfdOpen(offer.from);
      let fd: number;
      try {
        fd = native.pidfdGetfd(pidfd, offer.fd);
      } finally {
        closeSync(pidfd);
      }
      try {
        accept(offer, fd);
      } catch (e) {
        sock.write(`err ${(e as Error).message}\n`);
        closeSync(fd);
        throw e;
      }
      sock.write('ok\n');
      await new Promise<void>((r) => sock.end(r));
      return { offer, fd };
    } finally {
      sock.destroy();
    }
  } finally {
    server.close();
    rmSync(path, { force: true });
  }
}
