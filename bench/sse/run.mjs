// Runs sse_bench against a fresh PostgreSQL and one tally-reporter:
//   node bench/sse/run.mjs [clients=10000] [rounds=5]
// Env: TALLY_BIN_DIR (tally-reporter), SSE_BENCH (the sse_bench binary;
// default <TALLY_BIN_DIR>/../bench/sse_bench).
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { startStack, binDir } from '../../tests/system/harness.mjs';

const clients = Number(process.argv[2] || 10000);
const rounds = Number(process.argv[3] || 5);
const bench = process.env.SSE_BENCH || path.join(binDir(), '..', 'bench', 'sse_bench');

const stack = await startStack();
try {
  await stack.psql('CREATE TABLE tallies (poll text NOT NULL, option text NOT NULL, votes bigint NOT NULL DEFAULT 0, PRIMARY KEY (poll, option))');
  await stack.psql("INSERT INTO tallies VALUES ('default', 'a', 0), ('default', 'b', 0)");
  const rep = await stack.startReporter({ MAX_CONNECTIONS: String(clients + 1000), LOG_LEVEL: 'warn' });
  const r = spawnSync(bench, ['--port', String(rep.port), '--clients', String(clients), '--rounds', String(rounds),
    '--conninfo', stack.databaseUrl, '--pid', String(rep.pid)], { stdio: 'inherit' });
  const m = await fetch(`${rep.url}/metrics`).then((x) => x.text());
  console.log(m.split('\n').filter((l) => /^tally_reporter_sse_(clients|updates_sent_total|broadcasts_total) /.test(l)).join('\n'));
  process.exitCode = r.status ?? 1;
} finally {
  await stack.stop();
}
