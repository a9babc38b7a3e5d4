// tally-processor against real nats-server and PostgreSQL: votes stored
// once per (poll, voter) by stream sequence, tallies equal to a recount,
// NOTIFY after COMMIT, poison terminated and dead-lettered, migrations safe
// under concurrent starts, SIGTERM exits 0.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { dumpLogs, waitFor, pgBinDir } from './harness.mjs';
import * as S from './processor_support.mjs';

let stack;
let nats;

before(async () => ({ stack, nats } = await S.openStack()));

after(() => S.closeStack(stack, nats));

async function drained() {
  await waitFor(async () => { try { return await S.consumerDrained(nats.jsm); } catch { return false; } },
    { timeoutMs: 30000, what: 'consumer processor to drain' });
}

async function recountMatches() {
  const { latest } = await S.readStream(nats.js, nats.jsm);
  const rows = await S.dbVotes(stack);
  const diffVotes = S.mapDiff(latest, rows, { what: 'votes' });
  const diffTallies = S.mapDiff(S.tallyOf(latest), await S.dbTallies(stack), { what: 'tallies' });
  return { diffVotes, diffTallies, latest, rows };
}

test('two processors started at once on an empty database both come up; each migration once', async (t) => {
  try {
    const [a, b] = await Promise.all([stack.startProcessor(), stack.startProcessor()]);
    await waitFor(async () => (await fetch(`${a.url}/readyz`)).status === 200 && (await fetch(`${b.url}/readyz`)).status === 200,
      { timeoutMs: 20000, what: 'both processors ready' });
    const versions = await stack.psql('SELECT version FROM schema_migrations ORDER BY version');
    assert.ok(versions.length >= 3, 'schema_migrations has every migration');
    assert.deepEqual(versions.map(([v]) => Number(v)), versions.map((_, i) => i + 1), 'versions 1..N, none skipped');
    const tables = await stack.psql("SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'");
    assert.equal(tables[0][0], 'schema_migrations,tallies,vote_stream,votes');
    // The lock, not a failure and a retry, kept them apart: each migration
    // was applied by one of them, and neither saw a PostgreSQL error (the
    // primary key on version would also have stopped a second apply, but
    // only after a failed CREATE TABLE and a warning).
    const logs = a.logText() + b.logText();
    for (const [v] of versions) {
      const applied = logs.split('\n').filter((l) => l.includes(`applied migration ${v} `)).length;
      assert.equal(applied, 1, `migration ${v} applied by exactly one processor`);
    }
    assert.doesNotMatch(logs, / warn: postgres: /, 'no PostgreSQL error while both migrated');
    assert.equal(await a.stop('SIGTERM'), 0);
    assert.equal(await b.stop('SIGTERM'), 0);
  } catch (e) { dumpLogs(stack); throw e; }
});

