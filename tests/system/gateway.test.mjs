// tally-gateway against real nats-server and redis-server: the vote API and
// its every error status, the vote page and its form, idempotency, the
// "unchanged" re-cast, protobuf bodies, /visits, /metrics, /readyz, SIGTERM.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { startStack, http, pool, waitFor, dumpLogs } from './harness.mjs';
import { openStream, apiVote, metric, metricsText, newVoter, encodeVote } from './gateway-helpers.mjs';

const T = { timeout: 60000 };
let stack;
let gw;
let stream;

before(async () => {
  stack = await startStack();
  gw = await stack.startGateway({ MAX_BODY_BYTES: '1024' });
  await waitFor(async () => (await http('GET', `${gw.url}/readyz`)).status === 200,
    { timeoutMs: 20000, what: 'gateway /readyz' });
  stream = await openStream(stack);
});
after(async () => {
  await stream?.close();
  await stack?.stop();
});
afterEach((t) => { if (!t.passed) dumpLogs(stack); });

test('a JSON vote is accepted only with its PubAck, and is in the stream as tally.v1.Vote', T, async () => {
  const voter = newVoter();
  const before = await stream.count();
  const r = await apiVote(gw, 'default', { voter, option: 'a' });
  assert.equal(r.status, 200, r.body);
  assert.equal(r.json.status, 'accepted');
  assert.equal(r.json.poll, 'default');
  assert.equal(r.json.option, 'a');
  assert.equal(r.json.voter, voter);
  assert.equal(r.json.duplicate, false);
  assert.match(r.headers['cache-control'], /no-store/);
  assert.ok(Number.isInteger(r.json.seq) && r.json.seq > 0);
  assert.equal(await stream.count(), before + 1);
  const m = await stream.get(r.json.seq);
  assert.equal(m.subject, 'votes.default');
  assert.equal(m.msgId, r.json.cast_id);
  assert.equal(m.contentType, 'application/x-protobuf');
  assert.equal(m.pollHeader, 'default');
  assert.equal(m.optionHeader, 'a');
  assert.equal(m.vote.poll, 'default');
  assert.equal(m.vote.voter, voter);
  assert.equal(m.vote.option, 'a');
  assert.equal(m.vote.castId, r.json.cast_id);
  assert.equal(m.vote.source, 2); // SOURCE_JSON
  assert.ok(Math.abs(m.vote.castUnixMs - Date.now()) < 60000);
});

test('a vote for an unknown option gets 422 and nothing is published', T, async () => {
  const before = await stream.count();
  const r = await apiVote(gw, 'default', { voter: newVoter(), option: 'c' });
  assert.equal(r.status, 422);
  assert.deepEqual(Object.keys(r.json).sort(), ['error', 'message']);
  assert.equal(r.json.error, 'unknown_option');
  const f = await http('POST', `${gw.url}/`, { body: new URLSearchParams({ vote: 'zebra' }) });
  assert.equal(f.status, 422);
  assert.match(f.body, /not one of the poll/);
  assert.equal(await stream.count(), before);
});

