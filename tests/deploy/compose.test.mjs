// deploy/compose.yaml: the compose-spec schema (from the dclint package)
// with ajv, cross-references, and what the issue asks of it; each check is
// then shown to catch a seeded mistake in a copy.
//   node --test tests/deploy/compose.test.mjs
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as c from './checks.mjs';

const contract = c.readContract();
const doc = c.readCompose();

const POLICY = {
  loopbackOnly: ['nats', 'redis', 'postgres'],
  // The original's layout: the web services on both, seed on front only.
  networks: {
    gateway: ['front-tier', 'back-tier'],
    reporter: ['front-tier', 'back-tier'],
    seed: ['front-tier'],
    processor: ['back-tier'],
    init: ['back-tier'],
    nats: ['back-tier'],
    redis: ['back-tier'],
    postgres: ['back-tier'],
  },
};

const CHECKS = {
  schema: (d) => c.composeSchemaErrors(d),
  defaults: (d) => c.composeDefaultErrors(d),
  references: (d) => c.composeRefErrors(d),
  policy: (d) => c.composePolicyErrors(d, contract, POLICY),
  seed: (d) => c.composeSeedErrors(d),
};

function catches(check, mutate, re) {
  const d = c.clone(doc);
  mutate(d, d.services);
  const errs = CHECKS[check](d);
  assert.ok(errs.some((e) => re.test(e)),
    `seeded mistake not caught by ${check} (want ${re}); it reported:\n  ${errs.join('\n  ') || '(nothing)'}`);
}

describe('deploy/compose.yaml', () => {
  for (const [name, check] of Object.entries(CHECKS))
    test(name, () => assert.deepEqual(check(doc), []));
  test('has the services the issue lists', () => {
    for (const s of ['nats', 'redis', 'postgres', 'gateway', 'reporter', 'processor', 'init', 'seed'])
      assert.ok(doc.services[s], `no service ${s}`);
  });
});

