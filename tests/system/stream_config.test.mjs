// Who owns stream VOTES's settings: the services (gateway, processor,
// tallyctl init) make sure of what tally relies on (subject votes.>, a
// duplicate window of at least 2 minutes, acks) and leave the rest (limits,
// discard policy, description, replicas) as the operator set them, without
// even an update request on a normal start. A retention or storage that
// cannot be changed in place is an error line, not a retry loop.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startStack, http, waitFor, dumpLogs } from './harness.mjs';
import * as S from './processor_support.mjs';

const T = { timeout: 120000 };
const NS = 1e9;
const DAY = 24 * 3600 * NS;
let stack;
let nats;
let apiCalls;  // every JetStream stream API request ($JS.API.STREAM.<verb>.<stream>), as [verb, stream]

before(async () => {
  stack = await startStack();
  nats = await S.natsClient(stack.natsUrl);
  // The services' own API requests pass through the server like any
  // message: a plain subscriber sees each one. A callback (not an
  // iterator) records it before a later flush() resolves.
  apiCalls = [];
  nats.nc.subscribe('$JS.API.STREAM.*.*', {
    callback: (err, m) => {
      if (!err) apiCalls.push(m.subject.split('.').slice(3));
    },
  });
  await nats.nc.flush();
});
after(async () => {
  await nats?.close();
  await stack?.stop();
});
afterEach((t) => { if (!t.passed) dumpLogs(stack); });

/** The API requests of verb on stream seen since mark (a length of apiCalls). */
async function callsSince(mark, verb, stream = 'VOTES') {
  await nats.nc.flush();
  return apiCalls.slice(mark).filter(([v, n]) => v === verb && n === stream).length;
}

/** Marks apiCalls after the test's own requests have come through. */
async function mark() {
  await nats.nc.flush();
  return apiCalls.length;
}

/** An operator's edit, as `nats stream edit` does it: the current config with cfg over it. */
async function edit(cfg, stream = 'VOTES') {
  return (await nats.jsm.streams.update(stream, cfg)).config;
}

async function config(stream = 'VOTES') {
  return (await nats.jsm.streams.info(stream)).config;
}

async function readyGateway() {
  const gw = await stack.startGateway();
  await waitFor(async () => (await http('GET', `${gw.url}/readyz`)).status === 200,
    { timeoutMs: 20000, what: 'gateway /readyz' });
  return gw;
}

async function readyProcessor() {
  const p = await stack.startProcessor();
  await waitFor(async () => (await http('GET', `${p.url}/readyz`)).status === 200,
    { timeoutMs: 20000, what: 'processor /readyz' });
  return p;
}

function count(text, re) {
  return (text.match(new RegExp(re, 'g')) || []).length;
}

// An operator's limits as docs/STREAM.md suggests them, and more.
const LIMITS = {
  max_age: 90 * DAY, max_msgs: 5000000, max_bytes: 8 * 1024 ** 3,
  max_msgs_per_subject: 2000000, discard: 'new', description: 'votes; limits by ops, ticket 42',
};

function assertLimits(c) {
  for (const [k, v] of Object.entries(LIMITS)) assert.equal(c[k], v, `${k} survived`);
}

function assertTallyOwns(c) {
  assert.ok(c.subjects.includes('votes.>'), `subjects ${c.subjects}`);
  assert.ok(c.duplicate_window >= 120 * NS, `duplicate window ${c.duplicate_window}`);
  assert.equal(c.storage, 'file');
  assert.equal(c.retention, 'limits');
  assert.ok(!c.no_ack);
}

test('the operator\'s limits survive restarts of the gateway, the processor and tallyctl init, which send no update', T, async () => {
  let m = await mark();
  let gw = await readyGateway();
  let c = await config();
  assert.deepEqual(c.subjects, ['votes.>']);
  assert.equal(c.duplicate_window, 120 * NS);
  assert.equal(c.max_age, 0);
  assertTallyOwns(c);
  assert.equal(await callsSince(m, 'CREATE'), 1, 'the gateway created VOTES');

  c = await edit(LIMITS);
  assertLimits(c);
  m = await mark();
  await gw.stop();
  gw = await readyGateway();
  const proc = await readyProcessor();
  const init = await stack.tallyctl(['init']);
  assert.equal(init.code, 0, init.stderr);

  c = await config();
  assertLimits(c);
  assertTallyOwns(c);
  assert.deepEqual(c.subjects, ['votes.>']);
  assert.equal(await callsSince(m, 'UPDATE'), 0, 'a normal start updates nothing');
  assert.equal(await callsSince(m, 'CREATE'), 0);
  for (const s of [gw, proc]) assert.doesNotMatch(s.logText(), /putting back|cannot be changed/);
  assert.doesNotMatch(init.stderr, /putting back|cannot be changed/);
  await proc.stop();
  await gw.stop();
});

