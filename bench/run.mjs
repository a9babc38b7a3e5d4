// The tally benchmark driver: starts the pipeline on loopback (through the
// system-test harness), runs every phase, and writes report.md, results.json
// and PNG plots (gnuplot) to --out. scripts/bench builds and runs it; see
// docs/BENCHMARKS.md for what each figure means.
//
//   node bench/run.mjs [--quick] [--only gateway,latency,processor,sse]
//       [--reps N] [--duration S] [--rates 10000,40000] [--backlog N]
//       [--batches 100,500,1000,2000,5000] [--default-batch N]
//       [--sse-clients N] [--sse-rounds N] [--concurrency N]
//       [--seed-threads N] [--http-threads N] [--drain-wait S] [--out DIR]
//       [--gateway-env K=V] [--processor-env K=V] [--reporter-env K=V] ...
//
// Env: TALLY_BIN_DIR (services, tallyctl), TALLY_BENCH_DIR (bench helpers;
// default <TALLY_BIN_DIR>/../bench).
//
// Why it is built this way:
// - the machine is shared and noisy, so every figure that has a ceiling is
//   measured next to it in the same repetition, and medians are reported;
// - short-lived children (load generator, publisher, DB ceiling) run under
//   bench/rusage, which reports their exact CPU and peak RSS from wait4();
//   long-lived ones are sampled from /proc every second;
// - cast -> tally is measured on a quiet probe poll, so the reporter's
//   per-poll coalescing (10 updates/s) does not hide the pipeline's latency.

import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startStack, binDir, descendants, repoRoot, dumpLogs, freePort } from '../tests/system/harness.mjs';
import { watchTotal } from './sse_total.mjs';
import { CLK_TCK, readProc } from './common.mjs';

// ---------------------------------------------------------------------------
// Options

const PHASES = ['gateway', 'latency', 'processor', 'sse'];

function parseArgs(argv) {
  const quick = argv.includes('--quick');
  const o = {
    quick,
    only: PHASES,
    reps: quick ? 1 : 3,
    duration: quick ? 10 : 60,
    rates: [10000, 40000],
    backlog: quick ? 100000 : 1000000,
    batches: [100, 500, 1000, 2000, 5000],
    defaultBatch: 1000,
    sseClients: 10000,
    sseRounds: quick ? 5 : 10,
    concurrency: 64,
    seedThreads: 1,
    httpThreads: 2,
    drainWait: quick ? 60 : 180,
    out: path.join(repoRoot, 'build', 'bench-report'),
    env: { gateway: {}, processor: {}, reporter: {} },
  };
  const list = (v) => v.split(',').map((x) => x.trim()).filter(Boolean);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`bench: ${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case '--quick': break;
      case '--only': o.only = list(v()); break;
      case '--reps': o.reps = Number(v()); break;
      case '--duration': o.duration = Number(v()); break;
      case '--rates': o.rates = list(v()).map(Number); break;
      case '--backlog': o.backlog = Number(v()); break;
      case '--batches': o.batches = list(v()).map(Number); break;
      case '--default-batch': o.defaultBatch = Number(v()); break;
      case '--sse-clients': o.sseClients = Number(v()); break;
      case '--sse-rounds': o.sseRounds = Number(v()); break;
      case '--concurrency': o.concurrency = Number(v()); break;
      case '--seed-threads': o.seedThreads = Number(v()); break;
      case '--http-threads': o.httpThreads = Number(v()); break;
      case '--drain-wait': o.drainWait = Number(v()); break;
      case '--out': o.out = path.resolve(v()); break;
      case '--gateway-env': case '--processor-env': case '--reporter-env': {
        const kv = v();
        const eq = kv.indexOf('=');
        if (eq < 1) throw new Error(`bench: ${a} wants KEY=VALUE`);
        o.env[a.slice(2, -4)][kv.slice(0, eq)] = kv.slice(eq + 1);
        break;
      }
      case '-h': case '--help':
        process.stdout.write(fs.readFileSync(new URL(import.meta.url), 'utf8').split('\n').slice(0, 12).map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n');
        process.exit(0);
        break;
      default: throw new Error(`bench: unknown argument ${a}`);
    }
  }
  for (const p of o.only) if (!PHASES.includes(p)) throw new Error(`bench: unknown phase ${p} (one of ${PHASES.join(', ')})`);
  if (!o.batches.includes(o.defaultBatch)) o.batches.push(o.defaultBatch);
  o.batches.sort((a, b) => a - b);
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const BIN = binDir();
const BENCH = path.resolve(process.env.TALLY_BENCH_DIR || path.join(BIN, '..', 'bench'));
const TALLYCTL = path.join(BIN, 'tallyctl');

const POLLS = ['p1', 'p2', 'p3'];         // the load's polls
const PROBE = 'probe';                    // the quiet poll of cast -> tally

for (const f of [path.join(BIN, 'tally-gateway'), TALLYCTL, ...['http_ceiling', 'backlog', 'db_ceiling', 'rusage', 'sse_bench'].map((b) => path.join(BENCH, b))]) {
  if (!fs.existsSync(f)) throw new Error(`bench: ${f} is missing; build first (scripts/bench builds everything)`);
}
fs.mkdirSync(opts.out, { recursive: true });
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-bench-'));

function log(msg) { process.stderr.write(`bench ${new Date().toISOString().slice(11, 19)} ${msg}\n`); }

// ---------------------------------------------------------------------------
// Small helpers

function median(xs) {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

function maxOf(xs) {
  const v = xs.filter((x) => Number.isFinite(x));
  return v.length ? Math.max(...v) : NaN;
}

function pct(xs, p) {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return NaN;
  return v[Math.min(v.length - 1, Math.floor((v.length * p) / 100))];
}

function fmt(x, d = 1) {
  if (x === undefined || x === null || !Number.isFinite(x)) return 'n/a';
  return x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
}
const fmt0 = (x) => fmt(x, 0);
const fmt2 = (x) => fmt(x, 2);

// Our own children (load generator, helpers) die with us, like the harness's.
const children = new Set();
process.on('exit', () => { for (const c of children) c.kill('SIGKILL'); });

/** Spawn a command, collect stdout/stderr; resolves { code, stdout, stderr }. */
function runCmd(cmd, args, { env = process.env, timeoutMs = 0 } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args.map(String), { env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    child.on('exit', () => children.delete(child));
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    let timer;
    if (timeoutMs) timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); resolve({ code: 127, stdout, stderr: stderr + e.message }); });
    child.on('close', (code, sig) => { clearTimeout(timer); resolve({ code: code ?? 128, signal: sig, stdout, stderr }); });
  });
}

let ruCount = 0;
/** Run a command under bench/rusage; resolves { code, stdout, stderr, cost: {user_s, sys_s, maxrss_kb} }. */
async function runCosted(cmd, args, o = {}) {
  const file = path.join(work, `rusage-${++ruCount}.json`);
  const r = await runCmd(path.join(BENCH, 'rusage'), [file, cmd, ...args], o);
  try { r.cost = JSON.parse(fs.readFileSync(file, 'utf8')); } catch { r.cost = undefined; }
  return r;
}

function lastJson(text) {
  const lines = text.trim().split('\n').filter((l) => l.startsWith('{'));
  if (!lines.length) throw new Error(`no JSON in output:\n${text.slice(-2000)}`);
  return JSON.parse(lines[lines.length - 1]);
}

// ---------------------------------------------------------------------------
// /proc sampling: CPU seconds (utime + stime) and memory of named processes


/**
 * Watches groups of processes: groups is { name: () => [pids] }. CPU is the
 * growth of utime+stime over the watch (a pid first seen mid-watch counts
 * from zero: a new PostgreSQL backend); peak RSS is VmHWM for a single
 * process, and the largest sum of VmRSS seen for a group of several (the
 * PostgreSQL postmaster and its backends: shared buffers count once per
 * backend that touched them, so it is an upper bound).
 */
class ProcWatch {
  constructor(groups) {
    this.groups = groups;
    this.state = {};
    for (const name of Object.keys(groups)) this.state[name] = { first: new Map(), last: new Map(), peak: 0, hwm: 0, multi: false };
    this.sample(true);
    this.timer = setInterval(() => this.sample(false), 1000);
  }

  sample(initial) {
    for (const [name, pidsFn] of Object.entries(this.groups)) {
      const st = this.state[name];
      let pids = [];
      try { pids = pidsFn().filter(Boolean); } catch { pids = []; }
      let rssSum = 0;
      if (pids.length > 1) st.multi = true;
      for (const pid of pids) {
        const p = readProc(pid);
        if (!p) continue;
        if (!st.first.has(pid)) st.first.set(pid, initial ? p.ticks : 0);
        st.last.set(pid, p.ticks);
        rssSum += p.rss;
        st.hwm = Math.max(st.hwm, p.hwm);
      }
      st.peak = Math.max(st.peak, rssSum);
    }
  }

  stop() {
    clearInterval(this.timer);
    this.sample(false);
    const out = {};
    for (const [name, st] of Object.entries(this.state)) {
      let ticks = 0;
      for (const [pid, t] of st.last) ticks += t - (st.first.get(pid) || 0);
      out[name] = { cpu_s: ticks / CLK_TCK, peak_rss_kb: st.multi ? st.peak : st.hwm };
    }
    return out;
  }
}

function pgPids(stack) {
  return stack.pg?.alive ? [stack.pg.pid, ...descendants(stack.pg.pid)] : [];
}

function stackGroups(stack, svc) {
  const g = {
    'nats-server': () => [stack.nats?.pid],
    'redis-server': () => [stack.redis?.pid],
    postgres: () => pgPids(stack),
  };
  for (const [name, s] of Object.entries(svc)) if (s) g[name] = () => (s.alive ? [s.pid] : []);
  return g;
}

// ---------------------------------------------------------------------------
// Consumer lag from the NATS monitoring port

async function consumerInfo(stack, durable = 'processor') {
  const url = `http://127.0.0.1:${stack.natsMonitorPort}/jsz?consumers=true&accounts=true`;
  const j = await (await fetch(url, { signal: AbortSignal.timeout(2000) })).json();
  const sd = (j.account_details || []).flatMap((a) => a.stream_detail || []).find((s) => s.name === 'VOTES');
  const c = (sd?.consumer_detail || []).find((x) => x.name === durable);
  return {
    lastSeq: sd?.state?.last_seq ?? 0,
    pending: c ? c.num_pending + c.num_ack_pending : (sd?.state?.messages ?? 0),
    ackFloor: c?.ack_floor?.stream_seq ?? 0,
  };
}

