// Kubernetes manifests: every overlay rendered with `kubectl kustomize` and
// checked; each check is then shown to catch a seeded mistake in a copy.
//   node --test tests/deploy/k8s.test.mjs
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as c from './checks.mjs';

const contract = c.readContract();
const BINARIES = Object.keys(contract.binaries);
const K8S = path.join(c.ROOT, 'deploy/k8s');
const OVERLAYS = { base: 'base', dev: 'overlays/dev', production: 'overlays/production' };
const rendered = Object.fromEntries(
  Object.entries(OVERLAYS).map(([name, dir]) => [name, c.kustomize(path.join(K8S, dir))]));

// Who may talk to whom (docs/DEPLOY.md, NetworkPolicies).
const REACH = [
  ['outside', 'gateway', 'http', true],
  ['outside', 'reporter', 'http', true],
  ['outside', 'processor', 'http', false],
  ['outside', 'nats', 'client', false],
  ['outside', 'redis', 'redis', false],
  ['outside', 'postgres', 'postgres', false],
  ['gateway', 'nats', 'client', true],
  ['processor', 'nats', 'client', true],
  ['tally-init', 'nats', 'client', true],
  ['reporter', 'nats', 'client', false],
  ['nats', 'nats', 'cluster', true],
  ['gateway', 'nats', 'cluster', false],
  ['gateway', 'redis', 'redis', true],
  ['processor', 'redis', 'redis', false],
  ['reporter', 'redis', 'redis', false],
  ['tally-init', 'redis', 'redis', false],
  ['processor', 'postgres', 'postgres', true],
  ['reporter', 'postgres', 'postgres', true],
  ['tally-init', 'postgres', 'postgres', true],
  ['gateway', 'postgres', 'postgres', false],
  ['gateway', 'processor', 'http', false],
];

const SHAPE = {
  base: { exactReplicas: { nats: 1 }, config: { STREAM_REPLICAS: '1' } },
  dev: { exactReplicas: { nats: 1 }, config: { STREAM_REPLICAS: '1' } },
  production: {
    exactReplicas: { nats: 3 },
    minReplicas: { gateway: 2, processor: 2, reporter: 2 },
    hpa: ['gateway'],
    pdb: ['gateway', 'processor', 'reporter', 'nats'],
    config: { STREAM_REPLICAS: '3' },
  },
};
const COMMON_SHAPE = {
  pvc: ['nats', 'redis', 'postgres'],
  kinds: ['Ingress', 'NetworkPolicy', 'Job', 'ConfigMap', 'Secret'],
};

// All checks, by name, as run on one rendered overlay.
const CHECKS = {
  selectors: (objs) => c.selectorErrors(objs),
  ports: (objs) => c.portErrors(objs),
  references: (objs) => c.referenceErrors(objs, { uses: c.contractUses(contract) }),
  targets: (objs) => c.targetErrors(objs),
  hardening: (objs) => c.hardeningErrors(objs, { tallyBinaries: BINARIES }),
  envContract: (objs) => c.envContractErrors(objs, contract),
  reachability: (objs) => c.reachabilityErrors(objs, REACH),
  nats: (objs) => c.natsErrors(objs),
  shape: (objs, overlay) => c.shapeErrors(objs, { ...COMMON_SHAPE, ...SHAPE[overlay] }),
};

const get = (objs, kind, name) => {
  const o = objs.find((x) => x.kind === kind && (x.metadata.name === name || x.metadata.name.startsWith(`${name}-`)));
  assert.ok(o, `no ${kind}/${name} in the rendered objects`);
  return o;
};
const container = (objs, kind, name) => get(objs, kind, name).spec.template.spec.containers[0];

// Runs a check on a mutated copy of an overlay and asserts that it fails
// with a message matching re.
async function catches(overlay, check, mutate, re) {
  const objs = c.clone(rendered[overlay]);
  mutate(objs);
  const errs = check === 'schema' ? await c.schemaErrors(objs) : CHECKS[check](objs, overlay);
  assert.ok(errs.some((e) => re.test(e)),
    `seeded mistake not caught by ${check} (want ${re}); it reported:\n  ${errs.join('\n  ') || '(nothing)'}`);
}

