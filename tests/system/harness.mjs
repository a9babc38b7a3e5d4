// System-test harness for tally: starts real nats-server (JetStream),
// redis-server and PostgreSQL on free loopback ports in a temp folder, then
// the tally binaries against them. Every child is registered so that it dies
// with this process, however this process ends. See tests/system/README.md.
//
// Invariants:
// - nothing listens anywhere but 127.0.0.1, and no port is assumed free:
//   ports come from binding port 0, and a start that loses the race for its
//   port (EADDRINUSE) is retried on a fresh one;
// - children are spawned unref'd with their output in files, so a test that
//   forgets stack.stop() still ends; the 'exit' hook then SIGKILLs them;
// - PostgreSQL runs as the `postgres` user when we are root (initdb and
//   postgres refuse root), with its data and socket in a folder it owns.

import { spawn, execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const IS_ROOT = typeof process.getuid === 'function' && process.getuid() === 0;
const IN_USE_RE = /address already in use|EADDRINUSE|could not create any TCP\/IP sockets/i;

// ---------------------------------------------------------------------------
// Child registry and last-resort cleanup

const liveProcs = new Set();  // Proc records not yet seen to exit
const liveDirs = new Set();   // temp folders of stacks not yet stopped
let hooksInstalled = false;

function keepDirs() {
  return process.env.KEEP_TEST_DIRS === '1';
}

// Synchronous on purpose: runs inside process.on('exit').
function killEverythingSync() {
  for (const p of liveProcs) p.killTreeSync();
  liveProcs.clear();
  for (const dir of liveDirs) {
    if (keepDirs()) {
      process.stderr.write(`harness: KEEP_TEST_DIRS=1, left ${dir}\n`);
    } else {
      try { fs.rmSync(dir, { recursive: true, force: true }); } catch { /* best effort */ }
    }
  }
  liveDirs.clear();
}

function installHooks() {
  if (hooksInstalled) return;
  hooksInstalled = true;
  // 'exit' also fires after an uncaught exception or unhandled rejection.
  process.on('exit', killEverythingSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      killEverythingSync();
      process.exit(128 + os.constants.signals[sig]);
    });
  }
}

// ---------------------------------------------------------------------------
// /proc helpers (Linux only, like the rest of tally's test tier)

function procStat(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { state: f[0], ppid: Number(f[1]) };
  } catch {
    return undefined;
  }
}

/** True when pid exists and is not a zombie. */
export function pidAlive(pid) {
  const st = procStat(pid);
  return st !== undefined && st.state !== 'Z' && st.state !== 'X';
}

/** Every live descendant of pid (children, grandchildren, ...). */
export function descendants(pid) {
  const kids = new Map();
  let entries = [];
  try { entries = fs.readdirSync('/proc'); } catch { return []; }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const st = procStat(e);
    if (!st || st.state === 'Z') continue;
    if (!kids.has(st.ppid)) kids.set(st.ppid, []);
    kids.get(st.ppid).push(Number(e));
  }
  const out = [];
  const todo = [pid];
  while (todo.length) {
    for (const k of kids.get(todo.pop()) || []) { out.push(k); todo.push(k); }
  }
  return out;
}

function signalPid(pid, sig) {
  try { process.kill(pid, sig); } catch { /* already gone */ }
}

// ---------------------------------------------------------------------------
// Locating programs

function which(name, extraDirs = []) {
  const dirs = [...(process.env.PATH || '').split(':'), ...extraDirs, '/usr/sbin', '/usr/local/sbin', '/usr/local/bin', '/usr/bin'];
  for (const d of dirs) {
    if (!d) continue;
    const f = path.join(d, name);
    try { fs.accessSync(f, fs.constants.X_OK); return f; } catch { /* next */ }
  }
  return undefined;
}

function need(name, extraDirs) {
  const f = which(name, extraDirs);
  if (!f) throw new Error(`harness: ${name} not found in PATH (scripts/deps --test installs it)`);
  return f;
}