/** Samples consumer lag every intervalMs; stop() resolves [{t, lag}]. */
function lagSampler(stack, intervalMs = 1000) {
  const samples = [];
  const t0 = Date.now();
  let on = true;
  const loop = (async () => {
    while (on) {
      try { samples.push({ t: (Date.now() - t0) / 1000, lag: (await consumerInfo(stack)).pending }); } catch { /* keep going */ }
      await sleep(intervalMs);
    }
  })();
  return { samples, async stop() { on = false; await loop; return samples; } };
}

async function waitDrained(stack, maxS) {
  const t0 = Date.now();
  for (;;) {
    let info;
    try { info = await consumerInfo(stack); } catch { info = undefined; }
    if (info && info.pending === 0) return (Date.now() - t0) / 1000;
    if (Date.now() - t0 > maxS * 1000) return NaN;
    await sleep(250);
  }
}

// ---------------------------------------------------------------------------
// cast -> tally: a probe voter on a quiet poll, watched through SSE

class Probe {
  constructor(gatewayUrl, reporterUrl, poll, tag) {
    this.gatewayUrl = gatewayUrl;
    this.reporterUrl = reporterUrl;
    this.poll = poll;
    this.tag = tag;
    this.total = -1;
    this.waiting = [];     // { want, t0, t1 }
    this.latencies = [];   // ms, POST sent -> total seen
    this.afterAck = [];    // ms, 2xx received -> total seen (0 if seen first)
    this.failed = 0;
    this.sent = 0;
  }

  async start() {
    this.abort = new AbortController();
    let first;
    const gotFirst = new Promise((r) => { first = r; });
    const url = `${this.reporterUrl}/api/v1/polls/${this.poll}/events`;
    const watch = await watchTotal(url, (t) => { this.onTotal(t); first(); }, this.abort.signal)
      .catch((e) => { throw new Error(`probe: ${e.message}`, { cause: e }); });
    this.reader = watch.done;
    await Promise.race([gotFirst, sleep(10000)]);
    if (this.total < 0) throw new Error('probe: no tally on the event stream within 10 s');
    this.base = this.total;
    this.accepted = 0;
    this.on = true;
    this.loop = this.castLoop();
  }

  onTotal(t) {
    this.total = t;
    const now = performance.now();
    this.waiting = this.waiting.filter((w) => {
      if (w.want > t) return true;
      this.latencies.push(now - w.t0);
      this.afterAck.push(now - w.t1);
      return false;
    });
  }

  async castLoop() {
    while (this.on) {
      const t0 = performance.now();
      this.sent++;
      try {
        const r = await fetch(`${this.gatewayUrl}/api/v1/polls/${this.poll}/votes`, {
          method: 'POST', headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ voter: `probe-${this.tag}-${this.sent}`, option: 'a' }),
          signal: AbortSignal.timeout(5000),
        });
        await r.arrayBuffer();
        if (r.status >= 200 && r.status < 300) {
          const want = this.base + ++this.accepted;
          const t1 = performance.now();
          if (this.total >= want) {
            this.latencies.push(t1 - t0);
            this.afterAck.push(0);
          } else {
            this.waiting.push({ want, t0, t1 });
          }
        } else {
          this.failed++;
        }
      } catch { this.failed++; }
      // 5 probes a second: under the reporter's 10 updates/s per poll.
      const left = 200 - (performance.now() - t0);
      if (left > 0) await sleep(left);
    }
  }

  /** Stop casting, give the last probes up to 3 s, and summarize. */
  async stop() {
    this.on = false;
    await this.loop;
    const deadline = Date.now() + 3000;
    while (this.waiting.length && Date.now() < deadline) await sleep(50);
    const missing = this.waiting.length;
    this.abort.abort();
    await this.reader;
    const l = this.latencies;
    return { probes: this.sent, seen: l.length, missing, failed: this.failed,
      p50_ms: pct(l, 50), p99_ms: pct(l, 99), max_ms: l.length ? Math.max(...l) : NaN, samples_ms: l,
      after_ack_p50_ms: pct(this.afterAck, 50), after_ack_p99_ms: pct(this.afterAck, 99) };
  }
}

// ---------------------------------------------------------------------------
// The pipeline stack