test('every error status of the API, each with its JSON code', T, async () => {
  const before = await stream.count();
  const url = `${gw.url}/api/v1/polls/default/votes`;
  const cases = [
    { what: 'malformed JSON', status: 400, code: 'bad_request',
      req: () => http('POST', url, { body: '{"voter": "x", ', headers: { 'content-type': 'application/json' } }) },
    { what: 'JSON array', status: 400, code: 'bad_request',
      req: () => http('POST', url, { body: '[1,2]', headers: { 'content-type': 'application/json' } }) },
    { what: 'wrong type', status: 400, code: 'bad_request', req: () => apiVote(gw, 'default', { voter: 'x', option: 7 }) },
    { what: 'missing option', status: 400, code: 'bad_request', req: () => apiVote(gw, 'default', { voter: 'x' }) },
    { what: 'poll mismatch', status: 400, code: 'bad_request',
      req: () => apiVote(gw, 'default', { poll: 'other', voter: 'x', option: 'a' }) },
    { what: 'bad protobuf', status: 400, code: 'bad_request',
      req: () => http('POST', url, { body: Buffer.from([0x0a, 0xff, 0x01]), headers: { 'content-type': 'application/x-protobuf' } }) },
    { what: 'bad Idempotency-Key', status: 400, code: 'bad_request',
      req: () => apiVote(gw, 'default', { voter: 'x', option: 'a' }, { headers: { 'idempotency-key': 'a b' } }) },
    { what: 'unknown poll', status: 404, code: 'unknown_poll', req: () => apiVote(gw, 'nope', { voter: 'x', option: 'a' }) },
    { what: 'unknown route', status: 404, code: 'not_found', req: () => http('GET', `${gw.url}/no/such/thing`) },
    { what: 'GET on votes', status: 405, code: 'method_not_allowed', allow: 'POST', req: () => http('GET', url) },
    { what: 'DELETE on polls', status: 405, code: 'method_not_allowed', allow: 'GET, HEAD',
      req: () => http('DELETE', `${gw.url}/api/v1/polls`) },
    { what: 'PUT on /', status: 405, code: 'method_not_allowed', allow: 'GET, HEAD, POST',
      req: () => http('PUT', `${gw.url}/`, { body: 'vote=a' }) },
    { what: 'body over the limit', status: 413, code: 'payload_too_large',
      req: () => apiVote(gw, 'default', { voter: 'x', option: 'a', pad: 'p'.repeat(2000) }) },
    { what: 'text/plain', status: 415, code: 'unsupported_media_type',
      req: () => http('POST', url, { body: 'a', headers: { 'content-type': 'text/plain' } }) },
    { what: 'no content type', status: 415, code: 'unsupported_media_type',
      req: () => http('POST', url, { body: new Uint8Array([1]) }) },
    { what: 'unknown option', status: 422, code: 'unknown_option', req: () => apiVote(gw, 'default', { voter: 'x', option: 'zz' }) },
    { what: 'option with bad characters', status: 422, code: 'unknown_option',
      req: () => apiVote(gw, 'default', { voter: 'x', option: 'A/../b' }) },
    { what: 'bad voter', status: 422, code: 'bad_voter', req: () => apiVote(gw, 'default', { voter: 'no spaces please', option: 'a' }) },
    { what: 'voter too long', status: 422, code: 'bad_voter', req: () => apiVote(gw, 'default', { voter: 'v'.repeat(129), option: 'a' }) },
    { what: 'missing voter', status: 422, code: 'bad_voter', req: () => apiVote(gw, 'default', { option: 'a' }) },
  ];
  for (const c of cases) {
    const r = await c.req();
    assert.equal(r.status, c.status, `${c.what}: ${r.status} ${r.body}`);
    assert.equal(r.json?.error, c.code, `${c.what}: ${r.body}`);
    assert.equal(typeof r.json.message, 'string', c.what);
    assert.match(r.headers['content-type'], /application\/json/, c.what);
    if (c.allow) assert.equal(r.headers.allow, c.allow, c.what);
  }
  assert.equal(await stream.count(), before, 'no bad request published anything');
});

