// Interop with independent clients: the VOTES stream is readable and
// writable by any NATS client, with nothing but proto/tally/v1/vote.proto.
//  (a) votes posted to the gateway (JSON, form, protobuf APIs) are read back
//      from the stream by @nats-io/jetstream and decoded by protobufjs: each
//      message is exactly what was posted, on votes.<poll>, with a unique
//      Nats-Msg-Id equal to its cast_id and the documented headers;
//  (b) votes published by that client with their own Nats-Msg-Id are
//      counted by the processor, and a repeated id is counted once.
import { test, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import path from 'node:path';
import { startStack, http, waitFor, dumpLogs, repoRoot } from './harness.mjs';

const require = createRequire(new URL('../js/package.json', import.meta.url));
const protobuf = require('protobufjs');
const { connect, headers } = require('@nats-io/transport-node');
const { jetstream, jetstreamManager } = require('@nats-io/jetstream');

const Vote = protobuf.loadSync(path.join(repoRoot, 'proto', 'tally', 'v1', 'vote.proto')).lookupType('tally.v1.Vote');
const Source = { SOURCE_FORM: 1, SOURCE_JSON: 2, SOURCE_PROTOBUF: 3, SOURCE_NATS: 4 };
const T = { timeout: 180000 };

let stack;
let nc;
after(async () => { await nc?.close(); await stack?.stop(); });
afterEach((t) => { if (!t.passed) dumpLogs(stack); });

/**
 * Every message now in VOTES (count: the stream's message count), in
 * sequence order, via an ordered consumer.
 */
async function readStream(js, count) {
  const c = await js.consumers.get('VOTES');
  const out = [];
  if (count === 0) return out;
  const it = await c.fetch({ max_messages: count, expires: 5000 });
  for await (const m of it) {
    out.push({ seq: m.seq, subject: m.subject, headers: m.headers, data: m.data });
    if (out.length === count) break;
  }
  return out;
}

test('(a) votes posted through the gateway read back from VOTES, decoded with vote.proto', T, async () => {
  stack = await startStack();
  const gw = await stack.startGateway();
  nc = await connect({ servers: stack.natsUrl });
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  // The gateway makes VOTES; what it holds before the posts is the base.
  const before = await waitFor(async () => (await jsm.streams.info('VOTES')).state,
    { timeoutMs: 20000, intervalMs: 100, what: 'the gateway to create stream VOTES' });

  // Distinct voters per API, so every post is a new cast (none "unchanged").
  const posted = [];
  for (let i = 0; i < 10; i++) {
    const voter = `json-${i}`;
    const option = i % 3 === 0 ? 'b' : 'a';
    const r = await http('POST', `${gw.url}/api/v1/polls/default/votes`, { body: { voter, option } });
    assert.ok(r.status >= 200 && r.status < 300, `json ${i}: ${r.status} ${r.body}`);
    posted.push({ api: 'json', voter, option, source: Source.SOURCE_JSON, answer: r.json });
  }
  for (let i = 0; i < 10; i++) {
    const voter = `form${i}`;
    const option = i % 2 ? 'b' : 'a';
    const r = await http('POST', `${gw.url}/`, { body: new URLSearchParams({ vote: option }), cookie: { voter_id: voter } });
    assert.equal(r.status, 200, `form ${i}: ${r.status}`);
    posted.push({ api: 'form', voter, option, source: Source.SOURCE_FORM });
  }
  for (let i = 0; i < 10; i++) {
    const voter = `pb-${i}`;
    const option = i % 4 ? 'a' : 'b';
    const body = Buffer.from(Vote.encode(Vote.create({ poll: 'default', voter, option })).finish());
    const r = await http('POST', `${gw.url}/api/v1/polls/default/votes`, {
      headers: { 'content-type': 'application/x-protobuf' }, body,
    });
    assert.ok(r.status >= 200 && r.status < 300, `protobuf ${i}: ${r.status} ${r.body}`);
    posted.push({ api: 'protobuf', voter, option, source: Source.SOURCE_PROTOBUF, answer: r.json });
  }

  // Answers come after the PubAck: the stream already holds every vote, and
  // exactly one message per vote (an extra publish would show here).
  const now = (await jsm.streams.info('VOTES')).state;
  assert.equal(now.messages - before.messages, posted.length, 'one message per accepted vote, no more');
  assert.equal(now.last_seq - before.last_seq, posted.length, 'one stream sequence per accepted vote');
  const all = await readStream(js, now.messages);
  assert.equal(all.length, now.messages, 'the ordered consumer reads the whole stream');
  const msgs = all.filter((m) => m.seq > before.last_seq);
  assert.equal(msgs.length, posted.length, 'one message per accepted vote');
  const ids = new Set();
  const byVoter = new Map();
  for (const m of msgs) {
    const v = Vote.toObject(Vote.decode(m.data), { longs: Number, enums: Number, defaults: true });
    assert.equal(m.subject, `votes.${v.poll}`);
    const id = m.headers.get('Nats-Msg-Id');
    assert.ok(id, `seq ${m.seq} has a Nats-Msg-Id`);
    assert.ok(!ids.has(id), `Nats-Msg-Id ${id} is unique`);
    ids.add(id);
    assert.equal(v.castId, id, 'cast_id equals Nats-Msg-Id');
    assert.equal(m.headers.get('Content-Type'), 'application/x-protobuf');
    assert.equal(m.headers.get('Tally-Poll'), v.poll);
    assert.equal(m.headers.get('Tally-Option'), v.option);
    assert.ok(Math.abs(v.castUnixMs - Date.now()) < 10 * 60 * 1000, `cast_unix_ms ${v.castUnixMs} is now`);
    byVoter.set(v.voter, { ...v, seq: m.seq, id });
  }
  for (const p of posted) {
    const v = byVoter.get(p.voter);
    assert.ok(v, `${p.api} vote of ${p.voter} is in the stream`);
    assert.equal(v.poll, 'default');
    assert.equal(v.option, p.option, `${p.voter}'s option`);
    assert.equal(v.source, p.source, `${p.voter}'s source`);
    if (p.api !== 'form') {
      // The JSON and protobuf APIs answer JSON naming the cast (docs/API.md).
      assert.ok(p.answer, `${p.api} vote of ${p.voter} has a JSON answer`);
      assert.equal(p.answer.status, 'accepted', `${p.voter}: ${JSON.stringify(p.answer)}`);
      assert.equal(p.answer.duplicate, false, `${p.voter}: ${JSON.stringify(p.answer)}`);
      assert.equal(typeof p.answer.cast_id, 'string', `${p.voter}'s answer has cast_id: ${JSON.stringify(p.answer)}`);
      assert.equal(p.answer.cast_id, v.id, 'the answer names the cast id');
      assert.equal(typeof p.answer.seq, 'number', `${p.voter}'s answer has seq: ${JSON.stringify(p.answer)}`);
      assert.equal(p.answer.seq, v.seq, 'the answer names the stream sequence');
    }
  }

  // The C codec's payload also decodes with tallyctl decode, field for field.
  const m = msgs[0];
  const d = await stack.tallyctl(['decode'], { input: Buffer.from(m.data) });
  assert.equal(d.code, 0, d.stderr);
  const j = JSON.parse(d.stdout);
  const v = Vote.toObject(Vote.decode(m.data), { longs: Number, enums: String });
  assert.deepEqual([j.poll, j.voter, j.option, j.cast_id, j.cast_unix_ms, j.source],
    [v.poll, v.voter, v.option, v.castId, v.castUnixMs, v.source]);
  assert.equal(j.cast_at, new Date(v.castUnixMs).toISOString());
});

test('(b) votes published by a JS client are counted by the processor; a repeated Nats-Msg-Id once', T, async () => {
  assert.ok(stack && nc, 'runs after (a) on the same stack');
  await stack.startProcessor();
  const js = jetstream(nc);
  const poll = 'nats-interop';
  const publish = async (id, voter, option) => {
    const h = headers();
    h.set('Nats-Msg-Id', id);
    h.set('Content-Type', 'application/x-protobuf');
    h.set('Tally-Poll', poll);
    h.set('Tally-Option', option);
    const data = Vote.encode(Vote.create({
      poll, voter, option, castId: id, castUnixMs: Date.now(), source: Source.SOURCE_NATS,
    })).finish();
    return js.publish(`votes.${poll}`, data, { headers: h });
  };
  // 6 voters: 4 for x, 2 for y.
  for (let i = 0; i < 6; i++) {
    const ack = await publish(`ext-${i}`, `nv${i}`, i < 4 ? 'x' : 'y');
    assert.equal(ack.duplicate, false);
  }
  // The same ids again, even with a different option: JetStream drops them.
  for (let i = 0; i < 3; i++) {
    const ack = await publish(`ext-${i}`, `nv${i}`, 'y');
    assert.equal(ack.duplicate, true, `repeat of ext-${i} is a duplicate`);
  }
  // A real change under a new id: nv5 moves from y to x.
  assert.equal((await publish('ext-change-5', 'nv5', 'x')).duplicate, false);

  const want = { x: 5, y: 1 };
  const rows = await waitFor(async () => {
    const r = await stack.psql(`SELECT option, votes FROM tallies WHERE poll = '${poll}' ORDER BY option`);
    const got = Object.fromEntries(r.map(([o, n]) => [o, Number(n)]));
    return got.x === want.x && (got.y ?? 0) === want.y ? got : false;
  }, { timeoutMs: 30000, intervalMs: 200, what: `tallies of ${poll} to be x=5 y=1` });
  assert.deepEqual(rows, want);
  const votes = await stack.psql(`SELECT voter, option FROM votes WHERE poll = '${poll}' ORDER BY voter`);
  assert.deepEqual(votes, [['nv0', 'x'], ['nv1', 'x'], ['nv2', 'x'], ['nv3', 'x'], ['nv4', 'y'], ['nv5', 'x']]);

  // The gateway's votes of (a) are counted too: the processor reads the
  // whole stream, whoever wrote it.
  await waitFor(async () => {
    const r = await stack.psql("SELECT sum(votes) FROM tallies WHERE poll = 'default'");
    return Number(r[0][0]) === 30;
  }, { timeoutMs: 30000, intervalMs: 200, what: 'the 30 gateway votes of (a) in tallies' });

  // tallyctl stream agrees: the processor has consumed everything.
  const jsm = await jetstreamManager(nc);
  const si = await jsm.streams.info('VOTES');
  await waitFor(async () => {
    const r = await stack.tallyctl(['stream', '--json']);
    if (r.code !== 0) return false;
    const s = JSON.parse(r.stdout);
    const p = s.consumers.find((c) => c.name === 'processor');
    return s.stream.messages === si.state.messages && p && p.pending === 0 && p.ack_pending === 0;
  }, { timeoutMs: 30000, intervalMs: 300, what: 'tallyctl stream to show the processor caught up' });
});

test('seed against the real gateway: the default run is accepted and its expected tally is what the processor stored', T, async () => {
  assert.ok(stack, 'runs after (a) and (b)');
  const gw = stack.services.find((s) => s.kind === 'gateway' && s.alive);
  // (b) waited until the 30 votes of (a) were counted: that is the base.
  const before = { a: 0, b: 0 };
  for (const [o, n] of await stack.psql("SELECT option, votes FROM tallies WHERE poll = 'default'")) before[o] = Number(n);
  assert.equal(before.a + before.b, 30);
  const r = await stack.tallyctl(['seed', '--url', `${gw.url}/`, '--json', '--quiet'], { timeoutMs: 120000 });
  assert.equal(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  assert.equal(s.sent, 3000);
  assert.equal(s.accepted, 3000);
  assert.equal(s.errors, 0);
  assert.deepEqual(s.expected, { default: { a: 2000, b: 1000 } });
  await waitFor(async () => {
    const rows = await stack.psql("SELECT option, votes FROM tallies WHERE poll = 'default' ORDER BY option");
    const got = Object.fromEntries(rows.map(([o, n]) => [o, Number(n)]));
    return got.a === 2000 + before.a && got.b === 1000 + before.b;
  }, { timeoutMs: 60000, intervalMs: 250, what: 'tallies = seed expected + the votes of (a)' });
});
