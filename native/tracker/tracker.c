/* Holds a pre-dump chain's write-tracking userfaultfd between criu-ts commands.
 *
 * criu-ts starts it with the uffd at fd 3 and a pidfd of the target at fd 4. The uffd keeps
 * the target's WP_ASYNC registration alive (registration ends when the last reference to it
 * is closed); the next pass takes it with pidfd_getfd(tracker, 3). The tracker does nothing
 * else: it exits when the target exits (its pidfd turns readable) or on SIGTERM (the chain
 * ended), and its exit closes the uffd, which unregisters everything in the target.
 *
 * argv[1] is the target's pid, only so that ps shows what it tracks. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

int main(void) {
  /* Nothing of the terminal's: a Ctrl-C meant for the shell must not end tracking. */
  signal(SIGINT, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  struct pollfd p = {.fd = 4, .events = POLLIN};
  for (;;) {
    int r = poll(&p, 1, -1);
    if (r < 0 && errno == EINTR) continue;
    return r < 0 ? 1 : 0;
  }
}
