// What the benchmark scripts share: their command line and /proc readings.
import fs from 'node:fs';

/**
 * The script's arguments. --help prints the first helpLines lines of the
 * script (its header comment) and exits. opt(name, def) is the value after
 * --name; env holds every --env KEY=VALUE (repeatable), for a service.
 */
export function cliArgs(scriptUrl, helpLines) {
  const args = process.argv.slice(2);
  if (args.includes('--help')) {
    console.log(fs.readFileSync(new URL(scriptUrl), 'utf8').split('\n').slice(0, helpLines).join('\n'));
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

/** A process's CPU so far in clock ticks (utime + stime) and its memory
 * (VmRSS, VmHWM in kB); undefined once it is gone. */
export function readProc(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(f[11]) + Number(f[12]);   // utime, stime
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number((status.match(new RegExp(`^${k}:\\s+(\\d+)`, 'm')) || [])[1] || 0);
    return { ticks, rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return undefined;
  }
}
