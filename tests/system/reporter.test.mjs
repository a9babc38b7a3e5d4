// tally-reporter against a real PostgreSQL: tally JSON from memory, kept
// fresh by LISTEN/NOTIFY and the safety poll; Server-Sent Events (first
// event, changes, coalescing, heartbeat, Last-Event-ID, clean end on
// SIGTERM); 404s; two replicas agreeing; recovery after a PostgreSQL crash.
// The tallies table is made by hand here (docs/CONTRACTS.md's schema), so
// this file needs no processor, NATS or gateway.

import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import net from 'node:net';
import { startStack, http, waitFor, dumpLogs } from './harness.mjs';
import { openSse, TALLIES_DDL, setTallySql } from './reporter_sse.mjs';

const HEARTBEAT_MS = 300;
const SAFETY_POLL_MS = 1000;
const REP_ENV = { SSE_HEARTBEAT_MS: String(HEARTBEAT_MS), SAFETY_POLL_MS: String(SAFETY_POLL_MS) };

let stack, rep;
before(async () => {
  stack = await startStack();
  rep = await stack.startReporter(REP_ENV);
});
after(() => stack?.stop());
afterEach((t) => { if (!t.passed) dumpLogs(stack); });

const tally = async (svc = rep, poll = 'default') => (await http('GET', `${svc.url}/api/v1/polls/${poll}/tally`)).json;
const votesOf = (t) => Object.fromEntries(t.options.map((o) => [o.id, o.votes]));

test('before the schema exists: zero votes, not ready', async () => {
  const r = await http('GET', `${rep.url}/api/v1/polls/default/tally`);
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'], /^application\/json/);
  assert.equal(r.headers['cache-control'], 'no-store');
  assert.deepEqual(r.json.options, [
    { id: 'a', label: 'Cats', votes: 0 },
    { id: 'b', label: 'Dogs', votes: 0 },
  ]);
  assert.equal(r.json.poll, 'default');
  assert.equal(r.json.total, 0);
  const ready = await waitFor(async () => {
    const x = await http('GET', `${rep.url}/readyz`);
    return x.json?.postgres === 'tallies table missing' && x;
  }, { what: 'readyz to see PostgreSQL without the table' });
  assert.equal(ready.status, 503);
  assert.equal(ready.json.ready, false);
  assert.equal((await http('GET', `${rep.url}/healthz`)).status, 200);
});

