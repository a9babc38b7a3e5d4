// What one vote costs nats-server, apart from everything else: bench/backlog
// publishes votes into stream VOTES the way the gateway does (JetStream
// PubAcks, Nats-Msg-Id, a bounded number in flight), first with nobody
// consuming, then with one tally-processor consuming live at each
// FETCH_INTERVAL_MS given; nats-server's CPU (user + system, from /proc) is
// divided by the votes published. Runs alternate, so the machine's noise
// hits every setting alike.
//
//   TALLY_BIN_DIR=build/bin node bench/nats_cost.mjs [--votes 200000]
//       [--max-pending 64] [--intervals 0,20] [--reps 2]
//
// Env: TALLY_BENCH_DIR (where backlog is; default <TALLY_BIN_DIR>/../bench).
// Prints one JSON line per run and the medians per setting.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { startStack, binDir, waitFor } from '../tests/system/harness.mjs';
import * as S from '../tests/system/processor_support.mjs';
import { CLK_TCK, cliArgs, readProc } from './common.mjs';

const { opt } = cliArgs(import.meta.url);
const votes = Number(opt('votes', 200000));
const maxPending = Number(opt('max-pending', 64));
const intervals = opt('intervals', '0,20').split(',').filter(Boolean);
const reps = Number(opt('reps', 2));
const backlog = path.join(process.env.TALLY_BENCH_DIR || path.join(binDir(), '..', 'bench'), 'backlog');

const cpuSeconds = (pid) => readProc(pid).ticks / CLK_TCK;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

const stack = await startStack();
const client = await S.natsClient(stack.natsUrl);
const results = {};
try {
  const nats = stack.nats.pid;
  for (let rep = 0; rep < reps; rep++) {
    for (const setting of ['none', ...intervals]) {
      let p;
      if (setting !== 'none') {
        p = await stack.startService('processor', { LOG_LEVEL: 'warn', FETCH_INTERVAL_MS: setting });
        // First the backlog of the runs without a consumer: draining it is
        // not the live cost this measures.
        await waitFor(async () => { try { return await S.consumerDrained(client.jsm); } catch { return false; } },
          { timeoutMs: 120000, intervalMs: 100, what: 'the processor to catch up' });
      }
      const n0 = cpuSeconds(nats);
      const p0 = p ? cpuSeconds(p.pid) : 0;
      // A run id of its own per run: the same casts again would be
      // dropped as duplicates (Nats-Msg-Id), which costs far less.
      const out = JSON.parse(execFileSync(backlog, ['--url', stack.natsUrl, '--votes', String(votes),
        '--max-pending', String(maxPending), '--run', `cost-${setting}-${rep}-${Date.now()}`]).toString().trim());
      await new Promise((r) => setTimeout(r, 1000)); // the last deliveries and acks
      const r = {
        consumer: setting === 'none' ? 'none' : `processor FETCH_INTERVAL_MS=${setting}`,
        rep,
        published_per_s: out.votes_per_s,
        nats_us_per_vote: Number(((cpuSeconds(nats) - n0) * 1e6 / votes).toFixed(1)),
        processor_us_per_vote: p ? Number(((cpuSeconds(p.pid) - p0) * 1e6 / votes).toFixed(1)) : 0,
      };
      console.log(JSON.stringify(r));
      (results[r.consumer] ||= []).push(r);
      if (p) await p.stop();
    }
  }
} finally {
  await client.close();
  await stack.stop();
}
console.log(JSON.stringify({
  votes, max_pending: maxPending,
  medians: Object.entries(results).map(([consumer, rs]) => ({
    consumer,
    nats_us_per_vote: median(rs.map((r) => r.nats_us_per_vote)),
    processor_us_per_vote: median(rs.map((r) => r.processor_us_per_vote)),
  })),
}, null, 1));
