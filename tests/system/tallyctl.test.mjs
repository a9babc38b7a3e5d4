// tallyctl decode, seed and stream as users run them: decode against
// payloads made by protobufjs and by the C codec, seed against a stand-in
// gateway that checks every request and keeps its own tally, stream against
// a real nats-server compared with the server's monitoring endpoint (/jsz).
import { test, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { createRequire } from 'node:module';
import path from 'node:path';
import { startStack, dumpLogs, binDir, repoRoot, freePort, waitFor } from './harness.mjs';

const require = createRequire(new URL('../js/package.json', import.meta.url));
const protobuf = require('protobufjs');
const { connect, headers } = require('@nats-io/transport-node');
const { jetstream, jetstreamManager, AckPolicy } = require('@nats-io/jetstream');

const Vote = protobuf.loadSync(path.join(repoRoot, 'proto', 'tally', 'v1', 'vote.proto')).lookupType('tally.v1.Vote');
const T = { timeout: 120000 };

/** Run tallyctl; resolves { code, stdout, stderr }. input: Buffer/string for stdin. */
function ctl(args, { input, env = {}, timeoutMs = 60000 } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(path.join(binDir(), 'tallyctl'), args, {
      env: { PATH: process.env.PATH, ...env }, stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out = [];
    const err = [];
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.stdout.on('data', (d) => out.push(d));
    p.stderr.on('data', (d) => err.push(d));
    p.on('error', reject);
    p.on('close', (code, sig) => {
      clearTimeout(timer);
      resolve({ code: code ?? 128, signal: sig, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
    p.stdin.on('error', () => {});
    p.stdin.end(input ?? '');
  });
}

// --- decode -----------------------------------------------------------------

test('decode: a payload made by protobufjs becomes one JSON line', T, async () => {
  const msg = { poll: 'default', voter: 'v-42', option: 'b', castId: 'c0ffee', castUnixMs: 1714564800123, source: 2 };
  const bytes = Vote.encode(Vote.create(msg)).finish();
  const r = await ctl(['decode'], { input: Buffer.from(bytes) });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.split('\n').filter(Boolean).length, 1);
  assert.deepEqual(JSON.parse(r.stdout), {
    poll: 'default', voter: 'v-42', option: 'b', cast_id: 'c0ffee',
    cast_unix_ms: 1714564800123, cast_at: '2024-05-01T12:00:00.123Z', source: 'SOURCE_JSON',
  });
});

test('decode: unknown fields from a newer writer are skipped', T, async () => {
  const bytes = Buffer.concat([
    Buffer.from(Vote.encode(Vote.create({ poll: 'p', voter: 'v', option: 'a' })).finish()),
    Buffer.from([0x40, 0x07, 0x52, 0x02, 0x68, 0x69]), // field 8 varint 7, field 10 "hi"
  ]);
  const r = await ctl(['decode'], { input: bytes });
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.poll, 'p');
  assert.equal(j.source, 'SOURCE_UNSPECIFIED');
});

test('decode: garbage, empty input and invalid ids fail with exit 1 and say why', T, async () => {
  let r = await ctl(['decode'], { input: Buffer.from([0xff, 0xff, 0xff, 0xff]) });
  assert.equal(r.code, 1);
  assert.equal(JSON.parse(r.stdout).error, 'undecodable');
  assert.match(r.stderr, /not a protobuf tally\.v1\.Vote/);

  r = await ctl(['decode'], { input: '' });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /stdin is empty/);

  const bad = Vote.encode(Vote.create({ poll: 'Default Poll', voter: 'v', option: 'a' })).finish();
  r = await ctl(['decode'], { input: Buffer.from(bad) });
  assert.equal(r.code, 1);
  assert.equal(JSON.parse(r.stdout).invalid, 'poll');
  assert.match(r.stderr, /poll breaks the id rules/);
});

test('decode: --help exits 0, a stray argument exits 2', T, async () => {
  let r = await ctl(['decode', '--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /--translate "tallyctl decode"/);
  r = await ctl(['decode', 'file.bin']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /reads the payload from stdin/);
});

// --- seed against a stand-in gateway ----------------------------------------

/**
 * A stand-in gateway: keeps each voter's current option, answers
 * "unchanged" for a re-cast of it, replays the first answer for a repeated
 * Idempotency-Key, and records every request. closeEvery: answer every Nth
 * request with Connection: close (seed must reconnect and lose nothing).
 * delayMs: hold each answer this long, so that seed's requests overlap and
 * maxInFlight (requests received and not yet answered) shows how many
 * seed keeps in flight at once.
 */
async function fakeGateway({ closeEvery = 0, delayMs = 10, reject = null, dieAfter = 0 } = {}) {
  const g = {
    requests: [], current: new Map(), answers: new Map(), inFlight: 0, maxInFlight: 0, replays: 0, n: 0, dead: false,
  };
  g.server = http.createServer((req, res) => {
    g.inFlight++;
    g.maxInFlight = Math.max(g.maxInFlight, g.inFlight);
    // In flight until the answer is sent (or the connection dies): 'close'
    // fires once on the response either way.
    res.on('close', () => { g.inFlight--; });
    const chunks = [];
    req.on('data', (d) => chunks.push(d));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const rec = { method: req.method, url: req.url, headers: req.headers, body };
      g.requests.push(rec);
      let poll; let voter; let option;
      const m = /^\/api\/v1\/polls\/([^/]+)\/votes$/.exec(req.url);
      if (m && req.headers['content-type'] === 'application/json') {
        ({ voter, option } = JSON.parse(body.toString()));
        poll = m[1];
      } else if (m && req.headers['content-type'] === 'application/x-protobuf') {
        const v = Vote.decode(body);
        ({ voter, option } = v);
        poll = m[1];
        rec.vote = v;
      } else if (req.url === '/') {
        option = new URLSearchParams(body.toString()).get('vote');
        voter = /voter_id=([^;]+)/.exec(req.headers.cookie || '')?.[1] ?? `new-${g.requests.length}`;
        poll = 'default';
      }
      // reject(n): answer the nth request (from 1) with an immediate 503,
      // as a gateway without NATS does; it changes nothing.
      if (reject && reject(g.requests.length)) {
        res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' });
        res.end('{"error":"unavailable"}');
        return;
      }
      // dieAfter: a restart or drain - stop listening (new connections are
      // refused) and close every kept-alive connection after its answer.
      // net's close, not http's: that one also drops idle connections at
      // once, racing seed's next request on them (an error, not the quiet
      // give-up this stands for).
      if (dieAfter && g.n >= dieAfter && !g.dead) {
        g.dead = true;
        net.Server.prototype.close.call(g.server);
      }
      const key = req.headers['idempotency-key'];
      let status; let text;
      if (key && g.answers.has(key)) {
        g.replays++;
        [status, text] = g.answers.get(key);
      } else if (g.current.get(`${poll}/${voter}`) === option) {
        [status, text] = [200, '{"status":"unchanged"}'];
      } else {
        g.current.set(`${poll}/${voter}`, option);
        [status, text] = [202, '{"status":"accepted","duplicate":false}'];
      }
      if (key && !g.answers.has(key)) g.answers.set(key, [status, text]);
      g.n++;
      const h = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) };
      if ((closeEvery && g.n % closeEvery === 0) || g.dead) h.connection = 'close';
      setTimeout(() => {
        if (res.destroyed) return;
        res.writeHead(status, h);
        res.end(text);
      }, delayMs);
    });
  });
  g.server.keepAliveTimeout = 60000;
  await new Promise((r) => g.server.listen(0, '127.0.0.1', r));
  g.url = `http://127.0.0.1:${g.server.address().port}/`;
  g.tally = () => {
    const t = {};
    for (const [pv, o] of g.current) {
      const p = pv.split('/')[0];
      t[p] ??= {};
      t[p][o] = (t[p][o] || 0) + 1;
    }
    return t;
  };
  g.close = () => new Promise((r) => { g.server.closeAllConnections(); g.server.close(() => r()); });
  return g;
}

