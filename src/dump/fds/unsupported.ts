// Names for the fd kinds criu-ts refuses, so the error says what the fd is
// ("an io_uring instance (anon_inode:[io_uring])"), not only its link text.

const ANON_KINDS: Record<string, string> = {
  io_uring: 'an io_uring instance',
  perf_event: 'a perf event',
  'bpf-map': 'a BPF map',
  'bpf-prog': 'a BPF program',
  bpf_link: 'a BPF link',
  'bpf-link': 'a BPF link',
  bpf_iter: 'a BPF iterator',
  'bpf-token': 'a BPF token',
  userfaultfd: 'a userfaultfd',
  pidfd: 'a pidfd',
  fanotify: 'a fanotify group',
  'kvm-vm': 'a KVM virtual machine',
  'kvm-vcpu': 'a KVM vCPU',
  'vfio-device': 'a VFIO device',
  dmabuf: 'a DMA buffer',
  sync_file: 'a sync file',
  'seccomp notify': 'a seccomp notifier',
  'landlock-ruleset': 'a Landlock ruleset',
};

/** "an io_uring instance (anon_inode:[io_uring])" for a /proc/PID/fd link target. */
export function describeTarget(target: string): string {
  // anon_inode:[io_uring], anon_inode:bpf-map, anon_inode:inotify ...
  const anon = /^anon_inode:\[?([^\]]+)\]?$/.exec(target);
  if (anon) return `${ANON_KINDS[anon[1]!] ?? `an anonymous-inode object "${anon[1]}"`} (${target})`;
  // net:[4026531840], mnt:[...], pidfd:[...]: a namespace or another pseudo file.
  const pseudo = /^(\w+):\[\d+\]$/.exec(target);
  if (pseudo) {
    const ns = ['net', 'mnt', 'pid', 'uts', 'ipc', 'user', 'cgroup', 'time'].includes(pseudo[1]!);
    return `${ns ? `a ${pseudo[1]} namespace` : `a ${pseudo[1]}`} (${target})`;
  }
  return `an unknown kind of file (${target})`;
}

const FAMILIES: Record<number, string> = {
  16: 'a netlink socket',
  17: 'a packet socket',
  4: 'an IPX socket',
  5: 'an AppleTalk socket',
  38: 'an AF_ALG socket',
  40: 'a vsock socket',
  44: 'an XDP socket',
  31: 'a Bluetooth socket',
  15: 'a key-management socket',
};

export function describeSocketFamily(family: number): string {
  return FAMILIES[family] ?? `a socket of family ${family}`;
}
