// tallyctl init and tallyctl replay: the rebuild from the stream equals the
// live database, from the start (--reset), from a sequence and from a time.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, dumpLogs, waitFor } from './harness.mjs';
import * as S from './processor_support.mjs';

let stack;
let nats;

before(async () => {
  stack = await startStack();
});

after(async () => {
  if (nats) await nats.close();
  if (stack) await stack.stop();
});

async function dump() {
  const votes = await stack.psql('SELECT poll, voter, option, seq, cast_at FROM votes ORDER BY 1, 2');
  const tallies = await stack.psql('SELECT poll, option, votes FROM tallies WHERE votes <> 0 ORDER BY 1, 2');
  return { votes, tallies };
}

function castsFor(round, n) {
  const votes = [];
  for (let i = 0; i < n; i++) {
    votes.push({ poll: `r${i % 3}`, voter: `v${(i * 7) % 400}`, option: ['a', 'b', 'c'][(i + round) % 3] });
  }
  return votes;
}

test('tallyctl init is idempotent and creates the stream and schema', async () => {
  let version;
  for (let i = 0; i < 2; i++) {
    const r = await stack.tallyctl(['init']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /stream VOTES: ok/);
    version = Number(/schema: version (\d+) \((\d+) migrations? applied now\)/.exec(r.stdout)?.[1]);
    assert.match(r.stdout, i === 0 ? /\(\d+ migrations applied now\)/ : /\(0 migrations applied now\)/);
  }
  const v = await stack.psql('SELECT version FROM schema_migrations ORDER BY version');
  assert.deepEqual(v.map(([x]) => Number(x)), Array.from({ length: version }, (_, i) => i + 1));
  const c = await S.natsClient(stack.natsUrl);
  try {
    const info = await c.jsm.streams.info('VOTES');
    assert.deepEqual(info.config.subjects, ['votes.>']);
  } finally {
    await c.close();
  }
  const help = await stack.tallyctl(['init', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /DATABASE_URL/);
});

test('replay --reset rebuilds a database equal to the live one; --from-seq and --since work', async () => {
  const p = await stack.startProcessor();
  nats = await S.natsClient(stack.natsUrl);
  try {
    await S.publishVotes(nats.js, castsFor(0, 1500));
    await S.publishVotes(nats.js, [{ raw: Buffer.from('not a vote'), subject: 'votes.r0' }]);
    // Two seconds apart, so that --since (whole seconds) can pick round 1.
    await new Promise((r) => setTimeout(r, 2100));
    const round1 = await S.publishVotes(nats.js, castsFor(1, 1500));
    const round1Seq = Math.min(...round1.map((a) => a.seq));
    await waitFor(() => S.consumerDrained(nats.jsm), { timeoutMs: 30000, what: 'drain' });
    const live = await dump();
    assert.ok(live.votes.length > 0);

    // Full rebuild from an emptied database: a stray row and a wrong
    // tally first, which only the reset's emptying removes.
    await stack.psql(`INSERT INTO votes (poll, voter, option, seq) VALUES ('r0', 'stray', 'a', 999999);
      UPDATE tallies SET votes = votes + 5 WHERE poll = 'r1'`);
    assert.notDeepEqual(await dump(), live);
    const r = await stack.tallyctl(['replay', '--reset']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /3001 messages/);
    assert.match(r.stdout, /1 poison skipped/);
    assert.match(r.stderr, /votes and tallies emptied/);
    assert.deepEqual(await dump(), live);

    // A replay over the live database changes nothing (seq rule).
    const again = await stack.tallyctl(['replay', '--quiet']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, / 0 rows changed/);
    assert.deepEqual(await dump(), live);

    // Simulate restoring an old backup: lose the newest half, then replay
    // from a sequence in the middle: equal again.
    const mid = 1600;
    await stack.psql(`BEGIN; DELETE FROM votes WHERE seq >= ${mid};
      TRUNCATE tallies; INSERT INTO tallies SELECT poll, option, count(*) FROM votes GROUP BY 1, 2; COMMIT`);
    assert.notDeepEqual(await dump(), live);
    const fromSeq = await stack.tallyctl(['replay', '--from-seq', String(mid)]);
    assert.equal(fromSeq.code, 0, fromSeq.stderr);
    assert.match(fromSeq.stdout, new RegExp(`${3001 - mid + 1} messages`));
    assert.deepEqual(await dump(), live);

    // --since a time: a backup taken between the two rounds, then a replay
    // from the time of round 1's first cast (whole seconds, rounded down):
    // equal again, and only round 1 was read.
    const m = await nats.jsm.streams.getMessage('VOTES', { seq: round1Seq });
    const iso = m.time.toISOString().replace(/\.\d+Z$/, 'Z');
    await stack.psql(`BEGIN; DELETE FROM votes WHERE seq >= ${round1Seq};
      TRUNCATE tallies; INSERT INTO tallies SELECT poll, option, count(*) FROM votes GROUP BY 1, 2; COMMIT`);
    assert.notDeepEqual(await dump(), live);
    const sinceT = await stack.tallyctl(['replay', '--since', iso]);
    assert.equal(sinceT.code, 0, sinceT.stderr);
    assert.match(sinceT.stdout, /^replay: 1500 messages up to seq 3001,/m);
    assert.deepEqual(await dump(), live);

    // --since an age covers everything published in the last hour.
    await stack.psql('TRUNCATE votes, tallies');
    const since = await stack.tallyctl(['replay', '--since', '1h']);
    assert.equal(since.code, 0, since.stderr);
    assert.match(since.stdout, /3001 messages/);
    assert.deepEqual(await dump(), live);
    // --since a time after the last cast, or a sequence after the last one,
    // replays nothing and says so at once (it used to wait for messages
    // that could never come, then fail).
    for (const args of [['--since', '2099-01-01T00:00:00Z'], ['--from-seq', '3002']]) {
      const none = await stack.tallyctl(['replay', ...args]);
      assert.equal(none.code, 0, none.stderr);
      assert.match(none.stdout, /nothing to replay/);
    }
    assert.deepEqual(await dump(), live);
    // Every replay deleted its consumer.
    const names = [];
    for await (const c of nats.jsm.consumers.list('VOTES')) names.push(c.name);
    assert.deepEqual(names, ['processor']);

    // Usage errors.
    assert.equal((await stack.tallyctl(['replay', '--reset', '--from-seq', '5'])).code, 2);
    assert.equal((await stack.tallyctl(['replay', '--since', 'yesterday'])).code, 2);
    assert.equal((await stack.tallyctl(['replay', '--from-seq', '0'])).code, 2);
    // Out of range or signed: refused, never read as 2^64-1 ("nothing to
    // replay", exit 0); impossible dates and ages past 100 years too.
    for (const bad of [['--from-seq', '99999999999999999999'], ['--from-seq', ' -1'], ['--from-seq', '9223372036854775808'],
      ['--since', '200000d'], ['--since', '2026-02-31T00:00:00Z'], ['--since', '2023-02-29T00:00:00Z'],
      ['--since', '2026-11-29T-1:00:00Z'], ['--since', '-5m']]) {
      const r = await stack.tallyctl(['replay', ...bad]);
      assert.equal(r.code, 2, `${bad.join(' ')}: ${r.stdout} ${r.stderr}`);
      assert.match(r.stderr, /is not a sequence|is neither/);
    }
  } catch (e) { dumpLogs(stack); throw e; } finally {
    await p.stop('SIGTERM');
  }
});