let pgBinDirCache;
/** PostgreSQL server binaries: $PG_BINDIR, `pg_config --bindir`, newest /usr/lib/postgresql/N/bin, PATH. */
export function pgBinDir() {
  if (pgBinDirCache) return pgBinDirCache;
  const has = (d) => d && fs.existsSync(path.join(d, 'initdb')) && fs.existsSync(path.join(d, 'postgres'));
  const cands = [process.env.PG_BINDIR];
  try { cands.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim()); } catch { /* no pg_config */ }
  try {
    const vers = fs.readdirSync('/usr/lib/postgresql').filter((v) => /^\d+$/.test(v)).sort((a, b) => b - a);
    for (const v of vers) cands.push(`/usr/lib/postgresql/${v}/bin`);
  } catch { /* not Debian layout */ }
  const initdb = which('initdb');
  if (initdb) cands.push(path.dirname(initdb));
  pgBinDirCache = cands.find(has);
  if (!pgBinDirCache) throw new Error('harness: PostgreSQL server binaries (initdb, postgres) not found; install postgresql or set PG_BINDIR');
  return pgBinDirCache;
}

function pgTool(name) {
  const f = path.join(pgBinDir(), name);
  return fs.existsSync(f) ? f : need(name);
}

let pgUserCache;
function postgresUser() {
  if (!IS_ROOT) return undefined;
  if (pgUserCache) return pgUserCache;
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    pgUserCache = { uid, gid };
    return pgUserCache;
  } catch {
    throw new Error('harness: running as root but there is no `postgres` user to run PostgreSQL as (install postgresql)');
  }
}

/** Directory of the tally binaries: $TALLY_BIN_DIR, else $TALLY_BUILD_DIR/bin, else <repo>/build/bin. */
export function binDir() {
  if (process.env.TALLY_BIN_DIR) return path.resolve(process.env.TALLY_BIN_DIR);
  if (process.env.TALLY_BUILD_DIR) return path.resolve(process.env.TALLY_BUILD_DIR, 'bin');
  return path.join(repoRoot, 'build', 'bin');
}

// ---------------------------------------------------------------------------
// Ports

const handedOut = new Set();

