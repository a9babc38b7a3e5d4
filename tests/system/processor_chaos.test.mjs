// Issue 4's exactly-once proof: >= 100,000 votes from 20,000 voters (about
// 30% change their vote, some casts are sent twice with the same
// Nats-Msg-Id, some re-sent under a new id), published straight into
// JetStream while two processors share the durable consumer and are
// SIGKILLed and restarted at random points, PostgreSQL is killed and
// restarted once and nats-server once. At the end the database must equal
// a recount made from the stream itself: each (poll, voter)'s latest valid
// cast by stream sequence; tallies must equal that recount and a recount of
// the votes table. `tallyctl replay --reset` must then rebuild the same.
//
// While PostgreSQL is down: /readyz answers 503 on both processors, and
// nothing is acked (the consumer's ack floor and the processors' committed
// batch counts stay put) although votes keep arriving; /readyz is 200 again
// once it is back.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, dumpLogs, waitFor, http } from './harness.mjs';
import * as S from './processor_support.mjs';

const VOTERS = 20000;
const POLLS = ['c0', 'c1', 'c2', 'c3', 'c4'];
const OPTIONS = ['a', 'b', 'c', 'd'];
const PROCESSOR_ENV = {
  BATCH_MAX: '500',
  ACK_WAIT_S: '4',          // a killed processor's batch comes back quickly
  MAX_BACKOFF_MS: '1000',
  LAG_REFRESH_MS: '500',
  STORE_CONNECTIONS: '2',
};

let stack;
let nats;
after(async () => {
  if (nats) await nats.close().catch(() => {});
  if (stack) await stack.stop();
});

// Deterministic pseudo-random numbers, so a failure can be replayed.
function rng(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    return x / 4294967296;
  };
}

