/* Lazy-restore bench victim: maps SIZE_MIB MiB filled as bench/victim.c fills it, prints
 * "region 0xADDR BYTES" and "ready", then waits in sigsuspend for SIGUSR1 (blocked outside it,
 * so no wake-up is lost). It is dumped there. After a restore the bench sends SIGUSR1 as soon
 * as the process runs; the victim then at once reads one word in each of TOUCHES distinct pages
 * in a scattered order (page (i * A + B) mod PAGES: consecutive touches land far apart), timing
 * each first touch with clock_gettime(CLOCK_MONOTONIC). Before each touch, mincore() says whether
 * the page was already in: those that were not are the lazy faults, whose time is the fault
 * service latency as the process sees it.
 *
 * It writes its findings to RESULT_PATH (a new file, written as RESULT_PATH.tmp then renamed:
 * after a restore its stdio are the restorer's, and the bench reads the file), then waits again
 * for the next SIGUSR1 (a new round: the pages are all in by then) until killed. The words it
 * reads are hashed and checked against the hash taken before the dump.
 *
 * argv: SIZE_MIB TOUCHES RESULT_PATH
 * Result: one line of "key value" pairs: go_ns (CLOCK_MONOTONIC when the signal got through),
 * end_ns, touches, faulted, all_p50_ns all_p99_ns all_max_ns, flt_p50_ns flt_p99_ns flt_max_ns
 * flt_mean_ns, hash ok|bad. */
#define BENCH_VICTIM_NO_MAIN
#include "victim.c"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>

static volatile sig_atomic_t go;
static void on_usr1(int s) {
  (void)s;
  go = 1;
}

static inline uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static size_t gcd(size_t a, size_t b) {
  while (b) {
    size_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Percentile p (0-1) of a sorted array: the element at floor(n * p), as the lazy server does. */
static uint64_t pct(const uint64_t *s, size_t n, double p) {
  if (!n) return 0;
  size_t i = (size_t)((double)n * p);
  return s[i < n ? i : n - 1];
}

static inline uint64_t mix(uint64_t h, uint64_t x) {
  h ^= x + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
  return h;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    dprintf(2, "usage: %s SIZE_MIB TOUCHES RESULT_PATH\n", argv[0]);
    return 2;
  }
  size_t len = (size_t)strtoull(argv[1], NULL, 10) << 20;
  size_t pages = len / PG;
  size_t touches = (size_t)strtoull(argv[2], NULL, 10);
  const char *path = argv[3];
  if (touches > pages) touches = pages;
  rng_state = 0x9E3779B97F4A7C15ULL;
  unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) {
    perror("mmap");
    return 3;
  }
  fill_region(m, len);

  /* A stride near PAGES / golden ratio, coprime with PAGES: i -> (i * a + b) mod PAGES is a
   * permutation, so the first TOUCHES pages it gives are distinct. */
  size_t a = (size_t)((double)pages * 0.6180339887) | 1, b = pages / 3;
  while (gcd(a, pages) != 1) a += 2;
  uint64_t want = 0;
  for (size_t i = 0; i < touches; i++) want = mix(want, *(volatile uint64_t *)(m + ((i * a + b) % pages) * PG));

  struct sigaction sa = {0};
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, NULL);
  sigset_t usr1, none;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  sigemptyset(&none);
  sigprocmask(SIG_BLOCK, &usr1, NULL);

  size_t plen = strlen(path);
  char *tmp = malloc(plen + 5);
  memcpy(tmp, path, plen);
  memcpy(tmp + plen, ".tmp", 5);

  dprintf(1, "region 0x%lx %zu\n", (unsigned long)m, len);
  if (write(1, "ready\n", 6) != 6) return 4;

  for (;;) {
    while (!go) sigsuspend(&none);
    go = 0;
    uint64_t t_go = now_ns();
    /* Fresh mappings, made after the restore: not registered with any userfaultfd. */
    size_t lat_len = (touches * 2 * sizeof(uint64_t) + PG - 1) & ~(PG - 1);
    uint64_t *lat = mmap(NULL, lat_len ? lat_len : PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (lat == MAP_FAILED) return 5;
    uint64_t *flt = lat + touches;
    size_t nflt = 0;
    uint64_t h = 0;
    for (size_t i = 0; i < touches; i++) {
      volatile uint64_t *p = (volatile uint64_t *)(m + ((i * a + b) % pages) * PG);
      unsigned char in = 0;
      if (mincore((void *)p, PG, &in)) in = 1;
      uint64_t t0 = now_ns();
      uint64_t x = *p;
      uint64_t t1 = now_ns();
      h = mix(h, x);
      lat[i] = t1 - t0;
      if (!(in & 1)) flt[nflt++] = t1 - t0;
    }
    uint64_t t_end = now_ns();
    uint64_t fsum = 0;
    for (size_t i = 0; i < nflt; i++) fsum += flt[i];
    qsort(lat, touches, sizeof *lat, cmp_u64);
    qsort(flt, nflt, sizeof *flt, cmp_u64);
    char out[512];
    int n = snprintf(out, sizeof out,
                     "go_ns %llu end_ns %llu touches %zu faulted %zu all_p50_ns %llu all_p99_ns %llu all_max_ns %llu "
                     "flt_p50_ns %llu flt_p99_ns %llu flt_max_ns %llu flt_mean_ns %llu hash %s\n",
                     (unsigned long long)t_go, (unsigned long long)t_end, touches, nflt, (unsigned long long)pct(lat, touches, 0.5),
                     (unsigned long long)pct(lat, touches, 0.99), (unsigned long long)(touches ? lat[touches - 1] : 0),
                     (unsigned long long)pct(flt, nflt, 0.5), (unsigned long long)pct(flt, nflt, 0.99),
                     (unsigned long long)(nflt ? flt[nflt - 1] : 0), (unsigned long long)(nflt ? fsum / nflt : 0), h == want ? "ok" : "bad");
    munmap(lat, lat_len ? lat_len : PG);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, out, (size_t)n) != n || close(fd) || rename(tmp, path)) return 6;
  }
}
