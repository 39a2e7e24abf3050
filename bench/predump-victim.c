/* Pre-dump bench victim: maps SIZE_MIB MiB of private anonymous memory, fills every page
 * (semi-compressible: a page-number header, small integers, one random word in eight), then
 * stores all the time, writing PCT % of its pages per second:
 *
 *   every 10 ms tick, a fresh set of random pages becomes the hot set (PCT % of the pages per
 *   second, spread over the ticks) and gets one store each; between ticks, random stores go
 *   into the hot set as fast as the CPU allows.
 *
 * So the distinct pages written per second follow PCT, and the store throughput shows what
 * write tracking costs the process: the first store to a protected page takes a fault. Stored
 * values are 16-bit (counters, not noise): dirty pages stay about as compressible as the rest.
 * At every tick the victim publishes {seq, stores, cpu_ns} (a seqlock: seq is odd while it
 * writes) at the printed address; the bench reads it with process_vm_readv, so it can measure
 * stores per second of wall time and per second of the victim's own CPU time (which other
 * load on the machine does not disturb; tracking faults are charged to it as system time).
 *
 * argv: SIZE_MIB PCT      stdin: "rate PCT" changes the rate, answered "rate PCT ok".
 * stdout (write(2)): "region 0xADDR BYTES", "counter 0xADDR", "ready". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PG 4096ul
#define TICK_NS 10000000ull
#define MAX_HOT (1u << 20)

static volatile struct {
  uint64_t seq, stores, cpu_ns;
} pub; /* read from outside */
static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t hot[MAX_HOT];

static inline uint64_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static uint64_t clock_ns(clockid_t c) {
  struct timespec t;
  clock_gettime(c, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void publish(uint64_t stores) {
  pub.seq++;
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  pub.stores = stores;
  pub.cpu_ns = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  pub.seq++;
}

static void fill(uint64_t *w, size_t pages) {
  for (size_t p = 0; p < pages; p++) {
    uint64_t *q = w + p * (PG / 8);
    q[0] = p;
    for (size_t i = 1; i < PG / 8; i++) q[i] = (i & 7) == 0 ? rnd() : (p * 31 + i) % 97;
  }
}

/* A line "rate PCT" from stdin, if one is there (stdin is non-blocking). */
static int poll_rate(double *pct) {
  static char buf[256];
  static size_t used;
  ssize_t n = read(0, buf + used, sizeof buf - 1 - used);
  if (n <= 0) return 0;
  used += (size_t)n;
  buf[used] = 0;
  char *nl = strchr(buf, '\n');
  if (!nl) return 0;
  *nl = 0;
  int got = sscanf(buf, "rate %lf", pct) == 1;
  if (got) dprintf(1, "rate %s ok\n", buf + 5);
  memmove(buf, nl + 1, used - (size_t)(nl + 1 - buf) + 1);
  used -= (size_t)(nl + 1 - buf);
  return got;
}

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  size_t bytes = strtoul(argv[1], NULL, 10) << 20;
  double pct = strtod(argv[2], NULL);
  size_t pages = bytes / PG;
  uint64_t *w = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (w == MAP_FAILED) return 2;
  fill(w, pages);
  fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
  dprintf(1, "region 0x%lx %zu\n", (unsigned long)w, bytes);
  dprintf(1, "counter 0x%lx\n", (unsigned long)&pub);
  dprintf(1, "ready\n");
  uint32_t nhot = 1;
  hot[0] = 0;
  double carry = 0;
  uint64_t next = clock_ns(CLOCK_MONOTONIC) + TICK_NS;
  uint64_t stores = 0;
  unsigned ticks = 0;
  publish(0);
  for (;;) {
    for (int i = 0; i < 1024; i++) {
      uint64_t r = rnd();
      uint32_t page = hot[r % nhot];
      w[(size_t)page * (PG / 8) + ((r >> 32) & (PG / 8 - 1))] = r >> 48;
    }
    stores += 1024;
    uint64_t t = clock_ns(CLOCK_MONOTONIC);
    if (t < next) continue;
    publish(stores);
    next += TICK_NS;
    if (next < t) next = t + TICK_NS; /* fell behind (stopped, descheduled): no catch-up burst */
    if (++ticks % 10 == 0) poll_rate(&pct);
    carry += (double)pages * pct / 100.0 * (TICK_NS / 1e9);
    uint32_t n = (uint32_t)carry;
    if (n == 0) continue;
    carry -= n;
    if (n > MAX_HOT) n = MAX_HOT;
    for (uint32_t i = 0; i < n; i++) {
      uint32_t page = (uint32_t)(rnd() % pages);
      hot[i] = page;
      w[(size_t)page * (PG / 8) + 1] = rnd() >> 48;
    }
    nhot = n;
  }
}
