// Every shell script in the repository passes shellcheck. Scripts are found
// at test time: *.sh files and files whose first line runs sh, bash, dash
// or ksh, among the files git lists (tracked, or untracked and not ignored).
//   node --test tests/deploy/shell.test.mjs
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import * as c from './checks.mjs';

describe('shell scripts', () => {
  const scripts = c.findShellScripts();
  test('finds the image healthcheck helper', () =>
    assert.ok(scripts.includes('deploy/docker/tally-healthcheck'), `found: ${scripts.join(', ')}`));
  test(`shellcheck passes on ${scripts.length} script(s)`, (t) => {
    t.diagnostic(scripts.join(' '));
    assert.deepEqual(c.shellcheckErrors(scripts), []);
  });
});

describe('seeded mistakes are caught', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-sh-'));
  const write = (rel, text, mode = 0o644) => {
    fs.mkdirSync(path.dirname(path.join(tmp, rel)), { recursive: true });
    fs.writeFileSync(path.join(tmp, rel), text, { mode });
  };
  write('scripts/run', '#!/usr/bin/env bash\nset -eu\necho "ok"\n', 0o755);
  write('.ci/check', '#!/bin/sh\nexit 0\n', 0o755);
  write('tools/x.sh', 'echo "no shebang, but .sh"\n');
  write('tools/gen.py', '#!/usr/bin/env python3\nprint(1)\n', 0o755);
  write('README', 'bash is mentioned here\n');
  write('node_modules/dep/install.sh', '#!/bin/sh\n');
  write('build/tmp.sh', '#!/bin/sh\n');
  write('scripts/bad', '#!/bin/bash\ndir=$1\nrm -rf $dir/*\ncd $dir\n', 0o755);

  test('the finder picks shell scripts by extension and by shebang only', () => {
    assert.deepEqual(c.findShellScripts(tmp), ['.ci/check', 'scripts/bad', 'scripts/run', 'tools/x.sh']);
  });
  test('in a git checkout the finder skips ignored files', (t) => {
    const git = (...a) => spawnSync('git', ['-C', tmp, ...a], { encoding: 'utf8' });
    if (git('init', '-q').status !== 0) return t.skip('git not usable');
    fs.writeFileSync(path.join(tmp, '.gitignore'), 'node_modules/\nbuild/\nscripts/bad\n');
    try {
      assert.deepEqual(c.findShellScripts(tmp), ['.ci/check', 'scripts/run', 'tools/x.sh']);
    } finally {
      fs.rmSync(path.join(tmp, '.git'), { recursive: true, force: true });
      fs.rmSync(path.join(tmp, '.gitignore'));
    }
  });
  test('shellcheck flags unquoted expansions and an unchecked cd', () => {
    const errs = c.shellcheckErrors(['scripts/bad'], tmp);
    assert.ok(errs.some((e) => /SC2086/.test(e)), errs.join('\n'));
    assert.ok(errs.some((e) => /SC2164/.test(e)), errs.join('\n'));
  });
  test('shellcheck passes a clean script', () => assert.deepEqual(c.shellcheckErrors(['scripts/run'], tmp), []));
  test('cleanup', () => fs.rmSync(tmp, { recursive: true, force: true }));
});