test('seed: the defaults are the original seed (3,000 form POSTs, 2:1, 50 at a time, new voters)', T, async (t) => {
  const g = await fakeGateway();
  t.after(g.close);
  const r = await ctl(['seed', '--url', g.url]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(g.requests.length, 3000);
  const votes = { a: 0, b: 0 };
  for (const q of g.requests) {
    assert.equal(q.method, 'POST');
    assert.equal(q.url, '/');
    assert.equal(q.headers['content-type'], 'application/x-www-form-urlencoded');
    assert.equal(q.headers.cookie, undefined, 'like ab, the seed sends no cookie');
    votes[new URLSearchParams(q.body.toString()).get('vote')]++;
  }
  assert.deepEqual(votes, { a: 2000, b: 1000 });
  // Each answer is held 10 ms, so 50 connections with one request each
  // fill up: the peak is 50, never more; a little less allowed for a slow
  // start on a loaded machine.
  assert.ok(g.maxInFlight >= 40 && g.maxInFlight <= 50, `50 in flight at a time, saw at most ${g.maxInFlight}`);
  assert.match(r.stdout, /accepted\s+3000/);
  assert.match(r.stdout, /expected\s+default: a=2000 b=1000/);
  assert.match(r.stdout, /p99/);
});

test('seed --json: voters, changes and duplicates; its expected tally equals the server\'s', T, async (t) => {
  const g = await fakeGateway({ closeEvery: 97 });
  t.after(g.close);
  const r = await ctl(['seed', '--url', g.url, '--api', 'json', '--polls', 'p1,p2', '--options', 'x,y,z',
    '--split', '3:2:1', '--votes', '4000', '--concurrency', '20', '--voters', '300',
    '--change-share', '0.2', '--duplicate-share', '0.1', '--threads', '2', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  assert.equal(s.sent, 4000);
  assert.equal(s.errors, 0);
  assert.equal(g.requests.length, 4000);
  assert.ok(g.maxInFlight <= 20, `at most --concurrency 20 in flight, saw ${g.maxInFlight}`);
  assert.equal(s.accepted, 4000);
  assert.equal(s.status['202'] + (s.status['200'] || 0), 4000);
  assert.equal(s.unchanged, s.status['200'] || 0);
  assert.ok(s.unchanged > 0, 'a pool of 300 voters re-casts some options');
  assert.ok(s.duplicates > 200 && s.changes > 400, JSON.stringify(s));
  assert.equal(g.replays, s.duplicates, 'every duplicate repeats an earlier Idempotency-Key');
  assert.ok(g.requests.every((q) => q.headers['idempotency-key']), 'with duplicates on, every cast has a key');
  assert.ok(g.requests.every((q) => /^\/api\/v1\/polls\/p[12]\/votes$/.test(q.url)));
  assert.equal(s.expected_exact, true);
  assert.deepEqual(s.expected, g.tally(), 'seed\'s expected tally is what the server ended with');
  for (const k of ['p50', 'p90', 'p99', 'p999', 'max']) assert.equal(typeof s.latency_ms[k], 'number');
  assert.ok(s.latency_ms.p50 <= s.latency_ms.p99 && s.latency_ms.p99 <= s.latency_ms.max);
  assert.ok(s.votes_per_s > 0 && s.elapsed_s > 0);
});

test('seed --api protobuf: bodies made by the C codec decode with protobufjs and with tallyctl decode', T, async (t) => {
  const g = await fakeGateway();
  t.after(g.close);
  const r = await ctl(['seed', '--url', g.url, '--api', 'protobuf', '--poll', 'p9', '--votes', '30', '--concurrency', '3', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(g.requests.length, 30);
  for (const q of g.requests) {
    assert.equal(q.url, '/api/v1/polls/p9/votes');
    assert.equal(q.vote.poll, 'p9');
    assert.equal(q.vote.source, 3); // SOURCE_PROTOBUF
    assert.ok(['a', 'b'].includes(q.vote.option));
  }
  const q = g.requests[7];
  const d = await ctl(['decode'], { input: q.body });
  assert.equal(d.code, 0, d.stderr);
  const j = JSON.parse(d.stdout);
  assert.deepEqual([j.poll, j.voter, j.option, j.source], ['p9', q.vote.voter, q.vote.option, 'SOURCE_PROTOBUF']);
  assert.deepEqual(JSON.parse(r.stdout).expected, g.tally());
});

test('seed --duration and --rate: an open loop keeps roughly its rate', T, async (t) => {
  const g = await fakeGateway();
  t.after(g.close);
  const r = await ctl(['seed', '--url', g.url, '--api', 'json', '--rate', '200', '--duration', '1.5', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  // 300 due in 1.5 s; generous bounds, the machine is shared.
  assert.ok(s.sent >= 250 && s.sent <= 301, `sent ${s.sent}`);
  assert.equal(s.sent, g.requests.length);
  // Every cast due before the end was sent, or is counted as unsent.
  assert.ok(Math.abs(s.sent + s.unsent - 300) <= 1, `sent ${s.sent} + unsent ${s.unsent}, 300 due`);
  assert.equal(s.gave_up, false);
});

test('seed --rate: casts due but never sent (all connections busy) are counted, not dropped', T, async (t) => {
  // 2 connections, 100 ms per answer: at most ~20 of the 200 due casts go out.
  const g = await fakeGateway({ delayMs: 100 });
  t.after(g.close);
  const args = ['seed', '--url', g.url, '--api', 'json', '--rate', '200', '--duration', '1', '--concurrency', '2', '--quiet'];
  let r = await ctl([...args, '--json']);
  assert.equal(r.code, 0, `falling behind is a measurement, not a failure: ${r.stderr}`);
  const s = JSON.parse(r.stdout);
  assert.ok(s.sent >= 2 && s.sent <= 40, `sent ${s.sent}`);
  assert.ok(Math.abs(s.sent + s.unsent - 200) <= 1, `sent ${s.sent} + unsent ${s.unsent}, 200 due`);
  r = await ctl(args);
  assert.equal(r.code, 0, r.stderr);
  const m = /unsent\s+(\d+) \(due/.exec(r.stdout);
  assert.ok(m && Number(m[1]) > 100, r.stdout);
});

test('seed: latency percentiles count 2xx answers only, not fast 503s', T, async (t) => {
  // Three answers in four are an immediate 503; the 2xx ones take 40 ms.
  const g = await fakeGateway({ delayMs: 40, reject: (n) => n % 4 !== 0 });
  t.after(g.close);
  const r = await ctl(['seed', '--url', g.url, '--api', 'json', '--votes', '400', '--concurrency', '4', '--json', '--quiet']);
  assert.equal(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  assert.equal(s.status['503'], 300);
  assert.equal(s.accepted, 100);
  assert.ok(s.latency_ms.p50 >= 39, `p50 ${s.latency_ms.p50} ms: the 503s are in it`);
  assert.deepEqual(s.expected, g.tally());
});

test('seed: a gateway that stops taking connections mid-run: seed gives up, counts the unsent casts, exits 1', T, async (t) => {
  for (const json of [true, false]) {
    const g = await fakeGateway({ dieAfter: 200 });
    t.after(g.close);
    const args = ['seed', '--url', g.url, '--api', 'json', '--votes', '3000', '--concurrency', '5', '--timeout', '1', '--quiet'];
    const r = await ctl(json ? [...args, '--json'] : args);
    assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stderr, /gave up/);
    assert.match(r.stderr, /casts? not sent/);
    if (json) {
      const s = JSON.parse(r.stdout);
      assert.equal(s.gave_up, true);
      assert.ok(s.sent >= 200 && s.sent < 3000, `sent ${s.sent}`);
      assert.equal(s.sent + s.unsent, 3000);
    } else {
      assert.match(r.stdout, /unsent\s+[1-9]\d* \(gave up/);
    }
  }
});

test('seed --api form: "unchanged" is n/a (the page does not say), not 0', T, async (t) => {
  const g = await fakeGateway();
  t.after(g.close);
  // A pool of voters with cookies, so some casts repeat a voter's option.
  const args = ['seed', '--url', g.url, '--poll', 'default', '--votes', '300', '--voters', '50', '--concurrency', '5', '--quiet'];
  let r = await ctl(args);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /unchanged n\/a/);
  r = await ctl([...args, '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).unchanged, null);
  // The JSON API's answer says it: counted there.
  r = await ctl(['seed', '--url', g.url, '--api', 'json', '--votes', '300', '--voters', '50', '--concurrency', '5', '--quiet', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(JSON.parse(r.stdout).unchanged > 0, r.stdout);
});

test('seed: nothing listening exits 69 and says what to do; bad options exit 2', T, async () => {
  const port = await freePort();
  let r = await ctl(['seed', '--url', `http://127.0.0.1:${port}/`, '--votes', '10', '--timeout', '1']);
  assert.equal(r.code, 69, r.stderr);
  assert.match(r.stderr, /cannot reach the gateway at .*is tally-gateway running\?/);
  for (const args of [['--votes', 'x'], ['--api', 'xml'], ['--url', 'https://x/'], ['--split', '1:2:3'],
    ['--voters', '10', '--concurrency', '50'], ['--polls', 'a,b'], ['--bogus'],
    ['--poll', 'p9'], ['--api', 'form', '--poll', 'p9']]) {
    r = await ctl(['seed', ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /tallyctl seed: /);
  }
  // Form votes land in the gateway's default poll: no other label.
  r = await ctl(['seed', '--api', 'form', '--poll', 'p9']);
  assert.match(r.stderr, /form API votes in the gateway's default poll/);
  r = await ctl(['seed', '--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /--change-share/);
});

// --- stream against a real nats-server --------------------------------------

let stack;
after(() => stack?.stop());
afterEach((t) => { if (!t.passed && stack) dumpLogs(stack); });

test('stream: --json equals the server\'s /jsz numbers; text shows the consumer lag', T, async () => {
  stack = await startStack();
  const env = { NATS_URL: stack.natsUrl };
  let r = await ctl(['stream'], { env });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /stream VOTES does not exist yet/);

  const nc = await connect({ servers: stack.natsUrl });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'VOTES', subjects: ['votes.>'], storage: 'file', retention: 'limits', duplicate_window: 120e9 });
    const js = jetstream(nc);
    for (let i = 0; i < 10; i++) {
      const h = headers();
      h.set('Nats-Msg-Id', `id-${i}`);
      const poll = i < 7 ? 'default' : 'p2';
      await js.publish(`votes.${poll}`, Vote.encode(Vote.create({ poll, voter: `v${i}`, option: 'a' })).finish(), { headers: h });
    }
    await jsm.consumers.add('VOTES', { durable_name: 'processor', ack_policy: AckPolicy.Explicit });
    const c = await js.consumers.get('VOTES', 'processor');
    const batch = await c.fetch({ max_messages: 4, expires: 2000 });
    let n = 0;
    for await (const m of batch) { if (++n < 4) m.ack(); }
    await nc.flush();

    r = await ctl(['stream', '--json'], { env });
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout);
    const jsz = await (await fetch(`http://127.0.0.1:${stack.natsMonitorPort}/jsz?accounts=true&streams=true&consumers=true&config=true`)).json();
    const sd = jsz.account_details[0].stream_detail.find((x) => x.name === 'VOTES');
    assert.equal(s.stream.messages, sd.state.messages);
    assert.equal(s.stream.messages, 10);
    assert.equal(s.stream.bytes, sd.state.bytes);
    assert.equal(s.stream.first_seq, sd.state.first_seq);
    assert.equal(s.stream.last_seq, sd.state.last_seq);
    assert.equal(s.stream.consumer_count, sd.state.consumer_count);
    assert.equal(s.stream.num_subjects, 2);
    assert.deepEqual(s.stream.subject_messages, { 'votes.default': 7, 'votes.p2': 3 });
    assert.equal(s.stream.duplicate_window_ms, sd.config.duplicate_window / 1e6);
    assert.equal(s.stream.replicas, sd.config.num_replicas);
    assert.equal(s.stream.first_time.slice(0, 19), sd.state.first_ts.slice(0, 19));
    const cd = sd.consumer_detail.find((x) => x.name === 'processor');
    const co = s.consumers.find((x) => x.name === 'processor');
    assert.equal(co.pending, cd.num_pending);
    assert.equal(co.pending, 6);
    assert.equal(co.ack_pending, cd.num_ack_pending);
    assert.equal(co.ack_pending, 1);
    assert.equal(co.redelivered, cd.num_redelivered);
    assert.equal(co.delivered_stream_seq, cd.delivered.stream_seq);
    assert.equal(co.delivered_stream_seq, 4);
    assert.equal(co.ack_floor_stream_seq, cd.ack_floor.stream_seq);
    assert.equal(co.durable, true);
    assert.equal(co.pull, true);

    r = await ctl(['stream'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /messages\s+10 /);
    assert.match(r.stdout, /votes\.default=7 votes\.p2=3/);
    assert.match(r.stdout, /processor\s+6\s+1\s+0/);

    // --watch refreshes until interrupted: a JSON line every second.
    const w = spawn(path.join(binDir(), 'tallyctl'), ['stream', '--json', '--watch', '1'], { env: { PATH: process.env.PATH, ...env } });
    let out = '';
    let errOut = '';
    w.stdout.on('data', (d) => { out += d; });
    w.stderr.on('data', (d) => { errOut += d; });
    const closed = new Promise((res) => w.on('close', (c, sig) => res({ code: c, sig })));
    const lines = () => out.split('\n').slice(0, -1); // complete lines only
    try {
      await waitFor(() => lines().length >= 2, { timeoutMs: 10000, what: `two --watch lines; stdout ${JSON.stringify(out)} stderr ${JSON.stringify(errOut)}` });
    } catch (e) {
      w.kill('SIGKILL');
      await closed;
      throw e;
    }
    w.kill('SIGINT');
    const { code, sig } = await closed;
    assert.equal(code, 0, `exit on SIGINT: code ${code} signal ${sig}; ${errOut}`);
    const got = lines();
    assert.ok(got.length >= 2, out);
    for (const l of got) assert.equal(JSON.parse(l).stream.messages, 10, l);
  } finally {
    await nc.close();
  }

  await stack.killNats();
  r = await ctl(['stream', '--timeout', '1'], { env });
  assert.equal(r.code, 69);
  assert.match(r.stderr, /cannot reach NATS at nats:\/\/127\.0\.0\.1:\d+: is nats-server running/);
});