/** A port that was free on 127.0.0.1 a moment ago (never the same twice per process). */
export async function freePort() {
  for (;;) {
    const port = await new Promise((resolve, reject) => {
      const srv = net.createServer();
      srv.unref();
      srv.on('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const { port: p } = srv.address();
        srv.close(() => resolve(p));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

// ---------------------------------------------------------------------------
// One child process with its output in a log file

// Children are unref'd, so awaiting only their exit would let the event loop
// drain and the process end mid-test; a ref'd timer holds it open meanwhile.
function keepAlive(promise) {
  const timer = setInterval(() => {}, 1 << 30);
  return promise.finally(() => clearInterval(timer));
}

class StartError extends Error {
  constructor(msg, inUse) { super(msg); this.inUse = inUse; }
}

function tail(file, lines = 50) {
  let text;
  try { text = fs.readFileSync(file, 'utf8'); } catch { return ''; }
  const all = text.split('\n');
  if (all[all.length - 1] === '') all.pop();
  return all.slice(-lines).join('\n');
}

class Proc {
  // tree: kill descendants too (PostgreSQL backends outlive a SIGKILLed postmaster).
  constructor(name, cmd, args, { env, log, cwd, user, tree = false }) {
    this.name = name;
    this.log = log;
    this.tree = tree;
    this.exitCode = undefined;   // number once exited: code, or 128+signal
    const fd = fs.openSync(log, 'a');
    fs.writeSync(fd, `# harness ${new Date().toISOString()} start ${name}: ${[cmd, ...args].join(' ')}\n`);
    this.exited = new Promise((resolve) => { this.resolveExit = resolve; });
    try {
      this.proc = spawn(cmd, args, {
        env, cwd, stdio: ['ignore', fd, fd], detached: false,
        ...(user ? { uid: user.uid, gid: user.gid } : {}),
      });
    } finally {
      fs.closeSync(fd);
    }
    this.pid = this.proc.pid;
    this.proc.unref();
    liveProcs.add(this);
    this.proc.on('error', (err) => {
      this.spawnError = err;
      this.finish(127);
    });
    this.proc.on('exit', (code, signal) => {
      this.finish(code !== null ? code : 128 + (os.constants.signals[signal] || 0));
    });
  }

  finish(code) {
    if (this.exitCode !== undefined) return;
    this.exitCode = code;
    liveProcs.delete(this);
    this.resolveExit(code);
  }

  get alive() { return this.exitCode === undefined; }

  // Only while alive: once reaped, the pid (and its children's ppid) may be reused.
  killTreeSync() {
    if (!this.alive || !this.pid) return;
    const kids = this.tree ? descendants(this.pid) : [];
    signalPid(this.pid, 'SIGKILL');
    for (const k of kids) signalPid(k, 'SIGKILL');
    this.orphans = kids;
  }

  async #waitOrphans(kids, timeoutMs = 10000) {
    if (!kids.length) return;
    try {
      await waitFor(() => kids.every((k) => !pidAlive(k)), { timeoutMs, what: `children of ${this.name} to exit` });
    } catch {
      for (const k of kids) signalPid(k, 'SIGKILL');
      await waitFor(() => kids.every((k) => !pidAlive(k)), { timeoutMs: 5000, what: `children of ${this.name} to die` });
    }
  }

  /** SIGKILL (the whole tree if tree) and wait until all of it is gone. */
  async kill() {
    this.killTreeSync();
    const code = await keepAlive(this.exited);
    await this.#waitOrphans(this.orphans || []);
    return code;
  }

  /** Send signal, wait up to timeoutMs, then SIGKILL. Resolves { code, timedOut }. */
  async stop(signal = 'SIGTERM', timeoutMs = 15000) {
    if (!this.alive) return { code: this.exitCode, timedOut: false };
    const kids = this.tree ? descendants(this.pid) : [];
    signalPid(this.pid, signal);
    let timer;
    const timeout = new Promise((resolve) => { timer = setTimeout(resolve, timeoutMs, 'timeout'); });
    const r = await Promise.race([this.exited, timeout]);
    clearTimeout(timer);
    if (r === 'timeout') {
      const code = await this.kill();
      await this.#waitOrphans(kids);
      return { code, timedOut: true };
    }
    await this.#waitOrphans(kids);
    return { code: r, timedOut: false };
  }

  logTail(lines = 50) { return tail(this.log, lines); }

  /** Wait until ready() is truthy; throws StartError if the process exits first or on timeout. */
  async waitReady(ready, timeoutMs, what) {
    const deadline = Date.now() + timeoutMs;
    let lastErr;
    for (;;) {
      if (!this.alive) {
        const t = this.logTail(30);
        const why = this.spawnError ? `could not be started: ${this.spawnError.message}` : `exited with ${this.exitCode} before it was ready`;
        throw new StartError(`harness: ${what} ${why}\n--- ${this.log}\n${t}`, IN_USE_RE.test(t));
      }
      try {
        if (await ready()) return;
        lastErr = undefined;
      } catch (e) {
        lastErr = e;
      }
      if (Date.now() > deadline) {
        await this.kill();
        throw new StartError(`harness: ${what} not ready after ${timeoutMs} ms` +
          (lastErr ? ` (last error: ${lastErr.message})` : '') + `\n--- ${this.log}\n${this.logTail(30)}`, false);
      }
      await sleep(50);
    }
  }
}

// Starts fn(port...) on fresh ports until it does not lose a port race.
async function withFreshPorts(n, attempts, fn) {
  for (let i = 1; ; i++) {
    const ports = [];
    for (let j = 0; j < n; j++) ports.push(await freePort());
    try {
      return await fn(...ports);
    } catch (e) {
      if (!(e instanceof StartError && e.inUse) || i >= attempts) throw e;
    }
  }
}

// Restarts on a fixed port: the old listener may take a moment to let go.
async function withSamePorts(attempts, fn) {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (e) {
      if (!(e instanceof StartError && e.inUse) || i >= attempts) throw e;
      await sleep(200);
    }
  }
}

// ---------------------------------------------------------------------------
// Small clients

function run(cmd, args, { env, timeoutMs = 30000, input } = {}) {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { env, timeout: timeoutMs, maxBuffer: 64 << 20, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : (err.signal ? 128 + (os.constants.signals[err.signal] || 0) : 127)) : 0;
        resolve({ code, stdout, stderr, error: err && typeof err.code !== 'number' && !err.signal ? err : undefined });
      });
    if (input !== undefined) child.stdin.end(input);
  });
}