test('a missing votes.>, a short duplicate window or no_ack are put back, the rest stays the operator\'s', T, async () => {
  // votes.default lies inside votes.> and must make way for it (the server
  // refuses overlapping subjects); ops.audit is the operator's own.
  await edit({ ...LIMITS, subjects: ['votes.default', 'ops.audit'], duplicate_window: 30 * NS, no_ack: true });
  let m = await mark();
  const gw = await readyGateway();
  let c = await config();
  assertLimits(c);
  assertTallyOwns(c);
  assert.deepEqual([...c.subjects].sort(), ['ops.audit', 'votes.>']);
  assert.equal(c.duplicate_window, 120 * NS);
  assert.equal(await callsSince(m, 'UPDATE'), 1);
  assert.match(gw.logText(), /putting back what tally relies on: subject votes\.> was missing; duplicate window 30000 ms < 120000 ms; acks were off/);

  // The stream works: a vote on a new poll subject is acked.
  const r = await http('POST', `${gw.url}/api/v1/polls/default/votes`, { body: { voter: 'v-stream-config', option: 'a' } });
  assert.equal(r.status, 200, r.body);

  // A longer window only widens the dedup: the operator may keep it.
  await edit({ duplicate_window: 600 * NS });
  m = await mark();
  const proc = await readyProcessor();
  c = await config();
  assert.equal(c.duplicate_window, 600 * NS);
  assertLimits(c);
  assert.equal(await callsSince(m, 'UPDATE'), 0);

  // Messages kept less than 2 minutes allow no longer window: the
  // service accepts the shorter one instead of failing on it forever.
  await edit({ max_age: 60 * NS, duplicate_window: 60 * NS });
  m = await mark();
  const init = await stack.tallyctl(['init']);
  assert.equal(init.code, 0, init.stderr);
  c = await config();
  assert.equal(c.max_age, 60 * NS);
  assert.equal(c.duplicate_window, 60 * NS);
  assert.equal(await callsSince(m, 'UPDATE'), 0);
  await edit({ max_age: LIMITS.max_age });
  await proc.stop();
  await gw.stop();
});

test('VOTES_DLQ: the processor creates it once and never overwrites the operator\'s settings', T, async () => {
  let proc = await readyProcessor();
  let c = await config('VOTES_DLQ');
  assert.deepEqual(c.subjects, ['tally.deadletter.votes']);
  assert.equal(c.max_msgs, 100000);
  await edit({ max_msgs: 500, max_age: 30 * DAY, description: 'poison; ops' }, 'VOTES_DLQ');
  const m = await mark();
  await proc.stop();
  proc = await readyProcessor();
  c = await config('VOTES_DLQ');
  assert.equal(c.max_msgs, 500);
  assert.equal(c.max_age, 30 * DAY);
  assert.equal(c.description, 'poison; ops');
  assert.equal(await callsSince(m, 'UPDATE', 'VOTES_DLQ'), 0);
  assert.equal(await callsSince(m, 'CREATE', 'VOTES_DLQ'), 0);
  await proc.stop();
});

test('memory storage or another retention cannot be changed in place: one error line, then the stream is used as it is', T, async () => {
  await nats.jsm.streams.delete('VOTES');
  await nats.jsm.streams.add({
    name: 'VOTES', subjects: ['votes.>'], storage: 'memory', retention: 'interest',
    duplicate_window: 120 * NS, max_msgs: 1000,
  });
  const m = await mark();
  const gw = await readyGateway();
  const proc = await readyProcessor();
  const r = await http('POST', `${gw.url}/api/v1/polls/default/votes`, { body: { voter: 'v-memory', option: 'b' } });
  assert.equal(r.status, 200, r.body);
  await sleep(2000);  // a retry loop would log again meanwhile
  for (const s of [gw, proc]) {
    const log = s.logText();
    assert.equal(count(log, 'cannot be changed in place'), 1, `${s.name}: one error line\n${log}`);
    assert.match(log, /stream VOTES has interest retention, not limits; memory storage, not file; that cannot be changed in place/);
  }
  const c = await config();
  assert.equal(c.storage, 'memory');
  assert.equal(c.retention, 'interest');
  assert.equal(c.max_msgs, 1000);
  assert.equal(await callsSince(m, 'UPDATE'), 0);
  await proc.stop();
  await gw.stop();
});
