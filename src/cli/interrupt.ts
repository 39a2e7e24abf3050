// Ctrl-C (or SIGTERM) during a command that cleans up after itself (pack, unpack) cancels it
// through its AbortSignal instead of killing the process, so that no partial archive or
// temporary directory is left behind. A second signal kills as usual.
export async function cancellable<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];
  const on = (sig: NodeJS.Signals) => {
    for (const s of signals) process.off(s, on);
    ac.abort(new Error(`interrupted by ${sig}`));
  };
  for (const s of signals) process.on(s, on);
  try {
    return await fn(ac.signal);
  } finally {
    for (const s of signals) process.off(s, on);
  }
}
