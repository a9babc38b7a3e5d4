// The wire schema passes `buf lint` (the STANDARD rules in proto/buf.yaml),
// and the check really bites: a copy with a seeded mistake fails it.
// buf is the npm package @bufbuild/buf in tests/js; it works offline.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const buf = path.join(root, 'tests', 'js', 'node_modules', '.bin', 'buf');
const protoDir = path.join(root, 'proto');
const voteProto = path.join(protoDir, 'tally', 'v1', 'vote.proto');

/** Run `buf lint <dir>`; resolves { code, out } (out: stdout + stderr). */
function lint(dir) {
  return new Promise((resolve) => {
    execFile(buf, ['lint', dir], { cwd: root, timeout: 120000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (err.code ?? 1) : 0, out: `${stdout}${stderr}` });
    });
  });
}

/** A copy of proto/ in a temp folder with vote.proto edited by fn. */
function seededCopy(fn) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-proto-'));
  fs.cpSync(protoDir, dir, { recursive: true });
  const file = path.join(dir, 'tally', 'v1', 'vote.proto');
  fs.writeFileSync(file, fn(fs.readFileSync(file, 'utf8')));
  return dir;
}

test('buf is installed', () => {
  assert.ok(fs.existsSync(buf), `${buf} is missing: run npm ci in tests/js`);
});

test('proto/ passes buf lint with no findings', async () => {
  const r = await lint(protoDir);
  assert.equal(r.out.trim(), '', `buf lint findings:\n${r.out}`);
  assert.equal(r.code, 0);
});

test('the schema keeps its reserved field and numbers', () => {
  const src = fs.readFileSync(voteProto, 'utf8');
  assert.match(src, /^package tally\.v1;/m);
  assert.match(src, /reserved 5;/);
  assert.match(src, /reserved "note";/);
  // The numbers the C codec and every reader rely on.
  for (const [name, n] of [['poll', 1], ['voter', 2], ['option', 3], ['cast_id', 4], ['cast_unix_ms', 6], ['source', 7]]) {
    assert.match(src, new RegExp(`\\b${name} = ${n};`), `${name} must stay field ${n}`);
  }
});

const mistakes = [
  ['a field name that is not lower_snake_case', (s) => s.replace('string voter = 2;', 'string VoterID = 2;'), /VoterID/],
  ['an enum zero value without the _UNSPECIFIED suffix', (s) => s.replace('SOURCE_UNSPECIFIED = 0;', 'SOURCE_NONE = 0;'), /SOURCE_NONE/],
  ['a message name that is not PascalCase', (s) => s.replace('message Vote {', 'message vote_msg {'), /vote_msg/],
];

for (const [what, edit, mention] of mistakes) {
  test(`buf lint catches ${what}`, async (t) => {
    const dir = seededCopy(edit);
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const r = await lint(dir);
    assert.notEqual(r.code, 0, `buf lint passed a schema with ${what}:\n${r.out}`);
    assert.match(r.out, mention, `the finding should name the mistake:\n${r.out}`);
  });
}
