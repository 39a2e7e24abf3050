/* Threads-and-trees bench victim: PROCS processes (a tree shaped as a binary heap: process i
 * forks 2i+1 and 2i+2, so 16 processes are 5 levels deep), each with SIZE_MIB / PROCS MiB of
 * memory filled as bench/victim.c fills it; the root also runs THREADS - 1 more threads. Every
 * thread of every process then sleeps in pause(). Once all are ready (a pipe, closed again
 * afterwards: the dumped tree holds no fd but its stdio) the root prints
 * "pids P0 P1 ..." (the processes, tree order) and "ready".
 *
 * argv: SIZE_MIB THREADS PROCS */
#define BENCH_VICTIM_NO_MAIN
#include "victim.c"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>

static int ready_pipe[2];
static pthread_barrier_t started;

static void *sleeper(void *arg) {
  (void)arg;
  pthread_barrier_wait(&started);
  for (;;) pause();
  return NULL;
}

static void fill_share(size_t len, unsigned idx) {
  rng_state = 0x9E3779B97F4A7C15ULL + 2 * (uint64_t)idx;
  if (!len) return;
  unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) {
    perror("mmap");
    _exit(3);
  }
  fill_region(m, len);
}

/* Forks the subtree below process idx (its children 2idx+1, 2idx+2 and theirs). */
static void fork_children(unsigned idx, unsigned procs, size_t share) {
  for (unsigned c = 2 * idx + 1; c <= 2 * idx + 2 && c < procs; c++) {
    pid_t p = fork();
    if (p < 0) {
      perror("fork");
      _exit(3);
    }
    if (p == 0) {
      close(ready_pipe[0]);
      fork_children(c, procs, share);
      fill_share(share, c);
      char pidbuf[16];
      int n = snprintf(pidbuf, sizeof pidbuf, "%d\n", (int)getpid());
      /* Tree order: the root sorts the lines by index. */
      char line[32];
      int k = snprintf(line, sizeof line, "%u %.*s", c, n, pidbuf);
      if (write(ready_pipe[1], line, (size_t)k) != k) _exit(4);
      close(ready_pipe[1]);
      for (;;) pause();
    }
  }
}

int main(int argc, char **argv) {
  if (argc < 4) {
    dprintf(2, "usage: %s SIZE_MIB THREADS PROCS\n", argv[0]);
    return 2;
  }
  size_t len = (size_t)strtoull(argv[1], NULL, 10) << 20;
  unsigned threads = (unsigned)strtoul(argv[2], NULL, 10);
  unsigned procs = (unsigned)strtoul(argv[3], NULL, 10);
  if (threads < 1 || procs < 1 || procs > 1024) return 2;
  size_t share = (len / procs) & ~(PG - 1);
  if (pipe(ready_pipe)) return 3;

  fork_children(0, procs, share);
  close(ready_pipe[1]);
  fill_share(share, 0);

  pthread_barrier_init(&started, NULL, threads);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  for (unsigned t = 1; t < threads; t++) {
    pthread_t th;
    if (pthread_create(&th, &attr, sleeper, NULL)) {
      perror("pthread_create");
      return 3;
    }
  }
  if (threads > 1) pthread_barrier_wait(&started);

  /* Lines "IDX PID" from every other process, until all are in. */
  int *pids = calloc(procs, sizeof *pids);
  pids[0] = (int)getpid();
  char buf[8192];
  size_t have = 0;
  unsigned got = 0;
  while (got < procs - 1) {
    ssize_t n = read(ready_pipe[0], buf + have, sizeof buf - have - 1);
    if (n <= 0) return 4;
    have += (size_t)n;
    buf[have] = 0;
    char *line = buf, *nl;
    while ((nl = strchr(line, '\n'))) {
      unsigned idx;
      int pid;
      if (sscanf(line, "%u %d", &idx, &pid) == 2 && idx < procs) pids[idx] = pid, got++;
      line = nl + 1;
    }
    have = strlen(line);
    memmove(buf, line, have);
  }
  close(ready_pipe[0]);
  char out[16384];
  size_t o = (size_t)snprintf(out, sizeof out, "pids");
  for (unsigned i = 0; i < procs && o < sizeof out - 16; i++) o += (size_t)snprintf(out + o, sizeof out - o, " %d", pids[i]);
  out[o++] = '\n';
  if (write(1, out, o) != (ssize_t)o) return 4;
  if (write(1, "ready\n", 6) != 6) return 4;
  for (;;) pause();
}
