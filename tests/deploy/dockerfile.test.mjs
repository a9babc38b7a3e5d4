// deploy/Dockerfile, .dockerignore and the image's healthcheck helper:
// dockerfile-utils lint, what the issue and the design ask of the image, and
// each check shown to catch a seeded mistake.
//   node --test tests/deploy/dockerfile.test.mjs
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawn } from 'node:child_process';
import path from 'node:path';
import * as c from './checks.mjs';

const contract = c.readContract();
const dockerfile = c.readFile('deploy/Dockerfile');
const dockerignore = c.readFile('.dockerignore');
const runtime = c.bookwormRuntimeMap();
const policy = (text, ignore = dockerignore) =>
  c.dockerfilePolicyErrors(text, { dockerignore: ignore, contract, runtimeMap: runtime.map });

function caught(errs, re) {
  assert.ok(errs.some((e) => re.test(e)),
    `seeded mistake not caught (want ${re}); it reported:\n  ${errs.join('\n  ') || '(nothing)'}`);
}
// A copy of the Dockerfile with one exact piece of text replaced.
function seeded(from, to) {
  assert.ok(dockerfile.includes(from), `the Dockerfile no longer contains ${JSON.stringify(from)}`);
  return dockerfile.replace(from, to);
}

describe('deploy/Dockerfile', () => {
  test('dockerfile-utils finds nothing', () => assert.deepEqual(c.dockerfileLintErrors(dockerfile), []));
  test('image policy', () => assert.deepEqual(policy(dockerfile), []));
  test(`runtime packages (from ${runtime.source}) match the table`, (t) => {
    if (runtime.source !== 'apt-cache') return t.skip('not a Debian 12 machine');
    assert.deepEqual(runtime.map, c.RUNTIME_OF_DEV_BOOKWORM);
  });
});

// With a build tree at hand (CTest sets TALLY_BIN_DIR), the libraries the
// binaries really link must all be installed by the runtime stage.
const binDir = process.env.TALLY_BIN_DIR ?? path.join(c.ROOT, 'build/bin');
const linked = c.linkedPackages(binDir, Object.keys(contract.binaries));
describe('runtime stage installs what the binaries link', () => {
  test('every NEEDED library is installed', (t) => {
    if (!linked) return t.skip(`no binaries in ${binDir} (or no readelf/dpkg)`);
    t.diagnostic(Object.entries(linked).map(([l, v]) => `${l}: ${v.pkg}`).join(', '));
    assert.deepEqual(c.linkedPackageErrors(linked, dockerfile), []);
  });
  test('seeded: libjansson4 left out', () => {
    const fake = { 'libjansson.so.4': { pkg: 'libjansson4', users: ['tally-reporter'] },
      'libc.so.6': { pkg: 'libc6', users: ['tally-reporter'] } };
    assert.deepEqual(c.linkedPackageErrors(fake, dockerfile), []);
    caught(c.linkedPackageErrors(fake, seeded('libprotobuf-c1 libjansson4', 'libprotobuf-c1')),
      /libjansson\.so\.4 .* comes from libjansson4, which the runtime stage does not install/);
  });
});

