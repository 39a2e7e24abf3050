/* The program a restore grows a process out of. It is exec'd under ptrace and stopped at
 * its first instruction; the restorer then replaces its whole address space by injected
 * syscalls. If it ever runs freely, it only waits. Static, no libc, so its layout is tiny
 * and its code holds a `syscall` instruction to inject from. */
void _start(void) {
  /* rax is an output: the syscall overwrites it with its result. Declared as input only, the
   * compiler hoisted the `mov $34, %eax` out of the loop, so after a pause() that returned
   * -EINTR the stub spun on syscall(-EINTR) = -ENOSYS instead of waiting. */
  for (;;) {
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "0"(34L) /* pause */ : "rcx", "r11", "memory");
  }
}