function redisPing(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let buf = '';
    const done = (ok) => { sock.destroy(); resolve(ok); };
    sock.setTimeout(1000, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => { buf += d; if (buf.includes('\r\n')) done(buf.startsWith('+PONG')); });
  });
}

async function httpStatus(url) {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  await res.arrayBuffer();
  return res.status;
}

function minimalEnv(extra = {}) {
  const env = {};
  for (const k of ['PATH', 'HOME', 'TZ', 'LANG', 'LC_ALL', 'TMPDIR']) if (process.env[k] !== undefined) env[k] = process.env[k];
  // Sanitizer builds read these.
  for (const k of Object.keys(process.env)) if (/^[A-Z]+SAN_OPTIONS$/.test(k)) env[k] = process.env[k];
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined || v === null) delete env[k]; else env[k] = String(v);
  }
  return env;
}

// ---------------------------------------------------------------------------
// The stack

const SERVICES = ['gateway', 'processor', 'reporter'];

class Stack {
  constructor(dir, opts) {
    this.dir = dir;
    this.opts = opts;
    this.services = [];     // every service ever started, in order
    this.counts = {};
    this.stopped = false;
    this.pgUser = postgresUser();
    this.natsDir = path.join(dir, 'nats');
    this.redisDir = path.join(dir, 'redis');
    this.pgDir = path.join(dir, 'pg');   // owned by postgres: data dir and socket dir
    this.pgData = path.join(this.pgDir, 'data');
    for (const d of [this.natsDir, this.redisDir, this.pgDir]) fs.mkdirSync(d);
    if (this.pgUser) fs.chownSync(this.pgDir, this.pgUser.uid, this.pgUser.gid);
  }

  get natsUrl() { return `nats://127.0.0.1:${this.natsPort}`; }
  get databaseUrl() { return `postgresql://postgres@127.0.0.1:${this.pgPort}/tally`; }

  /** Environment for the tally services (and tallyctl). */
  env() {
    return {
      NATS_URL: this.natsUrl,
      REDIS_HOST: '127.0.0.1',
      REDIS_PORT: String(this.redisPort),
      DATABASE_URL: this.databaseUrl,
      LOG_LEVEL: process.env.LOG_LEVEL || 'info',
    };
  }

  log(name) { return path.join(this.dir, `${name}.log`); }

  // --- NATS -----------------------------------------------------------------