function writePolls(dir) {
  const polls = [{ id: 'default', title: 'Cats vs Dogs!', options: [{ id: 'a', label: 'Cats' }, { id: 'b', label: 'Dogs' }] }];
  for (const id of [...POLLS, PROBE]) polls.push({ id, title: id, options: [{ id: 'a', label: 'A' }, { id: 'b', label: 'B' }] });
  const file = path.join(dir, 'polls.json');
  fs.writeFileSync(file, JSON.stringify({ polls }));
  return file;
}

async function startPipeline(extra = {}) {
  const stack = await startStack();
  const pollsFile = writePolls(stack.dir);
  // warn: the gateway's info level writes an access-log line per request.
  const common = { LOG_LEVEL: 'warn', POLLS_FILE: pollsFile };
  const envs = {
    processor: { LOG_LEVEL: 'warn', ...opts.env.processor, ...(extra.processor || {}) },
    reporter: { ...common, ...opts.env.reporter, ...(extra.reporter || {}) },
    gateway: { ...common, HTTP_THREADS: String(opts.httpThreads), ...opts.env.gateway, ...(extra.gateway || {}) },
  };
  const processor = await stack.startProcessor(envs.processor);
  const reporter = await stack.startReporter(envs.reporter);
  const gateway = extra.noGateway ? undefined : await stack.startGateway(envs.gateway);
  return { stack, processor, reporter, gateway, envs };
}

// The end of a log, with a sanitizer's or glibc's diagnosis kept whole.
function tailOf(file, n = 8) {
  let lines;
  try { lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n'); } catch { return ''; }
  const at = lines.findIndex((l) => /ERROR: \w+Sanitizer|runtime error:/.test(l));
  if (at >= 0) return lines.slice(at, at + 14).join('\n');
  return lines.slice(-n).join('\n');
}

/**
 * A service that died during a run is an incident of the report, not the
 * end of the benchmark: note it with the end of its log, start a new one
 * with the same settings, and go on.
 */
async function checkServices(p, where) {
  for (const kind of ['gateway', 'processor', 'reporter']) {
    const svc = p[kind];
    if (!svc || svc.alive) continue;
    const incident = { service: kind, where, exit_code: svc.exitCode, log_tail: tailOf(svc.log) };
    (results.incidents ||= []).push(incident);
    log(`  INCIDENT: ${kind} exited with ${svc.exitCode} during ${where}; restarting it\n${incident.log_tail}`);
    p[kind] = await p.stack.startService(kind, p.envs[kind]);
  }
}

function seedArgs(url, { rate = 0, duration = opts.duration } = {}) {
  return ['seed', '--url', url, '--api', 'json', '--polls', POLLS.join(','),
    '--duration', duration, '--concurrency', opts.concurrency, '--threads', opts.seedThreads,
    '--rate', rate, '--change-share', '0.2', '--duplicate-share', '0.05', '--timeout', '10',
    '--json', '--quiet'];
}

function seedSummary(r, what) {
  let s;
  try { s = lastJson(r.stdout); } catch (e) { throw new Error(`${what}: tallyctl seed exit ${r.code}: ${e.message}\n${r.stderr.slice(-2000)}`); }
  // unsent: casts due (open loop) or owed (--votes) that seed never sent; null
  // when a closed --duration run gave up (not countable). latency_ms holds
  // the 2xx answers only.
  const unsent = s.unsent ?? NaN;
  return {
    sent: s.sent, unsent, offered: s.sent + unsent, gave_up: s.gave_up === true,
    accepted: s.accepted, unchanged: s.unchanged, errors: s.errors, status: s.status,
    elapsed_s: s.elapsed_s, votes_per_s: s.votes_per_s, accepted_per_s: s.accepted / s.elapsed_s,
    latency_ms: s.latency_ms, cost: r.cost,
  };
}

/** One load run against the pipeline, with lag, probe and process sampling. */
async function pipelineRun(p, { rate = 0, tag }) {
  const { stack } = p;
  const watch = new ProcWatch(stackGroups(stack, { gateway: p.gateway, processor: p.processor, reporter: p.reporter }));
  const lag = lagSampler(stack, 1000);
  const probe = new Probe(p.gateway.url, p.reporter.url, PROBE, tag);
  await probe.start();
  const r = await runCosted(TALLYCTL, seedArgs(`${p.gateway.url}/`, { rate }), { timeoutMs: (opts.duration + 120) * 1000 });
  const cast = await probe.stop();
  const samples = await lag.stop();
  const procs = watch.stop();
  const seed = seedSummary(r, `gateway run ${tag}`);
  procs['load generator'] = r.cost ? { cpu_s: r.cost.user_s + r.cost.sys_s, peak_rss_kb: r.cost.maxrss_kb } : undefined;
  const before = (results.incidents || []).length;
  await checkServices(p, `run ${tag}`);
  const incidents = (results.incidents || []).length - before;
  const drainS = await waitDrained(stack, opts.drainWait);
  const lags = samples.map((s) => s.lag);
  const tail = samples.slice(-Math.max(3, Math.floor(samples.length / 4))).map((s) => s.lag);
  return { rate, seed, cast, lag: samples, lag_max: Math.max(0, ...lags), lag_end: lags[lags.length - 1] ?? NaN,
    lag_tail_median: median(tail), lag_slope_per_s: lagSlope(samples), drain_after_s: drainS, incidents, procs };
}

/** Least-squares slope of the lag over the run, in messages per second:
 * near 0 when the processor keeps up (the lag only wobbles), the rate it
 * falls behind by when it does not. NaN with fewer than 3 samples. */
function lagSlope(samples) {
  const n = samples.length;
  if (n < 3) return NaN;
  const mt = samples.reduce((a, s) => a + s.t, 0) / n;
  const ml = samples.reduce((a, s) => a + s.lag, 0) / n;
  let num = 0;
  let den = 0;
  for (const s of samples) {
    num += (s.t - mt) * (s.lag - ml);
    den += (s.t - mt) ** 2;
  }
  return den > 0 ? num / den : NaN;
}

async function ceilingRun(tag) {
  const port = await freePort();
  const child = spawn(path.join(BENCH, 'http_ceiling'), [port, opts.httpThreads], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  child.on('exit', () => children.delete(child));
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  try {
    const url = `http://127.0.0.1:${port}`;
    for (let i = 0; ; i++) {
      try { await fetch(`${url}/`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(500) }).then((x) => x.arrayBuffer()); break; } catch (e) {
        if (i > 100 || child.exitCode !== null) throw new Error(`http_ceiling did not start: ${err}`);
        await sleep(50);
      }
    }
    const watch = new ProcWatch({ http_ceiling: () => [child.pid] });
    const r = await runCosted(TALLYCTL, seedArgs(`${url}/`), { timeoutMs: (opts.duration + 60) * 1000 });
    const procs = watch.stop();
    const seed = seedSummary(r, `ceiling run ${tag}`);
    procs['load generator'] = r.cost ? { cpu_s: r.cost.user_s + r.cost.sys_s, peak_rss_kb: r.cost.maxrss_kb } : undefined;
    return { seed, procs };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null ? r() : child.on('exit', r)));
  }
}

// ---------------------------------------------------------------------------
// Phases

const results = { options: { ...opts, out: undefined }, started: new Date().toISOString() };