test('the vote page: title, buttons, tip, host name, CSP, voter cookie', T, async () => {
  const r = await http('GET', `${gw.url}/`);
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'], /text\/html/);
  assert.match(r.body, /<title>Cats vs Dogs!<\/title>/);
  assert.match(r.body, /<h1[^>]*>Cats vs Dogs!<\/h1>/);
  assert.match(r.body, /name="vote" value="a"[^>]*>Cats</);
  assert.match(r.body, /name="vote" value="b"[^>]*>Dogs</);
  assert.match(r.body, /\(Tip: you can change your vote\)/);
  assert.match(r.body, /Processed by container ID \S+/);
  assert.doesNotMatch(r.body, /<script>|<style>| style=|https?:\/\//, 'no inline code, no external asset');
  assert.match(r.headers['content-security-policy'], /default-src 'self'/);
  const [cookie] = r.setCookie;
  assert.match(cookie, /^voter_id=[0-9a-f]{32};/);
  assert.match(cookie, /HttpOnly/);
  assert.match(cookie, /SameSite=Lax/);
  for (const [p, type] of [['/static/vote.css', /text\/css/], ['/static/vote.js', /javascript/]]) {
    const s = await http('GET', `${gw.url}${p}`);
    assert.equal(s.status, 200, p);
    assert.match(s.headers['content-type'], type);
    assert.ok(s.body.length > 50);
  }
  assert.equal((await http('GET', `${gw.url}/static/nope.js`)).status, 404);
});

test("the original form POST: vote=b sets the cookie, marks b, and is published for that voter", T, async () => {
  const first = await http('POST', `${gw.url}/`, { body: new URLSearchParams({ vote: 'b' }) });
  assert.equal(first.status, 200, first.body);
  const voter = /^voter_id=([0-9a-f]{32});/.exec(first.setCookie[0])[1];
  assert.match(first.body, /value="b" class="[^"]*chosen[^"]*" aria-pressed="true">Dogs<span class="check"/);
  assert.match(first.body, /value="a" class="[^"]*faded/);
  // The same voter changes the vote: the cookie is kept and a is marked.
  const second = await http('POST', `${gw.url}/`, { body: 'vote=a', cookie: first.setCookie,
    headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  assert.equal(second.status, 200);
  assert.equal(/^voter_id=([0-9a-f]{32});/.exec(second.setCookie[0])[1], voter);
  assert.match(second.body, /value="a" class="[^"]*chosen/);
  // Recent messages in the stream carry this voter, b then a, source FORM.
  const n = await stream.count();
  const votes = [];
  for (let seq = n; seq > 0 && votes.length < 2; seq--) {
    const m = await stream.get(seq);
    if (m?.vote.voter === voter) votes.unshift(m.vote);
  }
  assert.deepEqual(votes.map((v) => v.option), ['b', 'a']);
  assert.equal(votes[0].source, 1);
  // A bad cookie is replaced, never echoed.
  const bad = await http('POST', `${gw.url}/`, { body: new URLSearchParams({ vote: 'a' }), cookie: 'voter_id=evil%0d%0aX-Injected:1' });
  assert.equal(bad.status, 200);
  assert.match(bad.setCookie[0], /^voter_id=[0-9a-f]{32};/);
  assert.equal(bad.headers['x-injected'], undefined);
});

test('re-casting the current option answers "unchanged" and publishes nothing', T, async () => {
  const voter = newVoter();
  const a = await apiVote(gw, 'default', { voter, option: 'a' });
  assert.equal(a.json.status, 'accepted');
  const before = await stream.count();
  const again = await apiVote(gw, 'default', { voter, option: 'a' });
  assert.equal(again.status, 200);
  assert.deepEqual(again.json, { status: 'unchanged', poll: 'default', option: 'a', voter, seq: a.json.seq });
  assert.equal(await stream.count(), before);
  const b = await apiVote(gw, 'default', { voter, option: 'b' });
  assert.equal(b.json.status, 'accepted');
  assert.ok(b.json.seq > a.json.seq);
  assert.equal(await stream.count(), before + 1);
});

test('Idempotency-Key: a repeat gets the first answer and publishes nothing', T, async () => {
  const key = `key-${newVoter()}`;
  const voter = newVoter();
  const first = await apiVote(gw, 'default', { voter, option: 'b' }, { headers: { 'Idempotency-Key': key } });
  assert.equal(first.status, 200);
  assert.equal(first.json.cast_id, key, 'the key is the cast id (Nats-Msg-Id)');
  assert.equal((await stream.get(first.json.seq)).msgId, key);
  const before = await stream.count();
  for (let i = 0; i < 3; i++) {
    // Even with another body: the first answer comes back.
    const again = await apiVote(gw, 'default', { voter, option: i % 2 ? 'a' : 'b' }, { headers: { 'Idempotency-Key': key } });
    assert.equal(again.status, 200);
    assert.equal(again.body, first.body);
    assert.equal(again.headers['idempotent-replayed'], 'true');
  }
  assert.equal(await stream.count(), before);
  // Without Redis's record (deleted), JetStream's Nats-Msg-Id dedup still holds.
  await stack.redisCli('DEL', `tally:idem:${key}`, `tally:v:default:${voter}`);
  const dup = await apiVote(gw, 'default', { voter, option: 'b' }, { headers: { 'Idempotency-Key': key } });
  assert.equal(dup.status, 200);
  assert.equal(dup.json.seq, first.json.seq);
  assert.equal(dup.json.duplicate, true);
  assert.equal(await stream.count(), before);
});

test('protobuf and form bodies on the API', T, async () => {
  const url = `${gw.url}/api/v1/polls/default/votes`;
  const voter = newVoter();
  const pb = await http('POST', url, { body: encodeVote({ voter, option: 'b' }),
    headers: { 'content-type': 'application/x-protobuf' } });
  assert.equal(pb.status, 200, pb.body);
  assert.equal(pb.json.option, 'b');
  assert.equal((await stream.get(pb.json.seq)).vote.source, 3);
  const pbPoll = await http('POST', url, { body: encodeVote({ poll: 'default', voter: newVoter(), option: 'a' }),
    headers: { 'content-type': 'application/x-protobuf' } });
  assert.equal(pbPoll.status, 200, pbPoll.body);
  const pbOther = await http('POST', url, { body: encodeVote({ poll: 'other', voter, option: 'a' }),
    headers: { 'content-type': 'application/x-protobuf' } });
  assert.equal(pbOther.status, 400);
  const form = await http('POST', url, { body: new URLSearchParams({ voter: newVoter(), option: 'a' }) });
  assert.equal(form.status, 200, form.body);
  assert.equal(form.json.status, 'accepted');
  assert.equal((await stream.get(form.json.seq)).vote.source, 1);
});

test('GET /api/v1/polls lists the polls; one poll by id', T, async () => {
  const r = await http('GET', `${gw.url}/api/v1/polls`);
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { polls: [{ id: 'default', title: 'Cats vs Dogs!',
    options: [{ id: 'a', label: 'Cats' }, { id: 'b', label: 'Dogs' }] }] });
  const one = await http('GET', `${gw.url}/api/v1/polls/default`);
  assert.equal(one.json.id, 'default');
  assert.equal((await http('GET', `${gw.url}/api/v1/polls/..%2f..`)).status, 404);
});

