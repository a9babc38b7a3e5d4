// What the benchmark scripts share: their command line and /proc readings.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat's CPU times. */
export const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/**
 * The script's arguments. --help prints the script's header comment (its
 * leading // lines, so it never falls out of step with it) and exits.
 * opt(name, def) is the value after --name; env holds every --env
 * KEY=VALUE (repeatable), for a service.
 */
export function cliArgs(scriptUrl) {
  const args = process.argv.slice(2);
  if (args.includes('--help')) {
    const lines = fs.readFileSync(new URL(scriptUrl), 'utf8').split('\n');
    const end = lines.findIndex((l) => !l.startsWith('//'));
    console.log(lines.slice(0, end < 0 ? lines.length : end).join('\n'));
    process.exit(0);
  }
  const opt = (name, def) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : def;
  };
  const env = {};
  args.forEach((a, i) => {
    if (a === '--env') { const kv = args[i + 1]; env[kv.slice(0, kv.indexOf('='))] = kv.slice(kv.indexOf('=') + 1); }
  });
  return { args, opt, env };
}

/** A process's CPU so far in clock ticks (utime + stime), its reaped
 * children's (reaped: cutime + cstime) and its memory (VmRSS, VmHWM in
 * kB); undefined once it is gone. */
export function readProc(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(f[11]) + Number(f[12]);   // utime, stime
    const reaped = Number(f[13]) + Number(f[14]);  // cutime, cstime
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number((status.match(new RegExp(`^${k}:\\s+(\\d+)`, 'm')) || [])[1] || 0);
    return { ticks, reaped, rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return undefined;
  }
}
