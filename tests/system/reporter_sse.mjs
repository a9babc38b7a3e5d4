// A minimal Server-Sent Events client for the reporter's tests: it keeps
// every event and comment with its arrival time, so a test can check what
// arrived, in what order and how fast. Not a test file itself.

import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Open url as an event stream. headers: extra request headers (e.g.
 * Last-Event-ID). Resolves once the response headers are in:
 * { status, headers, events: [{id, event, data, json, at}], comments:
 *   [{text, at}], ended, waitEvents(n, timeoutMs), waitEnd(timeoutMs), close() }.
 */
export function openSse(url, { headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { accept: 'text/event-stream', ...headers } });
    req.setTimeout(30000, () => req.destroy(new Error('SSE: no answer in 30 s')));
    req.on('error', reject);
    req.on('response', (res) => {
      req.setTimeout(0);
      const s = {
        status: res.statusCode,
        headers: res.headers,
        events: [],
        comments: [],
        ended: false,
        raw: '',
        close() { req.destroy(); },
        async waitEvents(n, timeoutMs = 5000) {
          const deadline = Date.now() + timeoutMs;
          while (s.events.length < n) {
            if (Date.now() > deadline) throw new Error(`SSE: ${s.events.length} of ${n} events after ${timeoutMs} ms`);
            if (s.ended) throw new Error(`SSE: stream ended after ${s.events.length} of ${n} events`);
            await sleep(10);
          }
          return s.events[n - 1];
        },
        async waitEnd(timeoutMs = 5000) {
          const deadline = Date.now() + timeoutMs;
          while (!s.ended) {
            if (Date.now() > deadline) throw new Error(`SSE: stream still open after ${timeoutMs} ms`);
            await sleep(10);
          }
        },
      };
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        s.raw += chunk;
        buf += chunk;
        let i;
        // Events end with a blank line.
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const ev = { id: undefined, event: 'message', data: undefined, at: Date.now() };
          let isEvent = false;
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) { s.comments.push({ text: line.slice(1).trim(), at: ev.at }); continue; }
            const c = line.indexOf(':');
            const field = c < 0 ? line : line.slice(0, c);
            const value = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
            if (field === 'id') { ev.id = value; isEvent = true; }
            else if (field === 'event') { ev.event = value; isEvent = true; }
            else if (field === 'data') { ev.data = ev.data === undefined ? value : `${ev.data}\n${value}`; isEvent = true; }
            else if (field === 'retry') { s.retry = Number(value); }
          }
          if (isEvent && ev.data !== undefined) {
            try { ev.json = JSON.parse(ev.data); } catch { /* leave undefined */ }
            s.events.push(ev);
          }
        }
      });
      res.on('end', () => { s.ended = true; });
      res.on('close', () => { s.ended = true; });
      res.on('error', () => { s.ended = true; });
      resolve(s);
    });
  });
}

/** The processor's tallies table, for tests that run without a processor (docs/CONTRACTS.md). */
export const TALLIES_DDL = 'CREATE TABLE IF NOT EXISTS tallies (poll text NOT NULL, option text NOT NULL, ' +
  'votes bigint NOT NULL DEFAULT 0, PRIMARY KEY (poll, option))';

/** SQL that sets poll's counts ({a: 3, b: 1}) and, unless notify is false, notifies. */
export function setTallySql(poll, counts, { notify = true } = {}) {
  const rows = Object.entries(counts).map(([o, v]) => `('${poll}', '${o}', ${Number(v)})`).join(', ');
  return `INSERT INTO tallies (poll, option, votes) VALUES ${rows} ` +
    'ON CONFLICT (poll, option) DO UPDATE SET votes = EXCLUDED.votes' +
    (notify ? `; NOTIFY tally_changed, '${poll}'` : '');
}
