// Self-test of the system-test harness: real stores, a fake service standing
// in for the tally binaries, and the clean-up paths (stop, crash, signal).
import { test, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  startStack, http, pool, waitFor, dumpLogs, descendants, pidAlive,
} from './harness.mjs';

const HARNESS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'harness.mjs');
const T = { timeout: 90000 };

let stack;
after(() => stack?.stop());
afterEach((t) => { if (!t.passed) dumpLogs(stack); });

// Non-zombie processes whose command line mentions dir (orphans included).
function processesUsing(dir) {
  const out = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    let cmd;
    try { cmd = fs.readFileSync(`/proc/${e}/cmdline`, 'utf8'); } catch { continue; }
    if (cmd.includes(dir) && pidAlive(Number(e))) out.push(`${e}: ${cmd.replace(/\0/g, ' ')}`);
  }
  return out;
}

// A stand-in for build/bin/tally-*: answers /healthz on BIND_ADDR:BIND_PORT,
// echoes its env and the request on /echo, exits 0 on SIGTERM.
function fakeBinDir(root) {
  const dir = path.join(root, 'fakebin');
  fs.mkdirSync(dir);
  const src = `#!${process.execPath}
const http = require('node:http');
if (process.env.FAKE_EXIT) process.exit(Number(process.env.FAKE_EXIT));
const srv = http.createServer((req, res) => {
  let body = '';
  req.on('data', (d) => { body += d; });
  req.on('end', () => {
    if (req.url === '/healthz') return res.end('ok');
    res.setHeader('content-type', 'application/json');
    res.setHeader('set-cookie', ['voter_id=abc123; Path=/; HttpOnly', 'other=1']);
    res.end(JSON.stringify({ env: process.env, method: req.method, cookie: req.headers.cookie,
      type: req.headers['content-type'], body }));
  });
});
srv.listen(Number(process.env.BIND_PORT), process.env.BIND_ADDR);
process.on('SIGTERM', () => { srv.closeAllConnections(); srv.close(() => process.exit(0)); });
`;
  for (const b of ['tally-gateway', 'tally-processor', 'tally-reporter']) {
    fs.writeFileSync(path.join(dir, b), src, { mode: 0o755 });
  }
  return dir;
}

test('startStack: nats, redis and postgres answer on their ports', T, async () => {
  stack = await startStack();
  assert.ok(fs.existsSync(stack.dir));
  const hz = await http('GET', `http://127.0.0.1:${stack.natsMonitorPort}/healthz`);
  assert.equal(hz.status, 200);
  assert.equal(hz.json?.status, 'ok');
  assert.equal(await stack.redisCli('PING'), 'PONG');
  assert.equal(await stack.redisCli('CONFIG', 'GET', 'appendonly'), 'appendonly\nno');
  assert.deepEqual(await stack.psql('select 1'), [['1']]);
  assert.deepEqual(await stack.psql("select current_database(), null, 'a b'"), [['tally', '', 'a b']]);
  const env = stack.env();
  assert.equal(env.NATS_URL, `nats://127.0.0.1:${stack.natsPort}`);
  assert.equal(env.NATS_URL, stack.natsUrl);
  assert.equal(env.REDIS_HOST, '127.0.0.1');
  assert.equal(env.REDIS_PORT, String(stack.redisPort));
  assert.equal(env.DATABASE_URL, `postgresql://postgres@127.0.0.1:${stack.pgPort}/tally`);
  assert.equal(env.DATABASE_URL, stack.databaseUrl);
  assert.ok(env.LOG_LEVEL);
  const ports = [stack.natsPort, stack.natsMonitorPort, stack.redisPort, stack.pgPort];
  assert.equal(new Set(ports).size, 4, `distinct ports ${ports}`);
  await assert.rejects(stack.psql('select nope'), /psql failed/);
});

test('killRedis/startRedis: back on the same port', T, async () => {
  const port = stack.redisPort;
  await stack.redisCli('SET', 'k', 'v');
  assert.equal(await stack.killRedis(), 137);
  await stack.startRedis();
  assert.equal(await stack.stopRedis(), 0);
  await assert.rejects(stack.redisCli('PING'));
  await stack.startRedis();
  assert.equal(stack.redisPort, port);
  assert.equal(await stack.redisCli('PING'), 'PONG');
  assert.equal(await stack.redisCli('GET', 'k'), '', 'no persistence by default');
});

