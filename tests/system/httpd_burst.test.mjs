// Bursts of keep-alive clients against one HTTP event loop.
//
// libmicrohttpd 0.9.75's own epoll thread stalls when exactly 128 sockets
// are ready at once: it calls epoll_wait again with its blocking timeout
// and leaves those 128 requests unread until a connection times out (30 s).
// 128 clients of `tallyctl seed` hit that at once. lib/httpd_server.c runs
// MHD from its own loop instead; here every cast must be answered, well
// within a timeout that is far shorter than the stall would be, and none
// may wait seconds.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, dumpLogs } from './harness.mjs';

let stack;
before(async () => { stack = await startStack(); });
after(async () => { if (stack) await stack.stop(); });
afterEach((t) => { if (!t.passed) dumpLogs(stack); });

for (const threads of [1, 2]) {
  test(`${threads} HTTP thread(s): 128 and 256 keep-alive clients get every answer`, { timeout: 120000 }, async () => {
    const gw = await stack.startGateway({ HTTP_THREADS: String(threads), LOG_LEVEL: 'warn' });
    for (const c of [128, 256]) {
      const r = await stack.tallyctl(['seed', '--url', `${gw.url}/`, '--api', 'json',
        '--votes', '100000000', '--duration', '3', '--timeout', '5',
        '--concurrency', String(c), '--poll', 'default'], { timeoutMs: 60000 });
      assert.equal(r.code, 0, `seed with ${c} clients failed:\n${r.stdout}\n${r.stderr}`);
      const errors = Number((r.stdout.match(/^\s*errors\s+(\d+)/m) || [])[1]);
      const answered = Number((r.stdout.match(/^\s*status\s+200: (\d+)/m) || [])[1]);
      assert.equal(errors, 0, `${c} clients: requests left unanswered:\n${r.stdout}`);
      // Three seconds of votes from c clients: far more than one round.
      assert.ok(answered > 4 * c, `${c} clients: only ${answered} answers:\n${r.stdout}`);
      // A stall ends only when some other socket stirs the loop: seconds.
      // An answer here takes milliseconds, tens under a sanitizer.
      const max = Number((r.stdout.match(/\bmax\s+([\d.]+)/) || [])[1]);
      assert.ok(max < 2000, `${c} clients: the slowest answer took ${max} ms:\n${r.stdout}`);
    }
    await gw.stop();
  });
}