test('/visits counts with Redis INCR, as the original app', T, async () => {
  const a = await http('GET', `${gw.url}/visits`);
  assert.equal(a.status, 200);
  const n = Number(/^Hello from Redis! I have been seen (\d+) times\.$/.exec(a.body.trim())[1]);
  const b = await http('GET', `${gw.url}/visits`);
  assert.equal(b.body.trim(), `Hello from Redis! I have been seen ${n + 1} times.`);
  assert.equal(await stack.redisCli('GET', 'hits'), String(n + 1));
  // A HEAD has no side effect: 405, and the counter does not move.
  const head = await http('HEAD', `${gw.url}/visits`);
  assert.equal(head.status, 405);
  assert.equal(head.headers.allow, 'GET');
  const post = await http('POST', `${gw.url}/visits`, { body: 'x' });
  assert.equal(post.status, 405);
  assert.equal(post.headers.allow, 'GET');
  assert.equal(await stack.redisCli('GET', 'hits'), String(n + 1));
  // The other GET routes take HEAD: no body, same status.
  for (const p of ['/', '/healthz', '/readyz', '/metrics', '/api/v1/polls', '/static/vote.css']) {
    const h = await http('HEAD', `${gw.url}${p}`);
    assert.equal(h.status, 200, `HEAD ${p}`);
    assert.equal(h.body, '', `HEAD ${p}`);
  }
});

