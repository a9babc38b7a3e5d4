// Issue 2's end-to-end checks through the real gateway, processor and
// reporter: the original app's own test, the original seed's load, and a
// voter who changes their mind. Each check that needs a clean tally gets
// its own stack.

import { describe, test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, http, pool, waitFor, dumpLogs } from './harness.mjs';
import { openStream } from './gateway-helpers.mjs';

const form = (vote) => new URLSearchParams({ vote });
const tallyOf = async (rep) => (await http('GET', `${rep.url}/api/v1/polls/default/tally`)).json;
const votesOf = (t) => Object.fromEntries(t.options.map((o) => [o.id, o.votes]));
/** The text of the results page's total line and each option's share, as rendered by the server. */
async function pageReads(rep) {
  const body = (await http('GET', `${rep.url}/`)).body;
  const total = body.match(/<p id="result"[^>]*>([^<]*)<\/p>/)?.[1];
  const shares = [...body.matchAll(/<span class="label">([^<]*)<\/span> <span class="stat">([^<]*)<\/span>/g)]
    .map((m) => `${m[1]} ${m[2]}`);
  return { total, shares };
}

async function startPipeline() {
  const stack = await startStack();
  const proc = await stack.startProcessor();
  const rep = await stack.startReporter();
  const gw = await stack.startGateway();
  return { stack, proc, rep, gw };
}

describe("the original app's check: POST vote=b, then the result reads 1 vote", () => {
  let p;
  before(async () => { p = await startPipeline(); });
  after(() => p?.stack.stop());
  afterEach((t) => { if (!t.passed) dumpLogs(p?.stack); });

  test('vote=b shows as "1 vote" within 10 s', async () => {
    assert.equal((await pageReads(p.rep)).total, 'No votes yet');
    const r = await http('POST', `${p.gw.url}/`, { body: form('b') });
    assert.equal(r.status, 200);
    const t0 = Date.now();
    const t = await waitFor(async () => { const x = await tallyOf(p.rep); return x.total === 1 && x; },
      { what: 'the reporter to count 1 vote', timeoutMs: 10000 });
    console.log(`# POST -> reporter total 1 in ${Date.now() - t0} ms`);
    assert.deepEqual(votesOf(t), { a: 0, b: 1 });
    assert.deepEqual(await pageReads(p.rep), { total: '1 vote', shares: ['Cats 0.0%', 'Dogs 100.0%'] });
  });

  test('a vote for an unknown option gets a 4xx and changes nothing', async () => {
    // An answer comes only after the PubAck, so a vote wrongly published
    // would be in the stream by the time the 4xx arrives.
    const stream = await openStream(p.stack);
    try {
      const before = await stream.count();
      const r = await http('POST', `${p.gw.url}/`, { body: form('c') });
      assert.ok(r.status >= 400 && r.status < 500, `status ${r.status}`);
      assert.equal(await stream.count(), before, 'nothing published');
    } finally {
      await stream.close();
    }
    assert.equal((await tallyOf(p.rep)).total, 1);
  });
});

describe("the original seed: 3,000 new voters, 50 at a time", () => {
  let p;
  before(async () => { p = await startPipeline(); });
  after(() => p?.stack.stop());
  afterEach((t) => { if (!t.passed) dumpLogs(p?.stack); });

  test('a=2000, b=1000, total 3000; the page reads 67% / 33%', async () => {
    // Like the seed's three `ab -n 1000 -c 50` runs: a, then b, then a. No
    // cookie is sent, so every POST is a new voter.
    const t0 = Date.now();
    const statuses = await pool(3000, 50, async (i) => {
      const r = await http('POST', `${p.gw.url}/`, { body: form(i < 1000 || i >= 2000 ? 'a' : 'b'), timeoutMs: 30000 });
      return r.status;
    });
    const posted = Date.now() - t0;
    assert.deepEqual([...new Set(statuses)], [200]);
    const t = await waitFor(async () => { const x = await tallyOf(p.rep); return x.total === 3000 && x; },
      { what: 'total 3000', timeoutMs: 30000 });
    console.log(`# 3000 form POSTs in ${posted} ms; tally complete ${Date.now() - t0} ms after the first`);
    assert.deepEqual(votesOf(t), { a: 2000, b: 1000 });
    // The original: a = round(2000 / 3000 * 100) = 67, b = 100 - a, shown
    // with one decimal ("67.0%"), and "3000 votes".
    assert.deepEqual(await pageReads(p.rep), { total: '3000 votes', shares: ['Cats 67.0%', 'Dogs 33.0%'] });
    assert.deepEqual(await p.stack.psql("SELECT option, votes FROM tallies WHERE poll = 'default' ORDER BY option"),
      [['a', '2000'], ['b', '1000']]);
  });
});

describe('a voter who votes a, then b, then a', () => {
  let p;
  before(async () => { p = await startPipeline(); });
  after(() => p?.stack.stop());
  afterEach((t) => { if (!t.passed) dumpLogs(p?.stack); });

  test('is counted once, for a', async () => {
    const first = await http('POST', `${p.gw.url}/`, { body: form('a') });
    assert.equal(first.status, 200);
    const cookie = first.setCookie;
    assert.ok(cookie.some((c) => c.startsWith('voter_id=')), 'the gateway sets voter_id');
    const voter = cookie.find((c) => c.startsWith('voter_id=')).split(';')[0].slice('voter_id='.length);
    for (const v of ['b', 'a']) {
      const r = await http('POST', `${p.gw.url}/`, { body: form(v), cookie });
      assert.equal(r.status, 200);
    }
    // On a fresh stream the three casts are sequences 1, 2 and 3: wait until
    // the processor has stored the last one (so b was not simply still in
    // flight), then check the row and the reporter.
    const rows = await waitFor(async () => {
      const x = await p.stack.psql(`SELECT option, seq FROM votes WHERE poll = 'default' AND voter = '${voter.replace(/'/g, "''")}'`);
      return x.length === 1 && Number(x[0][1]) >= 3 && x;
    }, { what: "the voter's third cast in the votes table", timeoutMs: 10000 });
    assert.deepEqual(rows, [['a', '3']]);
    const t = await waitFor(async () => { const x = await tallyOf(p.rep); return votesOf(x).a === 1 && x; },
      { what: 'a=1 on the reporter', timeoutMs: 10000 });
    assert.deepEqual(votesOf(t), { a: 1, b: 0 });
    assert.equal(t.total, 1);
    assert.equal((await pageReads(p.rep)).total, '1 vote');
  });
});
