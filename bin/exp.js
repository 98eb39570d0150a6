#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm run build` (run by `npm ci` via `prepare`).
import { main } from '../dist/cli/main.js';

// `exp runs | head` closes the pipe early: that is not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e) => { if (e.code === 'EPIPE') process.exit(0); throw e; });
}

// When the command is done, the process is: a request to a tracking server that hangs, or a
// timer of a library, must not keep it alive after its work is recorded (stdout and stderr
// are written synchronously to files and pipes, so nothing printed is lost).
main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env })
  .then((code) => process.exit(code));
