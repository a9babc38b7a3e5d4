// Stream -> tally latency of tally-processor, without the gateway: votes are
// published straight into stream VOTES at a fixed rate (core NATS publish,
// 4 polls), and every 200 ms a probe vote on the quiet poll `probe` is
// published with a JetStream PubAck; the time from that PubAck to the new
// total on the reporter's event stream is what the processor (fetch, COMMIT,
// NOTIFY) plus the reporter add. Several processor builds can be compared
// in the same stack, interleaved run by run (the machine is shared and noisy):
//
//   node bench/processor_latency.mjs --bins /tmp/bin-old,/tmp/bin-new \
//     [--rate 10000] [--duration 15] [--reps 3] [--env KEY=VALUE ...]
//     [--metrics-dir DIR]   (each run's /metrics saved as DIR/run-N.prom)
//
// Each --bins folder holds a tally-processor; the reporter comes from the
// first. Prints one JSON line per run and the medians per folder.
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { startStack } from '../tests/system/harness.mjs';
import * as S from '../tests/system/processor_support.mjs';
import { watchTotal } from './sse_total.mjs';
import { cliArgs } from './common.mjs';

const { opt, env: extraEnv } = cliArgs(import.meta.url);
const bins = opt('bins', process.env.TALLY_BIN_DIR || '').split(',').filter(Boolean).map((b) => path.resolve(b));
if (!bins.length) throw new Error('--bins DIR[,DIR...] or TALLY_BIN_DIR');
const rate = Number(opt('rate', 10000));
const duration = Number(opt('duration', 15));
const reps = Number(opt('reps', 3));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (xs, p) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
const median = (xs) => pct(xs, 50);
// A quantile of a Prometheus histogram: the upper bound of its bucket (ms).
function histPct(text, name, p) {
  const b = [...text.matchAll(new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\d+)`, 'gm'))]
    .map((m) => [Number(m[1]), Number(m[2])]);
  if (!b.length || !b[b.length - 1][1]) return undefined;
  const want = (p / 100) * b[b.length - 1][1];
  const hit = b.find(([, n]) => n >= want);
  return hit[0] === Infinity ? Infinity : hit[0] * 1000;
}

const stack = await startStack();
let nats;
const results = [];
try {
  const polls = [{ id: 'probe', title: 'probe', options: [{ id: 'a', label: 'A' }, { id: 'b', label: 'B' }] }];
  for (let i = 0; i < 4; i++) polls.push({ id: `lat${i}`, title: `lat${i}`, options: [{ id: 'a', label: 'A' }, { id: 'b', label: 'B' }] });
  const pollsFile = path.join(stack.dir, 'polls.json');
  fs.writeFileSync(pollsFile, JSON.stringify({ polls }));
  nats = await S.natsClient(stack.natsUrl);
  await S.ensureStream(nats.jsm);
  process.env.TALLY_BIN_DIR = bins[0];
  const reporter = await stack.startReporter({ LOG_LEVEL: 'warn', POLLS_FILE: pollsFile });
  let voter = 0;
  for (let rep = 0; rep < reps; rep++) {
    for (const bin of bins) {
      process.env.TALLY_BIN_DIR = bin;
      const proc = await stack.startProcessor({ LOG_LEVEL: 'warn', ...extraEnv });
      // Whatever an earlier run left is drained first.
      for (let i = 0; i < 300; i++) {
        if (await S.consumerDrained(nats.jsm).catch(() => false)) break;
        await sleep(100);
      }
      // The probe's tally as the reporter shows it.
      let total = -1;
      const waiting = [];
      const lat = [];
      const abort = new AbortController();
      await watchTotal(`${reporter.url}/api/v1/polls/probe/events`, (t) => {
        total = t;
        const now = performance.now();
        for (let i = waiting.length - 1; i >= 0; i--) {
          if (waiting[i].want <= t) { lat.push(now - waiting[i].t1); waiting.splice(i, 1); }
        }
      }, abort.signal);
      for (let i = 0; i < 100 && total < 0; i++) await sleep(100);
      if (total < 0) throw new Error('no probe tally on the event stream');
      let want = total;
      // Load: core publishes, in 10 ms ticks, catching up on the clock.
      let on = true;
      let published = 0;
      const t0 = performance.now();
      const load = (async () => {
        while (on) {
          const due = Math.floor(((performance.now() - t0) / 1000) * rate);
          for (; published < due; published++) {
            const p = `lat${published % 4}`;
            const v = published % 10 < 3 && voter > 100 ? Math.floor(Math.random() * voter) : voter++;
            nats.nc.publish(`votes.${p}`, S.encodeVote({ poll: p, voter: `u${v}`, option: Math.random() < 0.5 ? 'a' : 'b', castId: `l${process.pid}-${rep}-${bin.length}-${published}` }));
          }
          await sleep(10);
        }
      })();
      const probes = (async () => {
        let n = 0;
        while (performance.now() - t0 < duration * 1000) {
          const s = performance.now();
          const id = `probe-${process.pid}-${rep}-${results.length}-${n++}`;
          await nats.js.publish('votes.probe', S.encodeVote({ poll: 'probe', voter: id, option: 'a', castId: id }), { msgID: id });
          const t1 = performance.now();
          want++;
          if (total >= want) lat.push(0); else waiting.push({ want, t1 });
          const left = 200 - (performance.now() - s);
          if (left > 0) await sleep(left);
        }
      })();
      await probes;
      on = false;
      await load;
      const elapsed = (performance.now() - t0) / 1000;
      for (let i = 0; i < 30 && waiting.length; i++) await sleep(100);
      abort.abort();
      const m = await (await fetch(`${proc.url}/metrics`)).text();
      if (opt('metrics-dir')) {
        fs.writeFileSync(path.join(opt('metrics-dir'), `run-${results.length}.prom`), m);
        fs.copyFileSync(proc.log, path.join(opt('metrics-dir'), `run-${results.length}.log`));
      }
      await proc.stop('SIGTERM');
      const r = {
        bin, rep, offered_per_s: Math.round(published / elapsed), probes: lat.length, missing: waiting.length,
        p50_ms: +pct(lat, 50).toFixed(1), p99_ms: +pct(lat, 99).toFixed(1), max_ms: +Math.max(...lat).toFixed(1),
        commit_delay_p50_ms: histPct(m, 'tally_processor_commit_delay_seconds', 50),
        commit_delay_p99_ms: histPct(m, 'tally_processor_commit_delay_seconds', 99),
        batches: S.metric(m, 'tally_processor_batches_total'), votes: S.metric(m, 'tally_processor_votes_total'),
        load: fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
      };
      console.log(JSON.stringify(r));
      results.push(r);
    }
  }
  const summary = bins.map((bin) => {
    const rs = results.filter((r) => r.bin === bin);
    return { bin, p50_ms: median(rs.map((r) => r.p50_ms)), p99_ms: median(rs.map((r) => r.p99_ms)),
      p99_runs: rs.map((r) => r.p99_ms), votes_per_batch: Math.round(median(rs.map((r) => r.votes / r.batches))) };
  });
  console.log(JSON.stringify({ rate, duration, reps, env: extraEnv, summary }, null, 1));
} finally {
  if (nats) await nats.close();
  await stack.stop();
}
