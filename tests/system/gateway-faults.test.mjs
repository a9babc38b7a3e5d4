// tally-gateway when Redis or NATS misbehave: the Redis sequence race,
// Redis down (fail-open counts bypasses; fail-closed answers 503), and NATS
// killed and restarted while votes flow (every 2xx is in the stream; while
// NATS is down the answers are 503 within the publish timeout).
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startStack, http, pool, waitFor, dumpLogs } from './harness.mjs';
import { openStream, apiVote, metric, metricsText, newVoter } from './gateway-helpers.mjs';

const T = { timeout: 120000 };
let stack;
let gw;

before(async () => {
  stack = await startStack();
  gw = await stack.startGateway({ PUBLISH_TIMEOUT_MS: '1000' });
  await waitFor(async () => (await http('GET', `${gw.url}/readyz`)).status === 200,
    { timeoutMs: 20000, what: 'gateway /readyz' });
});
after(async () => { await stack?.stop(); });
afterEach((t) => { if (!t.passed) dumpLogs(stack); });

test('racing casts of one voter: Redis ends with the highest stream seq and its option', T, async () => {
  const stream = await openStream(stack);
  try {
    for (let round = 0; round < 3; round++) {
      const voter = newVoter('race');
      const answers = await pool(120, 40, (i) => apiVote(gw, 'default', { voter, option: i % 2 ? 'a' : 'b' }));
      const accepted = answers.filter((r) => r.status === 200 && r.json.status === 'accepted');
      assert.ok(accepted.length > 0);
      for (const r of answers) assert.equal(r.status, 200, r.body);
      const top = accepted.reduce((m, r) => (r.json.seq > m.json.seq ? r : m));
      const msg = await stream.get(top.json.seq);
      assert.equal(msg.vote.voter, voter);
      assert.equal(msg.vote.option, top.json.option);
      // No message of this voter in the stream after the top accepted seq.
      const n = await stream.count();
      for (let seq = top.json.seq + 1; seq <= n; seq++) {
        const m = await stream.get(seq);
        assert.notEqual(m?.vote.voter, voter, `seq ${seq} belongs to ${voter} but was never answered`);
      }
      // Answers wait for the record, so Redis is current as soon as all are in.
      assert.equal(await stack.redisCli('GET', `tally:v:default:${voter}`), `${top.json.option}:${top.json.seq}`);
    }
  } finally {
    await stream.close();
  }
});

test('Redis down: votes are still accepted (fail-open), bypasses counted, outage logged once', T, async () => {
  const before = metric(await metricsText(gw), 'tally_gateway_dedup_bypass_total');
  await stack.killRedis();
  const answers = await pool(40, 8, (i) => apiVote(gw, 'default', { voter: newVoter('down'), option: i % 2 ? 'a' : 'b' }));
  for (const r of answers) {
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json.status, 'accepted');
  }
  const text = await metricsText(gw);
  assert.ok(metric(text, 'tally_gateway_dedup_bypass_total') - before >= 40);
  assert.match(text, /^tally_gateway_redis_up 0$/m);
  const visits = await http('GET', `${gw.url}/visits`);
  assert.equal(visits.status, 503);
  assert.equal(visits.json.error, 'unavailable');
  assert.ok(visits.headers['retry-after']);
  const downLines = gw.logText().split('\n').filter((l) => /redis: .* unavailable/.test(l));
  assert.equal(downLines.length, 1, downLines.join('\n'));
  // A voter who changed their vote while Redis was away is not told
  // "unchanged" from stale data once it is back.
  await stack.startRedis();
  // Anchored: the metric's HELP text also contains "redis_up 1".
  await waitFor(async () => /^tally_gateway_redis_up 1$/m.test(await metricsText(gw)), { timeoutMs: 10000, what: 'redis back' });
  assert.equal(gw.logText().split('\n').filter((l) => /redis: .* unavailable/.test(l)).length, 1);
  const ok = await apiVote(gw, 'default', { voter: newVoter(), option: 'a' });
  assert.equal(ok.status, 200);
  assert.equal((await http('GET', `${gw.url}/visits`)).status, 200);
});

