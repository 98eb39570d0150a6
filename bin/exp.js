#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm run build` (run by `npm ci` via `prepare`).
import { main } from '../dist/cli/main.js';

// `exp runs | head` closes the pipe early: that is not an error. Any other failed write (stdout
// a full disk or /dev/full) lost output: recorded, said and exit 1 below, never exit 0.
const writeFailed = new Map();
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e) => { if (e.code === 'EPIPE') process.exit(0); if (!writeFailed.has(stream)) writeFailed.set(stream, e); });
}
const codeOf = (e) =>
  e.code === 'ENOSPC' || e.code === 'EDQUOT' ? 'DISK_FULL' : e.code === 'EACCES' || e.code === 'EPERM' || e.code === 'EROFS' ? 'PERMISSION_DENIED' : e.code;

// Resolves once everything written to `stream` so far has reached the OS. Writes to a pipe are
// asynchronous on Linux: what the pipe's buffer (64 KiB) cannot take at once waits in the
// stream, and process.exit would drop it. An empty write's callback runs after the writes
// queued before it.
const flushed = (stream) =>
  new Promise((resolve) => {
    if (stream.destroyed || stream.writableEnded || stream.writableLength === 0) return resolve();
    stream.write('', () => resolve());
  });

// When the command is done and its output is flushed, the process is: a request to a tracking
// server that hangs, or a timer of a library, must not keep it alive after its work is recorded.
// `exit` is for a second Ctrl-C only: the run's end is recorded, and the process stops at once.
main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env, exit: (code) => process.exit(code) })
  .then(async (code) => {
    await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
    await new Promise((resolve) => setImmediate(resolve)); // a failed write's 'error' event comes a tick later
    const lost = writeFailed.get(process.stdout);
    if (lost && !writeFailed.has(process.stderr))
      process.stderr.write(`exp: the output could not be written to stdout: ${lost.message}\n  fix: write it where there is room (another file or a pipe) [${codeOf(lost)}]\n`);
    process.exit(writeFailed.size > 0 && code === 0 ? 1 : code);
  });