describe('seeded mistakes are caught', () => {
  // Schema
  test('schema: misspelt key (helthcheck)', () =>
    catches('schema', (d, s) => { s.redis.helthcheck = s.redis.healthcheck; delete s.redis.healthcheck; },
      /services\.redis: must NOT have additional properties \(helthcheck\)/));
  test('schema: wrong type (ports as a number)', () =>
    catches('schema', (d, s) => { s.gateway.ports = 8080; }, /services\.gateway\.ports: must be array/));
  test('schema: unknown depends_on condition', () =>
    catches('schema', (d, s) => { s.gateway.depends_on.redis.condition = 'service_ready'; },
      /depends_on\.redis\.condition: must be equal to one of the allowed values/));
  test('schema: interval without a unit (a number)', () =>
    catches('schema', (d, s) => { s.postgres.healthcheck.interval = 5; },
      /healthcheck\.interval: must be string/));
  test('schema: unknown top-level key', () =>
    catches('schema', (d) => { d.volume = {}; }, /must NOT have additional properties \(volume\)/));

  // Defaults
  test('defaults: a variable with no default', () =>
    catches('defaults', (d, s) => { s.postgres.environment.POSTGRES_PASSWORD = '${POSTGRES_PASSWORD}'; },
      /\$\{POSTGRES_PASSWORD\} has no default/));

  // References
  test('references: depends_on a service that does not exist', () =>
    catches('references', (d, s) => { s.processor.depends_on.postgresql = { condition: 'service_healthy' }; },
      /processor: depends_on postgresql, which is not a service/));
  test('references: service_healthy on a service without a healthcheck', () =>
    catches('references', (d, s) => { delete s.nats.healthcheck; },
      /gateway: waits for nats to be healthy, but nats has no healthcheck/));
  test('references: service_healthy on a disabled healthcheck', () =>
    catches('references', (d, s) => { s.redis.healthcheck = { disable: true }; },
      /waits for redis to be healthy, but redis has no healthcheck/));
  test('references: waiting for completion of a service that restarts', () =>
    catches('references', (d, s) => { s.init.restart = 'unless-stopped'; },
      /waits for init to complete, but init restarts/));
  test('references: default service depending on a profiled one', () =>
    catches('references', (d, s) => { s.reporter.depends_on.seed = { condition: 'service_completed_successfully' }; },
      /reporter: depends on seed, which only exists in profile/));
  test('references: undeclared network', () =>
    catches('references', (d, s) => { s.redis.networks = ['backtier']; }, /redis: network backtier is not declared/));
  test('references: undeclared named volume', () =>
    catches('references', (d, s) => { s.postgres.volumes = ['pg-data:/var/lib/postgresql/data']; },
      /postgres: volume pg-data is not declared/));
  test('references: declared volume nobody uses', () =>
    catches('references', (d, s) => { s.redis.volumes = []; }, /volume redis-data is declared but no service uses it/));
  test('references: Dockerfile path that does not exist', () =>
    catches('references', (d, s) => { s.gateway.build = { ...s.gateway.build, dockerfile: 'Dockerfile' }; },
      /gateway: Dockerfile .*Dockerfile does not exist/));

  // Policy
  test('policy: long-running service without a healthcheck', () =>
    catches('policy', (d, s) => { delete s.processor.healthcheck; }, /processor: no healthcheck/));
  test('policy: long-running service without a restart policy', () =>
    catches('policy', (d, s) => { delete s.reporter.restart; }, /reporter: no restart policy/));
  test('policy: depends_on without waiting for health', () =>
    catches('policy', (d, s) => { s.gateway.depends_on.redis.condition = 'service_started'; },
      /gateway: depends_on redis with condition service_started, want service_healthy/));
  test('policy: short depends_on list (no condition)', () =>
    catches('policy', (d, s) => { s.reporter.depends_on = ['init', 'postgres']; },
      /reporter: depends_on postgres with condition service_started/));
  test('policy: data store published on every interface', () =>
    catches('policy', (d, s) => { s.postgres.ports = ['5432:5432']; },
      /postgres: port "5432:5432" is published beyond 127\.0\.0\.1/));
  test('policy: processor on the front tier', () =>
    catches('policy', (d, s) => { s.processor.networks.push('front-tier'); },
      /processor: on networks back-tier, front-tier, want back-tier/));
  test('policy: seed cannot reach the gateway', () =>
    catches('policy', (d, s) => { s.gateway.networks = ['back-tier']; },
      /seed: command names gateway, which shares no network with it/));
  test('policy: host name that is no service', () =>
    catches('policy', (d, s) => { s.processor.environment.PGHOST = 'db'; },
      /processor: PGHOST names host db, which is not a service/));
  test('policy: URL host that is no service', () =>
    catches('policy', (d, s) => { s.gateway.environment.NATS_URL = 'nats://broker:4222'; },
      /gateway: NATS_URL names host broker, which is not a service/));
  test('policy: misspelt setting', () =>
    catches('policy', (d, s) => { s.gateway.environment.REDIS_ADDR = 'redis'; },
      /gateway: REDIS_ADDR is not a setting in docs\/CONTRACTS\.md/));
  test('policy: healthcheck on the wrong port', () =>
    catches('policy', (d, s) => { s.processor.healthcheck.test = ['CMD', 'tally-healthcheck', '8080', '/readyz']; },
      /processor: healthcheck does not probe port 8082/));
  test('policy: published port the service does not listen on', () =>
    catches('policy', (d, s) => { s.reporter.ports = ['8081:80']; },
      /reporter: publishes container port 80, but tally-reporter listens on 8081/));

  // Seed profile
  test('seed: not behind the profile', () =>
    catches('seed', (d, s) => { delete s.seed.profiles; }, /seed: not in profile "seed"/));
  test('seed: wrong URL', () =>
    catches('seed', (d, s) => { s.seed.command = ['tallyctl', 'seed', '--url', 'http://localhost:8080']; },
      /--url http:\/\/localhost:8080 is not the gateway service/));
  test('seed: starts before the gateway is healthy', () =>
    catches('seed', (d, s) => { s.seed.depends_on.gateway.condition = 'service_started'; },
      /does not wait for gateway to be healthy/));
  test('seed: restarts after it is done', () =>
    catches('seed', (d, s) => { s.seed.restart = 'on-failure'; }, /must not restart/));
});
