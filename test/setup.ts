// Each test worker becomes a child subreaper: processes whose parent exits (a restored
// process after `restore -d`, a target's shell) come back to us, and we reap them, so no
// zombie keeps a PID that a later same-PID restore needs (PID 1 here reaps nothing).
import { native } from '../src/kernel/native.js';
import { PR } from '../src/kernel/syscalls.js';

native.prctl(PR.SET_CHILD_SUBREAPER, 1);