test('/healthz, /readyz and /metrics', T, async () => {
  assert.equal((await http('GET', `${gw.url}/healthz`)).status, 200);
  const ready = await http('GET', `${gw.url}/readyz`);
  assert.equal(ready.status, 200);
  assert.equal(ready.json.nats, true);
  // Some votes of each kind, then the counters must have moved.
  const before = await metricsText(gw);
  await pool(20, 5, (i) => apiVote(gw, 'default', { voter: newVoter(), option: i % 2 ? 'a' : 'b' }));
  await apiVote(gw, 'default', { voter: 'x', option: 'nope' });
  const text = await metricsText(gw);
  const d = (name, labels) => metric(text, name, labels) - metric(before, name, labels);
  assert.ok(d('tally_gateway_votes_total', 'result="accepted"') >= 20);
  assert.ok(d('tally_gateway_votes_total', 'result="rejected"') >= 1);
  assert.ok(d('tally_gateway_requests_total', 'route="votes",status="200"') >= 20);
  assert.ok(d('tally_gateway_requests_total', 'route="votes",status="422"') >= 1);
  assert.ok(d('tally_gateway_publish_seconds_count') >= 20);
  assert.match(text, /# TYPE tally_gateway_publish_seconds histogram/);
  assert.match(text, /tally_gateway_publish_seconds_bucket\{le="\+Inf"\} \d+/);
  assert.match(text, /^tally_gateway_votes_in_flight 0$/m);
  assert.match(text, /^tally_gateway_dedup_bypass_total \d+$/m);
  assert.match(text, /^tally_gateway_ready 1$/m);
});

test('one access-log line per request, with the cast id', T, async () => {
  const r = await apiVote(gw, 'default', { voter: newVoter(), option: 'a' });
  await waitFor(() => gw.logText().includes(`cast=${r.json.cast_id}`), { what: 'access log line' });
  // Another request after it: its line is written once this one's is.
  assert.equal((await http('GET', `${gw.url}/healthz`)).status, 200);
  await waitFor(() => / GET \/healthz 200 /.test(gw.logText().split(`cast=${r.json.cast_id}`)[1] ?? ''), { what: 'the next line' });
  const lines = gw.logText().split('\n').filter((l) => l.includes(`cast=${r.json.cast_id}`));
  assert.equal(lines.length, 1, lines.join('\n'));
  assert.match(lines[0], /info: POST \/api\/v1\/polls\/default\/votes 200 [\d.]+ms 127\.0\.0\.1 cast=/);
});

test('a per-client rate limit answers 429 (JSON for the API, the page for the form) and is counted', T, async () => {
  const limited = await stack.startGateway({ RATE_LIMIT_PER_S: '1', RATE_LIMIT_BURST: '2' });
  try {
    await waitFor(async () => (await http('GET', `${limited.url}/readyz`)).status === 200, { what: 'readyz' });
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await apiVote(limited, 'default', { voter: newVoter(), option: 'a' }));
    const statuses = answers.map((r) => r.status);
    assert.deepEqual(statuses.slice(0, 2), [200, 200]);
    const r = answers.find((a) => a.status === 429);
    assert.ok(r, String(statuses));
    assert.equal(r.json.error, 'rate_limited');
    assert.equal(r.headers['retry-after'], '1');
    // The form's voters get the page back, with the notice, not JSON.
    let page;
    for (let i = 0; i < 5 && page?.status !== 429; i++) {
      page = await http('POST', `${limited.url}/`, { body: new URLSearchParams({ vote: 'a' }) });
    }
    assert.equal(page.status, 429);
    assert.match(page.headers['content-type'], /^text\/html/);
    assert.match(page.body, /too many votes from 127\.0\.0\.1/);
    assert.equal(page.headers['retry-after'], '1');
    assert.ok(metric(await metricsText(limited), 'tally_gateway_rate_limited_total') >= 2);
  } finally {
    assert.equal(await limited.stop('SIGTERM'), 0);
  }
});