test('migration 3 puts the ids of a database made with another collation in byte order, rows intact', async () => {
  // ICU's en-US, like glibc's en_US.UTF-8 (the default of most images and
  // managed services), sorts "a" before "B"; byte order the other way round.
  await stack.psql("CREATE DATABASE tally_icu LOCALE_PROVIDER icu ICU_LOCALE 'en-US' TEMPLATE template0", { db: 'postgres' });
  const db = { db: 'tally_icu' };
  const env = { DATABASE_URL: stack.databaseUrl.replace(/\/tally$/, '/tally_icu') };
  const idColumns = "SELECT string_agg(table_name || '.' || column_name || '=' || coalesce(collation_name, 'default'), ','"
    + " ORDER BY table_name, column_name) FROM information_schema.columns"
    + " WHERE table_schema = 'public' AND table_name IN ('votes', 'tallies') AND data_type = 'text'";
  const startedAndStopped = async () => {
    const p = await stack.startProcessor(env);
    await waitFor(async () => (await fetch(`${p.url}/readyz`)).status === 200, { timeoutMs: 20000, what: 'processor ready' });
    assert.equal(await p.stop('SIGTERM'), 0);
    return p.logText();
  };
  try {
    assert.deepEqual(await stack.psql("SELECT 'a' < 'B'", db), [['t']], 'the test database does not sort in byte order');
    await startedAndStopped();
    // The same database as migration 2 left it, with rows in it.
    await stack.psql('ALTER TABLE votes ALTER COLUMN poll TYPE text COLLATE "default",'
      + ' ALTER COLUMN voter TYPE text COLLATE "default", ALTER COLUMN option TYPE text COLLATE "default",'
      + ' ALTER COLUMN prev_option TYPE text COLLATE "default";'
      + ' ALTER TABLE tallies ALTER COLUMN poll TYPE text COLLATE "default", ALTER COLUMN option TYPE text COLLATE "default";'
      + ' DELETE FROM schema_migrations WHERE version = 3;'
      + " INSERT INTO votes (poll, voter, option, seq) VALUES ('p', 'a', 'x', 3), ('p', 'B', 'y', 1), ('p', '_z', 'x', 2);"
      + " INSERT INTO tallies (poll, option, votes) VALUES ('p', 'x', 2), ('p', 'y', 1);", db);
    assert.match((await stack.psql(idColumns, db))[0][0], /^tallies\.option=default,/, 'back at migration 2');

    const logs = await startedAndStopped();
    assert.match(logs, /applied migration 3 /);
    assert.equal((await stack.psql(idColumns, db))[0][0], 'tallies.option=C,tallies.poll=C,'
      + 'votes.option=C,votes.poll=C,votes.prev_option=C,votes.voter=C');
    assert.deepEqual(await stack.psql('SELECT voter, option, seq FROM votes ORDER BY voter', db),
      [['B', 'y', '1'], ['_z', 'x', '2'], ['a', 'x', '3']], 'rows kept, now in byte order');
    assert.deepEqual(await stack.psql('SELECT option, votes FROM tallies ORDER BY option', db), [['x', '2'], ['y', '1']]);
    // The primary key was rebuilt in the new order: amcheck walks it and
    // checks every key against its neighbours and against the heap.
    await stack.psql('CREATE EXTENSION IF NOT EXISTS amcheck', db);
    await stack.psql("SELECT bt_index_parent_check('votes_pkey', true), bt_index_parent_check('tallies_pkey', true)", db);
  } catch (e) { dumpLogs(stack); throw e; } finally {
    await stack.psql('DROP DATABASE IF EXISTS tally_icu WITH (FORCE)', { db: 'postgres' }).catch(() => {});
  }
});

// A PostgreSQL host that vanishes without a reset must not hold a store
// connection for the kernel's default two hours: every connection has TCP
// keepalive on, first probe after 10 s idle (lib/pgconn.c). Read from
// /proc/net/tcp: timer 02 is keepalive, its "when" in 1/100 s.
test('store connections have TCP keepalive armed at 10 s, not the kernel default', async () => {
  const p = await stack.startProcessor();
  try {
    await waitFor(async () => (await fetch(`${p.url}/readyz`)).status === 200, { timeoutMs: 20000, what: 'processor ready' });
    const ports = (await stack.psql("SELECT client_port FROM pg_stat_activity WHERE application_name LIKE 'tally-processor%'"
      + ' AND client_port IS NOT NULL')).map(([port]) => Number(port));
    assert.ok(ports.length >= 1, 'the processor holds connections');
    const sockets = fs.readFileSync('/proc/net/tcp', 'utf8').trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/));
    const portOf = (addr) => parseInt(addr.split(':')[1], 16);
    for (const port of ports) {
      const row = sockets.find((r) => portOf(r[1]) === port && portOf(r[2]) === stack.pgPort);
      assert.ok(row, `the socket of client port ${port}`);
      const [timer, when] = row[5].split(':');
      assert.equal(timer, '02', `keepalive timer on client port ${port}`);
      assert.ok(parseInt(when, 16) <= 1000, `first probe within 10 s (${parseInt(when, 16) / 100} s)`);
    }
    assert.equal(await p.stop('SIGTERM'), 0);
  } catch (e) { dumpLogs(stack); throw e; }
});

