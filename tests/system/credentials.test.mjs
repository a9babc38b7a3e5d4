// Credentials and exposure (issue 9): NATS user/password, token and TLS;
// Redis AUTH; a PostgreSQL password enforced by pg_hba (scram-sha-256) and
// sslmode through libpq; wrong secrets keep a service alive and not ready
// with a log line that names the problem but not the secret; no secret ever
// appears in a log or in --help.
//
// The harness's nats-server and redis-server have no auth, so this file
// starts its own on free ports, with config files in the stack's folder.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startStack, http, waitFor, dumpLogs, freePort, binDir } from './harness.mjs';

const SECRETS = {
  natsPassword: 'nats-pw-Zq81xK',
  natsToken: 'nats-tok-Vb55pL',
  redisPassword: 'redis-pw-Hy72mN',
  pgPassword: 'pg-pw-Rt39sQ',
  wrong: 'wrong-pw-Xx00aa',
};
const T = { timeout: 180000 };
let stack;
const extra = [];   // child processes this file started

before(async () => { stack = await startStack(); });
after(async () => {
  for (const p of extra) { try { p.kill('SIGKILL'); } catch { /* gone */ } }
  await stack?.stop();
});

function spawnServer(name, cmd, args) {
  const log = path.join(stack.dir, `${name}.log`);
  const fd = fs.openSync(log, 'a');
  const p = spawn(cmd, args, { stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  p.unref();
  extra.push(p);
  process.on('exit', () => { try { p.kill('SIGKILL'); } catch { /* gone */ } });
  return p;
}

function portOpen(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.on('connect', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
}

async function natsWith(name, authBlock, { tls } = {}) {
  const port = await freePort();
  const dir = path.join(stack.dir, name);
  fs.mkdirSync(dir);
  const conf = path.join(dir, 'nats.conf');
  fs.writeFileSync(conf, [
    `listen: 127.0.0.1:${port}`,
    `server_name: ${name}`,
    `jetstream { store_dir: "${dir}" }`,
    tls ? `tls { cert_file: "${tls.cert}", key_file: "${tls.key}" }` : '',
    authBlock,
  ].join('\n'));
  spawnServer(name, 'nats-server', ['-c', conf]);
  await waitFor(() => portOpen(port), { timeoutMs: 15000, what: `${name} listening` });
  return { url: `nats://127.0.0.1:${port}`, port };
}

async function ready(svc) {
  try { return (await http('GET', `${svc.url}/readyz`, { timeoutMs: 2000 })).status === 200; } catch { return false; }
}

async function vote(gw, voter) {
  return http('POST', `${gw.url}/api/v1/polls/default/votes`, { body: { voter, option: 'a' } });
}

// A refused NATS login is logged with nats.c's reason ("Authorization
// Violation"), as Redis and PostgreSQL name their password problems.

/** Waits a while, then checks the service is alive, not ready, and logged a line matching re. */
async function refusedButAlive(svc, re, what) {
  await waitFor(() => re.test(svc.logText()), { timeoutMs: 20000, what: `${svc.name} to log ${re} (${what})` });
  await sleep(500);
  assert.ok(svc.alive, `${svc.name} keeps running with ${what}`);
  assert.equal(await ready(svc), false, `${svc.name} is not ready with ${what}`);
}

function assertNoSecrets(text, where) {
  for (const [k, v] of Object.entries(SECRETS)) assert.ok(!text.includes(v), `${where} contains the ${k}`);
}

test('NATS user/password: right ones work end to end; a wrong one keeps retrying, not ready, secret not logged', T, async () => {
  try {
    const n = await natsWith('nats-userpw', `authorization { user: tally, password: "${SECRETS.natsPassword}" }`);
    const env = { NATS_URL: n.url, NATS_USER: 'tally', NATS_PASSWORD: SECRETS.natsPassword };
    const gw = await stack.startGateway(env);
    const proc = await stack.startProcessor(env);
    await waitFor(async () => (await ready(gw)) && (await ready(proc)), { timeoutMs: 20000, what: 'gateway and processor ready with user/password' });
    const r = await vote(gw, 'cred-userpw');
    assert.equal(r.status, 200, r.body);
    await waitFor(async () => (await stack.psql("SELECT count(*) FROM votes WHERE voter = 'cred-userpw'"))[0]?.[0] === '1',
      { timeoutMs: 15000, what: 'the vote stored through an authenticated NATS' });
    await gw.stop();
    await proc.stop();
    const bad = await stack.startGateway({ ...env, NATS_PASSWORD: SECRETS.wrong });
    await refusedButAlive(bad, /nats: .*not reachable yet \(.*[Aa]uthori[sz]ation/, 'a wrong NATS password');
    const none = await stack.startProcessor({ NATS_URL: n.url });
    await refusedButAlive(none, /nats: .*not reachable yet \(.*[Aa]uthori[sz]ation/, 'no NATS credentials');
    assert.equal((await vote(bad, 'cred-bad')).status, 503);
    // A list of servers (a cluster), credentials in each server's URL:
    // every server's are masked in the log, and each logs in to its own
    // server. (Until 2026-12-03 the services gave nats.c the whole list as
    // one URL: no list worked, with or without credentials.) The gateway's
    // list starts with a server that is not there (failover), the
    // processor's names the live one twice.
    const inUrl = `nats://tally:${SECRETS.natsPassword}@127.0.0.1:${n.port}`;
    const gone = `nats://tally:${SECRETS.natsPassword}@127.0.0.1:${await freePort()}`;
    const listed = await stack.startGateway({ NATS_URL: `${gone}, ${inUrl}` });
    const listedProc = await stack.startProcessor({ NATS_URL: `${inUrl},${inUrl}` });
    for (const [svc, name] of [[listed, 'gateway'], [listedProc, 'processor']]) {
      await waitFor(() => new RegExp(`nats: connected to nats://\\*\\*\\*@127\\.0\\.0\\.1:${n.port}\\b`).test(svc.logText()),
        { timeoutMs: 15000, what: `the ${name} connected to the live server of its list, named masked` });
    }
    await waitFor(async () => (await ready(listed)) && (await ready(listedProc)),
      { timeoutMs: 20000, what: 'gateway and processor ready with credentials in a list of URLs' });
    assert.equal((await vote(listed, 'cred-list')).status, 200);
    await waitFor(async () => (await stack.psql("SELECT count(*) FROM votes WHERE voter = 'cred-list'"))[0]?.[0] === '1',
      { timeoutMs: 15000, what: 'the vote stored through NATS logged in with the list\'s credentials' });
    assertNoSecrets(listed.logText(), 'the gateway log');
    assertNoSecrets(listedProc.logText(), 'the processor log');
    await listed.stop();
    await listedProc.stop();
    // tallyctl names the URL it could not reach, masked too.
    const closed = `nats://tally:${SECRETS.natsPassword}@127.0.0.1:${await freePort()}`;
    const st = await stack.tallyctl(['stream', '--timeout', '1'], { env: { NATS_URL: `${inUrl.replace(String(n.port), '1')},${closed}` } });
    assert.notEqual(st.code, 0);
    assert.match(st.stderr, /\*\*\*@/);
    assertNoSecrets(st.stdout + st.stderr, 'tallyctl stream\'s output');
  } catch (e) { dumpLogs(stack, { lines: 20, stores: false }); throw e; }
});

test('NATS token over TLS: works with NATS_TLS_CA; without the CA or with a wrong token, not ready', T, async () => {
  try {
    const dir = path.join(stack.dir, 'pki');
    fs.mkdirSync(dir);
    const ssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=tally test CA');
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
    fs.writeFileSync(path.join(dir, 'ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'ext');
    const n = await natsWith('nats-tls', `authorization { token: "${SECRETS.natsToken}" }`,
      { tls: { cert: path.join(dir, 'server.pem'), key: path.join(dir, 'server.key') } });
    const env = { NATS_URL: n.url, NATS_TOKEN: SECRETS.natsToken, NATS_TLS_CA: path.join(dir, 'ca.pem') };
    const gw = await stack.startGateway(env);
    const proc = await stack.startProcessor(env);
    await waitFor(async () => (await ready(gw)) && (await ready(proc)), { timeoutMs: 20000, what: 'ready over TLS with a token' });
    assert.equal((await vote(gw, 'cred-tls')).status, 200);
    await waitFor(async () => (await stack.psql("SELECT count(*) FROM votes WHERE voter = 'cred-tls'"))[0]?.[0] === '1',
      { timeoutMs: 15000, what: 'the vote stored through NATS over TLS' });
    await gw.stop();
    await proc.stop();
    const noCa = await stack.startGateway({ NATS_URL: n.url, NATS_TOKEN: SECRETS.natsToken });
    await refusedButAlive(noCa, /nats: .*not reachable/, 'TLS required but no NATS_TLS_CA');
    const badTok = await stack.startProcessor({ ...env, NATS_TOKEN: SECRETS.wrong });
    await refusedButAlive(badTok, /nats: .*not reachable yet \(.*[Aa]uthori[sz]ation/, 'a wrong token');
  } catch (e) { dumpLogs(stack, { lines: 20, stores: false }); throw e; }
});

test('Redis AUTH: /visits and dedup work with REDIS_PASSWORD; a wrong one is reported without the secret', T, async () => {
  try {
    const port = await freePort();
    spawnServer('redis-auth', 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--requirepass', SECRETS.redisPassword,
      '--save', '', '--appendonly', 'no', '--dir', stack.dir]);
    await waitFor(() => portOpen(port), { timeoutMs: 10000, what: 'redis-auth listening' });
    const gw = await stack.startGateway({ REDIS_PORT: String(port), REDIS_PASSWORD: SECRETS.redisPassword });
    await waitFor(() => ready(gw), { timeoutMs: 20000, what: 'gateway ready' });
    const v = await http('GET', `${gw.url}/visits`);
    assert.equal(v.status, 200, v.body);
    assert.equal((await vote(gw, 'cred-redis')).status, 200);
    assert.equal((await vote(gw, 'cred-redis')).json?.status, 'unchanged', 'dedup reads Redis through AUTH');
    await gw.stop();
    const bad = await stack.startGateway({ REDIS_PORT: String(port), REDIS_PASSWORD: SECRETS.wrong });
    await waitFor(() => /redis/i.test(bad.logText()) && /auth|pass|denied|WRONGPASS/i.test(bad.logText()),
      { timeoutMs: 20000, what: 'a log line about the Redis password' });
    assert.equal((await http('GET', `${bad.url}/visits`)).status, 503);
    assert.ok(bad.alive);
    await bad.stop();
  } catch (e) { dumpLogs(stack, { lines: 20, stores: false }); throw e; }
});

test('PostgreSQL password (scram-sha-256 enforced by pg_hba) and sslmode through libpq', T, async () => {
  try {
    // A login role with a SCRAM password that owns a database of its own
    // (the earlier tests' processors made tally's tables as postgres).
    await stack.psql(`SET password_encryption = 'scram-sha-256'; CREATE ROLE tally_app LOGIN PASSWORD '${SECRETS.pgPassword}'`);
    await stack.psql('CREATE DATABASE tally_pw OWNER tally_app', { db: 'postgres' });
    // Password auth for that role over TCP; postgres keeps trust for the harness.
    const hba = path.join(stack.pgData, 'pg_hba.conf');
    fs.writeFileSync(hba, `host all tally_app 127.0.0.1/32 scram-sha-256\n${fs.readFileSync(hba, 'utf8')}`);
    await stack.psql('SELECT pg_reload_conf()');
    const url = (pw, extraQ = '') => `postgresql://tally_app:${pw}@127.0.0.1:${stack.pgPort}/tally_pw${extraQ}`;

    const proc = await stack.startProcessor({ DATABASE_URL: url(SECRETS.pgPassword) });
    const rep = await stack.startReporter({ DATABASE_URL: url(SECRETS.pgPassword) });
    await waitFor(async () => (await ready(proc)) && (await ready(rep)), { timeoutMs: 30000, what: 'processor and reporter ready with a password' });
    assert.equal((await stack.psql("SELECT tableowner FROM pg_tables WHERE tablename = 'votes'", { db: 'tally_pw' }))[0][0], 'tally_app');
    // pg_hba really asks for the password: without one, libpq is refused.
    const noPw = await stack.startReporter({ DATABASE_URL: `postgresql://tally_app@127.0.0.1:${stack.pgPort}/tally_pw` });
    await refusedButAlive(noPw, /password/i, 'no PostgreSQL password');

    // Wrong password, password only through libpq's PGPASSWORD, and sslmode.
    const bad = await stack.startProcessor({ DATABASE_URL: url(SECRETS.wrong) });
    await refusedButAlive(bad, /password authentication failed/i, 'a wrong PostgreSQL password');
    const badRep = await stack.startReporter({ DATABASE_URL: url(SECRETS.wrong) });
    await refusedButAlive(badRep, /password authentication failed/i, 'a wrong PostgreSQL password');
    const viaEnv = await stack.startProcessor({ DATABASE_URL: '', PGHOST: '127.0.0.1', PGPORT: String(stack.pgPort),
      PGUSER: 'tally_app', PGDATABASE: 'tally_pw', PGPASSWORD: SECRETS.pgPassword, PGSSLMODE: 'disable' });
    await waitFor(() => ready(viaEnv), { timeoutMs: 30000, what: 'processor ready from PG* variables' });
    // This server has ssl=off: sslmode=require must refuse rather than fall back.
    const req = await stack.startProcessor({ DATABASE_URL: url(SECRETS.pgPassword, '?sslmode=require') });
    await refusedButAlive(req, /SSL/i, 'sslmode=require against a server without SSL');
    for (const s of [bad, badRep, noPw, viaEnv, req]) await s.stop();
  } catch (e) { dumpLogs(stack, { lines: 20, stores: false }); throw e; }
});

test('secrets never appear in --help or in any service log', T, async () => {
  const env = {
    PATH: process.env.PATH, NATS_PASSWORD: SECRETS.natsPassword, NATS_TOKEN: SECRETS.natsToken,
    REDIS_PASSWORD: SECRETS.redisPassword, PGPASSWORD: SECRETS.pgPassword,
    DATABASE_URL: `postgresql://u:${SECRETS.pgPassword}@127.0.0.1:1/x`,
  };
  for (const b of ['tally-gateway', 'tally-processor', 'tally-reporter', 'tallyctl']) {
    let out;
    try {
      out = execFileSync(path.join(binDir(), b), ['--help'], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) { out = `${e.stdout}${e.stderr}`; }
    assert.ok(out.length > 50, `${b} --help printed its settings`);
    assertNoSecrets(out, `${b} --help`);
  }
  // Every log of every service this file started, the failures included.
  assert.ok(stack.services.length >= 10);
  for (const s of stack.services) assertNoSecrets(s.logText(), `log of ${s.name}`);
});