test('Redis down with DEDUP_FAIL_CLOSED=true: 503 with Retry-After', T, async () => {
  const closed = await stack.startGateway({ DEDUP_FAIL_CLOSED: 'true' });
  try {
    await waitFor(async () => (await http('GET', `${closed.url}/readyz`)).status === 200, { what: 'readyz' });
    assert.equal((await apiVote(closed, 'default', { voter: newVoter(), option: 'a' })).status, 200);
    await stack.killRedis();
    const r = await apiVote(closed, 'default', { voter: newVoter(), option: 'a' });
    assert.equal(r.status, 503);
    assert.equal(r.json.error, 'unavailable');
    assert.equal(r.headers['retry-after'], '1');
    assert.equal((await http('GET', `${closed.url}/readyz`)).status, 503);
  } finally {
    await stack.startRedis();
    assert.equal(await closed.stop('SIGTERM'), 0);
  }
});

test('a record missed while Redis was down is replayed before Redis is read again', T, async () => {
  const voter = newVoter('stale');
  const a = await apiVote(gw, 'default', { voter, option: 'a' });
  assert.equal(a.json.status, 'accepted');
  await stack.stopRedis();   // persistence is off: Redis comes back empty...
  const b = await apiVote(gw, 'default', { voter, option: 'b' });
  assert.equal(b.json.status, 'accepted');
  await stack.startRedis();
  // The record of b could not be written: it is replayed on reconnect
  // (Redis came back empty, so only the replay can put b there).
  await waitFor(async () => (await stack.redisCli('GET', `tally:v:default:${voter}`)) === `b:${b.json.seq}`,
    { timeoutMs: 10000, what: 'the missed record replayed' });
  const again = await apiVote(gw, 'default', { voter, option: 'a' });
  assert.equal(again.json.status, 'accepted', 'a is a change from b, never "unchanged"');
});

test('a vote whose PubAck timed out but which reached the stream: the voter is never told "unchanged" from older data', T, async () => {
  const stream = await openStream(stack);
  try {
    const voter = newVoter('unknown');
    const a = await apiVote(gw, 'default', { voter, option: 'a' });
    assert.equal(a.json.status, 'accepted');
    // nats-server stopped: the gateway writes b to its socket, and the
    // PubAck cannot come within PUBLISH_TIMEOUT_MS (1 s here).
    process.kill(stack.nats.pid, 'SIGSTOP');
    let b;
    try {
      b = await apiVote(gw, 'default', { voter, option: 'b' });
    } finally {
      process.kill(stack.nats.pid, 'SIGCONT');
    }
    assert.equal(b.status, 503, b.body);
    // Running again, nats-server reads b and stores it: the 503 was for a
    // vote whose fate the gateway could not know.
    const landed = await waitFor(async () => {
      const n = await stream.count();
      for (let seq = a.json.seq + 1; seq <= n; seq++) {
        const m = await stream.get(seq);
        if (m?.vote.voter === voter) return m;
      }
      return null;
    }, { timeoutMs: 10000, what: 'b in the stream' });
    assert.equal(landed.vote.option, 'b');
    // Redis still says a: it must not be trusted for this voter now.
    const again = await apiVote(gw, 'default', { voter, option: 'a' });
    assert.equal(again.status, 200, again.body);
    assert.equal(again.json.status, 'accepted', 'the stream ends with b, so a is a change');
    assert.ok(again.json.seq > landed.seq);
    const later = await apiVote(gw, 'default', { voter, option: 'a' });
    assert.equal(later.json.status, 'accepted', 'still unsettled: published again, never "unchanged"');
  } finally {
    await stream.close();
  }
});

