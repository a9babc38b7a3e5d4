// Drain benchmark of tally-processor: publishes a backlog of N votes into
// stream VOTES once (bench/backlog: votegen casts, 4 polls, 30% re-casts),
// then, for each setting, empties votes and tallies, deletes the consumer,
// starts one processor and times how fast it drains the backlog
// (synchronous_commit on: PostgreSQL as the test harness starts it).
//
//   TALLY_BIN_DIR=build/bin node bench/processor_drain.mjs \
//     [--votes 300000] [--batches 100,500,1000,2000,5000] [--stores 1,2] [--reps 1]
//     [--env KEY=VALUE ...]   (more processor settings, e.g. FETCH_INTERVAL_MS=0)
//     [--pg name=value ...]   (PostgreSQL server settings, e.g. shared_buffers=1GB)
//     [--backlog PATH]        (bench/backlog; default <TALLY_BIN_DIR>/../bench/backlog)
//     [--max-s 300]           (longest wait for one drain, in s)
//
// The rate is measured between the first ack and the last one (read from
// the consumer's ack floor every 100 ms), so start-up is not counted.
// cpu_us is the CPU (user + system) each part spent per vote over the
// whole run, start-up included: nats-server, PostgreSQL (the postmaster's
// tree) and the processor. cpus is what the whole machine's CPUs did
// between the first ack and the last (busy, idle + iowait, steal shares),
// with busy_us, the machine's busy CPU per vote drained, and at_full_busy,
// the rate the same work would give with no CPU idle (CPUs x 1e6 /
// busy_us): the bound of this machine for that setting.
// Prints one line per run and, at the end, the median per setting as JSON.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { startStack, binDir, descendants } from '../tests/system/harness.mjs';
import * as S from '../tests/system/processor_support.mjs';
import { CLK_TCK, cliArgs, readProc } from './common.mjs';

const { args, opt, env: extraEnv } = cliArgs(import.meta.url);
const votes = Number(opt('votes', 300000));
const batches = opt('batches', '100,500,1000,2000,5000').split(',').map(Number);
const storesList = opt('stores', '1,2').split(',').map(Number);
const reps = Number(opt('reps', 1));
const backlogBin = opt('backlog', path.join(binDir(), '..', 'bench', 'backlog'));
if (!fs.existsSync(backlogBin)) throw new Error(`${backlogBin} missing: build target backlog, or pass --backlog PATH`);

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const ticks = (pid) => readProc(pid)?.ticks ?? 0;
const machine = () => {   // [busy, idle + iowait, steal] ticks of all CPUs
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return [f[0] + f[1] + f[2] + f[5] + f[6], f[3] + f[4], f[7]];
};

const pgSettings = args.flatMap((a, i) => (a === '--pg' ? [args[i + 1]] : []));
const stack = await startStack({ pgSettings });
let nats;
try {
  const pub = spawnSync(backlogBin, ['--url', stack.natsUrl, '--votes', String(votes), '--polls', '4', '--recast-share', '0.3'],
    { encoding: 'utf8' });
  if (pub.status !== 0) throw new Error(`backlog failed: ${pub.stderr}`);
  console.log(`published: ${pub.stdout.trim()}`);
  nats = await S.natsClient(stack.natsUrl);
  const last = (await nats.jsm.streams.info('VOTES')).state.last_seq;
  const results = [];
  for (const stores of storesList) {
    for (const batch of batches) {
      for (let rep = 0; rep < reps; rep++) {
        await nats.jsm.consumers.delete('VOTES', 'processor').catch(() => {});
        await stack.psql('TRUNCATE votes, tallies').catch(() => {});
        await stack.psql('CHECKPOINT');
        // Every PostgreSQL process by pid (a backend first seen at the end
        // counts from 0), and the postmaster's reaped children (autovacuum).
        const pgTicks = () => new Map([...descendants(stack.pg.pid).map((pid) => [pid, ticks(pid)]),
          [stack.pg.pid, ticks(stack.pg.pid) + (readProc(stack.pg.pid)?.reaped ?? 0)]]);
        const before = { nats: ticks(stack.nats.pid), pg: pgTicks() };
        const p = await stack.startProcessor({
          LOG_LEVEL: 'warn', BATCH_MAX: String(batch), STORE_CONNECTIONS: String(stores),
          MAX_ACK_PENDING: String(Math.max(20000, batch * (stores + 2) * 2)), ...extraEnv,
        });
        let start;
        let end;
        let endMachine;
        const t0 = Date.now();
        for (;;) {
          const ci = await nats.jsm.consumers.info('VOTES', 'processor').catch(() => undefined);
          const now = Date.now();
          if (ci) {
            const acked = ci.ack_floor.stream_seq;
            if (start === undefined && acked > 0) start = { t: now, seq: acked, machine: machine() };
            if (acked >= last && ci.num_pending === 0 && ci.num_ack_pending === 0) { end = now; endMachine = machine(); break; }
          }
          if (now - t0 > Number(opt('max-s', 300)) * 1000) { console.log(JSON.stringify(ci)); throw new Error('no drain in time'); }
          await sleep(100);
        }
        const after = { nats: ticks(stack.nats.pid), pg: pgTicks(), processor: ticks(p.pid) };
        await p.stop('SIGTERM');
        let pgSpent = 0;
        for (const [pid, t] of after.pg) pgSpent += t - (before.pg.get(pid) ?? 0);
        const perVote = (t) => Math.round(((t / CLK_TCK) * 1e7) / last) / 10;
        // The machine's CPUs between the first ack and the last.
        const [busy, idle, steal] = endMachine.map((t, i) => t - start.machine[i]);
        const share = (t) => Math.round((t / (busy + idle + steal)) * 100) / 100;
        const cpu_us = { nats: perVote(after.nats - before.nats), postgres: perVote(pgSpent), processor: perVote(after.processor) };
        const busyUs = ((busy / CLK_TCK) * 1e6) / (last - start.seq);
        const cpus = { busy: share(busy), idle: share(idle), steal: share(steal),
          busy_us: Math.round(busyUs * 10) / 10, at_full_busy: Math.round((os.cpus().length * 1e6) / busyUs) };
        const rows = await stack.psql('SELECT count(*), (SELECT sum(votes) FROM tallies) FROM votes');
        const rate = (last - start.seq) / ((end - start.t) / 1000);
        const r = { stores, batch, rate: Math.round(rate), seconds: (end - start.t) / 1000, rows: Number(rows[0][0]), cpu_us, cpus };
        if (Number(rows[0][0]) !== Number(rows[0][1])) throw new Error(`tallies ${rows[0][1]} != rows ${rows[0][0]}`);
        console.log(JSON.stringify(r));
        results.push(r);
      }
    }
  }
  const summary = [];
  for (const stores of storesList) {
    for (const batch of batches) {
      const rs = results.filter((r) => r.stores === stores && r.batch === batch).map((r) => r.rate);
      summary.push({ stores, batch, median: median(rs), runs: rs });
    }
  }
  console.log(JSON.stringify({ votes: last, summary }, null, 1));
} finally {
  if (nats) await nats.close();
  await stack.stop();
}
