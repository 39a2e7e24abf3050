/* The demo's workload: a small in-memory key-value store that keeps working.
 *
 * It holds argv[1] MiB (default 384) of 64-byte records, updates records all the time (paced,
 * a few hundred thousand updates a second, most of them in a hot 8 MiB corner, as real
 * workloads do) and keeps a running sum of every record's hash,
 * adjusted on each update. On SIGUSR1 it checks itself: the sum over all records, recomputed,
 * must equal the running sum, and every record must still carry its own key. It prints
 * "verified: N updates, M records, sum OK" or "CORRUPT: ...". A checkpoint that lost or tore
 * a single record shows up there. SIGTERM ends it. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>

struct record {
  uint64_t key;
  uint64_t version;
  uint64_t value[6];
};

static volatile sig_atomic_t check_now, stop;
static void on_usr1(int s) { (void)s; check_now = 1; }
static void on_term(int s) { (void)s; stop = 1; }

static inline uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  return x ^ (x >> 33);
}

static inline uint64_t hash(const struct record *r) {
  uint64_t h = mix(r->key) ^ mix(r->version + 0x9e37);
  for (int i = 0; i < 6; i++) h = mix(h ^ r->value[i]);
  return h;
}

int main(int argc, char **argv) {
  size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 384;
  /* Whatever started us may have leaked fds to us; a checkpoint would have to carry them. */
  syscall(SYS_close_range, 3, ~0U, 0);
  size_t n = (mib << 20) / sizeof(struct record);
  size_t hot = (8u << 20) / sizeof(struct record);
  if (hot > n) hot = n;
  struct record *t = mmap(NULL, n * sizeof *t, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (t == MAP_FAILED) return 2;
  signal(SIGUSR1, on_usr1);
  signal(SIGTERM, on_term);
  uint64_t sum = 0;
  for (size_t i = 0; i < n; i++) {
    t[i].key = i;
    t[i].version = 0;
    /* Text-like, compressible content: what real heaps hold more than random bytes. */
    for (int k = 0; k < 6; k++) t[i].value[k] = 0x2020202020202020ull + (i % 977) * 0x0101 + k;
    sum += hash(&t[i]);
  }
  printf("workload ready: %zu records in %zu MiB\n", n, mib);
  fflush(stdout);
  uint64_t updates = 0, x = 88172645463325252ull;
  struct timespec pause = {0, 500 * 1000};
  while (!stop) {
    for (int b = 0; b < 200; b++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      struct record *r = &t[(x & 31) ? (x >> 8) % hot : (x >> 8) % n];
      sum -= hash(r);
      r->version++;
      r->value[r->version % 6] = x;
      sum += hash(r);
      updates++;
    }
    nanosleep(&pause, NULL);
    if (check_now) {
      check_now = 0;
      uint64_t again = 0;
      size_t wrong_keys = 0;
      for (size_t i = 0; i < n; i++) {
        if (t[i].key != i) wrong_keys++;
        again += hash(&t[i]);
      }
      if (again == sum && wrong_keys == 0) printf("verified: %lu updates, %zu records, sum OK\n", (unsigned long)updates, n);
      else printf("CORRUPT: %zu records with a wrong key, sum %s\n", wrong_keys, again == sum ? "OK" : "differs");
      fflush(stdout);
    }
  }
  return 0;
}