// A RECORD can run in Redis though its reply never comes back (Redis
// stalled past REDIS_TIMEOUT_MS): replayed on reconnect, it must not
// uncount the voter a second time, or a count left by a cast of unknown
// fate (E below) would go, and Redis could answer "unchanged" from an
// option older than the stream. Redis key: "<option>:<seq>:<casts being
// published>".
test('a record that ran though its reply was lost is replayed without uncounting again', T, async () => {
  const g = await stack.startGateway({ PUBLISH_TIMEOUT_MS: '3000', REDIS_TIMEOUT_MS: '300' });
  let natsStopped = false;
  let redisStopped = false;
  try {
    await waitFor(async () => (await http('GET', `${g.url}/readyz`)).status === 200, { what: 'readyz' });
    const voter = newVoter('maybe');
    const key = `tally:v:default:${voter}`;
    const a = await apiVote(g, 'default', { voter, option: 'a' });
    assert.equal(a.json.status, 'accepted');
    process.kill(stack.nats.pid, 'SIGSTOP');
    natsStopped = true;
    // E: counted, then its PubAck times out: fate unknown, stays counted.
    const e = await apiVote(g, 'default', { voter, option: 'b' });
    assert.equal(e.status, 503, e.body);
    assert.equal(await stack.redisCli('GET', key), `a:${a.json.seq}:1`);
    // C, back to a: counted too (Redis cannot know that b is not the
    // voter's latest), then held waiting for its PubAck.
    const c = apiVote(g, 'default', { voter, option: 'a' }, { timeoutMs: 20000 });
    await waitFor(async () => (await stack.redisCli('GET', key)) === `a:${a.json.seq}:2`, { what: 'C counted' });
    // Redis stalls; NATS goes on: C's RECORD is written to a Redis that
    // answers only after the gateway gave up on it.
    process.kill(stack.redis.pid, 'SIGSTOP');
    redisStopped = true;
    process.kill(stack.nats.pid, 'SIGCONT');
    natsStopped = false;
    const cr = await c;
    assert.equal(cr.status, 200, cr.body);
    await waitFor(() => /redis: .* unavailable/.test(g.logText()), { what: 'the lost reply noticed' });
    process.kill(stack.redis.pid, 'SIGCONT');
    redisStopped = false;
    // /visits goes through the same connection, after the replay.
    await waitFor(async () => (await http('GET', `${g.url}/visits`)).status === 200, { timeoutMs: 10000, what: 'redis back' });
    // C stored once, uncounted once: E's count is still there.
    assert.equal(await stack.redisCli('GET', key), `a:${cr.json.seq}:1`);
  } finally {
    if (natsStopped) process.kill(stack.nats.pid, 'SIGCONT');
    if (redisStopped) process.kill(stack.redis.pid, 'SIGCONT');
    await g.stop('SIGTERM');
  }
});

test('an Idempotency-Key repeated with another option after its answer is gone: the duplicate leaves Redis as the stream is', T, async () => {
  const voter = newVoter('dupkey');
  const key = `key-${voter}`;
  const first = await apiVote(gw, 'default', { voter, option: 'a' }, { headers: { 'Idempotency-Key': key } });
  assert.equal(first.json.status, 'accepted');
  // Redis lost the stored answer and the voter (a restart without
  // persistence); JetStream still knows the key as a Nats-Msg-Id.
  await stack.redisCli('DEL', `tally:idem:${key}`, `tally:v:default:${voter}`);
  const repeat = await apiVote(gw, 'default', { voter, option: 'b' }, { headers: { 'Idempotency-Key': key } });
  assert.equal(repeat.status, 200, repeat.body);
  assert.equal(repeat.json.duplicate, true);
  assert.equal(repeat.json.seq, first.json.seq);
  assert.notEqual(await stack.redisCli('GET', `tally:v:default:${voter}`), `b:${first.json.seq}`,
    'seq ' + first.json.seq + ' holds a: b must not be recorded for it');
  const b = await apiVote(gw, 'default', { voter, option: 'b' });
  assert.equal(b.json.status, 'accepted', 'the stream holds a for this voter, so b is a change');
});

