/* What entering the kernel costs on this machine, for the pre-dump bench's header: one
 * system call (getppid, 200k times) and one page fault on fresh anonymous memory (64 MiB,
 * touched once per page, twice over: mmap, touch, munmap). On a VM these are the costs that
 * make or break a frozen dump: remote syscalls, page-table walks and first touches.
 * Prints one JSON line: {"syscallNs":..,"faultUs":..}. */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

static double fault_us(size_t len) {
  volatile char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return -1;
  double t = now_ns();
  for (size_t o = 0; o < len; o += 4096) p[o] = 1;
  double us = (now_ns() - t) / (len / 4096) / 1000;
  munmap((void *)p, len);
  return us;
}

int main(void) {
  const int n = 200000;
  double best = 1e18;
  for (int r = 0; r < 3; r++) {
    double t = now_ns();
    for (int i = 0; i < n; i++) syscall(SYS_getppid);
    double ns = (now_ns() - t) / n;
    if (ns < best) best = ns;
  }
  double f1 = fault_us(64 << 20), f2 = fault_us(64 << 20);
  printf("{\"syscallNs\":%.0f,\"faultUs\":%.2f}\n", best, f1 < f2 ? f1 : f2);
  return 0;
}
