// The network lock for established TCP connections (CRIU's --network-lock): from the moment a
// connection is read until its restored socket is ready, no packet of it may reach either
// end. A packet that came in after its queue was read would be acknowledged and then lost
// with the dumped socket; one that reached the host with no socket would draw an RST and
// kill the connection at the peer.
//
// The lock is an nftables table of our own, named after the dumped tree's root (a restore
// knows it from the images, on this host or another), with a rule per connection dropping
// its packets both ways, in the input and output hooks, before conntrack. Dump adds; a
// successful dump leaves it in place; restore removes it once the sockets are back; a dump
// that failed, or --leave-running, removes it at once.
import { spawnSync } from 'node:child_process';
import { CriuError } from '../errors.js';
import type { InetAddr } from '../kernel/sockets.js';

export type NetworkLockMethod = 'nftables' | 'skip';
export const NETWORK_LOCK_METHODS: readonly NetworkLockMethod[] = ['nftables', 'skip'];

export interface Connection {
  family: 'ipv4' | 'ipv6';
  local: InetAddr;
  peer: InetAddr;
}

export const lockTable = (rootPid: number) => `criu_ts_${rootPid}`;

/** An IPv4-mapped IPv6 address (a dual-stack socket talking IPv4) travels as IPv4. */
function ipMatch(addr: string, family: 'ipv4' | 'ipv6'): [string, string] {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(addr);
  if (mapped) return ['ip', mapped[1]!];
  return [family === 'ipv6' ? 'ip6' : 'ip', addr];
}

function nft(script: string, what: string): { ok: true } | { ok: false; message: string; missing: boolean } {
  const r = spawnSync('nft', ['-f', '-'], { input: script, encoding: 'utf8' });
  if (r.error) {
    const missing = (r.error as NodeJS.ErrnoException).code === 'ENOENT';
    return { ok: false, missing, message: missing ? 'nft (nftables) is not installed' : `${what}: ${r.error.message}` };
  }
  if (r.status !== 0) return { ok: false, missing: false, message: `${what}: nft: ${r.stderr.trim() || `exit status ${r.status}`}` };
  return { ok: true };
}

export class NetworkLock {
  private created = false;
  readonly table: string;

  constructor(
    rootPid: number,
    private readonly method: NetworkLockMethod,
  ) {
    this.table = lockTable(rootPid);
  }

  /** Drops every packet of the connection, both ways, from now until unlock. */
  lock(c: Connection): void {
    if (this.method === 'skip') return;
    const [lt, la] = ipMatch(c.local.addr, c.family);
    const [pt, pa] = ipMatch(c.peer.addr, c.family);
    const rules = [
      `${pt} saddr ${pa} ${lt} daddr ${la} tcp sport ${c.peer.port} tcp dport ${c.local.port} drop`,
      `${lt} saddr ${la} ${pt} daddr ${pa} tcp sport ${c.local.port} tcp dport ${c.peer.port} drop`,
    ];
    const lines: string[] = [];
    if (!this.created) {
      // Priority raw (-300): before conntrack, which would otherwise see the packets.
      lines.push(
        `add table inet ${this.table}`,
        `add chain inet ${this.table} in { type filter hook input priority -300; policy accept; }`,
        `add chain inet ${this.table} out { type filter hook output priority -300; policy accept; }`,
      );
    }
    for (const chain of ['in', 'out']) for (const r of rules) lines.push(`add rule inet ${this.table} ${chain} ${r}`);
    const r = nft(lines.join('\n') + '\n', `locking ${c.local.addr}:${c.local.port} -> ${c.peer.addr}:${c.peer.port}`);
    if (!r.ok) {
      throw new CriuError(
        r.missing ? 'ENOENT' : 'EIO',
        `${r.message}: established TCP connections need the network locked while they are moved (install nftables, or pass --network-lock skip to accept that packets sent meanwhile may reset the connection)`,
      );
    }
    this.created = true;
  }

  /** Lets the connections' packets through again. */
  unlock(): void {
    if (this.method === 'skip' || !this.created) return;
    unlockTable(this.table);
    this.created = false;
  }
}

/** Removes a lock left by a dump (restore's side). Returns false when there was none. */
export function unlockTable(table: string): boolean {
  const r = nft(`delete table inet ${table}\n`, `unlocking the network (table inet ${table})`);
  if (r.ok) return true;
  if (r.missing || /No such file or directory/.test(r.message)) return false;
  throw new CriuError('EIO', r.message);
}