async function phaseGateway() {
  log(`gateway: ${opts.reps} x (HTTP ceiling, then gateway) closed loop, ${opts.duration} s each`);
  const p = await startPipeline();
  const reps = [];
  try {
    for (let i = 0; i < opts.reps; i++) {
      const ceiling = await ceilingRun(`c${i}`);
      log(`  rep ${i + 1}: ceiling ${fmt0(ceiling.seed.accepted_per_s)}/s`);
      const gw = await pipelineRun(p, { tag: `g${i}` });
      const ratio = gw.seed.accepted_per_s / ceiling.seed.accepted_per_s;
      log(`  rep ${i + 1}: gateway ${fmt0(gw.seed.accepted_per_s)}/s (ratio ${fmt2(ratio)}), p99 ${fmt2(gw.seed.latency_ms.p99)} ms, lag max ${gw.lag_max}, drained ${fmt(gw.drain_after_s)} s after${gw.seed.gave_up ? ', SEED GAVE UP (gateway took no connections)' : ''}`);
      reps.push({ ceiling, gateway: gw, ratio });
    }
  } catch (e) {
    dumpLogs(p.stack, { lines: 30 });
    throw e;
  } finally {
    await p.stack.stop();
  }
  results.gateway = reps;
}

async function phaseLatency() {
  log(`latency: open loop at ${opts.rates.join(', ')} votes/s, ${opts.reps} x ${opts.duration} s each`);
  const p = await startPipeline();
  const byRate = [];
  try {
    for (const rate of opts.rates) {
      const runs = [];
      for (let i = 0; i < opts.reps; i++) {
        const r = await pipelineRun(p, { rate, tag: `o${rate}-${i}` });
        log(`  ${rate}/s rep ${i + 1}: accepted ${fmt0(r.seed.accepted_per_s)}/s, unsent ${fmt0(r.seed.unsent)} of ${fmt0(r.seed.offered)}, accept p99 ${fmt2(r.seed.latency_ms.p99)} ms, cast->tally p99 ${fmt(r.cast.p99_ms)} ms, lag max ${r.lag_max}${r.seed.gave_up ? ', SEED GAVE UP' : ''}`);
        runs.push(r);
      }
      byRate.push({ rate, runs });
    }
  } catch (e) {
    dumpLogs(p.stack, { lines: 30 });
    throw e;
  } finally {
    await p.stack.stop();
  }
  results.latency = byRate;
}

async function processorMetric(url, name) {
  const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
  const m = text.match(new RegExp(`^${name} (\\S+)`, 'm'));
  return m ? Number(m[1]) : NaN;
}

async function phaseProcessor() {
  log(`processor: backlog of ${opts.backlog} votes, batch sizes ${opts.batches.join(', ')} (x${opts.reps} at ${opts.defaultBatch})`);
  const stack = await startStack();
  const runs = [];
  try {
    const pub = await runCosted(path.join(BENCH, 'backlog'), ['--url', stack.natsUrl, '--votes', opts.backlog, '--polls', 4, '--recast-share', 0.3]);
    if (pub.code !== 0) throw new Error(`backlog: exit ${pub.code}: ${pub.stderr}`);
    const published = lastJson(pub.stdout);
    log(`  published ${published.published} votes at ${fmt0(published.votes_per_s)}/s`);
    results.backlog = { ...published, cost: pub.cost };
    await stack.psql('CREATE DATABASE ceiling', { db: 'postgres' });
    const ceilingUrl = stack.databaseUrl.replace(/\/tally$/, '/ceiling');
    const plan = [];
    for (const b of opts.batches) for (let i = 0; i < (b === opts.defaultBatch ? opts.reps : 1); i++) plan.push(b);
    let first = true;
    for (const batch of plan) {
      // A fresh start: no consumer (the processor recreates it at the
      // stream's start), empty tables.
      const del = await runCmd(path.join(BENCH, 'backlog'), ['--url', stack.natsUrl, '--delete-consumer', 'processor']);
      if (del.code !== 0) throw new Error(`delete consumer: ${del.stderr}`);
      if (!first) await stack.psql('TRUNCATE votes, tallies');
      first = false;
      await stack.psql('CHECKPOINT');
      const [[lsn0]] = await stack.psql('SELECT pg_current_wal_lsn()');
      const svc = {};
      const groups = stackGroups(stack, {});
      groups.processor = () => (svc.p?.alive ? [svc.p.pid] : []);
      const watch = new ProcWatch(groups);
      const samples = [];
      const t0 = Date.now();
      svc.p = await stack.startProcessor({ LOG_LEVEL: 'warn', ...opts.env.processor, BATCH_MAX: String(batch) });
      const ready = Date.now();
      let start;
      let end;
      for (;;) {
        const info = await consumerInfo(stack).catch(() => undefined);
        const now = Date.now();
        if (info) {
          samples.push({ t: (now - t0) / 1000, lag: info.pending });
          if (start === undefined && info.ackFloor > 0) start = { t: now, seq: info.ackFloor };
          if (info.ackFloor >= published.published && info.pending === 0) { end = now; break; }
        }
        if (!svc.p.alive) break;
        if (now - t0 > Math.max(600, opts.backlog / 1000) * 1000) throw new Error(`processor did not drain ${opts.backlog} votes in time`);
        await sleep(100);
      }
      if (!svc.p.alive || start === undefined) {
        watch.stop();
        const incident = { service: 'processor', where: `drain at BATCH_MAX=${batch}`, exit_code: svc.p.exitCode, log_tail: tailOf(svc.p.log) };
        (results.incidents ||= []).push(incident);
        log(`  INCIDENT: processor exited with ${svc.p.exitCode} during the drain at ${batch}\n${incident.log_tail}`);
        runs.push({ batch, drain_per_s: NaN, ceiling_per_s: NaN, ratio: NaN, failed: true, lag: samples, procs: {} });
        if (svc.p.alive) await svc.p.stop('SIGTERM', { timeoutMs: 20000, quiet: true });
        continue;
      }
      const applied = await processorMetric(svc.p.url, 'tally_processor_votes_total');
      const procs = watch.stop();   // while the processor is still there to read
      await svc.p.stop('SIGTERM', { timeoutMs: 20000, quiet: true });
      // A backlog drained within one sample has no first-to-last span:
      // time it from the processor being ready instead (start-up included).
      const span = end > start.t && start.seq < published.published;
      const drainRate = span ? (published.published - start.seq) / ((end - start.t) / 1000) :
        published.published / (Math.max(1, end - ready) / 1000);
      const rows = await stack.psql(`SELECT count(*), coalesce((SELECT sum(votes) FROM tallies), 0), pg_wal_lsn_diff(pg_current_wal_lsn(), '${lsn0}') FROM votes`);
      const dbc = await runCosted(path.join(BENCH, 'db_ceiling'), ['--conninfo', ceilingUrl, '--votes', opts.backlog,
        '--batch', batch, '--polls', 4, '--recast-share', 0.3, '--reset']);
      if (dbc.code !== 0) throw new Error(`db_ceiling: exit ${dbc.code}: ${dbc.stderr}`);
      const ceiling = lastJson(dbc.stdout);
      procs.db_ceiling = dbc.cost ? { cpu_s: dbc.cost.user_s + dbc.cost.sys_s, peak_rss_kb: dbc.cost.maxrss_kb } : undefined;
      const r = { batch, drain_per_s: drainRate, drain_s: (span ? end - start.t : end - ready) / 1000, applied, rows: Number(rows[0][0]),
        tally_total: Number(rows[0][1]), wal_bytes_per_vote: Number(rows[0][2]) / published.published, voters: published.voters, ceiling_per_s: ceiling.votes_per_s, ratio: drainRate / ceiling.votes_per_s,
        lag: samples, procs };
      log(`  batch ${batch}: processor ${fmt0(drainRate)}/s, DB ceiling ${fmt0(ceiling.votes_per_s)}/s, ratio ${fmt2(r.ratio)}; rows ${r.rows}/${r.voters}`);
      runs.push(r);
    }
  } finally {
    await stack.stop();
  }
  results.processor = runs;
}

