// Helpers for the processor's system tests: publish tally.v1.Vote straight
// into stream VOTES (no gateway), read the stream back, and compare the
// database with a recount made from the stream itself.
import path from 'node:path';
import { createRequire } from 'node:module';
import { repoRoot, startStack } from './harness.mjs';

const require = createRequire(path.join(repoRoot, 'tests', 'js', 'package.json'));
const { connect, headers } = require('@nats-io/transport-node');
const { jetstream, jetstreamManager } = require('@nats-io/jetstream');
const protobuf = require('protobufjs');

let VoteType;
/** The tally.v1.Vote type, loaded from proto/tally/v1/vote.proto. */
export function voteType() {
  if (!VoteType) {
    const root = protobuf.loadSync(path.join(repoRoot, 'proto', 'tally', 'v1', 'vote.proto'));
    VoteType = root.lookupType('tally.v1.Vote');
  }
  return VoteType;
}

/** Encodes { poll, voter, option, castId } as the wire bytes. */
export function encodeVote({ poll, voter, option, castId, castUnixMs = Date.now(), source = 4 }) {
  const T = voteType();
  return T.encode(T.create({ poll, voter, option, castId, castUnixMs, source })).finish();
}

export function decodeVote(bytes) {
  return voteType().decode(bytes);
}

