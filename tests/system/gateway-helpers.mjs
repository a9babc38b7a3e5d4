// Helpers shared by the gateway's system tests (tests/system/gateway*.test.mjs):
// an independent NATS/JetStream client to read stream VOTES back, the
// tally.v1.Vote codec through protobufjs, and small HTTP/metrics shorthands.
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot, http } from './harness.mjs';

const req = createRequire(path.join(repoRoot, 'tests', 'js', 'package.json'));
const load = async (m) => import(pathToFileURL(req.resolve(m)).href);

const { connect } = await load('@nats-io/transport-node');
const { jetstreamManager } = await load('@nats-io/jetstream');
const protobuf = (await load('protobufjs')).default;

const root = await protobuf.load(path.join(repoRoot, 'proto', 'tally', 'v1', 'vote.proto'));
export const VoteType = root.lookupType('tally.v1.Vote');

export function encodeVote(fields) {
  return Buffer.from(VoteType.encode(VoteType.create(fields)).finish());
}

export function decodeVote(bytes) {
  return VoteType.toObject(VoteType.decode(bytes), { longs: Number, enums: Number, defaults: true });
}

/** A JetStream manager on the stack's NATS; close() when done. */
export async function openStream(stack) {
  const nc = await connect({ servers: stack.natsUrl, reconnect: false });
  const jsm = await jetstreamManager(nc);
  return {
    nc,
    jsm,
    async count() {
      try {
        return (await jsm.streams.info('VOTES')).state.messages;
      } catch (e) {
        if (/not found/i.test(String(e?.message))) return 0;
        throw e;
      }
    },
    /** The vote stored at seq (decoded) plus its headers, or null. */
    async get(seq) {
      let m;
      try {
        m = await jsm.streams.getMessage('VOTES', { seq });
      } catch (e) {
        if (/no message found|not found/i.test(String(e?.message))) return null;
        throw e;
      }
      if (!m) return null;
      return {
        seq: m.seq,
        subject: m.subject,
        msgId: m.header?.get('Nats-Msg-Id'),
        pollHeader: m.header?.get('Tally-Poll'),
        optionHeader: m.header?.get('Tally-Option'),
        contentType: m.header?.get('Content-Type'),
        vote: decodeVote(m.data),
      };
    },
    async close() { await nc.close(); },
  };
}

/** POST a JSON vote to the API. */
export function apiVote(gw, poll, body, { headers = {}, timeoutMs } = {}) {
  return http('POST', `${gw.url}/api/v1/polls/${poll}/votes`, { body, headers, timeoutMs });
}

/** The value of one sample in Prometheus text (0 if absent). */
export function metric(text, name, labels = '') {
  const want = labels ? `${name}{${labels}} ` : `${name} `;
  for (const line of text.split('\n')) {
    if (line.startsWith(want)) return Number(line.slice(want.length));
  }
  return 0;
}

export async function metricsText(gw) {
  return (await http('GET', `${gw.url}/metrics`)).body;
}

let voterSeq = 0;
/** A voter id unique in this process. */
export function newVoter(prefix = 'v') {
  voterSeq += 1;
  return `${prefix}${process.pid}-${voterSeq}-${Math.random().toString(36).slice(2, 8)}`;
}