// SIGTERM while votes wait for their PubAck: nats-server is stopped
// (SIGSTOP), so the votes are held in flight; the gateway is told to stop,
// then nats-server is continued (SIGCONT) within DRAIN_TIMEOUT_MS and well
// inside PUBLISH_TIMEOUT_MS. A gateway that did not wait would cut them off
// (no answer) and one whose publish timed out would answer 503: each must
// get its 200 with a stream sequence, and the gateway must exit 0.
test('SIGTERM: the gateway waits for the votes in flight, answers each, and exits 0', T, async () => {
  const publishTimeoutMs = 20000;
  const g = await stack.startGateway({ PUBLISH_TIMEOUT_MS: String(publishTimeoutMs), DRAIN_TIMEOUT_MS: '15000' });
  await waitFor(async () => (await http('GET', `${g.url}/readyz`)).status === 200, { what: 'readyz' });
  const n = 16;
  const nats = stack.nats.pid;
  let natsStopped = false;
  let answers;
  let exited;
  const t0 = Date.now();
  try {
    process.kill(nats, 'SIGSTOP');
    natsStopped = true;
    const inflight = Array.from({ length: n }, (_, i) => {
      const voter = newVoter('drain');
      return apiVote(g, 'default', { voter, option: i % 2 ? 'a' : 'b' }, { timeoutMs: 40000 })
        .then((r) => ({ voter, ...r }), (e) => ({ voter, status: 0, error: String(e) }));
    });
    // The gauge is read from the gateway's own count: it must see them all.
    await waitFor(async () => metric(await metricsText(g), 'tally_gateway_votes_in_flight') === n,
      { timeoutMs: 10000, what: `${n} votes in flight while nats-server is stopped` });
    // A kept-alive connection opened before the SIGTERM: it is still
    // served during the drain, but nothing new may be suspended on it.
    const kept = net.connect(g.port, '127.0.0.1');
    await new Promise((resolve, reject) => { kept.once('connect', resolve); kept.once('error', reject); });
    let keptData = '';
    kept.on('data', (d) => { keptData += d; });
    const ask = async (req) => {
      keptData = '';
      kept.write(`${req} HTTP/1.1\r\nHost: gw\r\n\r\n`);
      await waitFor(() => {
        const head = keptData.indexOf('\r\n\r\n');
        const len = /content-length: (\d+)/i.exec(keptData);
        return head >= 0 && len && keptData.length >= head + 4 + Number(len[1]);
      }, { timeoutMs: 5000, what: `an answer to ${req}` });
      return keptData;
    };
    assert.match(await ask('GET /healthz'), /^HTTP\/1\.1 200 /);
    exited = g.stop('SIGTERM', { timeoutMs: 30000 });
    await waitFor(() => g.logText().includes('stopping: draining'), { what: 'the drain to start' });
    // /visits would wait for Redis: refused at once while draining.
    const visits = await ask('GET /visits');
    assert.match(visits, /^HTTP\/1\.1 503 /);
    assert.match(visits, /the gateway is shutting down/);
    kept.destroy();
    // A new connection is refused at once (the listening socket is shut).
    const refused = await new Promise((resolve) => {
      const s = net.connect(g.port, '127.0.0.1');
      s.on('connect', () => { s.destroy(); resolve('connected'); });
      s.on('error', (e) => resolve(e.code));
    });
    assert.equal(refused, 'ECONNREFUSED');
    await sleep(500);
    assert.ok(g.alive, 'the gateway waits for its votes in flight');
    assert.doesNotMatch(g.logText(), /drain: .* still waiting/);
    process.kill(nats, 'SIGCONT');
    natsStopped = false;
    answers = await Promise.all(inflight);
  } finally {
    if (natsStopped) process.kill(nats, 'SIGCONT');
  }
  assert.equal(await exited, 0);
  assert.ok(Date.now() - t0 < publishTimeoutMs, 'no publish timed out: the PubAcks came');
  for (const a of answers) {
    assert.equal(a.status, 200, `${a.voter}: ${a.status} ${a.error || a.body}`);
    assert.equal(a.json.status, 'accepted');
    assert.ok(Number.isInteger(a.json.seq) && a.json.seq > 0, a.body);
    const m = await stream.get(a.json.seq);
    assert.equal(m.msgId, a.json.cast_id);
    assert.equal(m.vote.voter, a.voter);
  }
  assert.match(g.logText(), /\bstopped\b/);
  assert.doesNotMatch(g.logText(), /drain: .* still waiting/);
});

// The drain is bounded: votes still waiting after DRAIN_TIMEOUT_MS are
// given up (logged with their number) and the stop is still an orderly
// exit 0. Their clients get a 503 (the publish timed out during the
// teardown) or a closed connection, never a hang.
test('SIGTERM: a drain that runs out of time logs what it left and still exits 0', T, async () => {
  const g = await stack.startGateway({ PUBLISH_TIMEOUT_MS: '2000', DRAIN_TIMEOUT_MS: '200' });
  await waitFor(async () => (await http('GET', `${g.url}/readyz`)).status === 200, { what: 'readyz' });
  const n = 4;
  const nats = stack.nats.pid;
  let natsStopped = false;
  try {
    process.kill(nats, 'SIGSTOP');
    natsStopped = true;
    const inflight = Array.from({ length: n }, () =>
      apiVote(g, 'default', { voter: newVoter('late'), option: 'a' }, { timeoutMs: 20000 })
        .catch((e) => ({ status: 0, error: String(e) })));
    await waitFor(async () => metric(await metricsText(g), 'tally_gateway_votes_in_flight') === n,
      { timeoutMs: 10000, what: `${n} votes in flight` });
    assert.equal(await g.stop('SIGTERM', { timeoutMs: 15000 }), 0);
    assert.match(g.logText(), new RegExp(`warn: drain: ${n} requests still waiting for Redis or a PubAck after 200 ms`));
    for (const a of await Promise.all(inflight)) assert.ok(a.status === 503 || a.status === 0, `status ${a.status} ${a.error || a.body}`);
  } finally {
    if (natsStopped) process.kill(nats, 'SIGCONT');
  }
});