for (const [overlay, dir] of Object.entries(OVERLAYS)) {
  describe(`kustomize ${dir}`, () => {
    test('renders', () => assert.ok(rendered[overlay].length > 10));
    test('schema: types, required fields, enums, unknown fields', async () => {
      assert.deepEqual(await c.schemaErrors(rendered[overlay]), []);
    });
    for (const [name, check] of Object.entries(CHECKS))
      test(name, () => assert.deepEqual(check(rendered[overlay], overlay), []));
  });
}

describe('a broken kustomization fails to render', () => {
  test('missing resource file', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-k8s-'));
    try {
      fs.cpSync(K8S, tmp, { recursive: true });
      fs.appendFileSync(path.join(tmp, 'base/kustomization.yaml'), '\n# seeded\n');
      fs.writeFileSync(path.join(tmp, 'base/kustomization.yaml'),
        fs.readFileSync(path.join(tmp, 'base/kustomization.yaml'), 'utf8').replace('  - ingress.yaml', '  - ingres.yaml'));
      assert.throws(() => c.kustomize(path.join(tmp, 'overlays/dev')), /kustomize .* failed/);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe('seeded mistakes are caught', () => {
  // Schema
  test('schema: wrong type (containerPort as a string)', () =>
    catches('dev', 'schema', (o) => { container(o, 'Deployment', 'gateway').ports[0].containerPort = '8080'; },
      /containerPort: must be integer/));
  test('schema: missing required field (Deployment selector)', () =>
    catches('dev', 'schema', (o) => { delete get(o, 'Deployment', 'reporter').spec.selector; },
      /Deployment\/reporter\.spec: must have required property 'selector'|required property selector/));
  test('schema: value outside an enum (imagePullPolicy)', () =>
    catches('dev', 'schema', (o) => { container(o, 'Deployment', 'processor').imagePullPolicy = 'Sometimes'; },
      /imagePullPolicy: must be equal to one of the allowed values/));
  test('schema: misspelt field (readynessProbe)', () =>
    catches('dev', 'schema', (o) => {
      const ct = container(o, 'Deployment', 'gateway');
      ct.readynessProbe = ct.readinessProbe; delete ct.readinessProbe;
    }, /containers\[0\]\.readynessProbe: unknown field/));
  test('schema: unknown field deep down (resources.request)', () =>
    catches('production', 'schema', (o) => { container(o, 'StatefulSet', 'postgres').resources.request = { cpu: '1' }; },
      /resources\.request: unknown field/));
  test('schema: unknown top-level spec field (Service spec.selectors)', () =>
    catches('base', 'schema', (o) => { get(o, 'Service', 'gateway').spec.selectors = {}; }, /spec\.selectors: unknown field/));
  test('schema: bad quantity format', () =>
    catches('dev', 'schema', (o) => { container(o, 'StatefulSet', 'redis').resources.limits.memory = '256 MB'; },
      /memory: must match format "quantity"/));
  test('schema: unknown kind', () =>
    catches('dev', 'schema', (o) => { get(o, 'Ingress', 'tally').kind = 'Ingres'; }, /unknown kind Ingres/));

  // Selectors
  test('selectors: Deployment selector does not match its pod labels', () =>
    catches('dev', 'selectors', (o) => { get(o, 'Deployment', 'gateway').spec.template.metadata.labels['app.kubernetes.io/name'] = 'gw'; },
      /Deployment\/gateway: selector .* does not match its pod labels/));
  test('selectors: a selector that also takes other pods', () =>
    catches('dev', 'selectors', (o) => {
      get(o, 'Deployment', 'processor').spec.selector = { matchLabels: { 'app.kubernetes.io/part-of': 'tally' } };
    }, /Deployment\/processor: selector also matches the pods of Deployment\/gateway/));
  test('selectors: Service selecting no pods', () =>
    catches('dev', 'selectors', (o) => { get(o, 'Service', 'reporter').spec.selector = { 'app.kubernetes.io/name': 'reportr' }; },
      /Service\/reporter: selector .* matches no pod template/));
  test('selectors: spread constraint not selecting its own pods', () =>
    catches('production', 'selectors', (o) => {
      get(o, 'StatefulSet', 'nats').spec.template.spec.topologySpreadConstraints[0].labelSelector.matchLabels['app.kubernetes.io/name'] = 'nat';
    }, /StatefulSet\/nats: topologySpreadConstraints selector/));

  // Ports
  test('ports: Service targetPort naming no container port', () =>
    catches('dev', 'ports', (o) => { get(o, 'Service', 'gateway').spec.ports[0].targetPort = 'htp'; },
      /Service\/gateway: port http targetPort htp is not a container port of Deployment\/gateway/));
  test('ports: numeric targetPort that nothing listens on', () =>
    catches('dev', 'ports', (o) => { get(o, 'Service', 'postgres').spec.ports[0].targetPort = 5433; },
      /targetPort 5433 is not a container port/));
  test('ports: Ingress backend port the Service lacks', () =>
    catches('dev', 'ports', (o) => { get(o, 'Ingress', 'tally').spec.rules[1].http.paths[0].backend.service.port = { name: 'web' }; },
      /Service reporter has no port web/));
  test('ports: Ingress backend Service that does not exist', () =>
    catches('dev', 'ports', (o) => { get(o, 'Ingress', 'tally').spec.rules[0].http.paths[0].backend.service.name = 'vote'; },
      /backend Service vote does not exist/));
  test('ports: probe on a port the container does not have', () =>
    catches('dev', 'ports', (o) => { container(o, 'Deployment', 'processor').readinessProbe.httpGet.port = 'metrics'; },
      /processor readinessProbe port metrics/));

  // References
  test('references: configMapKeyRef key that does not exist', () =>
    catches('dev', 'references', (o) => {
      container(o, 'StatefulSet', 'postgres').env.find((e) => e.name === 'POSTGRES_USER').valueFrom.configMapKeyRef.key = 'PGUSERNAME';
    }, /ConfigMap tally-config-\w+ has no key PGUSERNAME/));
  test('references: secretKeyRef key missing from the Secret', () =>
    catches('dev', 'references', (o) => { delete get(o, 'Secret', 'tally-secrets').data.REDIS_PASSWORD; },
      /Deployment\/gateway container gateway env REDIS_PASSWORD: Secret tally-secrets-\w+ has no key REDIS_PASSWORD/));
  test('references: envFrom ConfigMap that does not exist', () =>
    catches('dev', 'references', (o) => { container(o, 'Job', 'tally-init').envFrom[0].configMapRef.name = 'tally-conf'; },
      /Job\/tally-init container init: ConfigMap tally-conf does not exist/));
  test('references: volume item key that does not exist', () =>
    catches('dev', 'references', (o) => {
      get(o, 'Deployment', 'reporter').spec.template.spec.volumes[0].configMap.items[0].key = 'poll.json';
    }, /volume polls: ConfigMap tally-polls-\w+ has no key poll\.json/));
  test('references: volumeMount without a volume', () =>
    catches('dev', 'references', (o) => { get(o, 'StatefulSet', 'postgres').spec.template.spec.volumes.splice(0, 1); },
      /volumeMount run has no volume/));
  test('references: POLLS_FILE pointing where nothing is mounted', () =>
    catches('dev', 'references', (o) => { container(o, 'Deployment', 'gateway').volumeMounts[0].mountPath = '/etc/polls'; },
      /gateway: POLLS_FILE=\/etc\/tally\/polls\.json is on no mounted volume/));
  test('references: $(VAR) in args with no such variable', () =>
    catches('dev', 'references', (o) => { container(o, 'StatefulSet', 'redis').env[0].name = 'REDIS_PASS'; },
      /\$\(REDIS_PASSWORD\) in command\/args is not in its environment/));

  // Targets
  test('targets: HPA scaling a Deployment that does not exist', () =>
    catches('production', 'targets', (o) => { get(o, 'HorizontalPodAutoscaler', 'gateway').spec.scaleTargetRef.name = 'gatway'; },
      /scale target Deployment\/gatway does not exist/));
  test('targets: HPA target that also sets replicas', () =>
    catches('production', 'targets', (o) => { get(o, 'Deployment', 'gateway').spec.replicas = 2; },
      /sets replicas/));
  test('targets: HPA on cpu without cpu requests', () =>
    catches('production', 'targets', (o) => { delete container(o, 'Deployment', 'gateway').resources.requests.cpu; },
      /requests no cpu/));
  test('targets: PDB selecting no pods', () =>
    catches('production', 'targets', (o) => { get(o, 'PodDisruptionBudget', 'reporter').spec.selector.matchLabels['app.kubernetes.io/name'] = 'results'; },
      /PodDisruptionBudget\/reporter: selector matches no pods/));
  test('targets: PDB that blocks every drain', () =>
    catches('production', 'targets', (o) => { get(o, 'PodDisruptionBudget', 'processor').spec.minAvailable = 2; },
      /minAvailable 2 with 2 replica\(s\) of Deployment\/processor blocks every eviction/));
  test('targets: NetworkPolicy protecting no pods', () =>
    catches('dev', 'targets', (o) => { get(o, 'NetworkPolicy', 'redis-ingress').spec.podSelector.matchLabels['app.kubernetes.io/name'] = 'redis-master'; },
      /NetworkPolicy\/redis-ingress: podSelector matches no pods/));
  test('targets: NetworkPolicy peer selecting no pods', () =>
    catches('dev', 'targets', (o) => { get(o, 'NetworkPolicy', 'redis-ingress').spec.ingress[0].from[0].podSelector.matchLabels['app.kubernetes.io/name'] = 'gateways'; },
      /peer podSelector .* matches no pods/));
  test('targets: NetworkPolicy port the pods do not have', () =>
    catches('dev', 'targets', (o) => { get(o, 'NetworkPolicy', 'nats-ingress').spec.ingress[0].ports[0].port = 'clients'; },
      /port clients is not a container port of the selected pods/));
  test('targets: StatefulSet serviceName that does not exist', () =>
    catches('dev', 'targets', (o) => { get(o, 'StatefulSet', 'nats').spec.serviceName = 'nats-hl'; },
      /serviceName nats-hl is not a Service/));
  test('targets: StatefulSet serviceName that is not headless', () =>
    catches('dev', 'targets', (o) => { get(o, 'StatefulSet', 'nats').spec.serviceName = 'nats'; },
      /Service nats is not headless/));

  // Hardening
  const hardening = [
    ['read-only root file system off', (ct) => { ct.securityContext.readOnlyRootFilesystem = false; }, /readOnlyRootFilesystem is not true/],
    ['privilege escalation allowed', (ct) => { ct.securityContext.allowPrivilegeEscalation = true; }, /allowPrivilegeEscalation is not false/],
    ['capabilities not dropped', (ct) => { ct.securityContext.capabilities.drop = []; }, /capabilities do not drop ALL/],
    ['no memory limit', (ct) => { delete ct.resources.limits.memory; }, /no memory limit/],
    ['request above limit', (ct) => { ct.resources.requests.memory = '2Gi'; }, /memory request 2Gi is above its limit/],
    ['no startup probe', (ct) => { delete ct.startupProbe; }, /no startupProbe/],
    ['readiness on /healthz instead of /readyz', (ct) => { ct.readinessProbe.httpGet.path = '/healthz'; }, /readinessProbe must be httpGet \/readyz/],
    ['liveness on /readyz instead of /healthz', (ct) => { ct.livenessProbe.httpGet.path = '/readyz'; }, /livenessProbe must be httpGet \/healthz/],
  ];
  for (const [what, mutate, re] of hardening)
    test(`hardening: ${what}`, () => catches('production', 'hardening', (o) => mutate(container(o, 'Deployment', 'reporter')), re));
  test('hardening: pod may run as root', () =>
    catches('dev', 'hardening', (o) => { delete get(o, 'StatefulSet', 'redis').spec.template.spec.securityContext.runAsNonRoot; },
      /StatefulSet\/redis container redis: runAsNonRoot is not true/));
  test('hardening: no seccomp profile', () =>
    catches('dev', 'hardening', (o) => { delete get(o, 'Job', 'tally-init').spec.template.spec.securityContext.seccompProfile; },
      /Job\/tally-init container init: seccompProfile is not RuntimeDefault/));
  test('hardening: service links left on', () =>
    catches('dev', 'hardening', (o) => { delete get(o, 'Deployment', 'gateway').spec.template.spec.enableServiceLinks; },
      /enableServiceLinks must be false/));

  // Contract
  test('envContract: misspelt setting in the ConfigMap', () =>
    catches('dev', 'envContract', (o) => { get(o, 'ConfigMap', 'tally-config').data.NATS_URLS = 'nats://nats:4222'; },
      /NATS_URLS is not a setting in docs\/CONTRACTS\.md/));

  // NetworkPolicies
  test('reachability: an allow-all policy opens the stores', () =>
    catches('dev', 'reachability', (o) => {
      o.push({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy',
        metadata: { name: 'allow-all', namespace: 'tally' },
        spec: { podSelector: {}, policyTypes: ['Ingress'], ingress: [{}] } });
    }, /reporter -> redis:redis is allowed, must be blocked/));
  test('reachability: gateway policy removed, the site is unreachable', () =>
    catches('dev', 'reachability', (o) => { o.splice(o.indexOf(get(o, 'NetworkPolicy', 'gateway-ingress')), 1); },
      /outside -> gateway:http is blocked, must be allowed/));
  test('reachability: postgres opened to the gateway', () =>
    catches('dev', 'reachability', (o) => {
      get(o, 'NetworkPolicy', 'postgres-ingress').spec.ingress[0].from[0].podSelector.matchExpressions[0].values.push('gateway');
    }, /gateway -> postgres:postgres is allowed, must be blocked/));
  test('reachability: NATS routes blocked between servers', () =>
    catches('production', 'reachability', (o) => { get(o, 'NetworkPolicy', 'nats-ingress').spec.ingress.pop(); },
      /nats -> nats:cluster is blocked, must be allowed/));

  // NATS
  test('nats: three servers but a route missing', () =>
    catches('production', 'nats', (o) => {
      const cm = get(o, 'ConfigMap', 'nats-config');
      cm.data['nats.conf'] = cm.data['nats.conf'].replace(/\s*nats:\/\/nats-2\.nats-headless:6222/, '');
    }, /cluster routes .* must be exactly/));
  test('nats: an even number of servers', () =>
    catches('production', 'nats', (o) => { get(o, 'StatefulSet', 'nats').spec.replicas = 2; }, /needs an odd number/));
  test('nats: R3 streams on one server', () =>
    catches('dev', 'nats', (o) => { get(o, 'ConfigMap', 'tally-config').data.STREAM_REPLICAS = '3'; },
      /STREAM_REPLICAS=3 with 1 NATS server/));
  test('nats: cluster started one pod at a time', () =>
    catches('production', 'nats', (o) => { get(o, 'StatefulSet', 'nats').spec.podManagementPolicy = 'OrderedReady'; },
      /podManagementPolicy Parallel/));
  test('nats: JetStream data not on a volume claim', () =>
    catches('dev', 'nats', (o) => { delete get(o, 'StatefulSet', 'nats').spec.volumeClaimTemplates; },
      /not on a PersistentVolumeClaim/));

  // What the overlays must provide
  test('shape: production with one processor', () =>
    catches('production', 'shape', (o) => { get(o, 'Deployment', 'processor').spec.replicas = 1; },
      /Deployment\/processor: 1 replica\(s\), want at least 2/));
  test('shape: production HPA allowing one gateway', () =>
    catches('production', 'shape', (o) => { get(o, 'HorizontalPodAutoscaler', 'gateway').spec.minReplicas = 1; },
      /Deployment\/gateway: 1 replica\(s\), want at least 2/));
  test('shape: production without the reporter PDB', () =>
    catches('production', 'shape', (o) => { o.splice(o.indexOf(get(o, 'PodDisruptionBudget', 'reporter')), 1); },
      /reporter: no PodDisruptionBudget/));
  test('shape: production with R1 streams', () =>
    catches('production', 'shape', (o) => { get(o, 'ConfigMap', 'tally-config').data.STREAM_REPLICAS = '1'; },
      /STREAM_REPLICAS=1, want 3/));
  test('shape: dev with a NATS cluster', () =>
    catches('dev', 'shape', (o) => { get(o, 'StatefulSet', 'nats').spec.replicas = 3; }, /nats: 3 replica\(s\), want 1/));
  test('shape: postgres on an emptyDir', () =>
    catches('dev', 'shape', (o) => {
      const s = get(o, 'StatefulSet', 'postgres');
      delete s.spec.volumeClaimTemplates;
      s.spec.template.spec.volumes.push({ name: 'data', emptyDir: {} });
    }, /postgres: data is not on a PersistentVolumeClaim/));
});