test('a repeat of a request answered "unchanged" gets that answer again, even after the voter changed their vote', T, async () => {
  const stream = await openStream(stack);
  try {
    const voter = newVoter('unchkey');
    const key = `key-${voter}`;
    const a = await apiVote(gw, 'default', { voter, option: 'a' });
    assert.equal(a.json.status, 'accepted');
    const same = await apiVote(gw, 'default', { voter, option: 'a' }, { headers: { 'Idempotency-Key': key } });
    assert.equal(same.json.status, 'unchanged');
    const b = await apiVote(gw, 'default', { voter, option: 'b' });
    assert.equal(b.json.status, 'accepted');
    const count = await stream.count();
    const repeat = await apiVote(gw, 'default', { voter, option: 'a' }, { headers: { 'Idempotency-Key': key } });
    assert.equal(repeat.status, 200, repeat.body);
    assert.deepEqual(repeat.json, same.json, 'the first answer, byte for byte');
    assert.equal(await stream.count(), count, 'the repeat published nothing');
    assert.equal(await stack.redisCli('GET', `tally:v:default:${voter}`), `b:${b.json.seq}`);
  } finally {
    await stream.close();
  }
});

test('NATS killed and restarted while votes flow: every 2xx is in the stream, 503s are prompt', T, async () => {
  const results = [];
  let stop = false;
  const worker = async (w) => {
    for (let i = 0; !stop; i++) {
      const voter = newVoter(`n${w}-`);
      const t0 = Date.now();
      try {
        const r = await apiVote(gw, 'default', { voter, option: i % 2 ? 'a' : 'b' }, { timeoutMs: 8000 });
        results.push({ voter, status: r.status, json: r.json, ms: Date.now() - t0, headers: r.headers });
      } catch (e) {
        results.push({ voter, status: 0, error: String(e), ms: Date.now() - t0 });
      }
      if (results.length % 50 === 0) await sleep(1);
    }
  };
  const workers = Array.from({ length: 8 }, (_, w) => worker(w));
  await sleep(700);
  await stack.killNats();
  await sleep(1500);
  await stack.startNats();
  await waitFor(async () => (await http('GET', `${gw.url}/readyz`)).status === 200, { timeoutMs: 20000, what: 'readyz after NATS restart' });
  await sleep(700);
  stop = true;
  await Promise.all(workers);

  const ok = results.filter((r) => r.status === 200);
  const refused = results.filter((r) => r.status === 503);
  assert.ok(ok.length > 50, `accepted ${ok.length}`);
  assert.ok(refused.length > 0, 'some votes were refused while NATS was down');
  for (const r of results) assert.ok(r.status === 200 || r.status === 503, `status ${r.status} ${r.error || ''}`);
  for (const r of refused) {
    assert.equal(r.json.error, 'unavailable');
    assert.equal(r.headers['retry-after'], '1');
    assert.ok(r.ms < 1000 + 1500, `a 503 took ${r.ms} ms`);
  }
  const stream = await openStream(stack);
  try {
    for (const r of ok) {
      const m = await stream.get(r.json.seq);
      assert.ok(m, `seq ${r.json.seq} of an accepted vote is missing`);
      assert.equal(m.msgId, r.json.cast_id);
      assert.equal(m.vote.voter, r.voter);
    }
  } finally {
    await stream.close();
  }
});