/** Connects to NATS: { nc, js, jsm, close() }. */
export async function natsClient(natsUrl) {
  const nc = await connect({ servers: natsUrl, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  const js = jetstream(nc, { timeout: 10000 });
  const jsm = await jetstreamManager(nc, { timeout: 10000 });
  return { nc, js, jsm, close: () => nc.close() };
}

/** Creates stream VOTES as the services do (idempotent). */
/** A stack with a NATS client and stream VOTES, for processor tests:
 * `before(async () => ({ stack, nats } = await S.openStack()))`. */
export async function openStack() {
  const stack = await startStack();
  const nats = await natsClient(stack.natsUrl);
  await ensureStream(nats.jsm);
  return { stack, nats };
}

/** Undoes openStack (either may be undefined after a failed start). */
export async function closeStack(stack, nats) {
  if (nats) await nats.close();
  if (stack) await stack.stop();
}

export async function ensureStream(jsm) {
  try {
    await jsm.streams.info('VOTES');
  } catch {
    await jsm.streams.add({
      name: 'VOTES', subjects: ['votes.>'], retention: 'limits', storage: 'file',
      duplicate_window: 120 * 1e9, num_replicas: 1,
    });
  }
}

let castCounter = 0;
/**
 * Publishes votes ([{poll, voter, option, castId?, raw?, subject?}]) with
 * JetStream publish (PubAck awaited), `concurrency` in flight. raw: bytes to
 * publish instead of an encoded vote. Returns the PubAcks in order.
 * A failed publish is retried (same Nats-Msg-Id) until it succeeds, so a
 * test may restart nats-server meanwhile.
 */
export async function publishVotes(js, votes, { concurrency = 256 } = {}) {
  const acks = new Array(votes.length);
  let next = 0;
  const worker = async () => {
    while (next < votes.length) {
      const i = next++;
      const v = votes[i];
      const castId = v.castId ?? `c${process.pid}-${Date.now()}-${castCounter++}`;
      const h = headers();
      h.set('Nats-Msg-Id', castId);
      h.set('Content-Type', 'application/x-protobuf');
      if (v.poll) h.set('Tally-Poll', v.poll);
      if (v.option) h.set('Tally-Option', v.option);
      for (const [k, val] of Object.entries(v.headers ?? {})) h.set(k, val);
      const data = v.raw ?? encodeVote({ ...v, castId });
      const subject = v.subject ?? `votes.${v.poll}`;
      for (let attempt = 0; ; attempt++) {
        try {
          acks[i] = await js.publish(subject, data, { headers: h, msgID: castId, timeout: 5000 });
          break;
        } catch (e) {
          if (attempt > 600) throw e;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, votes.length) || 1 }, worker));
  return acks;
}

/**
 * Reads every message of VOTES (an ordered consumer) and returns
 * { messages: [{seq, subject, vote|undefined}], latest: Map("poll\tvoter" -> {option, seq}) }
 * where latest is each voter's latest valid cast by stream sequence.
 */
export async function readStream(js, jsm) {
  const info = await jsm.streams.info('VOTES');
  const last = info.state.last_seq;
  const out = [];
  const latest = new Map();
  if (info.state.messages === 0) return { messages: out, latest, lastSeq: last };
  const c = await js.consumers.get('VOTES');
  const iter = await c.consume({ max_messages: 2000 });
  for await (const m of iter) {
    let vote;
    try { vote = decodeVote(m.data); } catch { vote = undefined; }
    const ok = vote && /^[a-z0-9_-]{1,64}$/.test(vote.poll) && /^[a-z0-9_-]{1,64}$/.test(vote.option) &&
      /^[A-Za-z0-9._:@-]{1,128}$/.test(vote.voter) && m.subject === `votes.${vote.poll}`;
    out.push({ seq: m.seq, subject: m.subject, vote: ok ? vote : undefined });
    if (ok) {
      const k = `${vote.poll}\t${vote.voter}`;
      const prev = latest.get(k);
      if (!prev || prev.seq < m.seq) latest.set(k, { option: vote.option, seq: m.seq });
    }
    if (m.seq >= last) break;
  }
  await iter.close();
  return { messages: out, latest, lastSeq: last };
}

/** Tallies from a latest map: Map("poll\toption" -> count). */
export function tallyOf(latest) {
  const t = new Map();
  for (const [k, v] of latest) {
    const poll = k.split('\t')[0];
    const key = `${poll}\t${v.option}`;
    t.set(key, (t.get(key) || 0) + 1);
  }
  return t;
}

/** Rows of votes as Map("poll\tvoter" -> {option, seq}). */
export async function dbVotes(stack) {
  const rows = await stack.psql('SELECT poll, voter, option, seq FROM votes');
  return new Map(rows.map(([p, v, o, s]) => [`${p}\t${v}`, { option: o, seq: Number(s) }]));
}

/** Non-zero tallies as Map("poll\toption" -> votes). */
export async function dbTallies(stack) {
  const rows = await stack.psql('SELECT poll, option, votes FROM tallies WHERE votes <> 0');
  return new Map(rows.map(([p, o, n]) => [`${p}\t${o}`, Number(n)]));
}

/** First difference between two maps, as text (undefined when equal). */
export function mapDiff(a, b, { what = 'map', limit = 5 } = {}) {
  const diffs = [];
  for (const [k, v] of a) {
    const w = b.get(k);
    if (JSON.stringify(v) !== JSON.stringify(w)) diffs.push(`${k}: ${JSON.stringify(v)} vs ${JSON.stringify(w)}`);
    if (diffs.length >= limit) break;
  }
  for (const [k, w] of b) {
    if (diffs.length >= limit) break;
    if (!a.has(k)) diffs.push(`${k}: missing vs ${JSON.stringify(w)}`);
  }
  if (a.size !== b.size) diffs.push(`sizes ${a.size} vs ${b.size}`);
  return diffs.length ? `${what} differs: ${diffs.join('; ')}` : undefined;
}

/** Value of one Prometheus sample (first match) from /metrics text. */
export function metric(text, name) {
  const re = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+)$`, 'm');
  const m = re.exec(text);
  return m ? Number(m[1]) : undefined;
}

/** Waits until the processor's consumer has nothing pending or unacked. */
export async function consumerDrained(jsm) {
  const ci = await jsm.consumers.info('VOTES', 'processor');
  return ci.num_pending === 0 && ci.num_ack_pending === 0;
}