function shuffle(a, rand) {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** The casts, in publish order: first votes, then changes, duplicates and re-sends mixed in. */
function makeCasts(rand) {
  const first = [];
  for (let v = 0; v < VOTERS; v++) {
    // Every voter votes in 4 of the 5 polls: 80,000 first casts.
    for (let k = 0; k < 4; k++) {
      const poll = POLLS[(v + k) % POLLS.length];
      first.push({ poll, voter: `u${v}`, option: OPTIONS[Math.floor(rand() * OPTIONS.length)], castId: `f-${v}-${poll}` });
    }
  }
  shuffle(first, rand);
  const later = [];
  let n = 0;
  for (const c of first) {
    const r = rand();
    if (r < 0.30) {
      // Changes their vote (sometimes to the same option: still a new cast).
      later.push({ ...c, option: OPTIONS[Math.floor(rand() * OPTIONS.length)], castId: `x-${n++}` });
    } else if (r < 0.34) {
      // A client retry under a new id: a second stream message, same choice.
      later.push({ ...c, castId: `r-${n++}` });
    } else if (r < 0.38) {
      // An exact duplicate (same Nats-Msg-Id): JetStream drops it.
      later.push({ ...c });
    }
  }
  shuffle(later, rand);
  // The later casts start when a third of the first ones are out, so that
  // changes and first votes interleave in the stream.
  const cut = Math.floor(first.length / 3);
  const mixed = first.slice(cut).concat(later);
  shuffle(mixed, rand);
  const out = first.slice(0, cut).concat(mixed);
  // A few poison messages along the way.
  for (let i = 0; i < 5; i++) {
    out.splice(Math.floor(rand() * out.length), 0, { raw: Buffer.from(`junk ${i}`), subject: 'votes.c0', castId: `p-${i}` });
  }
  return out;
}

async function readyStatus(p) {
  try {
    return (await http('GET', `${p.url}/readyz`, { timeoutMs: 2000 })).status;
  } catch {
    return 0;
  }
}

async function batchesOf(p) {
  const r = await http('GET', `${p.url}/metrics`, { timeoutMs: 2000 });
  return S.metric(r.body, 'tally_processor_batches_total');
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const T0 = Date.now();
// Progress on stderr (CHAOS_VERBOSE=1), to see where a slow run spends its time.
const say = (...a) => { if (process.env.CHAOS_VERBOSE) console.error(`[chaos ${((Date.now() - T0) / 1000).toFixed(1)}s]`, ...a); };

test('chaos: kills, a PostgreSQL and a NATS restart; the database equals a recount from the stream', { timeout: 420000 }, async () => {
  const t0 = Date.now();
  const rand = rng(Number(process.env.CHAOS_SEED || 4242));
  const casts = makeCasts(rand);
  stack = await startStack();
  nats = await S.natsClient(stack.natsUrl);
  const init = await stack.tallyctl(['init']);
  assert.equal(init.code, 0, init.stderr);

  const procs = [await stack.startProcessor(PROCESSOR_ENV), await stack.startProcessor(PROCESSOR_ENV)];
  const events = { kills: 0, pgRestarts: 0, natsRestarts: 0 };
  try {
    // Publish in the background, in slices so that progress is visible.
    let published = 0;
    let publishing = true;
    const publisher = (async () => {
      const slice = 5000;
      for (let i = 0; i < casts.length; i += slice) {
        await S.publishVotes(nats.js, casts.slice(i, i + slice), { concurrency: 512 });
        published = Math.min(casts.length, i + slice);
        say(`published ${published}/${casts.length}`);
      }
      publishing = false;
    })();

    const share = () => published / casts.length;
    const killOne = async () => {
      const i = Math.floor(rand() * procs.length);
      await procs[i].kill();
      events.kills++;
      say(`killed processor ${i}`);
      // Sometimes stay down for a moment: the other processor carries on.
      if (rand() < 0.5) await sleep(200 + rand() * 800);
      procs[i] = await stack.startProcessor(PROCESSOR_ENV);
    };

    // Chaos while the votes flow: random kills, then PostgreSQL at about a
    // third of the casts and nats-server at about two thirds.
    let pgDone = false;
    let natsDone = false;
    while (publishing) {
      await sleep(300 + rand() * 1500);
      if (!publishing) break;
      if (!pgDone && share() > 0.33) {
        pgDone = true;
        await stack.killPostgres();
        events.pgRestarts++;
        say('PostgreSQL killed');
        await waitFor(async () => (await readyStatus(procs[0])) === 503 && (await readyStatus(procs[1])) === 503,
          { timeoutMs: 15000, what: '/readyz 503 on both processors while PostgreSQL is down' });
        // Nothing is acked while PostgreSQL is down, although votes arrive.
        const before = await nats.jsm.consumers.info('VOTES', 'processor');
        const batchesBefore = await Promise.all(procs.map(batchesOf));
        const publishedBefore = published;
        await sleep(2500);
        const during = await nats.jsm.consumers.info('VOTES', 'processor');
        // Only the sequences: last_active moves with the InProgress acks
        // that keep the batches ours while PostgreSQL is away.
        const floor = (c) => ({ consumer_seq: c.ack_floor.consumer_seq, stream_seq: c.ack_floor.stream_seq });
        assert.deepEqual(floor(during), floor(before), 'ack floor moved while PostgreSQL was down');
        assert.deepEqual(await Promise.all(procs.map(batchesOf)), batchesBefore, 'a batch was acked while PostgreSQL was down');
        assert.ok(published > publishedBefore || during.num_pending + during.num_ack_pending > 0,
          'votes should keep arriving while PostgreSQL is down');
        await stack.startPostgres();
        say('PostgreSQL restarted');
        await waitFor(async () => (await readyStatus(procs[0])) === 200 && (await readyStatus(procs[1])) === 200,
          { timeoutMs: 30000, what: '/readyz 200 after PostgreSQL is back' });
        continue;
      }
      if (!natsDone && share() > 0.66) {
        natsDone = true;
        await stack.killNats();
        events.natsRestarts++;
        say('nats-server killed');
        await sleep(500 + rand() * 1000);
        await stack.startNats();
        say('nats-server restarted');
        continue;
      }
      await killOne();
    }
    await publisher;
    // The PostgreSQL outage's checks (nothing acked while it is down)
    // hold only while votes flow: it must have happened then. The NATS
    // restart has no such checks, so a quick publish still gets one.
    assert.ok(pgDone, 'PostgreSQL was killed while votes were being published');
    if (!natsDone) { await stack.killNats(); events.natsRestarts++; await sleep(1000); await stack.startNats(); }
    // One more kill after the last vote, so the tail is redelivered too.
    await killOne();

    say('waiting for the drain');
    await waitFor(async () => {
      try { return await S.consumerDrained(nats.jsm); } catch { return false; }
    }, { timeoutMs: 180000, intervalMs: 500, what: 'the processors to drain the stream' });
    // Every processor recovers. Not at the very moment the drain ends: the
    // one started by the last kill may still be binding (its JetStream API
    // calls right after the NATS restart wait out their timeout) while the
    // others finish the stream.
    for (const p of procs) {
      await waitFor(async () => (await readyStatus(p)) === 200,
        { timeoutMs: 30000, intervalMs: 200, what: `${p.name} ready after the chaos` });
    }
    for (const p of procs) await p.stop('SIGTERM');

    say('drained; reading the stream');
    // The recount from the stream itself.
    const stream = await S.readStream(nats.js, nats.jsm);
    const dupes = casts.length - new Set(casts.map((c) => c.castId)).size;
    assert.equal(stream.messages.length, casts.length - dupes, 'every cast in the stream once (duplicates dropped)');
    assert.ok(stream.messages.length >= 100000, `only ${stream.messages.length} votes`);
    assert.equal(stream.messages.filter((m) => !m.vote).length, 5);
    const expectVotes = stream.latest;
    const changed = stream.messages.length - 5 - expectVotes.size;
    assert.ok(changed > 20000, `only ${changed} re-casts`);

    const dbVotes = await S.dbVotes(stack);
    assert.equal(S.mapDiff(expectVotes, dbVotes, { what: 'votes' }), undefined);
    const expectTallies = S.tallyOf(expectVotes);
    assert.equal(S.mapDiff(expectTallies, await S.dbTallies(stack), { what: 'tallies' }), undefined);
    const recount = await stack.psql(`SELECT count(*) FROM (
      SELECT poll, option, count(*) AS n FROM votes GROUP BY 1, 2) v
      FULL JOIN (SELECT * FROM tallies WHERE votes <> 0) t USING (poll, option)
      WHERE v.n IS DISTINCT FROM t.votes`);
    assert.equal(recount[0][0], '0', 'tallies differ from a recount of votes');

    // And a full rebuild from the stream gives the same database.
    const r = await stack.tallyctl(['replay', '--reset', '--quiet'], { timeoutMs: 120000 });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(S.mapDiff(expectVotes, await S.dbVotes(stack), { what: 'votes after replay' }), undefined);
    assert.equal(S.mapDiff(expectTallies, await S.dbTallies(stack), { what: 'tallies after replay' }), undefined);

    const s = ((Date.now() - t0) / 1000).toFixed(1);
    console.log(`chaos: ${stream.messages.length} stream messages (${casts.length} publishes, ${dupes} exact duplicates), ` +
      `${expectVotes.size} (poll, voter) rows, ${changed} re-casts; ${events.kills} processor kills, ` +
      `${events.pgRestarts} PostgreSQL and ${events.natsRestarts} NATS restarts; ${s} s`);
    assert.ok(events.kills >= 3, `only ${events.kills} kills`);
  } catch (e) {
    dumpLogs(stack, { lines: 30 });
    throw e;
  }
});
