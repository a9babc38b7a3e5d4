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
import fs from 'node:fs';
import path from 'node:path';
import { startStack, binDir } from '../tests/system/harness.mjs';

const args = process.argv.slice(2);
function opt(name, def) {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
}
if (args.includes('--help')) {
  console.log(fs.readFileSync(new URL(import.meta.url), 'utf8').split('\n').slice(0, 12).join('\n'));
  process.exit(0);
}
const votes = Number(opt('votes', 200000));
const maxPending = Number(opt('max-pending', 64));
const intervals = opt('intervals', '0,20').split(',').filter(Boolean);
const reps = Number(opt('reps', 2));
const backlog = path.join(process.env.TALLY_BENCH_DIR || path.join(binDir(), '..', 'bench'), 'backlog');

// CPU seconds of a process so far (utime + stime).
function cpuSeconds(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}
// Waits until the processor has taken and acked everything in the stream.
async function settled(p) {
  const gauge = (text, name) => Number((text.match(new RegExp(`^${name} (\\S+)`, 'm')) || [])[1]);
  for (let i = 0; i < 1200; i++) {
    const m = await (await fetch(`${p.url}/metrics`)).text();
    if (gauge(m, 'tally_processor_consumer_lag') === 0 && gauge(m, 'tally_processor_consumer_ack_pending') === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('nats_cost: the processor did not catch up within 120 s');
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

const stack = await startStack();
const results = {};
try {
  const nats = stack.nats.pid;
  for (let rep = 0; rep < reps; rep++) {
    for (const setting of ['none', ...intervals]) {
      let p;
      if (setting !== 'none') {
        p = await stack.startService('processor', { LOG_LEVEL: 'warn', FETCH_INTERVAL_MS: setting, LAG_REFRESH_MS: '100' });
        // First the backlog of the runs without a consumer: draining it is
        // not the live cost this measures.
        await settled(p);
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
