// valgrind (issue 9): a start → vote → stop cycle of the gateway, the
// processor and the reporter, each under memcheck. Any memory error, or any
// definitely or indirectly lost block, makes valgrind exit 99 instead of the
// service's own 0 on SIGTERM. "Still reachable" blocks (nats.c and
// libmicrohttpd keep some until exit) and "possibly lost" ones are not
// failures. The logs name the stack of anything found.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { startStack, http, waitFor, dumpLogs, binDir } from './harness.mjs';

let stack;
after(async () => { await stack?.stop(); });

function haveValgrind() {
  try { execFileSync('valgrind', ['--version'], { stdio: 'ignore' }); return true; } catch { return false; }
}

// ASan binaries cannot run under valgrind; the sanitizer run covers them.
function sanitizerBuild() {
  try {
    return /^TALLY_SANITIZE:BOOL=ON$/m.test(fs.readFileSync(path.join(binDir(), '..', 'CMakeCache.txt'), 'utf8'));
  } catch { return false; }
}

test('gateway, processor and reporter under valgrind: no memory errors, no definite leaks, exit 0 on SIGTERM', { timeout: 600000, skip: sanitizerBuild() && 'an ASan build (scripts/test --sanitize) cannot run under valgrind' }, async (t) => {
  assert.ok(haveValgrind(), 'valgrind is installed (scripts/deps --test)');
  stack = await startStack();
  const logDir = path.join(stack.dir, 'valgrind');
  fs.mkdirSync(logDir);
  const wrapper = ['valgrind', '--quiet', '--leak-check=full', '--show-leak-kinds=definite,indirect',
    '--errors-for-leak-kinds=definite,indirect', '--error-exitcode=99', '--num-callers=30',
    '--trace-children=no', `--log-file=${logDir}/%p.log`].join(' ');
  const saved = process.env.TALLY_SERVICE_WRAPPER;
  const svcs = {};
  try {
    process.env.TALLY_SERVICE_WRAPPER = wrapper;
    svcs.processor = await stack.startProcessor({ LOG_LEVEL: 'info' });
    svcs.reporter = await stack.startReporter({ LOG_LEVEL: 'info' });
    svcs.gateway = await stack.startGateway({ LOG_LEVEL: 'info' });
  } finally {
    if (saved === undefined) delete process.env.TALLY_SERVICE_WRAPPER; else process.env.TALLY_SERVICE_WRAPPER = saved;
  }
  try {
    const gw = svcs.gateway;
    await waitFor(async () => (await http('GET', `${gw.url}/readyz`)).status === 200, { timeoutMs: 120000, what: 'gateway ready under valgrind' });
    await waitFor(async () => (await http('GET', `${svcs.processor.url}/readyz`)).status === 200, { timeoutMs: 120000, what: 'processor ready' });
    // Every kind of vote, an error, the pages and the endpoints.
    const form = await http('POST', `${gw.url}/`, { body: new URLSearchParams({ vote: 'a' }), timeoutMs: 60000 });
    assert.equal(form.status, 200);
    const api = await http('POST', `${gw.url}/api/v1/polls/default/votes`, { body: { voter: 'vg-1', option: 'b' }, timeoutMs: 60000 });
    assert.equal(api.status, 200, api.body);
    const again = await http('POST', `${gw.url}/api/v1/polls/default/votes`, { body: { voter: 'vg-1', option: 'b' }, timeoutMs: 60000 });
    assert.equal(again.json?.status, 'unchanged');
    const idem = await http('POST', `${gw.url}/api/v1/polls/default/votes`,
      { body: { voter: 'vg-2', option: 'a' }, headers: { 'Idempotency-Key': 'vg-key-1' }, timeoutMs: 60000 });
    assert.equal(idem.status, 200);
    assert.equal((await http('POST', `${gw.url}/api/v1/polls/default/votes`, { body: '{"voter":', headers: { 'content-type': 'application/json' }, timeoutMs: 60000 })).status, 400);
    for (const p of ['/', '/visits', '/metrics', '/api/v1/polls', '/nope']) await http('GET', `${gw.url}${p}`, { timeoutMs: 60000 });
    const rep = svcs.reporter;
    await waitFor(async () => {
      const r = await http('GET', `${rep.url}/api/v1/polls/default/tally`, { timeoutMs: 30000 });
      return r.status === 200 && JSON.stringify(r.json).includes('"votes"') &&
        (await stack.psql("SELECT coalesce(sum(votes),0) FROM tallies WHERE poll='default'"))[0][0] === '3';
    }, { timeoutMs: 120000, intervalMs: 500, what: 'three votes in the tally' });
    for (const p of ['/', '/api/v1/polls', '/metrics', '/polls/default', '/nope']) await http('GET', `${rep.url}${p}`, { timeoutMs: 60000 });
    // An event stream that is open when the reporter stops.
    const ctl = new AbortController();
    const first = await fetch(`${rep.url}/api/v1/polls/default/events`, { signal: ctl.signal })
      .then((r) => r.body.getReader().read());
    assert.match(Buffer.from(first.value ?? []).toString(), /"poll":"default"/, 'the stream is open, its first event in');

    // Stop in reverse order; valgrind's verdict is the exit code.
    const codes = {};
    for (const k of ['gateway', 'reporter', 'processor']) codes[k] = await svcs[k].stop('SIGTERM', { timeoutMs: 120000 });
    ctl.abort();
    // One block per finding; the indirect ones hang off a definite one.
    const findings = fs.readdirSync(logDir)
      .flatMap((f) => fs.readFileSync(path.join(logDir, f), 'utf8').split(/^==\d+== ?$/m))
      .map((b) => b.trim()).filter((b) => b && !/indirectly lost in loss record/.test(b)).join('\n\n');
    if (findings) t.diagnostic(`valgrind reported:\n${findings.slice(0, 20000)}`);
    assert.deepEqual(codes, { gateway: 0, reporter: 0, processor: 0 }, `exit codes (99: valgrind found errors or leaks)\n${findings.slice(0, 8000)}`);
  } catch (e) {
    dumpLogs(stack, { lines: 40, stores: false });
    throw e;
  }
});