  async #spawnNats(port, mport) {
    const p = new Proc('nats', need('nats-server'), [
      '-js', '-sd', this.natsDir, '-a', '127.0.0.1', '-p', String(port),
      '-m', String(mport), '--server_name', 'tally-test',
    ], { env: minimalEnv(), log: this.log('nats') });
    this.nats = p;
    await p.waitReady(async () => (await httpStatus(`http://127.0.0.1:${mport}/healthz`)) === 200, 15000, 'nats-server');
    this.natsPort = port;
    this.natsMonitorPort = mport;
  }

  /** Start nats-server; on the same ports and store dir if it ran before. */
  async startNats() {
    if (this.nats?.alive) throw new Error('harness: nats-server is already running');
    if (this.natsPort) return withSamePorts(25, () => this.#spawnNats(this.natsPort, this.natsMonitorPort));
    return withFreshPorts(2, 5, (p, m) => this.#spawnNats(p, m));
  }

  /** Graceful stop; resolves with the exit code (SIGINT: nats-server 2.9 exits 1 on SIGTERM). */
  async stopNats() { return this.nats ? (await this.nats.stop('SIGINT')).code : undefined; }

  /** SIGKILL, as in a crash. */
  async killNats() { return this.nats?.kill(); }

  // --- Redis ----------------------------------------------------------------

  async #spawnRedis(port) {
    const persist = this.opts.redisPersist
      ? ['--appendonly', 'yes', '--appendfsync', 'always']
      : ['--appendonly', 'no', '--save', ''];
    const p = new Proc('redis', need('redis-server'), [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', this.redisDir,
      '--daemonize', 'no', '--logfile', '', ...persist,
    ], { env: minimalEnv(), log: this.log('redis') });
    this.redis = p;
    await p.waitReady(() => redisPing(port), 10000, 'redis-server');
    this.redisPort = port;
  }

  async startRedis() {
    if (this.redis?.alive) throw new Error('harness: redis-server is already running');
    if (this.redisPort) return withSamePorts(25, () => this.#spawnRedis(this.redisPort));
    return withFreshPorts(1, 5, (p) => this.#spawnRedis(p));
  }

  /** Graceful stop (SIGTERM, saves first if persistent); resolves with the exit code. */
  async stopRedis() { return this.redis ? (await this.redis.stop('SIGTERM')).code : undefined; }

  async killRedis() { return this.redis?.kill(); }

  // --- PostgreSQL -----------------------------------------------------------

  async #initdb() {
    const r = await new Promise((resolve) => {
      execFile(pgTool('initdb'), ['-D', this.pgData, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-locale'],
        { env: minimalEnv(), cwd: this.pgDir, ...(this.pgUser || {}), encoding: 'utf8', maxBuffer: 16 << 20 },
        (err, stdout, stderr) => resolve({ err, out: stdout + stderr }));
    });
    fs.writeFileSync(this.log('initdb'), r.out);
    if (r.err) throw new Error(`harness: initdb failed: ${r.err.message}\n${r.out}`);
  }

  async #spawnPostgres(port) {
    const p = new Proc('postgres', pgTool('postgres'), [
      '-D', this.pgData, '-p', String(port),
      '-c', 'listen_addresses=127.0.0.1',
      '-c', `unix_socket_directories=${this.pgDir}`,
      '-c', 'shared_buffers=32MB',
      ...(this.opts.pgSettings || []).flatMap((kv) => ['-c', kv]),
    ], { env: minimalEnv(), log: this.log('postgres'), cwd: this.pgDir, user: this.pgUser, tree: true });
    this.pg = p;
    const isready = pgTool('pg_isready');
    await p.waitReady(async () => (await run(isready, ['-q', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', 'postgres'],
      { env: minimalEnv(), timeoutMs: 5000 })).code === 0, 30000, 'postgres');
    this.pgPort = port;
  }

  async startPostgres() {
    if (this.pg?.alive) throw new Error('harness: postgres is already running');
    if (this.pgPort) return withSamePorts(25, () => this.#spawnPostgres(this.pgPort));
    await this.#initdb();
    await withFreshPorts(1, 5, (p) => this.#spawnPostgres(p));
    await this.psql('CREATE DATABASE tally', { db: 'postgres' });
  }

  /** Fast shutdown (SIGINT): aborts transactions, checkpoints, exits 0. */
  async stopPostgres() { return this.pg ? (await this.pg.stop('SIGINT')).code : undefined; }

  /** SIGKILL to the postmaster and every backend, as in a crash; restart runs crash recovery. */
  async killPostgres() { return this.pg?.kill(); }

  /** Run SQL as superuser postgres; rows as arrays of strings (NULL is ''). Throws on error. */
  async psql(sql, { db = 'tally' } = {}) {
    const r = await run(pgTool('psql'), ['-X', '-q', '-At', '-F', '\t', '-v', 'ON_ERROR_STOP=1',
      '-h', '127.0.0.1', '-p', String(this.pgPort), '-U', 'postgres', '-d', db, '-c', sql],
    { env: minimalEnv({ PGCONNECT_TIMEOUT: '5' }) });
    if (r.code !== 0) throw new Error(`psql failed (${r.code}): ${(r.stderr || r.error?.message || '').trim()}\n  sql: ${sql}`);
    return r.stdout.split('\n').filter((l) => l !== '').map((l) => l.split('\t'));
  }

  /** redis-cli -p PORT args...; its stdout without the final newline. Throws if redis-cli fails. */
  async redisCli(...args) {
    const r = await run(need('redis-cli'), ['-h', '127.0.0.1', '-p', String(this.redisPort), ...args.map(String)],
      { env: minimalEnv(), timeoutMs: 10000 });
    if (r.code !== 0) throw new Error(`redis-cli ${args.join(' ')} failed (${r.code}): ${(r.stderr || r.stdout).trim()}`);
    return r.stdout.replace(/\n$/, '');
  }

  // --- tally services -------------------------------------------------------

  startGateway(extraEnv, opts) { return this.startService('gateway', extraEnv, opts); }
  startProcessor(extraEnv, opts) { return this.startService('processor', extraEnv, opts); }
  startReporter(extraEnv, opts) { return this.startService('reporter', extraEnv, opts); }

  /**
   * Spawn build/bin/tally-<kind> with env() + BIND_ADDR/BIND_PORT + extraEnv
   * (an undefined value removes a variable). opts: args (extra argv),
   * waitReady (default true: wait for GET /healthz 200), readyTimeoutMs.
   * Set BIND_PORT in extraEnv to reuse a port (e.g. a restart).
   */
  async startService(kind, extraEnv = {}, { args = [], waitReady = true, readyTimeoutMs } = {}) {
    if (!SERVICES.includes(kind)) throw new Error(`harness: unknown service ${kind}`);
    if (this.stopped) throw new Error('harness: stack is stopped');
    const bin = path.join(binDir(), `tally-${kind}`);
    if (!fs.existsSync(bin)) {
      throw new Error(`harness: ${bin} does not exist; build first (scripts/build) or set TALLY_BIN_DIR`);
    }
    const wrapper = (process.env.TALLY_SERVICE_WRAPPER || '').split(/\s+/).filter(Boolean);
    const timeout = readyTimeoutMs ?? (wrapper.length ? 120000 : 20000);
    const fixedPort = extraEnv.BIND_PORT;
    const start = async (port) => {
      this.counts[kind] = (this.counts[kind] || 0) + 1;
      const name = `${kind}-${this.counts[kind]}`;
      const env = minimalEnv({ ...this.env(), BIND_ADDR: '127.0.0.1', BIND_PORT: String(port), ...extraEnv });
      const cmd = wrapper.length ? wrapper[0] : bin;
      const argv = wrapper.length ? [...wrapper.slice(1), bin, ...args] : args;
      const p = new Proc(name, cmd, argv, { env, log: this.log(name), cwd: this.dir });
      const svc = makeService(name, kind, port, p, env);
      this.services.push(svc);
      if (waitReady) await p.waitReady(async () => (await httpStatus(`${svc.url}/healthz`)) === 200, timeout, `tally-${kind} (${name})`);
      return svc;
    };
    if (fixedPort !== undefined) return start(fixedPort);
    return withFreshPorts(1, 5, start);
  }

  /** Run build/bin/tallyctl args with env() + extraEnv; resolves { code, stdout, stderr }. */
  async tallyctl(args = [], { env: extraEnv = {}, input, timeoutMs = 60000 } = {}) {
    const bin = path.join(binDir(), 'tallyctl');
    if (!fs.existsSync(bin)) throw new Error(`harness: ${bin} does not exist; build first (scripts/build) or set TALLY_BIN_DIR`);
    return run(bin, args.map(String), { env: minimalEnv({ ...this.env(), ...extraEnv }), input, timeoutMs });
  }

  /** Pids of every live child of this stack, PostgreSQL backends included. */
  pids() {
    const out = [];
    for (const p of [...this.services, this.nats, this.redis, this.pg]) {
      if (!p || !p.alive) continue;
      out.push(p.pid);
      if (p === this.pg) out.push(...descendants(p.pid));
    }
    return out;
  }

  /** Every log file of this stack, services first: [{ name, log }]. */
  logs() {
    const out = this.services.map((s) => ({ name: s.name, log: s.log }));
    for (const n of ['nats', 'redis', 'postgres']) out.push({ name: n, log: this.log(n) });
    return out;
  }

  /**
   * Stop services (SIGTERM, newest first; SIGKILL after 15 s), then the
   * stores; remove dir unless KEEP_TEST_DIRS=1. Resolves with the exit code
   * of every service ever started, by name ({} on a second call).
   */
  async stop() {
    if (this.stopped) return {};
    this.stopped = true;
    const codes = {};
    for (const s of [...this.services].reverse()) {
      codes[s.name] = s.alive ? await s.stop('SIGTERM', { timeoutMs: 15000, quiet: true }) : s.exitCode;
    }
    await Promise.all([
      this.pg?.stop('SIGINT', 30000),
      this.redis?.stop('SIGTERM'),
      this.nats?.stop('SIGINT'),
    ]);
    liveDirs.delete(this.dir);
    if (keepDirs()) process.stderr.write(`harness: KEEP_TEST_DIRS=1, left ${this.dir}\n`);
    else fs.rmSync(this.dir, { recursive: true, force: true });
    return codes;
  }
}

function makeService(name, kind, port, p, env) {
  return {
    name,
    kind,
    port: Number(port),
    url: `http://127.0.0.1:${port}`,
    proc: p.proc,
    pid: p.pid,
    log: p.log,
    env,
    /** Resolves with the exit code (128+n if killed by signal n). */
    get exited() { return keepAlive(p.exited); },
    get alive() { return p.alive; },
    get exitCode() { return p.exitCode; },
    /**
     * Send signal and resolve with the exit code. If the process has not
     * exited after timeoutMs it is SIGKILLed and stop() rejects (unless quiet).
     */
    async stop(signal = 'SIGTERM', { timeoutMs = 15000, quiet = false } = {}) {
      const r = await p.stop(signal, timeoutMs);
      if (r.timedOut && !quiet) throw new Error(`harness: ${name} did not exit within ${timeoutMs} ms of ${signal}; SIGKILLed`);
      return r.code;
    },
    /** SIGKILL; resolves with the exit code (137). */
    kill() { return p.kill(); },
    logText() { try { return fs.readFileSync(p.log, 'utf8'); } catch { return ''; } },
  };
}

/**
 * Start nats-server (JetStream), redis-server and PostgreSQL (database
 * `tally`) on free ports in a fresh temp folder. opts.redisPersist: AOF with
 * appendfsync always (default: no persistence). opts.pgSettings: more
 * `name=value` server settings for PostgreSQL (after shared_buffers=32MB,
 * so they win).
 */
export async function startStack(opts = {}) {
  installHooks();
  const dir = fs.mkdtempSync(path.join(process.env.TALLY_TEST_TMPDIR || os.tmpdir(), 'tally-test-'));
  fs.chmodSync(dir, 0o755);   // the postgres user must traverse it
  liveDirs.add(dir);
  let stack;
  try {
    stack = new Stack(dir, opts);
    const r = await Promise.allSettled([stack.startNats(), stack.startRedis(), stack.startPostgres()]);
    const bad = r.find((x) => x.status === 'rejected');
    if (bad) throw bad.reason;
  } catch (e) {
    if (stack) await stack.stop().catch(() => {});
    else { liveDirs.delete(dir); fs.rmSync(dir, { recursive: true, force: true }); }
    throw e;
  }
  return stack;
}

/** Print the last `lines` lines of every log of the stack to stderr (services first). */
export function dumpLogs(stack, { lines = 50, stores = true } = {}) {
  if (!stack) return;
  for (const { name, log } of stack.logs()) {
    if (!stores && ['nats', 'redis', 'postgres'].includes(name)) continue;
    if (!fs.existsSync(log)) continue;
    process.stderr.write(`\n----- ${name}: last ${lines} lines of ${log}\n${tail(log, lines)}\n`);
  }
}

// ---------------------------------------------------------------------------
// HTTP and helpers

function cookieHeader(cookie) {
  if (typeof cookie === 'string') return cookie;
  if (Array.isArray(cookie)) return cookie.map((c) => c.split(';')[0].trim()).join('; ');
  return Object.entries(cookie).map(([k, v]) => `${k}=${v}`).join('; ');
}

/**
 * One HTTP request (fetch, keep-alive, no redirects followed).
 * body: string, Buffer/Uint8Array, URLSearchParams (form) or a plain object (JSON).
 * cookie: "a=b; c=d", { a: 'b' }, or a setCookie array from an earlier answer.
 * Resolves { status, headers (lower-case keys), body (string), bytes (Buffer),
 * json (parsed body or undefined), setCookie (array of Set-Cookie values) }.
 */
export async function http(method, url, { headers = {}, body, cookie, timeoutMs = 10000 } = {}) {
  const h = new Headers(headers);
  if (cookie !== undefined && cookie !== null) h.set('cookie', cookieHeader(cookie));
  let b = body;
  if (b !== undefined && b !== null && typeof b === 'object' && !(b instanceof URLSearchParams) &&
      !(b instanceof ArrayBuffer) && !ArrayBuffer.isView(b)) {
    b = JSON.stringify(b);
    if (!h.has('content-type')) h.set('content-type', 'application/json');
  }
  const res = await fetch(url, { method, headers: h, body: b, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
  const bytes = Buffer.from(await res.arrayBuffer());
  const text = bytes.toString('utf8');
  let json;
  if (text !== '') { try { json = JSON.parse(text); } catch { json = undefined; } }
  const hdrs = {};
  for (const [k, v] of res.headers) hdrs[k] = v;
  return { status: res.status, headers: hdrs, body: text, bytes, json, setCookie: res.headers.getSetCookie() };
}

/**
 * Run fn(i) for i in [0, n) with at most `concurrency` in flight; resolves the
 * results in order. After the first failure no new job starts; the first
 * error is thrown once the running ones finish.
 */
export async function pool(n, concurrency, fn) {
  const results = new Array(n);
  let next = 0;
  let failed = false;
  let error;
  const worker = async () => {
    while (!failed && next < n) {
      const i = next++;
      try {
        results[i] = await fn(i);
      } catch (e) {
        if (!failed) { failed = true; error = e; }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, n)) }, worker));
  if (failed) throw error;
  return results;
}

/**
 * Poll fn (sync or async) until it returns a truthy value, which is returned.
 * A throw counts as not yet. On timeout throws an error naming `what` and the
 * last value (or error).
 */
export async function waitFor(fn, { timeoutMs = 10000, intervalMs = 50, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  let lastErr;
  for (;;) {
    try {
      last = await fn();
      lastErr = undefined;
      if (last) return last;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() >= deadline) {
      const got = lastErr ? `last error: ${lastErr.message}` : `last value: ${inspect(last, { depth: 4, breakLength: Infinity })}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ${got}`);
    }
    await sleep(intervalMs);
  }
}
