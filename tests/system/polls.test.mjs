// Polls configured in one place that the gateway and the reporter share:
// a POLLS_FILE with several polls (one with three options) is listed the
// same by both, a vote in a poll other than the first is counted in that
// poll only; without a file, the original app's single poll comes from
// OPTION_A/OPTION_B; a poll with one option is refused at start.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startStack, http, waitFor, dumpLogs } from './harness.mjs';

const T = { timeout: 120000 };
const POLLS = [
  { id: 'lunch', title: 'Lunch?', options: [{ id: 'soup', label: 'Soup' }, { id: 'salad', label: 'Salad' }] },
  { id: 'colour', title: 'Best colour', options: [
    { id: 'red', label: 'Red' }, { id: 'green', label: 'Green' }, { id: 'blue', label: 'Blue' }] },
];
let stack;

before(async () => { stack = await startStack(); });
after(async () => { await stack?.stop(); });
afterEach((t) => { if (!t.passed) dumpLogs(stack); });

function pollsFile(name, polls) {
  const file = path.join(stack.dir, name);
  fs.writeFileSync(file, JSON.stringify({ polls }));
  return file;
}

test('one POLLS_FILE: gateway and reporter list the same polls, and a vote counts in its own poll', T, async () => {
  const env = { POLLS_FILE: pollsFile('polls.json', POLLS) };
  const gw = await stack.startGateway(env);
  const rep = await stack.startReporter(env);
  const proc = await stack.startProcessor();
  try {
    const fromGateway = (await http('GET', `${gw.url}/api/v1/polls`)).json;
    const fromReporter = (await http('GET', `${rep.url}/api/v1/polls`)).json;
    assert.deepEqual(fromGateway, { polls: POLLS });
    assert.deepEqual(fromReporter, fromGateway, 'the reporter reads the same file');
    await waitFor(async () => (await http('GET', `${gw.url}/readyz`)).status === 200, { timeoutMs: 20000, what: 'gateway ready' });
    const v = await http('POST', `${gw.url}/api/v1/polls/colour/votes`, {
      headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ voter: 'pat', option: 'blue' }) });
    assert.equal(v.status, 200, v.body);
    assert.equal(v.json.poll, 'colour');
    // An option of another poll is not one of this poll's.
    const wrong = await http('POST', `${gw.url}/api/v1/polls/lunch/votes`, {
      headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ voter: 'pat', option: 'blue' }) });
    assert.equal(wrong.status, 422);
    assert.equal(wrong.json.error, 'unknown_option');
    const tally = await waitFor(async () => {
      const t = (await http('GET', `${rep.url}/api/v1/polls/colour/tally`)).json;
      return t?.total === 1 ? t : null;
    }, { timeoutMs: 15000, what: 'the vote in colour\'s tally' });
    assert.deepEqual(tally.options.map((o) => [o.id, o.votes]), [['red', 0], ['green', 0], ['blue', 1]]);
    assert.equal((await http('GET', `${rep.url}/api/v1/polls/lunch/tally`)).json.total, 0, 'lunch untouched');
  } finally {
    for (const s of [gw, rep, proc]) assert.equal(await s.stop('SIGTERM'), 0);
  }
});

test('no POLLS_FILE: one poll, "default", from OPTION_A and OPTION_B, as the original app', T, async () => {
  const env = { OPTION_A: 'Tea', OPTION_B: 'Coffee' };
  const gw = await stack.startGateway(env);
  const rep = await stack.startReporter(env);
  try {
    for (const svc of [gw, rep]) {
      const { polls } = (await http('GET', `${svc.url}/api/v1/polls`)).json;
      assert.equal(polls.length, 1);
      assert.equal(polls[0].id, 'default');
      assert.deepEqual(polls[0].options, [{ id: 'a', label: 'Tea' }, { id: 'b', label: 'Coffee' }]);
    }
  } finally {
    for (const s of [gw, rep]) assert.equal(await s.stop('SIGTERM'), 0);
  }
});

test('a poll with one option is refused at start, with the reason', T, async () => {
  const env = { POLLS_FILE: pollsFile('bad.json', [{ id: 'solo', title: 'Solo', options: [{ id: 'only', label: 'Only' }] }]) };
  for (const kind of ['gateway', 'reporter']) {
    const svc = await stack.startService(kind, env, { waitReady: false });
    const code = await Promise.race([svc.exited, new Promise((r) => setTimeout(() => r('still running'), 10000))]);
    assert.equal(code, 78, `${kind} exits with the configuration status`);
    assert.match(svc.logText(), /solo/, `${kind} says which poll`);
  }
});
