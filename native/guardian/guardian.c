/* Guards a lazy restore against its page server dying.
 *
 * If the page server dies while memory is still arriving, the kernel releases its
 * userfaultfd, unregisters the ranges, and the restored process would read zero pages where
 * its data was: silent corruption. So this guardian also holds every uffd of the restore
 * (the ranges stay registered, a fault just waits), and when its stdin (a pipe from the
 * server) reaches EOF without "done", the server is gone: it SIGKILLs every watched process,
 * says why on stderr (the lazy-pages log), and exits, which at last releases the uffds.
 *
 * Commands on stdin, one per line, from the server:
 *   hold FD     take fd FD out of the server (pidfd_getfd) and keep it
 *   watch PID   a restored process to kill if the server dies
 *   done        all memory is in: exit quietly
 * Each hold and watch is answered with a line "ok" (or "err ...") on stdout, so the server
 * knows the guardian has it before it lets the process run.
 * argv[1] is the server's pid. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_WATCH 4096

static int watched[MAX_WATCH], nwatched;
static long watched_pid[MAX_WATCH];

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  signal(SIGINT, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  long server = strtol(argv[1], NULL, 10);
  int server_fd = (int)syscall(SYS_pidfd_open, (pid_t)server, 0);
  if (server_fd < 0) return 3;
  char line[64];
  size_t used = 0;
  for (;;) {
    ssize_t n = read(0, line + used, sizeof line - 1 - used);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break; /* EOF: the server is gone */
    used += (size_t)n;
    line[used] = 0;
    char *nl;
    while ((nl = strchr(line, '\n'))) {
      *nl = 0;
      if (strcmp(line, "done") == 0) return 0;
      if (strncmp(line, "hold ", 5) == 0) {
        /* The fd stays open in this process until it exits: that is the point. */
        if (syscall(SYS_pidfd_getfd, server_fd, atoi(line + 5), 0) < 0) dprintf(1, "err %s\n", strerror(errno));
        else dprintf(1, "ok\n");
      } else if (strncmp(line, "watch ", 6) == 0 && nwatched < MAX_WATCH) {
        long pid = strtol(line + 6, NULL, 10);
        int fd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
        if (fd >= 0) {
          watched_pid[nwatched] = pid;
          watched[nwatched++] = fd;
          dprintf(1, "ok\n");
        } else {
          dprintf(1, "err %s\n", strerror(errno));
        }
      }
      size_t rest = used - (size_t)(nl + 1 - line);
      memmove(line, nl + 1, rest + 1);
      used = rest;
    }
    if (used == sizeof line - 1) used = 0; /* a line too long is garbage */
  }
  for (int i = 0; i < nwatched; i++) {
    if (syscall(SYS_pidfd_send_signal, watched[i], SIGKILL, NULL, 0) == 0)
      dprintf(2, "criu-ts guardian: the page server (pid %ld) died before all memory was in; killed pid %ld rather than let it run on missing pages\n", server, watched_pid[i]);
  }
  return 1;
}
