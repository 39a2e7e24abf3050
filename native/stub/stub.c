/* The program a restore grows a process out of. It is exec'd under ptrace and stopped at
 * its first instruction; the restorer then replaces its whole address space by injected
 * syscalls. If it ever runs freely, it only waits. Static, no libc, so its layout is tiny
 * and its code holds a `syscall` instruction to inject from. */
void _start(void) {
  for (;;) __asm__ volatile("syscall" : : "a"(34) /* pause */ : "rcx", "r11", "memory");
}
