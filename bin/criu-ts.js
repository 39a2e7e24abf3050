#!/usr/bin/env node
import('../dist/src/cli/main.js').then((cli) => cli.start(), (e) => ((process.exitCode = 1), console.error(`criu-ts: ${e.message} (is it built? npm run build)`)));