describe('seeded mistakes are caught', () => {
  test('lint: invalid EXPOSE', () =>
    caught(c.dockerfileLintErrors(seeded('EXPOSE 8080 8081 8082', 'EXPOSE 8080 web')), /Invalid containerPort: web/));
  test('lint: unknown COPY flag', () =>
    caught(c.dockerfileLintErrors(seeded('COPY --chmod=0755', 'COPY --chmd=0755')), /Unknown flag: chmd/));
  test('lint: instruction without arguments', () =>
    caught(c.dockerfileLintErrors(seeded('USER 10001:10001', 'USER')), /no arguments/));
  test('lint: unknown instruction', () =>
    caught(c.dockerfileLintErrors(seeded('STOPSIGNAL SIGTERM', 'STOPSIGNALS SIGTERM')), /Unknown instruction/i));

  test('policy: one stage only', () =>
    caught(policy('FROM debian:bookworm\nRUN true\n'), /1 stage\(s\)/));
  test('policy: runtime on full Debian', () =>
    caught(policy(seeded('FROM debian:bookworm-slim AS runtime', 'FROM debian:bookworm AS runtime')),
      /runtime stage is debian:bookworm, want debian:bookworm-slim/));
  test('policy: runs as root (no USER)', () =>
    caught(policy(seeded('USER 10001:10001\n', '')), /no USER: it would run as root/));
  test('policy: USER by name', () =>
    caught(policy(seeded('USER 10001:10001', 'USER tally')), /must be a numeric non-root uid/));
  test('policy: USER root', () =>
    caught(policy(seeded('USER 10001:10001', 'USER 0')), /must be a numeric non-root uid/));
  test('policy: services left on loopback', () =>
    caught(policy(seeded('ENV BIND_ADDR=0.0.0.0', 'ENV LOG_LEVEL=info')), /does not set BIND_ADDR=0\.0\.0\.0/));
  test('policy: -dev package in the runtime stage', () =>
    caught(policy(seeded('libnats3.4 libhiredis0.14 libpq5', 'libnats3.4 libhiredis0.14 libpq-dev libpq5')),
      /runtime stage installs build tool or -dev package libpq-dev/));
  test('policy: runtime library missing', () =>
    caught(policy(seeded('libnats3.4 libhiredis0.14 libpq5', 'libnats3.4 libhiredis0.14')),
      /build uses libpq-dev but the runtime stage lacks libpq5/));
  test('policy: COPY --from a stage that does not exist', () =>
    caught(policy(seeded('COPY --from=build', 'COPY --from=builder')), /COPY --from=builder: no earlier stage/));
  test('policy: a binary not copied', () =>
    caught(policy(seeded(' /out/bin/tallyctl ', ' ')), /runtime stage does not copy tallyctl/));
  test('policy: apt-get install pulling recommends', () =>
    caught(policy(seeded('apt-get install -y --no-install-recommends \\\n      libnats3.4', 'apt-get install -y \\\n      libnats3.4')),
      /without --no-install-recommends/));
  test('policy: apt lists left in the layer', () =>
    caught(policy(dockerfile.replace(/ \\\n && rm -rf \/var\/lib\/apt\/lists\/\*/g, '')), /leaves \/var\/lib\/apt\/lists/));
  test('policy: COPY of a file that is not in the repository', () =>
    caught(policy(seeded('deploy/docker/tally-healthcheck /usr', 'deploy/tally-healthcheck /usr')),
      /COPY deploy\/tally-healthcheck: not in the build context/));

  test('.dockerignore: excludes a file the image copies', () =>
    caught(policy(dockerfile, dockerignore.replace('!deploy/docker\n', '')),
      /COPY deploy\/docker\/tally-healthcheck: excluded by \.dockerignore/));
  test('.dockerignore: sends node_modules', () =>
    caught(policy(dockerfile, dockerignore.replace('**/node_modules\n', '')), /does not exclude tests\/js\/node_modules/));
  test('.dockerignore: sends .git', () =>
    caught(policy(dockerfile, dockerignore.replace(/^\.git$/m, '')), /does not exclude \.git/));
  test('.dockerignore: excludes sources the build needs', () =>
    caught(policy(dockerfile, `${dockerignore}\ntests\n`), /excludes tests\/CMakeLists\.txt, which the build needs/));
});

describe('.dockerignore matching follows Docker', () => {
  const m = c.dockerignoreMatcher('.git\nbuild\n**/node_modules\ndeploy\n!deploy/docker\n*.md\n!README.md\n');
  const cases = [
    ['.git', true], ['.git/config', true], ['build/x.o', true], ['buildx', false],
    ['tests/js/node_modules/yaml/index.js', true], ['node_modules', true],
    ['deploy/compose.yaml', true], ['deploy/docker/tally-healthcheck', false],
    ['CONTRIBUTING.md', true], ['README.md', false], ['docs/DEPLOY.md', false], ['lib/log.c', false],
  ];
  for (const [file, want] of cases)
    test(`${file} ${want ? 'ignored' : 'sent'}`, () => assert.equal(m(file), want));
});

// tally-healthcheck against a local HTTP server on loopback.
describe('deploy/docker/tally-healthcheck', () => {
  const script = c.ROOT + 'deploy/docker/tally-healthcheck';
  const run = (...args) => new Promise((resolve) => {
    const p = spawn('bash', [script, ...args], { stdio: ['ignore', 'ignore', 'pipe'],
      env: { PATH: process.env.PATH, HEALTHCHECK_TIMEOUT_S: '2' } });
    let err = '';
    p.stderr.on('data', (d) => { err += d; });
    p.on('close', (code) => resolve({ code, err }));
  });
  const withServer = async (fn) => {
    const server = http.createServer((req, res) => {
      res.writeHead(req.url === '/readyz' ? 200 : 503, { 'Content-Type': 'text/plain' });
      res.end('x\n');
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    try { return await fn(server.address().port); } finally { server.close(); }
  };
  test('200 is healthy', () => withServer(async (port) => {
    assert.equal((await run(String(port), '/readyz')).code, 0);
  }));
  test('503 is unhealthy', () => withServer(async (port) => {
    const r = await run(String(port), '/healthz');
    assert.equal(r.code, 1);
    assert.match(r.err, /503/);
  }));
  test('nothing listening is unhealthy', async () => {
    const port = await withServer(async (p) => p); // closed again
    assert.equal((await run(String(port), '/readyz')).code, 1);
  });
});