async function phaseSse() {
  const n = opts.sseClients;
  log(`sse: ${n} event streams on one reporter, ${opts.sseRounds} updates`);
  const p = await startPipeline({ noGateway: true, reporter: { MAX_CONNECTIONS: String(n + 1000) } });
  try {
    await p.stack.psql("INSERT INTO tallies (poll, option, votes) VALUES ('default', 'a', 0), ('default', 'b', 0) ON CONFLICT DO NOTHING");
    const watch = new ProcWatch({ reporter: () => [p.reporter.pid] });
    const r = await runCosted(path.join(BENCH, 'sse_bench'), ['--port', p.reporter.port, '--clients', n, '--rounds', opts.sseRounds,
      '--conninfo', p.stack.databaseUrl, '--poll', 'default', '--pid', p.reporter.pid], { timeoutMs: 600000 });
    const procs = watch.stop();
    if (r.code !== 0) throw new Error(`sse_bench: exit ${r.code}: ${r.stderr}\n${r.stdout}`);
    const out = r.stdout;
    const open = out.match(/(\d+) of (\d+) streams open with their first tally after ([\d.]+) s/);
    const withStreams = out.match(/reporter with (\d+) streams: VmRSS (\d+) kB \(([-\d.]+) kB per stream\), VmHWM (\d+) kB/);
    const after = out.match(/reporter after: VmRSS (\d+) kB, VmHWM (\d+) kB/);
    const rounds = [...out.matchAll(/round (\d+): total (\d+) reached (\d+)\/(\d+) streams; delay after COMMIT ms: p50 ([-\d.]+) p99 ([-\d.]+) max ([-\d.]+)/g)]
      .map((m) => ({ round: Number(m[1]), reached: Number(m[3]), of: Number(m[4]), p50_ms: Number(m[5]), p99_ms: Number(m[6]), max_ms: Number(m[7]) }));
    const metrics = await (await fetch(`${p.reporter.url}/metrics`)).text();
    results.sse = {
      clients: n, open: open ? Number(open[1]) : 0, open_s: open ? Number(open[3]) : NaN,
      rss_kb: withStreams ? Number(withStreams[2]) : NaN, kb_per_stream: withStreams ? Number(withStreams[3]) : NaN,
      hwm_kb: after ? Number(after[2]) : (withStreams ? Number(withStreams[4]) : NaN),
      rounds, procs: { reporter: procs.reporter, 'SSE clients (sse_bench)': r.cost ? { cpu_s: r.cost.user_s + r.cost.sys_s, peak_rss_kb: r.cost.maxrss_kb } : undefined },
      reporter_metrics: metrics.split('\n').filter((l) => /^tally_reporter_sse_/.test(l)),
      raw: out,
    };
    log(`  ${results.sse.open}/${n} open, worst round max ${fmt(Math.max(...rounds.map((x) => x.max_ms)))} ms, reporter VmHWM ${results.sse.hwm_kb} kB`);
  } catch (e) {
    dumpLogs(p.stack, { lines: 30 });
    throw e;
  } finally {
    await p.stack.stop();
  }
}

// ---------------------------------------------------------------------------
// Machine description

function sh(cmd, args) {
  try { return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim(); } catch (e) { return (e.stdout || e.stderr || '').toString().trim() || 'n/a'; }
}

function machine() {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const model = (cpuinfo.match(/^model name\s*:\s*(.*)$/m) || [])[1] || 'unknown';
  const pgBin = fs.readdirSync('/usr/lib/postgresql').sort().reverse()[0];
  return {
    cpus: os.cpus().length, model, mem_gib: os.totalmem() / 2 ** 30, kernel: `${os.type()} ${os.release()}`,
    nats: sh('nats-server', ['--version']), redis: sh('redis-server', ['--version']).split(' ').slice(0, 3).join(' '),
    postgres: sh(`/usr/lib/postgresql/${pgBin}/bin/postgres`, ['--version']),
    libnats: sh('pkg-config', ['--modversion', 'libnats']), libmicrohttpd: sh('pkg-config', ['--modversion', 'libmicrohttpd']),
    node: process.version, loadavg: os.loadavg(),
    build: sh('sh', ['-c', `grep -m1 CMAKE_BUILD_TYPE:STRING ${path.join(BIN, '..', 'CMakeCache.txt')} | cut -d= -f2`]),
  };
}

// ---------------------------------------------------------------------------
// Plots (gnuplot)

function plot(name, script) {
  const gp = path.join(work, `${name}.gp`);
  fs.writeFileSync(gp, `set terminal png size 900,480 font ",10" noenhanced\nset output '${path.join(opts.out, name)}.png'\nset grid\nset key inside top right\n${script}\n`);
  try { execFileSync('gnuplot', [gp], { stdio: ['ignore', 'ignore', 'pipe'] }); return `${name}.png`; } catch (e) {
    log(`gnuplot ${name}: ${e.message}`);
    return undefined;
  }
}

function dat(name, rows) {
  const f = path.join(work, `${name}.dat`);
  fs.writeFileSync(f, rows.map((r) => r.join(' ')).join('\n') + '\n');
  return f;
}

function makePlots() {
  const plots = {};
  const series = [];
  for (const [i, r] of (results.gateway || []).entries()) series.push({ title: `closed loop rep ${i + 1}`, lag: r.gateway.lag });
  for (const g of results.latency || []) for (const [i, r] of g.runs.entries()) series.push({ title: `${g.rate}/s rep ${i + 1}`, lag: r.lag });
  if (series.length) {
    const lines = series.map((s, i) => `'${dat(`lag${i}`, s.lag.map((x) => [x.t, x.lag]))}' using 1:2 with lines lw 2 title '${s.title}'`);
    plots.lag = plot('lag', `set title 'Processor lag under load (messages not yet acked), sampled every 1 s'\nset xlabel 'seconds into the run'\nset ylabel 'messages'\nplot ${lines.join(', ')}`);
  }
  if (results.processor?.length) {
    const by = new Map();
    for (const r of results.processor) {
      if (!by.has(r.batch)) by.set(r.batch, { d: [], c: [] });
      by.get(r.batch).d.push(r.drain_per_s);
      by.get(r.batch).c.push(r.ceiling_per_s);
    }
    const f = dat('batch', [...by.entries()].map(([b, v]) => [b, median(v.d), median(v.c)]));
    plots.batch = plot('batch', `set title 'Drain rate of a ${results.backlog?.published} vote backlog by batch size (synchronous_commit on)'\nset xlabel 'BATCH_MAX (log scale)'\nset ylabel 'votes/s'\nset logscale x\nset yrange [0:*]\nplot '${f}' using 1:2 with linespoints lw 2 pt 7 title 'processor', '${f}' using 1:3 with linespoints lw 2 pt 5 title 'DB ceiling (same SQL, no NATS)'`);
    const d = results.processor.filter((r) => r.batch === opts.defaultBatch);
    const lines = d.map((r, i) => `'${dat(`drain${i}`, r.lag.map((x) => [x.t, x.lag]))}' using 1:2 with lines lw 2 title 'rep ${i + 1}'`);
    plots.drain = plot('drain', `set title 'Backlog drain at BATCH_MAX=${opts.defaultBatch}: messages left'\nset xlabel 'seconds after the processor started'\nset ylabel 'messages'\nplot ${lines.join(', ')}`);
  }
  const cast = [];
  for (const g of results.latency || []) {
    const all = g.runs.flatMap((r) => r.cast.samples_ms).sort((a, b) => a - b);
    if (all.length) cast.push({ title: `${g.rate}/s`, rows: all.map((v, i) => [v, (i + 1) / all.length]) });
  }
  for (const [i, r] of (results.gateway || []).entries()) {
    const all = [...r.gateway.cast.samples_ms].sort((a, b) => a - b);
    if (all.length && i === 0) cast.push({ title: 'closed loop (max load)', rows: all.map((v, j) => [v, (j + 1) / all.length]) });
  }
  if (cast.length) {
    const lines = cast.map((c, i) => `'${dat(`cast${i}`, c.rows)}' using 1:2 with steps lw 2 title '${c.title}'`);
    plots.cast = plot('cast', `set title 'cast -> visible in the tally (SSE), cumulative share of probes'\nset xlabel 'ms (log scale)'\nset ylabel 'share'\nset logscale x\nset yrange [0:1.02]\nplot ${lines.join(', ')}`);
  }
  return plots;
}