test('votes: latest cast by stream sequence wins; tallies equal a recount; NOTIFY per changed poll', async () => {
  const p = await stack.startProcessor();
  // A LISTEN session that prints every notification it receives.
  const psql = spawn(path.join(pgBinDir(), 'psql'), ['-X', '-q', '-h', '127.0.0.1', '-p', String(stack.pgPort),
    '-U', 'postgres', '-d', 'tally'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let heard = '';
  psql.stdout.on('data', (d) => { heard += d; });
  psql.stderr.on('data', (d) => { heard += d; });
  psql.stdin.write('LISTEN tally_changed;\n');
  try {
    await new Promise((r) => setTimeout(r, 300));
    // a -> b -> a for one voter, in separate batches (the stream order is the truth).
    for (const option of ['a', 'b', 'a']) {
      await S.publishVotes(nats.js, [{ poll: 'basic', voter: 'alice', option }]);
      await drained();
    }
    const votes = [];
    for (let i = 0; i < 300; i++) votes.push({ poll: 'basic', voter: `v${i}`, option: i % 3 === 0 ? 'b' : 'a' });
    // Changes inside one batch too: v0..v9 (4 of them b, 6 a) flip to c.
    for (let i = 0; i < 10; i++) votes.push({ poll: 'basic', voter: `v${i}`, option: 'c' });
    votes.push({ poll: 'other', voter: 'alice', option: 'x' });
    await S.publishVotes(nats.js, votes, { concurrency: 1 });
    await drained();

    const alice = await stack.psql("SELECT option FROM votes WHERE poll = 'basic' AND voter = 'alice'");
    assert.deepEqual(alice, [['a']]);
    const { diffVotes, diffTallies } = await recountMatches();
    assert.equal(diffVotes, undefined);
    assert.equal(diffTallies, undefined);
    // The tallies table also equals a recount of the votes table itself.
    const recount = await stack.psql(`SELECT count(*) FROM (
      SELECT poll, option, count(*) AS n FROM votes GROUP BY 1, 2) r
      FULL JOIN (SELECT * FROM tallies WHERE votes <> 0) t USING (poll, option)
      WHERE r.n IS DISTINCT FROM t.votes`);
    assert.equal(recount[0][0], '0');
    const expected = await stack.psql("SELECT option, votes FROM tallies WHERE poll = 'basic' AND votes <> 0 ORDER BY 1");
    assert.deepEqual(expected, [['a', String(200 - 6 + 1)], ['b', String(100 - 4)], ['c', '10']]);

    // psql prints notifications when it next reads a command.
    psql.stdin.write('SELECT 1;\n');
    await waitFor(() => /tally_changed.*"basic"/.test(heard) && /tally_changed.*"other"/.test(heard),
      { timeoutMs: 10000, what: 'NOTIFY tally_changed for basic and other' });
    const m = await (await fetch(`${p.url}/metrics`)).text();
    // Once per changed poll and batch, not once per vote: 314 votes, and
    // no more notifications than batches (each batch notifies a poll at
    // most once).
    const heardBasic = (heard.match(/tally_changed.*"basic"/g) || []).length;
    const heardOther = (heard.match(/tally_changed.*"other"/g) || []).length;
    const batches = S.metric(m, 'tally_processor_batches_total');
    assert.ok(heardBasic >= 1 && heardBasic <= batches, `${heardBasic} NOTIFYs for basic, ${batches} batches`);
    assert.ok(heardOther >= 1 && heardOther <= batches, `${heardOther} NOTIFYs for other, ${batches} batches`);
    assert.ok(batches < 100, `${batches} batches for 314 votes: votes are batched`);
    assert.ok(S.metric(m, 'tally_processor_votes_applied_total') >= 300, 'votes applied counted');
    assert.ok(S.metric(m, 'tally_processor_batches_total') >= 4, 'batches counted');
    assert.ok(S.metric(m, 'tally_processor_batch_size_count') >= 4, 'batch size histogram');
    assert.ok(S.metric(m, 'tally_processor_batch_duration_seconds_count') >= 4, 'batch duration histogram');
    assert.equal(S.metric(m, 'tally_processor_consumer_lag') !== undefined, true);
  } catch (e) { dumpLogs(stack); throw e; } finally {
    psql.stdin.end();
    psql.kill();
    await p.stop('SIGTERM');
  }
});

test('group commit: a lone vote is committed at once, not when a batch fills or the pull request expires', async () => {
  // Pull requests live 10 s here and a batch holds up to 1000: a processor
  // that waited for either would take 10 s for one vote. Generous bounds:
  // this checks the behaviour, not the speed.
  // FETCH_INTERVAL_MS 0: the request stays open and votes come as stored.
  const p = await stack.startProcessor({ FETCH_INTERVAL_MS: '0', FETCH_WAIT_MS: '10000', BATCH_MAX: '1000' });
  try {
    await waitFor(async () => (await fetch(`${p.url}/readyz`)).status === 200, { timeoutMs: 15000, what: 'ready' });
    const m0 = await (await fetch(`${p.url}/metrics`)).text();
    const before = S.metric(m0, 'tally_processor_batches_total');
    for (const voter of ['lone1', 'lone2', 'lone3']) {
      const t0 = Date.now();
      await S.publishVotes(nats.js, [{ poll: 'lone', voter, option: 'a' }]);
      await waitFor(async () => (await stack.psql(`SELECT count(*) FROM votes WHERE poll = 'lone' AND voter = '${voter}'`))[0][0] === '1',
        { timeoutMs: 8000, intervalMs: 20, what: `vote of ${voter} committed` });
      assert.ok(Date.now() - t0 < 5000, `${voter} committed after ${Date.now() - t0} ms, well before the request expired`);
    }
    const m = await (await fetch(`${p.url}/metrics`)).text();
    assert.equal(S.metric(m, 'tally_processor_batches_total') - before, 3, 'one batch per lone vote');
    assert.ok(S.metric(m, 'tally_processor_commit_delay_seconds_count') >= 3, 'commit delay histogram');
    const tally = await stack.psql("SELECT votes FROM tallies WHERE poll = 'lone' AND option = 'a'");
    assert.deepEqual(tally, [['3']]);
  } catch (e) { dumpLogs(stack); throw e; } finally {
    await p.stop('SIGTERM');
  }
});

test('paced pulls (FETCH_INTERVAL_MS): no_wait requests end at once; a burst and a trickle are stored exactly', async () => {
  // Requests would live 10 s if they were not no_wait: a processor that
  // waited for a request's end that never came would take 10 s per vote.
  const p = await stack.startProcessor({ FETCH_INTERVAL_MS: '50', FETCH_WAIT_MS: '10000', BATCH_MAX: '500' });
  try {
    await waitFor(async () => (await fetch(`${p.url}/readyz`)).status === 200, { timeoutMs: 15000, what: 'ready' });
    for (const voter of ['paced1', 'paced2', 'paced3']) {
      const t0 = Date.now();
      await S.publishVotes(nats.js, [{ poll: 'paced', voter, option: 'a' }]);
      await waitFor(async () => (await stack.psql(`SELECT count(*) FROM votes WHERE poll = 'paced' AND voter = '${voter}'`))[0][0] === '1',
        { timeoutMs: 8000, intervalMs: 20, what: `vote of ${voter} committed` });
      assert.ok(Date.now() - t0 < 5000, `${voter} committed after ${Date.now() - t0} ms, well before a request's expiry`);
    }
    // A burst larger than a batch and than one request, with changes of
    // mind inside it: several full requests back to back, then short ones.
    const votes = [];
    for (let i = 0; i < 3000; i++) votes.push({ poll: 'paced', voter: `w${i % 2000}`, option: i % 3 === 0 ? 'b' : 'a' });
    await S.publishVotes(nats.js, votes);
    await drained();
    const { diffVotes, diffTallies } = await recountMatches();
    assert.equal(diffVotes, undefined);
    assert.equal(diffTallies, undefined);
    const total = await stack.psql("SELECT sum(votes) FROM tallies WHERE poll = 'paced'");
    assert.equal(total[0][0], String(2000 + 3), 'one vote per voter');
    const m = await (await fetch(`${p.url}/metrics`)).text();
    assert.equal(S.metric(m, 'tally_processor_redeliveries_total'), 0, 'nothing was handed back or redelivered');
  } catch (e) { dumpLogs(stack); throw e; } finally {
    await p.stop('SIGTERM');
  }
});

test('poison: undecodable and invalid votes are terminated, counted, dead-lettered; later votes flow', async () => {
  const p = await stack.startProcessor();
  try {
    const before = (await nats.jsm.streams.info('VOTES')).state.last_seq;
    await S.publishVotes(nats.js, [
      { raw: Buffer.from([0xff, 0xff, 0xff, 0xff]), subject: 'votes.basic' },
      { poll: 'basic', voter: 'bad voter!', option: 'a' },      // invalid voter
      { poll: 'basic', voter: 'ok1', option: 'NOT_LOWER' },     // invalid option
      { poll: 'other', voter: 'ok1', option: 'a', subject: 'votes.basic' }, // poll differs from subject
      // Empty, with the header a server status message carries: stored
      // in the stream (it came with an ack subject), so it is a vote, not
      // a status, and poison like any other.
      { raw: Buffer.alloc(0), subject: 'votes.basic', headers: { Status: '404', Description: 'No Messages' } },
    ], { concurrency: 1 });
    await S.publishVotes(nats.js, [{ poll: 'basic', voter: 'after-poison', option: 'b' }]);
    await drained();
    const rows = await stack.psql("SELECT option FROM votes WHERE voter = 'after-poison'");
    assert.deepEqual(rows, [['b']]);
    const bad = await stack.psql("SELECT count(*) FROM votes WHERE voter IN ('bad voter!', 'ok1')");
    assert.equal(bad[0][0], '0');
    const m = await (await fetch(`${p.url}/metrics`)).text();
    assert.equal(S.metric(m, 'tally_processor_poison_total'), 5);
    // Terminated, not redelivered: nothing pending on the consumer.
    const ci = await nats.jsm.consumers.info('VOTES', 'processor');
    assert.equal(ci.num_ack_pending, 0);
    // Five copies on the dead-letter subject, with the error and original sequence.
    const dlq = await nats.jsm.streams.info('VOTES_DLQ');
    assert.equal(dlq.state.messages, 5);
    const first = await nats.jsm.streams.getMessage('VOTES_DLQ', { seq: dlq.state.first_seq });
    assert.equal(first.header.get('Tally-Error'), 'undecodable');
    assert.equal(Number(first.header.get('Tally-Stream-Seq')), before + 1);
    assert.deepEqual([...first.data], [0xff, 0xff, 0xff, 0xff]);
    const log = p.logText();
    assert.match(log, new RegExp(`poison message seq ${before + 1} `));
  } catch (e) { dumpLogs(stack); throw e; } finally {
    await p.stop('SIGTERM');
  }
});

test('poison: dead-letter copies that get no answer hold nothing up; each failure is counted and logged', async () => {
  const p = await stack.startProcessor();
  const silent = nats.nc.subscribe('tally.deadletter.votes');
  try {
    await waitFor(async () => (await fetch(`${p.url}/readyz`)).status === 200, { timeoutMs: 15000, what: 'ready' });
    // No stream keeps the copies now, and a subscriber that never answers
    // takes them: each copy waits out its 5 s for a PubAck that never comes
    // (a synchronous copy would hold the consumer up that long per poison).
    await nats.jsm.streams.delete('VOTES_DLQ');
    let copies = 0;
    let firstCopy;
    (async () => { for await (const m of silent) { firstCopy ??= m; copies++; } })();
    const before = (await nats.jsm.streams.info('VOTES')).state.last_seq;
    const n = 1100;   // 100 more than the copies the processor lets wait
    await S.publishVotes(nats.js, Array.from({ length: n }, () => ({ raw: Buffer.from([0xff, 0xfe]), subject: 'votes.basic' })));
    await S.publishVotes(nats.js, [{ poll: 'basic', voter: 'behind-poison', option: 'a' }]);
    await waitFor(async () => (await stack.psql("SELECT count(*) FROM votes WHERE voter = 'behind-poison'"))[0][0] === '1',
      { timeoutMs: 30000, what: 'the vote behind the poison stored' });
    let m = await (await fetch(`${p.url}/metrics`)).text();
    assert.equal(S.metric(m, 'tally_processor_poison_total'), n);
    assert.ok(S.metric(m, 'tally_processor_deadletter_failures_total') < n,
      'the vote was stored while copies still waited for their PubAcks');
    assert.equal((await nats.jsm.consumers.info('VOTES', 'processor')).num_ack_pending, 0, 'every poison terminated at once');
    // In the end every copy is a counted failure: the 100 beyond the bound
    // at once, the 1,000 that were sent when their wait runs out.
    await waitFor(async () => {
      m = await (await fetch(`${p.url}/metrics`)).text();
      return S.metric(m, 'tally_processor_deadletter_failures_total') === n;
    }, { timeoutMs: 30000, what: 'every copy counted as failed' });
    assert.equal(copies, 1000, 'no more copies in flight than the bound');
    assert.equal(firstCopy.headers.get('Tally-Stream-Seq'), String(before + 1));
    assert.equal(firstCopy.headers.get('Tally-Error'), 'undecodable');
    const log = p.logText();
    assert.equal(log.split('\n').filter((l) => l.includes('too many copies unanswered')).length, n - 1000);
    assert.match(log, new RegExp(`dead-letter copy of seq ${before + 1} failed: `));
    await drained();
  } catch (e) { dumpLogs(stack); throw e; } finally {
    silent.unsubscribe();
    await p.stop('SIGTERM');
  }
});

test('SIGTERM exits 0; --help exits 0; a bad setting exits 78', async () => {
  // A long linger holds the vote, fetched, in a batch waiting to fill when
  // SIGTERM comes: the processor must store and ack it before it exits.
  const p = await stack.startProcessor({ BATCH_LINGER_MS: '1000' });
  await waitFor(async () => (await fetch(`${p.url}/readyz`)).status === 200, { timeoutMs: 15000, what: 'ready' });
  const [ack] = await S.publishVotes(nats.js, [{ poll: 'basic', voter: 'late', option: 'a' }]);
  await waitFor(async () => (await nats.jsm.consumers.info('VOTES', 'processor')).num_ack_pending === 1,
    { timeoutMs: 5000, what: 'the vote fetched and held' });
  // Still held when the signal goes (the linger has not committed it):
  // so what stores it below is the stop, not the linger.
  const held = await (await fetch(`${p.url}/metrics`)).text();
  assert.equal(S.metric(held, 'tally_processor_batches_total'), 0, 'no batch committed before SIGTERM');
  assert.equal(await p.stop('SIGTERM'), 0);
  assert.deepEqual(await stack.psql("SELECT option, seq FROM votes WHERE poll = 'basic' AND voter = 'late'"),
    [['a', String(ack.seq)]], 'stored before the exit');
  const ci = await nats.jsm.consumers.info('VOTES', 'processor');
  assert.equal(ci.num_ack_pending, 0, 'and acked');
  assert.ok(ci.ack_floor.stream_seq >= ack.seq);
  const bin = path.join(process.env.TALLY_BIN_DIR || path.join(process.cwd(), 'build', 'bin'), 'tally-processor');
  const run = (args, env = {}) => new Promise((resolve) => {
    const c = spawn(bin, args, { env: { PATH: process.env.PATH, ...env } });
    let out = '';
    c.stdout.on('data', (d) => { out += d; });
    c.stderr.on('data', (d) => { out += d; });
    c.on('exit', (code) => resolve({ code, out }));
  });
  const help = await run(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.out, /BATCH_MAX/);
  assert.match(help.out, /FETCH_WAIT_MS/);
  const badEnv = await run([], { BATCH_MAX: 'lots' });
  assert.equal(badEnv.code, 78);
  assert.match(badEnv.out, /BATCH_MAX/);
});