test('the table appears: ready, tally from the table, updated_at set', async () => {
  await stack.psql(TALLIES_DDL);
  await waitFor(async () => (await http('GET', `${rep.url}/readyz`)).status === 200, { what: 'readyz 200', timeoutMs: 5000 });
  await stack.psql(setTallySql('default', { a: 2, b: 1 }));
  const t = await waitFor(async () => { const x = await tally(); return x.total === 3 && x; }, { what: 'total 3', timeoutMs: 3000 });
  assert.deepEqual(votesOf(t), { a: 2, b: 1 });
  assert.match(t.updated_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
});

test('polls list, 404s and 405', async () => {
  const l = await http('GET', `${rep.url}/api/v1/polls`);
  assert.equal(l.status, 200);
  assert.deepEqual(l.json.polls, [{ id: 'default', title: 'Cats vs Dogs!', options: [{ id: 'a', label: 'Cats' }, { id: 'b', label: 'Dogs' }] }]);
  for (const p of ['/api/v1/polls/nope/tally', '/api/v1/polls/nope/events', '/polls/nope', '/api/v1/polls/..%2F/tally',
    '/api/v1/polls/UPPER/tally', '/nothing/here']) {
    const r = await http('GET', `${rep.url}${p}`);
    assert.equal(r.status, 404, p);
    assert.equal(typeof r.json?.error, 'string', p);
    assert.equal(r.headers['cache-control'], 'no-store', p);
  }
  const m = await http('POST', `${rep.url}/api/v1/polls/default/tally`, { body: '{}' });
  assert.equal(m.status, 405);
  assert.equal(m.headers.allow, 'GET, HEAD');
});

test('results page: server-rendered state, CSP, assets from the binary', async () => {
  const r = await http('GET', `${rep.url}/`);
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'], /^text\/html/);
  assert.match(r.headers['content-security-policy'], /script-src 'self'/);
  assert.equal(r.headers['cache-control'], 'no-store');
  assert.match(r.body, /<title>Cats vs Dogs -- Result<\/title>/);
  assert.match(r.body, /<p id="result"[^>]*aria-live="polite"[^>]*>3 votes<\/p>/);
  assert.match(r.body, /Cats<\/span> <span class="stat">67\.0%<\/span>/);
  assert.match(r.body, /Dogs<\/span> <span class="stat">33\.0%<\/span>/);
  assert.doesNotMatch(r.body, /style=|<script>|<style|https?:\/\//, 'no inline script or style, no external asset');
  const p = await http('GET', `${rep.url}/polls/default`);
  assert.equal(p.body, r.body);
  const css = await http('GET', `${rep.url}/static/results.css`);
  assert.equal(css.status, 200);
  assert.match(css.headers['content-type'], /^text\/css/);
  assert.match(css.body, /\.w67\{width:67%\}/);
  const js = await http('GET', `${rep.url}/static/results.js`);
  assert.equal(js.status, 200);
  assert.match(js.headers['content-type'], /^text\/javascript/);
  assert.match(js.body, /EventSource/);
});

test('SSE: current tally on connect, then each change', async () => {
  const s = await openSse(`${rep.url}/api/v1/polls/default/events`);
  try {
    assert.equal(s.status, 200);
    assert.match(s.headers['content-type'], /^text\/event-stream/);
    assert.equal(s.headers['cache-control'], 'no-store');
    const first = await s.waitEvents(1);
    assert.equal(first.event, 'tally');
    assert.match(first.id, /^[0-9a-f]{16}$/);
    assert.deepEqual(votesOf(first.json), { a: 2, b: 1 });
    assert.equal(s.retry, 2000);
    const t0 = Date.now();
    await stack.psql(setTallySql('default', { a: 2, b: 2 }));
    const second = await s.waitEvents(2, 5000);
    const delay = second.at - t0;
    console.log(`# SSE update arrived ${delay} ms after psql started the COMMIT (psql start-up included)`);
    assert.deepEqual(votesOf(second.json), { a: 2, b: 2 });
    assert.equal(second.json.total, 4);
    assert.notEqual(second.id, first.id);
    // The JSON endpoint agrees with the stream.
    assert.deepEqual(votesOf(await tally()), { a: 2, b: 2 });
  } finally {
    s.close();
  }
});

test('SSE: a burst of committed changes is coalesced to at most 10 updates/s', async () => {
  const s = await openSse(`${rep.url}/api/v1/polls/default/events`);
  try {
    await s.waitEvents(1);
    // 40 separate commits, each with its own NOTIFY, over about 100-300 ms.
    const t0 = Date.now();
    await stack.psql(`DO $$ BEGIN FOR i IN 1..40 LOOP
      UPDATE tallies SET votes = votes + 1 WHERE poll = 'default' AND option = 'a';
      PERFORM pg_notify('tally_changed', 'default'); COMMIT; PERFORM pg_sleep(0.003);
    END LOOP; END $$`);
    const burstMs = Date.now() - t0;
    const final = await waitFor(() => s.events.find((e) => e.json.options[0].votes === 42), { what: 'a=42 on the stream', timeoutMs: 5000 });
    await sleep(300);
    const updates = s.events.length - 1;
    console.log(`# 40 commits in ${burstMs} ms (psql included) -> ${updates} SSE updates; last a=${final.json.options[0].votes}`);
    assert.ok(updates >= 1);
    // At most one per 100 ms window of the burst, plus the first and last.
    assert.ok(updates <= Math.ceil(burstMs / 100) + 2, `${updates} updates for a ${burstMs} ms burst`);
    for (let i = 2; i < s.events.length; i++) {
      assert.ok(s.events[i].at - s.events[i - 1].at >= 80, `events ${i - 1} and ${i} only ${s.events[i].at - s.events[i - 1].at} ms apart`);
    }
    assert.deepEqual(votesOf(s.events.at(-1).json), { a: 42, b: 2 });
  } finally {
    s.close();
  }
});

test('SSE: heartbeat comments while nothing changes', async () => {
  const s = await openSse(`${rep.url}/api/v1/polls/default/events`);
  try {
    await s.waitEvents(1);
    await sleep(HEARTBEAT_MS * 4);
    assert.ok(s.comments.filter((c) => c.text === 'ping').length >= 2, `only ${s.comments.length} comments`);
    assert.equal(s.events.length, 1, 'no tally event without a change');
  } finally {
    s.close();
  }
});

test('SSE: Last-Event-ID of the current tally skips the resend; an old one gets the current state', async () => {
  const a = await openSse(`${rep.url}/api/v1/polls/default/events`);
  const cur = await a.waitEvents(1);
  a.close();
  const same = await openSse(`${rep.url}/api/v1/polls/default/events`, { headers: { 'Last-Event-ID': cur.id } });
  const old = await openSse(`${rep.url}/api/v1/polls/default/events`, { headers: { 'Last-Event-ID': '0123456789abcdef' } });
  try {
    const caughtUp = await old.waitEvents(1);
    assert.equal(caughtUp.id, cur.id);
    await sleep(HEARTBEAT_MS * 2);
    assert.equal(same.events.length, 0, 'nothing resent to a client that has the current tally');
    assert.ok(same.comments.length >= 1, 'but the stream is alive');
    await stack.psql(setTallySql('default', { a: 43, b: 2 }));
    const next = await same.waitEvents(1, 5000);
    assert.deepEqual(votesOf(next.json), { a: 43, b: 2 });
  } finally {
    same.close();
    old.close();
  }
});

test('safety poll: a change made without NOTIFY shows up', async () => {
  await stack.psql(setTallySql('default', { a: 50, b: 7 }, { notify: false }));
  const t0 = Date.now();
  await waitFor(async () => (await tally()).total === 57, { what: 'total 57 without NOTIFY', timeoutMs: SAFETY_POLL_MS * 4 });
  console.log(`# change without NOTIFY seen after ${Date.now() - t0} ms (SAFETY_POLL_MS=${SAFETY_POLL_MS})`);
  const m = (await http('GET', `${rep.url}/metrics`)).body;
  assert.match(m, /^tally_reporter_safety_polls_total [1-9]/m);
});

test('two replicas, no sticky sessions: both show the same tally and event id', async () => {
  const rep2 = await stack.startReporter(REP_ENV);
  try {
    await waitFor(async () => (await http('GET', `${rep2.url}/readyz`)).status === 200, { what: 'second replica ready' });
    await stack.psql(setTallySql('default', { a: 61, b: 39 }));
    const [t1, t2] = await waitFor(async () => {
      const x = [await tally(rep), await tally(rep2)];
      return x[0].total === 100 && x[1].total === 100 && x;
    }, { what: 'both replicas at total 100', timeoutMs: 5000 });
    assert.deepEqual(t1.options, t2.options);
    const [s1, s2] = [await openSse(`${rep.url}/api/v1/polls/default/events`), await openSse(`${rep2.url}/api/v1/polls/default/events`)];
    try {
      // A stream may start with the state from just before (a change waits
      // up to SSE_MIN_INTERVAL_MS to be fanned out); wait for total 100.
      const at100 = (s) => waitFor(() => s.events.find((e) => e.json.total === 100), { what: 'total 100 on a stream' });
      const [e1, e2] = [await at100(s1), await at100(s2)];
      assert.equal(e1.id, e2.id, 'equal tallies have equal event ids on every replica');
      // A client that moves from one replica to the other is not resent what it has.
      const moved = await openSse(`${rep2.url}/api/v1/polls/default/events`, { headers: { 'Last-Event-ID': e1.id } });
      await sleep(HEARTBEAT_MS * 2);
      assert.equal(moved.events.length, 0);
      moved.close();
    } finally {
      s1.close();
      s2.close();
    }
  } finally {
    assert.equal(await rep2.stop('SIGTERM'), 0);
  }
});

test('PostgreSQL crash and restart: the reporter reconnects and catches up', async () => {
  const s = await openSse(`${rep.url}/api/v1/polls/default/events`);
  try {
    await s.waitEvents(1);
    await stack.killPostgres();
    await waitFor(async () => (await http('GET', `${rep.url}/readyz`)).status === 503, { what: 'readyz 503 while PostgreSQL is down', timeoutMs: 10000 });
    // Still serving the last known tally meanwhile.
    assert.equal((await tally()).total, 100);
    await stack.startPostgres();
    await waitFor(async () => (await http('GET', `${rep.url}/readyz`)).status === 200, { what: 'readyz 200 after restart', timeoutMs: 20000 });
    await stack.psql(setTallySql('default', { a: 70, b: 40 }));
    await waitFor(async () => (await tally()).total === 110, { what: 'total 110 after the restart', timeoutMs: 5000 });
    const ev = await waitFor(() => s.events.find((e) => e.json.total === 110), { what: 'the stream survives the restart', timeoutMs: 5000 });
    assert.ok(ev);
    const m = (await http('GET', `${rep.url}/metrics`)).body;
    assert.match(m, /^tally_reporter_pg_errors_total [1-9]/m);
    assert.match(m, /^tally_reporter_pg_connects_total [2-9]/m);
  } finally {
    s.close();
  }
});

test('metrics: clients connected, updates sent, tally age', async () => {
  const s = await openSse(`${rep.url}/api/v1/polls/default/events`);
  try {
    await s.waitEvents(1);
    const m = (await http('GET', `${rep.url}/metrics`)).body;
    assert.match(m, /^tally_reporter_sse_clients [1-9]/m);
    assert.match(m, /^tally_reporter_sse_updates_sent_total [1-9]/m);
    assert.match(m, /^tally_reporter_notifications_total [1-9]/m);
    const age = Number(m.match(/^tally_reporter_tally_age_seconds (\S+)/m)[1]);
    assert.ok(age >= 0 && age < SAFETY_POLL_MS / 1000 + 2, `tally age ${age}`);
  } finally {
    s.close();
  }
});

test('slowloris: a request dripped a byte at a time is cut after CONNECTION_TIMEOUT_S; streams are not', async () => {
  const slow = await stack.startReporter({ ...REP_ENV, CONNECTION_TIMEOUT_S: '2' });
  try {
    // An event stream is an answer in progress: it outlives the deadline.
    const s = await openSse(`${slow.url}/api/v1/polls/default/events`);
    await s.waitEvents(1);
    const sock = net.connect(slow.port, '127.0.0.1');
    await new Promise((resolve) => sock.once('connect', resolve));
    const started = Date.now();
    const closed = new Promise((resolve) => sock.once('close', () => resolve(Date.now() - started)));
    sock.on('error', () => {});
    const line = 'GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'a'.repeat(200);
    let i = 0;
    const drip = setInterval(() => { if (i < line.length && !sock.destroyed) sock.write(line[i++]); }, 250);
    const ms = await Promise.race([closed, sleep(15000).then(() => -1)]);
    clearInterval(drip);
    sock.destroy();
    assert.ok(ms > 0, 'the dripping connection was never closed');
    assert.ok(ms >= 1500 && ms < 6000, `cut after ${ms} ms with a 2 s deadline`);
    assert.equal((await http('GET', `${slow.url}/healthz`)).status, 200);
    const m = (await http('GET', `${slow.url}/metrics`)).body;
    assert.match(m, /^tally_reporter_connections_cut_total [1-9]/m);
    assert.ok(!s.ended, 'the event stream is still open');
    s.close();
  } finally {
    assert.equal(await slow.stop('SIGTERM'), 0);
  }
});

test('SIGTERM ends open event streams cleanly and exits 0', async () => {
  const streams = await Promise.all([1, 2, 3].map(() => openSse(`${rep.url}/api/v1/polls/default/events`)));
  await Promise.all(streams.map((s) => s.waitEvents(1)));
  const code = rep.stop('SIGTERM');
  await Promise.all(streams.map((s) => s.waitEnd(5000)));
  for (const s of streams) assert.match(s.raw, /\n\n$/, 'the stream ended on an event boundary');
  assert.equal(await code, 0);
});