// ---------------------------------------------------------------------------
// The report

function targetRow(what, target, value, ok, note = '') {
  const status = ok === undefined ? 'not measured' : ok ? '**met**' : '**missed**';
  return `| ${what} | ${target} | ${value} | ${status} | ${note} |`;
}

function procTable(procs) {
  const rows = ['| process | CPU seconds | peak RSS (MiB) |', '| --- | ---: | ---: |'];
  for (const [name, v] of Object.entries(procs)) if (v) rows.push(`| ${name} | ${fmt2(v.cpu_s)} | ${fmt(v.peak_rss_kb / 1024)} |`);
  return rows.join('\n');
}

function report(plots) {
  const m = results.machine;
  const L = [];
  L.push('# tally benchmark report', '');
  L.push(`Run ${results.started} → ${results.finished}; mode ${opts.quick ? '`--quick`' : 'full'}; ` +
    `${opts.reps} repetition(s); load runs of ${opts.duration} s; phases: ${opts.only.join(', ')}.` +
    Object.entries(opts.env).filter(([, e]) => Object.keys(e).length).map(([k, e]) => ` ${k} settings: ${Object.entries(e).map(([x, y]) => `${x}=${y}`).join(' ')}.`).join(''), '');
  L.push('## Machine', '');
  L.push(`- ${m.cpus} CPUs: ${m.model}; ${fmt(m.mem_gib)} GiB memory; ${m.kernel}`);
  L.push(`- ${m.nats}; ${m.redis}; ${m.postgres}; libnats ${m.libnats}; libmicrohttpd ${m.libmicrohttpd}; Node ${m.node}; build type ${m.build}`);
  L.push(`- load average before: ${m.loadavg.map((x) => fmt2(x)).join(' / ')}; after: ${results.loadavg_after.map((x) => fmt2(x)).join(' / ')} (1/5/15 min). ` +
    'Everything (stores, services, load generator) shares these cores; other work on the machine shows up in this figure.', '');

  // --- targets
  const gw = results.gateway || [];
  const lat = results.latency || [];
  const gwRate = median(gw.map((r) => r.gateway.seed.accepted_per_s));
  const ratio = median(gw.map((r) => r.ratio));
  const at = (rate) => lat.find((g) => g.rate === rate);
  const l40 = at(40000) || lat[lat.length - 1];
  const l10 = at(10000) || lat[0];
  const proc = results.processor || [];
  const pDef = proc.filter((r) => r.batch === opts.defaultBatch);
  const drain = median(pDef.map((r) => r.drain_per_s));
  const bestDrain = maxOf(proc.map((r) => r.drain_per_s));
  const pRatio = median(pDef.map((r) => r.ratio));
  const allRuns = [...gw.map((r) => r.gateway), ...lat.flatMap((g) => g.runs)];
  const rss = (name) => maxOf(allRuns.map((r) => r.procs[name]?.peak_rss_kb)) / 1024;
  const procRss = maxOf([rss('processor'), ...proc.map((r) => r.procs.processor?.peak_rss_kb / 1024)]);
  const sse = results.sse;
  const sseMax = sse ? maxOf(sse.rounds.map((r) => r.max_ms)) : NaN;
  const sseAll = sse ? sse.rounds.every((r) => r.reached === sse.clients) : undefined;
  const l40p99 = l40 ? median(l40.runs.map((r) => r.seed.latency_ms.p99)) : NaN;
  const l40rate = l40 ? median(l40.runs.map((r) => r.seed.accepted_per_s)) : NaN;
  const l40unsent = l40 ? median(l40.runs.map((r) => r.seed.unsent)) : NaN;
  const l10cast = l10 ? median(l10.runs.map((r) => r.cast.p99_ms)) : NaN;
  // Kept up: the lag at the end is small, it does not trend upwards (by
  // more than 1 % of the rate), and it clears once the load stops.
  const bounded = (runs) => runs.every((r) => Number.isFinite(r.drain_after_s) &&
    r.lag_tail_median <= Math.max(20000, r.seed.accepted_per_s * 2) &&
    !(r.lag_slope_per_s > Math.max(50, r.seed.accepted_per_s * 0.01)));

  L.push('## Targets', '');
  L.push('Medians over the repetitions. "met" compares the median with the target.', '');
  L.push('| target | wanted | measured (median) | status | notes |', '| --- | --- | --- | --- | --- |');
  L.push(targetRow('accepted votes/s, closed loop, each after its PubAck', '≥ 40,000', fmt0(gwRate), gw.length ? gwRate >= 40000 : undefined,
    gw.length ? `processor kept up: ${bounded(gw.map((r) => r.gateway)) ? 'yes' : 'no'} (lag at end ${gw.map((r) => fmt0(r.gateway.lag_end)).join(', ')}; lag trend ${gw.map((r) => fmt(r.gateway.lag_slope_per_s)).join(', ')} votes/s; drained ${gw.map((r) => fmt(r.gateway.drain_after_s)).join(', ')} s after the load stopped)` : ''));
  L.push(targetRow(`p99 accept at ${l40 ? l40.rate : 'n/a'} votes/s (open loop)`, '< 10 ms', `${fmt2(l40p99)} ms at ${fmt0(l40rate)} accepted/s`,
    l40 ? l40p99 < 10 && l40rate >= 0.97 * l40.rate : undefined,
    l40 && l40rate < 0.97 * l40.rate ? `the offered rate was not reached (median ${fmt0(l40unsent)} casts due but never sent)` : ''));
  L.push(targetRow(`p99 cast → tally at ${l10 ? l10.rate : 'n/a'} votes/s`, '< 100 ms', `${fmt(l10cast)} ms`, l10 ? l10cast < 100 : undefined,
    'probe votes on a quiet poll, seen on the reporter\'s SSE stream'));
  L.push(targetRow('gateway / HTTP ceiling (same client, same concurrency)', '≥ 0.35', fmt2(ratio), gw.length ? ratio >= 0.35 : undefined,
    gw.length ? `ceiling median ${fmt0(median(gw.map((r) => r.ceiling.seed.accepted_per_s)))}/s` : ''));
  L.push(targetRow(`processor drain of ${results.backlog?.published ?? 'n/a'} votes, BATCH_MAX=${opts.defaultBatch}`, '≥ 100,000/s', `${fmt0(drain)}/s (best batch size: ${fmt0(bestDrain)}/s)`,
    pDef.length ? drain >= 100000 : undefined, 'synchronous_commit on'));
  L.push(targetRow('processor / DB ceiling', '≥ 0.8', fmt2(pRatio), pDef.length ? pRatio >= 0.8 : undefined,
    pDef.length ? `DB ceiling median ${fmt0(median(pDef.map((r) => r.ceiling_per_s)))}/s` : ''));
  L.push(targetRow('gateway peak RSS at full load', '≤ 64 MiB', `${fmt(rss('gateway'))} MiB`, allRuns.length ? rss('gateway') <= 64 : undefined));
  L.push(targetRow('processor peak RSS', '≤ 128 MiB', `${fmt(procRss)} MiB`, Number.isFinite(procRss) ? procRss <= 128 : undefined));
  L.push(targetRow(`SSE: ${sse?.clients ?? 'n/a'} clients, every update within 250 ms`, 'all ≤ 250 ms', `worst ${fmt(sseMax)} ms; every stream got every update: ${sseAll ? 'yes' : 'no'}`,
    sse ? sseAll && sseMax <= 250 && sse.clients >= 10000 : undefined, sse && sse.clients < 10000 ? 'fewer clients than the target' : ''));
  L.push(targetRow('reporter RSS with the SSE clients', '≤ 256 MiB', `${fmt((sse?.hwm_kb ?? NaN) / 1024)} MiB`, sse ? sse.hwm_kb / 1024 <= 256 : undefined));
  L.push('');

  if (gw.length) {
    L.push('## Gateway against the HTTP ceiling (closed loop)', '');
    L.push(`\`tallyctl seed --api json --polls ${POLLS.join(',')} --concurrency ${opts.concurrency} --threads ${opts.seedThreads} --change-share 0.2 --duplicate-share 0.05 --duration ${opts.duration}\`: ` +
      'new voters, 20 % vote changes, 5 % exact repeats (same Idempotency-Key), three polls. The same command is pointed at `bench/http_ceiling` ' +
      `(libmicrohttpd, same daemon settings, ${opts.httpThreads} threads) and at the gateway (HTTP_THREADS=${opts.httpThreads}, LOG_LEVEL=warn) with the processor and reporter running.`, '');
    L.push('| rep | ceiling votes/s | gateway accepted/s | ratio | accept p50 / p99 / p99.9 ms | cast→tally p50 / p99 ms | 2xx→tally p50 / p99 ms | lag max / at end | drained after |',
      '| --- | ---: | ---: | ---: | --- | --- | --- | --- | ---: |');
    for (const [i, r] of gw.entries()) {
      const g = r.gateway;
      L.push(`| ${i + 1} | ${fmt0(r.ceiling.seed.accepted_per_s)} | ${fmt0(g.seed.accepted_per_s)} | ${fmt2(r.ratio)} | ${fmt2(g.seed.latency_ms.p50)} / ${fmt2(g.seed.latency_ms.p99)} / ${fmt2(g.seed.latency_ms.p999)} | ` +
        `${fmt(g.cast.p50_ms)} / ${fmt(g.cast.p99_ms)} (${g.cast.seen}/${g.cast.probes}) | ${fmt(g.cast.after_ack_p50_ms)} / ${fmt(g.cast.after_ack_p99_ms)} | ${fmt0(g.lag_max)} / ${fmt0(g.lag_end)} | ${fmt(g.drain_after_s)} s |`);
    }
    L.push(`| **median** | ${fmt0(median(gw.map((r) => r.ceiling.seed.accepted_per_s)))} | ${fmt0(gwRate)} | ${fmt2(ratio)} | ${fmt2(median(gw.map((r) => r.gateway.seed.latency_ms.p50)))} / ${fmt2(median(gw.map((r) => r.gateway.seed.latency_ms.p99)))} / | ${fmt(median(gw.map((r) => r.gateway.cast.p50_ms)))} / ${fmt(median(gw.map((r) => r.gateway.cast.p99_ms)))} | ${fmt(median(gw.map((r) => r.gateway.cast.after_ack_p50_ms)))} / ${fmt(median(gw.map((r) => r.gateway.cast.after_ack_p99_ms)))} | | |`, '');
    const statuses = gw.map((r) => JSON.stringify(r.gateway.seed.status)).join('; ');
    const gaveUp = gw.flatMap((r, i) => (r.gateway.seed.gave_up ? [i + 1] : []));
    L.push(`Answers by status per rep: ${statuses}. Transport errors: ${gw.map((r) => r.gateway.seed.errors).join(', ')}.` +
      (gaveUp.length ? ` **The load generator gave up** (the gateway took no connections) in rep ${gaveUp.join(', ')}: those runs were cut short.` : ''), '');
    L.push('CPU and memory, first repetition (gateway run; CPU seconds over the run):', '', procTable(gw[0].gateway.procs), '');
    L.push('HTTP ceiling run, first repetition:', '', procTable(gw[0].ceiling.procs), '');
  }

  if (lat.length) {
    L.push('## Open loop: latency at a fixed rate', '');
    L.push('`tallyctl seed --rate R` (same voters and polls): latency counts from each cast\'s due time, so a stall shows up in full; it counts the 2xx answers only. ' +
      'unsent: casts due before the end that the generator never sent, because every connection was still waiting for an answer; they are in no latency figure, ' +
      'so a non-zero count means the offered rate was not applied in full and the percentiles understate the wait. ' +
      'cast → tally: a probe vote every 200 ms on the quiet poll `probe`, timed from sending the POST to the new total arriving on the reporter\'s event stream; ' +
      '2xx → tally: from its 2xx answer to the same event (processor, PostgreSQL, NOTIFY and reporter only).', '');
    L.push('| offered/s | rep | accepted/s | unsent / offered | accept p50 / p99 / p99.9 / max ms | cast→tally p50 / p99 / max ms (seen/sent) | 2xx→tally p50 / p99 ms | lag max / at end | drained after |',
      '| ---: | --- | ---: | ---: | --- | --- | --- | --- | ---: |');
    for (const g of lat) {
      for (const [i, r] of g.runs.entries()) {
        const l = r.seed.latency_ms;
        L.push(`| ${fmt0(g.rate)} | ${i + 1} | ${fmt0(r.seed.accepted_per_s)} | ${fmt0(r.seed.unsent)} / ${fmt0(r.seed.offered)}${r.seed.gave_up ? ' (gave up)' : ''} | ${fmt2(l.p50)} / ${fmt2(l.p99)} / ${fmt2(l.p999)} / ${fmt(l.max)} | ${fmt(r.cast.p50_ms)} / ${fmt(r.cast.p99_ms)} / ${fmt(r.cast.max_ms)} (${r.cast.seen}/${r.cast.probes}) | ${fmt(r.cast.after_ack_p50_ms)} / ${fmt(r.cast.after_ack_p99_ms)} | ${fmt0(r.lag_max)} / ${fmt0(r.lag_end)} | ${fmt(r.drain_after_s)} s |`);
      }
      L.push(`| ${fmt0(g.rate)} | **median** | ${fmt0(median(g.runs.map((r) => r.seed.accepted_per_s)))} | ${fmt0(median(g.runs.map((r) => r.seed.unsent)))} / – | – / ${fmt2(median(g.runs.map((r) => r.seed.latency_ms.p99)))} / – / – | – / ${fmt(median(g.runs.map((r) => r.cast.p99_ms)))} / – | – / ${fmt(median(g.runs.map((r) => r.cast.after_ack_p99_ms)))} | | |`);
    }
    L.push('');
    const last = lat[lat.length - 1].runs[0];
    L.push(`CPU and memory at ${lat[lat.length - 1].rate}/s, first repetition:`, '', procTable(last.procs), '');
  }
  if (plots.lag) L.push('### Processor lag over time', '', `![processor lag](${plots.lag})`, '');
  if (plots.cast) L.push('### cast → tally', '', `![cast to tally](${plots.cast})`, '');

  if (proc.length) {
    L.push('## Processor drain against the database ceiling', '');
    const b = results.backlog;
    L.push(`\`bench/backlog\` published ${b.published} votes (${b.voters} voters over 4 polls, 30 % re-casts by earlier voters) straight into JetStream at ${fmt0(b.votes_per_s)}/s. ` +
      'For each run the durable consumer is deleted and the tables emptied; the processor then starts with `BATCH_MAX` set and drains the stream from its first message. ' +
      'Its rate is counted from the first ack to the last (JetStream\'s ack floor, sampled every 100 ms). `bench/db_ceiling` then applies the same casts with the processor\'s own store code ' +
      '(the same statement, same batch size, one transaction per batch, `synchronous_commit` on) with no NATS at all: the database ceiling.', '');
    L.push('| BATCH_MAX | processor votes/s | DB ceiling votes/s | ratio | drain s | rows / voters | tally total | WAL bytes per vote | processor CPU s | processor peak RSS MiB | postgres CPU s |',
      '| ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |');
    for (const r of proc) {
      if (r.failed) { L.push(`| ${r.batch} | processor died (see Incidents) | | | | | | | | | |`); continue; }
      L.push(`| ${r.batch} | ${fmt0(r.drain_per_s)} | ${fmt0(r.ceiling_per_s)} | ${fmt2(r.ratio)} | ${fmt(r.drain_s)} | ${r.rows} / ${r.voters} | ${r.tally_total} | ${fmt0(r.wal_bytes_per_vote)} | ${fmt2(r.procs.processor?.cpu_s)} | ${fmt(r.procs.processor?.peak_rss_kb / 1024)} | ${fmt2(r.procs.postgres?.cpu_s)} |`);
    }
    L.push(`| **median @${opts.defaultBatch}** | ${fmt0(drain)} | ${fmt0(median(pDef.map((r) => r.ceiling_per_s)))} | ${fmt2(pRatio)} | | | | | | | |`, '');
    if (plots.batch) L.push(`![batch size curve](${plots.batch})`, '');
    if (plots.drain) L.push(`![backlog drain](${plots.drain})`, '');
    L.push(`CPU and memory during the drain at BATCH_MAX=${opts.defaultBatch}, first repetition (db_ceiling: its own run):`, '', procTable(pDef[0]?.procs || proc[0].procs), '');
  }

  if (sse) {
    L.push('## Server-Sent Events: many clients on one reporter', '');
    L.push(`\`bench/sse/sse_bench\` opens ${sse.clients} event streams (one epoll loop), then ${sse.rounds.length} times commits a tally change with NOTIFY, exactly as the processor does, ` +
      'and times each stream from the COMMIT returning to the new total arriving.', '');
    L.push(`- ${sse.open} of ${sse.clients} streams open with their first tally after ${fmt2(sse.open_s)} s`);
    L.push(`- reporter VmRSS with the streams open: ${fmt(sse.rss_kb / 1024)} MiB (${fmt2(sse.kb_per_stream)} kB per stream); VmHWM ${fmt(sse.hwm_kb / 1024)} MiB`, '');
    L.push('| round | streams reached | p50 ms | p99 ms | max ms |', '| ---: | ---: | ---: | ---: | ---: |');
    for (const r of sse.rounds) L.push(`| ${r.round} | ${r.reached}/${r.of} | ${fmt(r.p50_ms)} | ${fmt(r.p99_ms)} | ${fmt(r.max_ms)} |`);
    const within = sse.rounds.every((r) => r.max_ms <= 250) ? '100 %' : sse.rounds.every((r) => r.p99_ms <= 250) ? '≥ 99 %' : '< 99 % in some round';
    L.push('', `Share of deliveries within 250 ms: ${within}.`, '', procTable(sse.procs), '');
  }

  // --- CPU per vote: the input of docs/SCALING.md's capacity model
  const cols = [];
  if (gw.length) cols.push({ title: 'closed loop', runs: gw.map((r) => ({ procs: r.gateway.procs, votes: r.gateway.seed.accepted })) });
  for (const g of lat) cols.push({ title: `${g.rate}/s`, runs: g.runs.map((r) => ({ procs: r.procs, votes: r.seed.accepted })) });
  if (pDef.length) cols.push({ title: `drain @${opts.defaultBatch}`, runs: pDef.map((r) => ({ procs: r.procs, votes: results.backlog.published })) });
  if (cols.length) {
    const names = [...new Set(cols.flatMap((c) => c.runs.flatMap((r) => Object.keys(r.procs))))];
    L.push('## CPU cost per vote', '', 'CPU microseconds (user + system) per accepted vote, median over the repetitions: the per-core capacity of each part is 1,000,000 / this figure (docs/SCALING.md).', '');
    L.push(`| process | ${cols.map((c) => c.title).join(' | ')} |`, `| --- | ${cols.map(() => '---:').join(' | ')} |`);
    for (const n of names) {
      const cells = cols.map((c) => fmt(median(c.runs.map((r) => (r.procs[n] && r.votes ? (r.procs[n].cpu_s * 1e6) / r.votes : NaN)))));
      L.push(`| ${n} | ${cells.join(' | ')} |`);
    }
    L.push('');
  }

  L.push('## Incidents', '');
  if (!(results.incidents || []).length) L.push('None: no service exited during the benchmark.', '');
  for (const i of results.incidents || []) {
    L.push(`- **${i.service}** exited with status ${i.exit_code} during ${i.where}; it was restarted with the same settings. End of its log:`, '', '```', i.log_tail, '```', '');
  }

  L.push('## How to reproduce', '', '```', `scripts/bench${opts.quick ? ' --quick' : ''}${opts.only.length < PHASES.length ? ` --only ${opts.only.join(',')}` : ''}`, '```', '',
    'Raw figures, every sample included: `results.json` next to this file.', '');
  return L.join('\n');
}

// ---------------------------------------------------------------------------

async function main() {
  results.machine = machine();
  log(`out: ${opts.out}; binaries ${BIN}; helpers ${BENCH}; load average ${results.machine.loadavg.map((x) => x.toFixed(2)).join(' ')}`);
  const phases = { gateway: phaseGateway, latency: phaseLatency, processor: phaseProcessor, sse: phaseSse };
  for (const p of PHASES) if (opts.only.includes(p)) await phases[p]();
  results.finished = new Date().toISOString();
  results.loadavg_after = os.loadavg();
  const plots = makePlots();
  const md = report(plots);
  fs.writeFileSync(path.join(opts.out, 'report.md'), md);
  fs.writeFileSync(path.join(opts.out, 'results.json'), JSON.stringify(results, null, 1));
  process.stdout.write(md + '\n');
  log(`report: ${path.join(opts.out, 'report.md')}`);
}

try {
  await main();
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
