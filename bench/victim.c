/* Bench victim: maps SIZE_MIB MiB of private anonymous memory, fills every page with
 * semi-compressible data (text-like lines, small integers, pointer-like words, sparse
 * structs, a few incompressible pages: zstd -3 in 64 KiB frames makes about 3.1x of it), prints
 * "region 0xADDR BYTES" and "ready", then sleeps until killed.
 *
 * argv: SIZE_MIB [SEED]
 * The content is deterministic for a given size and seed. Output goes through write(2). */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PG 4096ul

static uint64_t rng_state;

static inline uint64_t rnd(void) {
  /* xorshift64* */
  uint64_t x = rng_state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  rng_state = x;
  return x * 0x2545F4914F6CDD1DULL;
}

static const char *words[] = {
    "the",     "process", "memory",  "page",    "thread", "signal", "restore", "dump",    "image",
    "kernel",  "mapping", "file",    "error",   "value",  "state",  "buffer",  "request", "reply",
    "session", "user",    "name",    "id",      "time",   "count",  "offset",  "length",  "status",
    "ok",      "failed",  "queue",   "worker",  "frame",  "index",  "table",   "key",     "data",
    "{",       "}",       "\"type\":", "null",  "true",   "false",  "http://", ".json",   "=",
    "GET",     "POST",    "/api/v1", "INFO",    "WARN",   "DEBUG",  "0",       "1",       "2024",
    "cache",   "hit",     "miss",    "latency", "ms",     "bytes",  "client",  "server",  "\n",
};
#define NWORDS (sizeof words / sizeof words[0])

/* Log/JSON-like text: random words and numbers. */
static void fill_text(unsigned char *p) {
  size_t o = 0;
  while (o < PG) {
    char tmp[32];
    const char *w;
    size_t n;
    uint64_t r = rnd();
    if ((r & 7) == 0) {
      n = (size_t)snprintf(tmp, sizeof tmp, "%u ", (unsigned)(r >> 40) % 100000);
      w = tmp;
    } else {
      w = words[(r >> 8) % NWORDS];
      n = strlen(w);
    }
    if (n > PG - o) n = PG - o;
    memcpy(p + o, w, n);
    o += n;
    if (o < PG && w != tmp) p[o++] = ' ';
  }
}

/* Arrays of small integers (counters, ids, enums). */
static void fill_ints(unsigned char *p) {
  uint32_t *q = (uint32_t *)p;
  uint32_t base = (uint32_t)(rnd() % 1000);
  for (size_t i = 0; i < PG / 4; i++) q[i] = base + (uint32_t)(rnd() % 64);
}

/* Heap-like: pointers into a few regions, lengths, flags. */
static void fill_pointers(unsigned char *p) {
  uint64_t *q = (uint64_t *)p;
  uint64_t heap = 0x000055d4a0000000ULL + ((rnd() % 64) << 20);
  for (size_t i = 0; i < PG / 8; i += 4) {
    q[i] = heap + ((rnd() % 65536) << 4);
    q[i + 1] = heap + ((rnd() % 65536) << 4);
    q[i + 2] = rnd() % 4096;
    q[i + 3] = rnd() & 0x3;
  }
}

/* Mostly zero with a few scattered values (sparse structs, padding). */
static void fill_sparse(unsigned char *p) {
  memset(p, 0, PG);
  uint64_t *q = (uint64_t *)p;
  for (int i = 0; i < 24; i++) q[rnd() % (PG / 8)] = rnd();
}

static void fill_random(unsigned char *p) {
  uint64_t *q = (uint64_t *)p;
  for (size_t i = 0; i < PG / 8; i++) q[i] = rnd();
}

/* Fills [m, m+len) with the mix: runs of similar pages, as real heaps have: each run of 1-16
 * pages has one kind. Mix (by pages): text 35 %, ints 20 %, pointers 20 %, sparse 20 %,
 * random 5 %. (Also used by the other bench victims, which #include this file.) */
static void fill_region(unsigned char *m, size_t len) {
  for (size_t off = 0; off < len;) {
    uint64_t r = rnd();
    size_t run = 1 + (r >> 32) % 16;
    unsigned k = (unsigned)(r % 100);
    void (*fill)(unsigned char *) = k < 35 ? fill_text : k < 55 ? fill_ints : k < 75 ? fill_pointers : k < 95 ? fill_sparse : fill_random;
    for (size_t i = 0; i < run && off < len; i++, off += PG) fill(m + off);
  }
}

#ifndef BENCH_VICTIM_NO_MAIN
int main(int argc, char **argv) {
  if (argc < 2) {
    dprintf(2, "usage: %s SIZE_MIB [SEED]\n", argv[0]);
    return 2;
  }
  size_t len = (size_t)strtoull(argv[1], NULL, 10) << 20;
  rng_state = argc > 2 ? strtoull(argv[2], NULL, 10) | 1 : 0x9E3779B97F4A7C15ULL;
  unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) {
    perror("mmap");
    return 3;
  }
  fill_region(m, len);
  dprintf(1, "region 0x%lx %zu\n", (unsigned long)m, len);
  if (write(1, "ready\n", 6) != 6) return 4;
  for (;;) pause();
}
#endif
