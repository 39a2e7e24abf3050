// No optimizing compiles while a process is frozen. V8 tiers hot JavaScript up to TurboFan on
// background threads; in a final dump the plan, chunk and index code turns hot while the
// process is frozen, and those compiles then take the cores the copy needs (a profile cut to
// the frozen window: 17 % of all samples in TurboFan, on two cores). With TurboFan paused
// for the window, that code runs in the interpreter and baseline tiers, which on a dirty set
// of thousands of ranges costs less than compiling it.
//
// V8's flag is process-wide, and so is the count of dumps that paused it (an embedder may run
// several at once): the last to resume turns TurboFan back on, unless this process was
// started without it.
import { setFlagsFromString } from 'node:v8';

let paused = 0;

/** Started with TurboFan off (--no-opt, --no-turbofan, --jitless, also in NODE_OPTIONS): leave it off. */
function offFromStart(): boolean {
  return [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].some((o) => /^--(no-opt|no-turbofan|jitless)$/.test(o));
}

/** Stops V8 from starting optimizing compiles until the returned function is called (once). */
export function pauseOptimizer(): () => void {
  if (paused++ === 0) setFlagsFromString('--no-turbofan');
  let resumed = false;
  return () => {
    if (resumed) return;
    resumed = true;
    if (--paused === 0 && !offFromStart()) setFlagsFromString('--turbofan');
  };
}
