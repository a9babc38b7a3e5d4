// The benchmark driver end to end at toy sizes: every phase runs against the
// real pipeline, and the report comes out with every section, its plots and
// figures that make sense (counts that add up, rates above zero). It checks
// the tooling, not the speed: timing belongs to scripts/bench itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { binDir, repoRoot } from './harness.mjs';

const benchDir = process.env.TALLY_BENCH_DIR || path.join(binDir(), '..', 'bench');

function hasGnuplot() {
  try { execFileSync('gnuplot', ['--version'], { stdio: 'ignore' }); return true; } catch { return false; }
}

function run(args, timeoutMs) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [path.join(repoRoot, 'bench', 'run.mjs'), ...args], {
      env: { ...process.env, TALLY_BIN_DIR: binDir(), TALLY_BENCH_DIR: benchDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => p.kill('SIGTERM'), timeoutMs);
    p.on('error', reject);
    p.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

test('bench/run.mjs produces a complete report at toy sizes', { timeout: 150000, skip: !hasGnuplot() && 'gnuplot not installed (scripts/deps --test)' }, async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-bench-smoke-'));
  try {
    const r = await run(['--quick', '--reps', '1', '--duration', '2', '--rates', '1000', '--concurrency', '8',
      '--backlog', '3000', '--batches', '100,1000', '--sse-clients', '50', '--sse-rounds', '2', '--drain-wait', '30',
      '--out', out], 140000);
    assert.equal(r.code, 0, `bench exited ${r.code}\n${r.stderr.slice(-4000)}`);

    const md = fs.readFileSync(path.join(out, 'report.md'), 'utf8');
    assert.equal(r.stdout.trim(), md.trim(), 'the report printed is the report written');
    for (const h of ['# tally benchmark report', '## Machine', '## Targets', '## Gateway against the HTTP ceiling (closed loop)',
      '## Open loop: latency at a fixed rate', '### Processor lag over time', '### cast → tally',
      '## Processor drain against the database ceiling', '## Server-Sent Events: many clients on one reporter', '## CPU cost per vote',
      '## Incidents', '## How to reproduce']) {
      assert.ok(md.includes(`${h}\n`), `report lacks section "${h}"`);
    }
    for (const png of ['lag.png', 'cast.png', 'batch.png', 'drain.png']) {
      const b = fs.readFileSync(path.join(out, png));
      assert.ok(b.length > 1000 && b.subarray(1, 4).toString() === 'PNG', `${png} is a PNG`);
      assert.ok(md.includes(`](${png})`), `report links ${png}`);
    }
    // Every target has a row with a status.
    const targets = md.split('## Targets')[1].split('\n## ')[0].split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| target') && !l.startsWith('| ---'));
    assert.equal(targets.length, 10, targets.join('\n'));
    for (const l of targets) assert.match(l, /\*\*(met|missed)\*\*/, l);

    const res = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
    assert.deepEqual(res.incidents || [], [], 'no service died during the run');
    assert.equal(res.machine.cpus, os.cpus().length);

    const [g] = res.gateway;
    assert.ok(g.ceiling.seed.accepted_per_s > 0 && g.gateway.seed.accepted_per_s > 0);
    assert.equal(g.gateway.seed.errors, 0, 'no transport errors against the gateway');
    assert.ok(Math.abs(g.ratio - g.gateway.seed.accepted_per_s / g.ceiling.seed.accepted_per_s) < 1e-9);
    assert.ok(g.gateway.lag.length >= 2, 'lag sampled every second');
    assert.ok(Number.isFinite(g.gateway.drain_after_s), 'the processor caught up after the load');
    assert.ok(g.gateway.cast.seen > 0 && g.gateway.cast.p99_ms > 0, 'cast -> tally measured');
    for (const name of ['gateway', 'processor', 'reporter', 'nats-server', 'redis-server', 'postgres', 'load generator']) {
      const p = g.gateway.procs[name];
      assert.ok(p && p.cpu_s >= 0 && p.peak_rss_kb > 0, `CPU and RSS of ${name}: ${JSON.stringify(p)}`);
    }
    assert.ok(g.gateway.procs.gateway.cpu_s > 0, 'the gateway did work');

    const [lat] = res.latency;
    assert.equal(lat.rate, 1000);
    assert.ok(lat.runs[0].seed.accepted_per_s > 500, `open loop near its rate: ${lat.runs[0].seed.accepted_per_s}`);
    assert.ok(lat.runs[0].cast.seen > 0);

    assert.equal(res.backlog.published, 3000);
    assert.deepEqual(res.processor.map((p) => p.batch), [100, 1000]);
    for (const p of res.processor) {
      // Exactly each voter's latest cast: one row per voter, tallies sum to it.
      assert.equal(p.rows, res.backlog.voters, `batch ${p.batch}: rows`);
      assert.equal(p.tally_total, res.backlog.voters, `batch ${p.batch}: tally total`);
      assert.ok(p.drain_per_s > 0 && p.ceiling_per_s > 0);
      assert.ok(p.procs.processor.peak_rss_kb > 0, 'processor sampled while it ran');
    }

    assert.equal(res.sse.clients, 50);
    assert.equal(res.sse.open, 50);
    assert.equal(res.sse.rounds.length, 2);
    for (const rd of res.sse.rounds) assert.equal(rd.reached, 50, `round ${rd.round}: every stream got the update`);
    assert.ok(res.sse.hwm_kb > 0);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
