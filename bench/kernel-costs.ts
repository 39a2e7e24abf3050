// What entering the kernel costs on this machine (bench/kernel-costs.c) and which hypervisor
// the kernel found at boot: a frozen dump is mostly kernel entries (remote syscalls, page
// walks, first touches), so the pre-dump bench shows these next to its figures.
import { execFileSync } from 'node:child_process';
import { buildBenchBinary } from './phase.js';

export interface KernelCosts {
  /** One getppid(2), best of three runs of 200k. */
  syscallNs: number;
  /** One page fault on fresh anonymous memory (zero-filled page), per 4 KiB page touched. */
  faultUs: number;
  /** "Hypervisor detected: X" from the boot log; 'none' on bare metal, '?' if unreadable. */
  hypervisor: string;
}

export function kernelCosts(): KernelCosts {
  const measured = JSON.parse(execFileSync(buildBenchBinary('kernel-costs', 'kernel-costs'), { encoding: 'utf8' })) as Omit<KernelCosts, 'hypervisor'>;
  let hypervisor = '?';
  try {
    hypervisor = /Hypervisor detected: (\S+)/.exec(execFileSync('dmesg', { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }))?.[1] ?? 'none';
  } catch {
    /* no permission to read the kernel log */
  }
  return { ...measured, hypervisor };
}