test('killPostgres/startPostgres: same port, committed data survives', T, async () => {
  const port = stack.pgPort;
  await stack.psql('create table h(a int); insert into h values (42)');
  const backends = descendants(stack.pg.pid);
  assert.ok(backends.length > 0);
  await stack.killPostgres();
  assert.ok(backends.every((b) => !pidAlive(b)), 'backends die with the postmaster');
  await stack.startPostgres();
  assert.equal(stack.pgPort, port);
  assert.deepEqual(await stack.psql('select a from h'), [['42']]);
  assert.equal(await stack.stopPostgres(), 0);
  await stack.startPostgres();
  assert.deepEqual(await stack.psql('select a from h'), [['42']]);
});

test('killNats, stopNats/startNats: same ports, store dir kept', T, async () => {
  const [port, mport] = [stack.natsPort, stack.natsMonitorPort];
  assert.equal(await stack.killNats(), 137);
  await stack.startNats();
  assert.equal(await stack.stopNats(), 0);
  await stack.startNats();
  assert.deepEqual([stack.natsPort, stack.natsMonitorPort], [port, mport]);
  const jsz = await http('GET', `http://127.0.0.1:${mport}/jsz`);
  assert.ok(jsz.json.config.store_dir.startsWith(stack.dir), jsz.body);
});

test('startGateway without the binary fails with a clear message', T, async () => {
  const saved = process.env.TALLY_BIN_DIR;
  process.env.TALLY_BIN_DIR = path.join(stack.dir, 'no-such-dir');
  try {
    await assert.rejects(stack.startGateway(), /tally-gateway does not exist; build first/);
  } finally {
    if (saved === undefined) delete process.env.TALLY_BIN_DIR; else process.env.TALLY_BIN_DIR = saved;
  }
});

test('services: env, healthz wait, http(), stop and kill', T, async () => {
  const saved = process.env.TALLY_BIN_DIR;
  process.env.TALLY_BIN_DIR = fakeBinDir(stack.dir);
  try {
    const gw = await stack.startGateway({ OPTION_A: 'Tea' });
    assert.equal(gw.url, `http://127.0.0.1:${gw.port}`);
    assert.ok(fs.existsSync(gw.log));
    const r = await http('POST', `${gw.url}/echo`, { body: { vote: 'a' }, cookie: { voter_id: 'v1' } });
    assert.equal(r.status, 200);
    assert.equal(r.json.env.BIND_PORT, String(gw.port));
    assert.equal(r.json.env.BIND_ADDR, '127.0.0.1');
    assert.equal(r.json.env.OPTION_A, 'Tea');
    for (const [k, v] of Object.entries(stack.env())) assert.equal(r.json.env[k], v, k);
    assert.equal(r.json.type, 'application/json');
    assert.equal(r.json.body, '{"vote":"a"}');
    assert.equal(r.json.cookie, 'voter_id=v1');
    assert.deepEqual(r.setCookie, ['voter_id=abc123; Path=/; HttpOnly', 'other=1']);
    const form = await http('POST', `${gw.url}/`, { body: new URLSearchParams({ vote: 'b' }), cookie: r.setCookie });
    assert.equal(form.json.type, 'application/x-www-form-urlencoded;charset=UTF-8');
    assert.equal(form.json.body, 'vote=b');
    assert.equal(form.json.cookie, 'voter_id=abc123; other=1');

    const [p1, p2] = await Promise.all([stack.startProcessor(), stack.startProcessor({ DATABASE_URL: undefined })]);
    assert.notEqual(p1.port, p2.port);
    assert.equal((await http('GET', `${p2.url}/env`)).json.env.DATABASE_URL, undefined);
    const rep = await stack.startReporter();

    assert.equal(await gw.stop(), 0);
    assert.equal(gw.alive, false);
    assert.equal(await p1.kill(), 137);
    // Restart on the same port.
    const gw2 = await stack.startGateway({ BIND_PORT: gw.port });
    assert.equal(gw2.port, gw.port);
    assert.ok(rep.alive && p2.alive && gw2.alive);
    // A service that exits at once (e.g. a bad setting): no waiting for health.
    const bad = await stack.startReporter({ FAKE_EXIT: '78' }, { waitReady: false });
    assert.equal(await bad.exited, 78);
    await assert.rejects(stack.startReporter({ FAKE_EXIT: '1' }), /exited with 1 before it was ready/);
  } finally {
    if (saved === undefined) delete process.env.TALLY_BIN_DIR; else process.env.TALLY_BIN_DIR = saved;
  }
});