// Stream VOTES is looked for again after start: deleted (or lost with a
// server that came back without its store), the gateway marks itself not
// ready and makes it again; a vote that hits the gap gets a 503, the next
// ones land in the new stream. Last in this file: it replaces the stream.
test('stream VOTES deleted: /readyz turns 503, the stream is made again, votes land in it', T, async () => {
  const stream = await openStream(stack);
  try {
    await waitFor(async () => (await http('GET', `${gw.url}/readyz`)).status === 200, { timeoutMs: 10000, what: 'ready' });
    // 1. Deleted, with another stream squatting on votes.> so that VOTES
    //    cannot be made again yet: votes are refused (ExpectStream keeps
    //    them out of the squatter) and /readyz says why.
    await stream.jsm.streams.delete('VOTES');
    await stream.jsm.streams.add({ name: 'SQUAT', subjects: ['votes.>'] });
    const refused = await apiVote(gw, 'default', { voter: newVoter('gap'), option: 'a' });
    assert.equal(refused.status, 503, refused.body);
    assert.ok(refused.headers['retry-after']);
    await waitFor(async () => (await http('GET', `${gw.url}/readyz`)).status === 503, { timeoutMs: 8000, what: '/readyz 503 without the stream' });
    assert.equal((await stream.jsm.streams.info('SQUAT')).state.messages, 0, 'nothing published into another stream');
    // 2. The squatter gone: VOTES comes back by itself, no vote needed.
    await stream.jsm.streams.delete('SQUAT');
    await waitFor(async () => (await http('GET', `${gw.url}/readyz`)).status === 200, { timeoutMs: 8000, what: '/readyz 200 again' });
    assert.equal(await stream.count(), 0, 'a new, empty stream');
    let ok = await apiVote(gw, 'default', { voter: newVoter('back'), option: 'b' });
    assert.equal(ok.status, 200, ok.body);
    assert.equal((await stream.get(ok.json.seq))?.vote.option, 'b');
    // 3. Deleted again while votes flow: after a few 503s at most, votes
    //    are accepted again, each in the new stream.
    await stream.jsm.streams.delete('VOTES');
    const t0 = Date.now();
    const statuses = [];
    for (;;) {
      ok = await apiVote(gw, 'default', { voter: newVoter('flow'), option: 'a' });
      statuses.push(ok.status);
      if (ok.status === 200) break;
      assert.equal(ok.status, 503, ok.body);
      assert.ok(Date.now() - t0 < 10000, `still refused after ${Date.now() - t0} ms: ${statuses.join(' ')}`);
      await sleep(50);
    }
    const answers = await pool(20, 4, () => apiVote(gw, 'default', { voter: newVoter('flow'), option: 'b' }));
    for (const r of answers) assert.equal(r.status, 200, r.body);
    for (const r of [ok, ...answers]) assert.equal((await stream.get(r.json.seq))?.vote.voter, r.json.voter);
    // A 503 never proves a vote absent (docs/API.md), so only bounds here.
    const n = await stream.count();
    assert.ok(n >= 21 && n <= 20 + statuses.length, `${n} messages in the new stream`);
    console.log(`stream deleted under load: ${statuses.length - 1} vote(s) refused, accepted again after ${Date.now() - t0} ms`);
  } finally {
    await stream.close();
  }
});

test('stream VOTES made again: Redis forgets the old stream\'s voters, so a change of vote is never "unchanged"', T, async () => {
  const stream = await openStream(stack);
  try {
    await waitFor(async () => (await http('GET', `${gw.url}/readyz`)).status === 200, { timeoutMs: 10000, what: 'ready' });
    // Enough votes that the voter's seq is well above the new stream's.
    const voter = newVoter('again');
    await pool(30, 6, () => apiVote(gw, 'default', { voter: newVoter('filler'), option: 'a' }));
    const a = await apiVote(gw, 'default', { voter, option: 'a' });
    assert.equal(a.json.status, 'accepted');
    assert.ok(a.json.seq > 3);
    // Made again behind the gateway's back (as a nats-server back without
    // its store would be): the gateway is the one that notices, by the
    // stream's creation time, on its next look.
    const dropped = () => gw.logText().split('\n').filter((l) => /voter keys were written for another stream/.test(l)).length;
    const before = dropped();
    await stream.jsm.streams.delete('VOTES');
    await stream.jsm.streams.add({ name: 'VOTES', subjects: ['votes.>'], duplicate_window: 120 * 1e9 });
    // The gateway looks at the stream every 5 s; votes go on meanwhile.
    const t0 = Date.now();
    while (dropped() === before && Date.now() - t0 < 8000) {
      await apiVote(gw, 'default', { voter: newVoter('poke'), option: 'a' });
      await sleep(200);
    }
    const b = await apiVote(gw, 'default', { voter, option: 'b' });
    assert.equal(b.json.status, 'accepted');
    assert.ok(b.json.seq < a.json.seq, `the new stream numbers from 1 (b at ${b.json.seq}, a was ${a.json.seq})`);
    const back = await apiVote(gw, 'default', { voter, option: 'a' });
    assert.equal(back.json.status, 'accepted', 'the stream\'s latest for this voter is b: a is a change');
    const same = await apiVote(gw, 'default', { voter, option: 'a' });
    assert.equal(same.json.status, 'unchanged', 'and Redis works for the new stream');
  } finally {
    await stream.close();
  }
});
