// tally-processor while PostgreSQL stays away for longer than the
// consumer's AckWait: the votes it holds are kept off redelivery
// (InProgress acks, repeated while it reconnects), nothing is acked before
// it is stored, and once PostgreSQL is back every vote is stored once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { dumpLogs, waitFor } from './harness.mjs';
import * as S from './processor_support.mjs';

let stack;
let nats;

before(async () => ({ stack, nats } = await S.openStack()));

after(() => S.closeStack(stack, nats));

test('PostgreSQL down for three AckWaits: no redelivery, no ack before the commit, every vote stored once', async () => {
  // AckWait 2 s; backoff capped well below it, as docs/PROCESSOR.md asks.
  const p = await stack.startProcessor({ ACK_WAIT_S: '2', MAX_BACKOFF_MS: '300' });
  try {
    await waitFor(async () => (await fetch(`${p.url}/readyz`)).status === 200, { timeoutMs: 15000, what: 'ready' });
    const first = Array.from({ length: 50 }, (_, i) => ({ poll: 'out', voter: `v${i}`, option: 'a' }));
    await S.publishVotes(nats.js, first);
    await waitFor(async () => { try { return await S.consumerDrained(nats.jsm); } catch { return false; } },
      { timeoutMs: 15000, what: 'first votes stored' });

    await stack.stopPostgres();
    // Changes of vote and new voters, fetched and held while PostgreSQL
    // is away.
    const second = Array.from({ length: 80 }, (_, i) => ({ poll: 'out', voter: `v${i}`, option: i % 2 ? 'b' : 'c' }));
    await S.publishVotes(nats.js, second);
    const floor = (await nats.jsm.consumers.info('VOTES', 'processor')).ack_floor.stream_seq;
    await sleep(6500);
    const held = await nats.jsm.consumers.info('VOTES', 'processor');
    assert.equal(held.ack_floor.stream_seq, floor, 'nothing acked while PostgreSQL is down');
    assert.ok(held.num_ack_pending > 0, 'the votes are held by the processor');
    assert.equal(held.num_redelivered, 0, 'held past three AckWaits without a redelivery');

    await stack.startPostgres();
    await waitFor(async () => { try { return await S.consumerDrained(nats.jsm); } catch { return false; } },
      { timeoutMs: 30000, what: 'the held votes stored' });
    const { latest } = await S.readStream(nats.js, nats.jsm);
    assert.equal(S.mapDiff(latest, await S.dbVotes(stack), { what: 'votes' }), undefined);
    assert.equal(S.mapDiff(S.tallyOf(latest), await S.dbTallies(stack), { what: 'tallies' }), undefined);
    const m = await (await fetch(`${p.url}/metrics`)).text();
    assert.equal(S.metric(m, 'tally_processor_redeliveries_total'), 0);
    assert.ok(S.metric(m, 'tally_processor_pg_errors_total') > 0, 'the outage was seen and counted');
  } catch (e) { dumpLogs(stack); throw e; } finally {
    await p.stop('SIGTERM');
  }
});