test('pool and waitFor', T, async () => {
  let inFlight = 0;
  let peak = 0;
  const out = await pool(50, 7, async (i) => {
    inFlight++; peak = Math.max(peak, inFlight);
    await new Promise((r) => setTimeout(r, 2));
    inFlight--;
    return i * 2;
  });
  assert.equal(out.length, 50);
  assert.equal(out[49], 98);
  assert.equal(peak, 7);
  await assert.rejects(pool(10, 3, async (i) => { if (i === 4) throw new Error('job 4'); }), /job 4/);
  let n = 0;
  assert.equal(await waitFor(() => (++n >= 3 ? 'yes' : 0), { intervalMs: 5 }), 'yes');
  await assert.rejects(waitFor(() => ({ count: 1 }) && 0, { timeoutMs: 100, what: 'the moon' }),
    /waiting for the moon; last value: 0/);
  await assert.rejects(waitFor(() => { throw new Error('boom'); }, { timeoutMs: 100, what: 'x' }),
    /last error: boom/);
});

test('stop(): services then stores, temp folder removed, no process left', T, async () => {
  const { dir } = stack;
  const pids = stack.pids();
  assert.ok(pids.length >= 6, `pids ${pids}`);
  const codes = await stack.stop();
  assert.deepEqual(codes, {
    'gateway-1': 0, 'processor-1': 137, 'processor-2': 0, 'reporter-1': 0,
    'gateway-2': 0, 'reporter-2': 78, 'reporter-3': 1,
  });
  assert.deepEqual(await stack.stop(), {});   // idempotent
  assert.equal(fs.existsSync(dir), false);
  assert.deepEqual(pids.filter(pidAlive), []);
  assert.deepEqual(descendants(process.pid), []);
  assert.deepEqual(processesUsing(dir), []);
});

test('redisPersist: a SIGKILLed redis keeps what it acknowledged', T, async () => {
  const s = await startStack({ redisPersist: true });
  try {
    await s.redisCli('SET', 'k', 'v');
    await s.killRedis();
    await s.startRedis();
    assert.equal(await s.redisCli('GET', 'k'), 'v');
  } finally {
    await s.stop();
  }
});

// A child process starts a stack, reports it, then ends badly.
async function crashChild(how) {
  const code = `
    import { startStack } from ${JSON.stringify(HARNESS)};
    const s = await startStack();
    console.log(JSON.stringify({ dir: s.dir, pids: s.pids() }));
    if (${JSON.stringify(how)} === 'throw') setTimeout(() => { throw new Error('deliberate'); }, 10);
    if (${JSON.stringify(how)} === 'signal') setInterval(() => {}, 1000);
    // 'forget': nothing left to do; the event loop drains without stop().
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  const info = await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]));
    });
    child.on('exit', () => reject(new Error(`child exited early: ${err}`)));
  });
  if (how === 'signal') child.kill('SIGTERM');
  const code2 = await new Promise((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.on('exit', (c, s) => resolve(c ?? s));
  });
  return { ...info, code: code2, err };
}

test('a crashed, signalled or careless test process leaves nothing behind', T, async () => {
  const runs = await Promise.all(['throw', 'forget', 'signal'].map(crashChild));
  const [thrown, forgot, signalled] = runs;
  assert.equal(thrown.code, 1);
  assert.match(thrown.err, /deliberate/);
  assert.equal(forgot.code, 0);
  assert.equal(signalled.code, 143);
  for (const r of runs) {
    assert.ok(r.pids.length >= 4, `pids ${r.pids}`);
    await waitFor(() => r.pids.every((p) => !pidAlive(p)), { timeoutMs: 5000, what: `pids ${r.pids} gone` });
    assert.equal(fs.existsSync(r.dir), false, r.dir);
    assert.deepEqual(processesUsing(r.dir), []);
  }
});
