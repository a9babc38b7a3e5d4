// Checks for the deploy files: Kubernetes manifests, compose, Dockerfile,
// shell scripts. Every check is a function that takes parsed input and
// returns a list of error strings (empty: pass), so the tests run the same
// function on the real files and on copies with a seeded mistake.
//
// Packages come from tests/js/node_modules (see tests/js/package.json).
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const require = createRequire(new URL('../js/package.json', import.meta.url));
export const YAML = require('yaml');

export const clone = (x) => structuredClone(x);

// ---------------------------------------------------------------------------
// docs/CONTRACTS.md: environment variables, binaries and their ports.

export function readContract(root = ROOT) {
  const text = fs.readFileSync(path.join(root, 'docs/CONTRACTS.md'), 'utf8');
  const section = (title) => {
    const start = text.indexOf(`## ${title}`);
    if (start < 0) throw new Error(`CONTRACTS.md has no "## ${title}" section`);
    const end = text.indexOf('\n## ', start + 3);
    return text.slice(start, end < 0 ? undefined : end);
  };
  // Environment table: first column names the variables, second says who
  // reads them ("all", "all services", "same" as the row above, or a list);
  // the PG* variables are named in DATABASE_URL's row.
  const envVars = new Set();
  const usedBy = {};
  const SERVICES = ['tally-gateway', 'tally-processor', 'tally-reporter'];
  let previous = [];
  for (const row of section('Environment').split('\n').filter((l) => /^\|\s*`/.test(l))) {
    const cols = row.split('|').slice(1, -1).map((c) => c.trim());
    const who = cols[1] === 'same' ? previous
      : cols[1] === 'all services' ? SERVICES
      : cols[1] === 'all' ? [...SERVICES, 'tallyctl']
      : cols[1].split(/,\s*/).map((w) => (w === 'tallyctl' ? w : `tally-${w}`));
    previous = who;
    const names = [...cols[0].matchAll(/`([A-Z][A-Z0-9_]+)`/g), ...(cols[3] ?? '').matchAll(/`(PG[A-Z]+)`/g)];
    for (const [, n] of names) { envVars.add(n); usedBy[n] = new Set(who); }
  }
  const binaries = {};
  for (const m of section('Binaries').matchAll(/^\|\s*`([a-z-]+)`\s*\|[^|]*\|\s*`?([^|`]*)`?/gm)) {
    const port = /:(\d+)$/.exec(m[2].trim());
    binaries[m[1]] = port ? Number(port[1]) : null;
  }
  if (envVars.size < 10 || !binaries['tally-gateway'])
    throw new Error('could not read the contract tables from docs/CONTRACTS.md');
  return { envVars, usedBy, binaries };
}

// ---------------------------------------------------------------------------
// Kubernetes: rendering and walking.

export function kustomize(dir) {
  const r = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) throw new Error(`kubectl not runnable: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`kubectl kustomize ${dir} failed:\n${r.stderr}`);
  return YAML.parseAllDocuments(r.stdout).map((d) => d.toJS()).filter(Boolean);
}

const id = (o) => `${o.kind}/${o.metadata?.name}`;
const nsOf = (o) => o.metadata?.namespace ?? 'default';
const WORKLOADS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job', 'CronJob']);
const LONG_RUNNING = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet']);

// Every pod template with its owner.
export function podTemplates(objs) {
  const out = [];
  for (const o of objs) {
    if (!WORKLOADS.has(o.kind)) continue;
    const tpl = o.kind === 'CronJob' ? o.spec?.jobTemplate?.spec?.template : o.spec?.template;
    out.push({ obj: o, id: id(o), ns: nsOf(o), labels: tpl?.metadata?.labels ?? {},
      spec: tpl?.spec ?? {}, replicas: o.spec?.replicas });
  }
  return out;
}

const allContainers = (spec) =>
  [...(spec.initContainers ?? []), ...(spec.containers ?? [])];

// LabelSelector ({matchLabels, matchExpressions}) against a label map.
export function selectorMatches(sel, labels) {
  if (!sel) return false;
  for (const [k, v] of Object.entries(sel.matchLabels ?? {}))
    if (labels[k] !== v) return false;
  for (const e of sel.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const ok = {
      In: () => has && e.values.includes(labels[e.key]),
      NotIn: () => !has || !e.values.includes(labels[e.key]),
      Exists: () => has,
      DoesNotExist: () => !has,
    }[e.operator];
    if (!ok || !ok()) return false;
  }
  return true;
}
const mapMatches = (map, labels) => selectorMatches({ matchLabels: map }, labels);

function findObj(objs, kind, name, ns) {
  return objs.find((o) => o.kind === kind && o.metadata?.name === name && nsOf(o) === ns);
}

// A port reference (name or number) resolved against a container list.
function containerPort(containers, ref) {
  for (const c of containers)
    for (const p of c.ports ?? [])
      if (typeof ref === 'string' ? p.name === ref : p.containerPort === Number(ref)) return p;
  return null;
}

// ---------------------------------------------------------------------------
// Schema: kubernetes-models (types, required fields, enums, formats) plus
// unknown fields, which those schemas allow, from the field lists of
// @kubernetes/client-node's models.

let clientModels;
async function loadClientModels() {
  clientModels ??= await import(pathToFileURL(require.resolve('@kubernetes/client-node')).href);
  return clientModels;
}

function splitApiVersion(apiVersion) {
  const i = apiVersion.lastIndexOf('/');
  return i < 0 ? ['', apiVersion] : [apiVersion.slice(0, i), apiVersion.slice(i + 1)];
}

function unknownFields(models, value, type, where, errs) {
  let m;
  if (value == null) return;
  if ((m = /^Array<(.+)>$/.exec(type))) {
    if (Array.isArray(value)) value.forEach((v, i) => unknownFields(models, v, m[1], `${where}[${i}]`, errs));
    return;
  }
  if ((m = /^\{ \[key: string\]: (.+); \}$/.exec(type))) {
    if (typeof value === 'object') for (const [k, v] of Object.entries(value))
      unknownFields(models, v, m[1], `${where}.${k}`, errs);
    return;
  }
  const cls = models[type];
  if (!cls?.attributeTypeMap || typeof value !== 'object' || Array.isArray(value)) return;
  for (const [k, v] of Object.entries(value)) {
    const attr = cls.attributeTypeMap.find((a) => a.baseName === k);
    if (!attr) errs.push(`${where}.${k}: unknown field (not in ${type})`);
    else unknownFields(models, v, attr.type, `${where}.${k}`, errs);
  }
}

export async function schemaErrors(objs) {
  const models = await loadClientModels();
  const errs = [];
  for (const o of objs) {
    const where = id(o);
    if (!o.apiVersion || !o.kind) { errs.push(`${where}: no apiVersion or kind`); continue; }
    const [group, version] = splitApiVersion(o.apiVersion);
    let Model;
    try {
      Model = require(group ? `kubernetes-models/${group}/${version}` : `kubernetes-models/${version}`)[o.kind];
    } catch { /* reported below */ }
    if (!Model) { errs.push(`${where}: unknown kind ${o.kind} in ${o.apiVersion}`); continue; }
    try {
      new Model(o).validate();
    } catch (e) {
      for (const d of e.errors ?? [{ instancePath: '', message: e.message }])
        errs.push(`${where}${d.instancePath.replaceAll('/', '.')}: ${d.message}` +
          (d.params?.allowedValues ? ` (${d.params.allowedValues.join(', ')})` : ''));
    }
    const clsName = version[0].toUpperCase() + version.slice(1) + o.kind;
    if (!models[clsName]) { errs.push(`${where}: no client model ${clsName}`); continue; }
    unknownFields(models, o, clsName, where, errs);
  }
  return errs;
}

// ---------------------------------------------------------------------------
// Selectors: each workload selects its own pods and no one else's; each
// Service selects some pods; spread constraints select the pods they spread.

export function selectorErrors(objs) {
  const errs = [];
  const pods = podTemplates(objs);
  for (const p of pods) {
    const sel = p.obj.spec?.selector;
    if (p.obj.kind === 'Job' || p.obj.kind === 'CronJob') {
      if (sel) errs.push(`${p.id}: a Job's selector is generated; do not set one`);
    } else if (!selectorMatches(sel, p.labels)) {
      errs.push(`${p.id}: selector ${JSON.stringify(sel)} does not match its pod labels ${JSON.stringify(p.labels)}`);
    } else {
      for (const q of pods)
        if (q !== p && q.ns === p.ns && selectorMatches(sel, q.labels))
          errs.push(`${p.id}: selector also matches the pods of ${q.id}`);
    }
    for (const t of p.spec.topologySpreadConstraints ?? [])
      if (!selectorMatches(t.labelSelector, p.labels))
        errs.push(`${p.id}: topologySpreadConstraints selector does not match its own pods`);
  }
  for (const s of objs.filter((o) => o.kind === 'Service' && o.spec?.selector)) {
    if (!pods.some((p) => p.ns === nsOf(s) && mapMatches(s.spec.selector, p.labels)))
      errs.push(`${id(s)}: selector ${JSON.stringify(s.spec.selector)} matches no pod template`);
  }
  return errs;
}

// Ports: Service targetPorts, Ingress backends and probe ports resolve.
export function portErrors(objs) {
  const errs = [];
  const pods = podTemplates(objs);
  for (const s of objs.filter((o) => o.kind === 'Service' && o.spec?.selector)) {
    const targets = pods.filter((p) => p.ns === nsOf(s) && mapMatches(s.spec.selector, p.labels));
    for (const port of s.spec.ports ?? []) {
      const ref = port.targetPort ?? port.port;
      for (const p of targets)
        if (!containerPort(p.spec.containers ?? [], ref))
          errs.push(`${id(s)}: port ${port.name ?? port.port} targetPort ${ref} is not a container port of ${p.id}`);
    }
  }
  for (const ing of objs.filter((o) => o.kind === 'Ingress')) {
    const backends = [ing.spec?.defaultBackend,
      ...(ing.spec?.rules ?? []).flatMap((r) => (r.http?.paths ?? []).map((x) => x.backend))];
    for (const b of backends.filter((x) => x?.service)) {
      const svc = findObj(objs, 'Service', b.service.name, nsOf(ing));
      if (!svc) { errs.push(`${id(ing)}: backend Service ${b.service.name} does not exist`); continue; }
      const want = b.service.port ?? {};
      if (!(svc.spec.ports ?? []).some((p) => (want.name ? p.name === want.name : p.port === want.number)))
        errs.push(`${id(ing)}: Service ${b.service.name} has no port ${want.name ?? want.number}`);
    }
  }
  for (const p of pods) for (const c of p.spec.containers ?? [])
    for (const kind of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
      const probe = c[kind];
      const ref = probe?.httpGet?.port ?? probe?.tcpSocket?.port ?? probe?.grpc?.port;
      if (ref !== undefined && !containerPort([c], ref))
        errs.push(`${p.id}: ${c.name} ${kind} port ${ref} is not one of its container ports`);
    }
  return errs;
}

// ConfigMap and Secret references, volume mounts, $(VAR) expansion, and
// *_FILE settings pointing at a mounted key. uses(container, name) says
// whether the program reads a variable (a shared ConfigMap gives every
// container all settings; only the ones it reads must resolve).
export function referenceErrors(objs, { uses = () => true } = {}) {
  const errs = [];
  const keysOf = (kind, name, ns) => {
    const o = findObj(objs, kind, name, ns);
    if (!o) return null;
    return new Set([...Object.keys(o.data ?? {}), ...Object.keys(o.binaryData ?? {}),
      ...Object.keys(o.stringData ?? {})]);
  };
  const need = (where, kind, name, key, ns, optional) => {
    if (optional) return;
    const keys = keysOf(kind, name, ns);
    if (!keys) errs.push(`${where}: ${kind} ${name} does not exist`);
    else if (key !== undefined && !keys.has(key)) errs.push(`${where}: ${kind} ${name} has no key ${key}`);
  };
  for (const p of podTemplates(objs)) {
    const volumes = new Map((p.spec.volumes ?? []).map((v) => [v.name, v]));
    for (const t of p.obj.spec?.volumeClaimTemplates ?? []) volumes.set(t.metadata?.name, { pvc: true });
    for (const v of p.spec.volumes ?? []) {
      const where = `${p.id} volume ${v.name}`;
      const sources = [v, ...(v.projected?.sources ?? [])];
      for (const s of sources) {
        if (s.configMap) {
          need(where, 'ConfigMap', s.configMap.name, undefined, p.ns, s.configMap.optional);
          for (const it of s.configMap.items ?? []) need(where, 'ConfigMap', s.configMap.name, it.key, p.ns, s.configMap.optional);
        }
        if (s.secret) {
          const name = s.secret.secretName ?? s.secret.name;
          need(where, 'Secret', name, undefined, p.ns, s.secret.optional);
          for (const it of s.secret.items ?? []) need(where, 'Secret', name, it.key, p.ns, s.secret.optional);
        }
      }
    }
    for (const c of allContainers(p.spec)) {
      const where = `${p.id} container ${c.name}`;
      const env = new Map();
      for (const f of c.envFrom ?? []) {
        const [kind, ref] = f.configMapRef ? ['ConfigMap', f.configMapRef] : ['Secret', f.secretRef];
        need(where, kind, ref.name, undefined, p.ns, ref.optional);
        const o = findObj(objs, kind, ref.name, p.ns);
        for (const [k, v] of Object.entries(o?.data ?? {})) env.set((f.prefix ?? '') + k, kind === 'ConfigMap' ? v : '<secret>');
      }
      for (const e of c.env ?? []) {
        const cm = e.valueFrom?.configMapKeyRef, sk = e.valueFrom?.secretKeyRef;
        if (cm) need(`${where} env ${e.name}`, 'ConfigMap', cm.name, cm.key, p.ns, cm.optional);
        if (sk) need(`${where} env ${e.name}`, 'Secret', sk.name, sk.key, p.ns, sk.optional);
        // $(VAR) in a value expands only variables defined before it.
        for (const m of (e.value ?? '').matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g))
          if (!env.has(m[1])) errs.push(`${where} env ${e.name}: $(${m[1]}) is not defined before it`);
        env.set(e.name, cm ? findObj(objs, 'ConfigMap', cm.name, p.ns)?.data?.[cm.key] : (e.value ?? '<ref>'));
      }
      for (const arg of [...(c.command ?? []), ...(c.args ?? [])])
        for (const m of arg.matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g))
          if (!env.has(m[1])) errs.push(`${where}: $(${m[1]}) in command/args is not in its environment`);
      for (const vm of c.volumeMounts ?? [])
        if (!volumes.has(vm.name)) errs.push(`${where}: volumeMount ${vm.name} has no volume`);
      for (const [k, v] of env) {
        if (!/_FILE$/.test(k) || typeof v !== 'string' || !v.startsWith('/') || !uses(c, k)) continue;
        const mount = (c.volumeMounts ?? []).filter((vm) => v.startsWith(vm.mountPath.replace(/\/?$/, '/')))
          .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
        if (!mount) { errs.push(`${where}: ${k}=${v} is on no mounted volume`); continue; }
        const vol = volumes.get(mount.name);
        const rel = path.posix.relative(mount.mountPath, v);
        const src = vol?.configMap ?? vol?.secret;
        if (!src) continue;
        const name = src.name ?? src.secretName;
        const files = src.items ? src.items.map((it) => it.path)
          : [...(keysOf(vol.configMap ? 'ConfigMap' : 'Secret', name, p.ns) ?? [])];
        if (!files.includes(rel)) errs.push(`${where}: ${k}=${v}: ${rel} is not a file of volume ${mount.name}`);
      }
    }
  }
  return errs;
}

// NetworkPolicy, PodDisruptionBudget, HPA and StatefulSet references point
// at things that exist and make sense.
export function targetErrors(objs) {
  const errs = [];
  const pods = podTemplates(objs);
  const matching = (sel, ns) => pods.filter((p) => p.ns === ns && selectorMatches(sel, p.labels));
  const hpaTargets = new Map();
  for (const h of objs.filter((o) => o.kind === 'HorizontalPodAutoscaler')) {
    const ref = h.spec.scaleTargetRef;
    const t = findObj(objs, ref.kind, ref.name, nsOf(h));
    if (!t) { errs.push(`${id(h)}: scale target ${ref.kind}/${ref.name} does not exist`); continue; }
    hpaTargets.set(id(t), h);
    if (t.spec.replicas !== undefined)
      errs.push(`${id(h)}: ${id(t)} sets replicas, which resets the HPA's count on every apply`);
    if ((h.spec.minReplicas ?? 1) > h.spec.maxReplicas) errs.push(`${id(h)}: minReplicas > maxReplicas`);
    for (const m of h.spec.metrics ?? []) {
      if (m.type !== 'Resource') continue;
      for (const c of t.spec.template?.spec?.containers ?? [])
        if (!c.resources?.requests?.[m.resource.name])
          errs.push(`${id(h)}: ${m.resource.name} metric, but ${id(t)} container ${c.name} requests no ${m.resource.name}`);
    }
  }
  for (const pdb of objs.filter((o) => o.kind === 'PodDisruptionBudget')) {
    const ts = matching(pdb.spec.selector, nsOf(pdb));
    if (!ts.length) { errs.push(`${id(pdb)}: selector matches no pods`); continue; }
    for (const t of ts) {
      const h = hpaTargets.get(t.id);
      const replicas = h ? (h.spec.minReplicas ?? 1) : (t.replicas ?? 1);
      const min = pdb.spec.minAvailable;
      if (typeof min === 'number' && min >= replicas)
        errs.push(`${id(pdb)}: minAvailable ${min} with ${replicas} replica(s) of ${t.id} blocks every eviction`);
      if (pdb.spec.maxUnavailable === 0)
        errs.push(`${id(pdb)}: maxUnavailable 0 blocks every eviction`);
    }
  }
  for (const np of objs.filter((o) => o.kind === 'NetworkPolicy')) {
    const sel = np.spec.podSelector;
    const selected = matching(sel, nsOf(np));
    if (Object.keys(sel ?? {}).length && !selected.length)
      errs.push(`${id(np)}: podSelector matches no pods`);
    for (const rule of [...(np.spec.ingress ?? []), ...(np.spec.egress ?? [])])
      for (const peer of [...(rule.from ?? []), ...(rule.to ?? [])])
        if (peer.podSelector && !peer.namespaceSelector && !matching(peer.podSelector, nsOf(np)).length)
          errs.push(`${id(np)}: peer podSelector ${JSON.stringify(peer.podSelector)} matches no pods`);
    // An ingress port must exist on the pods the policy protects.
    for (const rule of np.spec.ingress ?? []) for (const port of rule.ports ?? [])
      if (port.port !== undefined && !selected.some((p) => containerPort(p.spec.containers ?? [], port.port)))
        errs.push(`${id(np)}: port ${port.port} is not a container port of the selected pods`);
  }
  for (const s of objs.filter((o) => o.kind === 'StatefulSet')) {
    const svc = findObj(objs, 'Service', s.spec.serviceName, nsOf(s));
    if (!svc) errs.push(`${id(s)}: serviceName ${s.spec.serviceName} is not a Service`);
    else if (svc.spec.clusterIP !== 'None') errs.push(`${id(s)}: Service ${s.spec.serviceName} is not headless`);
    else if (!mapMatches(svc.spec.selector ?? {}, s.spec.template?.metadata?.labels ?? {}))
      errs.push(`${id(s)}: Service ${s.spec.serviceName} does not select its pods`);
  }
  return errs;
}

// ---------------------------------------------------------------------------
// Workload hardening: probes, resources, securityContext.

const QUANTITY = { '': 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4 };
export function quantity(q) {
  const m = /^([0-9.]+)([a-zA-Z]*)$/.exec(String(q));
  if (!m || !(m[2] in QUANTITY)) return NaN;
  return Number(m[1]) * QUANTITY[m[2]];
}

export function hardeningErrors(objs, { tallyBinaries = [] } = {}) {
  const errs = [];
  for (const p of podTemplates(objs)) {
    const psc = p.spec.securityContext ?? {};
    if (p.spec.enableServiceLinks !== false)
      errs.push(`${p.id}: enableServiceLinks must be false (service links inject REDIS_PORT=tcp://... and the like)`);
    if (p.spec.automountServiceAccountToken !== false)
      errs.push(`${p.id}: automountServiceAccountToken must be false (no pod talks to the API server)`);
    for (const c of allContainers(p.spec)) {
      const where = `${p.id} container ${c.name}`;
      const sc = c.securityContext ?? {};
      const eff = (k) => sc[k] ?? psc[k];
      if (eff('runAsNonRoot') !== true) errs.push(`${where}: runAsNonRoot is not true`);
      if (eff('runAsUser') === 0) errs.push(`${where}: runAsUser is 0`);
      if (sc.readOnlyRootFilesystem !== true) errs.push(`${where}: readOnlyRootFilesystem is not true`);
      if (sc.allowPrivilegeEscalation !== false) errs.push(`${where}: allowPrivilegeEscalation is not false`);
      if (sc.privileged) errs.push(`${where}: privileged`);
      if (!(sc.capabilities?.drop ?? []).includes('ALL')) errs.push(`${where}: capabilities do not drop ALL`);
      if ((sc.capabilities?.add ?? []).length) errs.push(`${where}: adds capabilities`);
      if (eff('seccompProfile')?.type !== 'RuntimeDefault') errs.push(`${where}: seccompProfile is not RuntimeDefault`);
      for (const r of ['cpu', 'memory']) {
        const req = c.resources?.requests?.[r], lim = c.resources?.limits?.[r];
        if (req === undefined) errs.push(`${where}: no ${r} request`);
        if (lim === undefined) errs.push(`${where}: no ${r} limit`);
        if (req !== undefined && lim !== undefined && quantity(req) > quantity(lim))
          errs.push(`${where}: ${r} request ${req} is above its limit ${lim}`);
      }
      if (!LONG_RUNNING.has(p.obj.kind) || (p.spec.initContainers ?? []).includes(c)) continue;
      for (const k of ['startupProbe', 'livenessProbe', 'readinessProbe'])
        if (!c[k]) errs.push(`${where}: no ${k}`);
      // The tally services' own endpoints (docs/CONTRACTS.md).
      if (tallyBinaries.includes(c.command?.[0])) {
        const want = { startupProbe: '/healthz', livenessProbe: '/healthz', readinessProbe: '/readyz' };
        for (const [k, pathWant] of Object.entries(want))
          if (c[k] && c[k].httpGet?.path !== pathWant)
            errs.push(`${where}: ${k} must be httpGet ${pathWant}, is ${JSON.stringify(c[k].httpGet?.path ?? c[k])}`);
      }
    }
  }
  return errs;
}

// Environment variables given to tally's own containers are ones the
// contract defines: a misspelt name would be silently ignored.
export function envContractErrors(objs, contract) {
  const errs = [];
  const bins = Object.keys(contract.binaries);
  for (const p of podTemplates(objs)) for (const c of allContainers(p.spec)) {
    if (!bins.includes(c.command?.[0])) continue;
    const names = (c.env ?? []).map((e) => e.name);
    for (const f of c.envFrom ?? []) {
      const o = findObj(objs, f.configMapRef ? 'ConfigMap' : 'Secret', (f.configMapRef ?? f.secretRef).name, p.ns);
      names.push(...Object.keys(o?.data ?? {}).map((k) => (f.prefix ?? '') + k));
    }
    for (const n of names)
      if (!contract.envVars.has(n)) errs.push(`${p.id} container ${c.name}: ${n} is not a setting in docs/CONTRACTS.md`);
  }
  return errs;
}

// ---------------------------------------------------------------------------
// NetworkPolicy semantics (ingress), enough to answer "can A reach B on P".
// from: {labels, ns} for a pod, or {outside: true, nsLabels} for traffic
// from another namespace or outside the cluster.

export function canReach(objs, from, to, portRef) {
  const policies = objs.filter((o) => o.kind === 'NetworkPolicy' && nsOf(o) === to.ns &&
    selectorMatches(o.spec.podSelector ?? {}, to.labels) &&
    (o.spec.policyTypes ?? ['Ingress']).includes('Ingress'));
  if (!policies.length) return true;
  const port = containerPort(to.containers, portRef);
  if (!port) throw new Error(`destination has no port ${portRef}`);
  const peerOk = (peer) => {
    if (peer.ipBlock) return !!from.outside;
    if (peer.namespaceSelector) {
      const nsLabels = from.outside ? (from.nsLabels ?? {}) : { 'kubernetes.io/metadata.name': from.ns };
      if (from.outside && !from.nsLabels) return false;
      if (!selectorMatches(peer.namespaceSelector, nsLabels)) return false;
      return !peer.podSelector || (!from.outside && selectorMatches(peer.podSelector, from.labels));
    }
    return !from.outside && from.ns === to.ns && selectorMatches(peer.podSelector, from.labels);
  };
  const portOk = (p) => (p.protocol ?? 'TCP') === (port.protocol ?? 'TCP') &&
    (p.port === undefined || (typeof p.port === 'string' ? p.port === port.name : p.port === port.containerPort));
  return policies.some((np) => (np.spec.ingress ?? []).some((rule) =>
    (!rule.from?.length || rule.from.some(peerOk)) && (!rule.ports?.length || rule.ports.some(portOk))));
}

// expectations: [[fromName|'outside', toName, port, allowed], ...] where
// names are app.kubernetes.io/name labels.
export function reachabilityErrors(objs, expectations, nameLabel = 'app.kubernetes.io/name') {
  const errs = [];
  const pods = podTemplates(objs);
  const pod = (name) => {
    const p = pods.find((x) => x.labels[nameLabel] === name);
    if (!p) throw new Error(`no pod template labelled ${nameLabel}=${name}`);
    return { labels: p.labels, ns: p.ns, containers: p.spec.containers ?? [] };
  };
  for (const [fromName, toName, port, allowed] of expectations) {
    const from = fromName === 'outside' ? { outside: true } : pod(fromName);
    let got;
    try { got = canReach(objs, from, pod(toName), port); } catch (e) { errs.push(`${toName}: ${e.message}`); continue; }
    if (got !== allowed)
      errs.push(`${fromName} -> ${toName}:${port} is ${got ? 'allowed' : 'blocked'}, must be ${allowed ? 'allowed' : 'blocked'}`);
  }
  return errs;
}

// ---------------------------------------------------------------------------
// NATS: cluster routes, replicas and STREAM_REPLICAS agree.

export function natsErrors(objs, { statefulSet = 'nats', configMapPrefix = 'nats-config', configKey = 'nats.conf' } = {}) {
  const errs = [];
  const sts = objs.find((o) => o.kind === 'StatefulSet' && o.metadata.name === statefulSet);
  if (!sts) return [`StatefulSet ${statefulSet} does not exist`];
  const n = sts.spec.replicas ?? 1;
  const vol = (sts.spec.template.spec.volumes ?? []).find((v) => v.configMap?.name?.startsWith(configMapPrefix));
  const cm = vol && findObj(objs, 'ConfigMap', vol.configMap.name, nsOf(sts));
  const conf = cm?.data?.[configKey];
  if (!conf) return [`${id(sts)}: no ${configKey} in a mounted ConfigMap ${configMapPrefix}*`];
  const routes = [...conf.matchAll(/nats:\/\/([a-z0-9.-]+):(\d+)/g)].map((m) => m[1]).sort();
  if (n > 1) {
    if (n % 2 === 0) errs.push(`${id(sts)}: ${n} servers; a JetStream cluster needs an odd number`);
    if (!/^\s*cluster\s*\{/m.test(conf)) errs.push(`${id(sts)}: ${n} replicas but ${configKey} has no cluster block`);
    const want = Array.from({ length: n }, (_, i) => `${statefulSet}-${i}.${sts.spec.serviceName}`).sort();
    if (JSON.stringify(routes) !== JSON.stringify(want))
      errs.push(`${id(sts)}: cluster routes ${routes.join(', ') || '(none)'} must be exactly ${want.join(', ')}`);
    if (sts.spec.podManagementPolicy !== 'Parallel')
      errs.push(`${id(sts)}: a cluster needs podManagementPolicy Parallel (servers must start together to form a quorum)`);
  } else if (/^\s*cluster\s*\{/m.test(conf)) {
    errs.push(`${id(sts)}: one server but ${configKey} has a cluster block`);
  }
  if (!sts.spec.volumeClaimTemplates?.length) errs.push(`${id(sts)}: JetStream data is not on a PersistentVolumeClaim`);
  for (const cm2 of objs.filter((o) => o.kind === 'ConfigMap' && o.data?.STREAM_REPLICAS !== undefined)) {
    const r = Number(cm2.data.STREAM_REPLICAS);
    if (!(r >= 1 && r <= n)) errs.push(`${id(cm2)}: STREAM_REPLICAS=${cm2.data.STREAM_REPLICAS} with ${n} NATS server(s)`);
  }
  return errs;
}

// What the issue asks of the overlays, as numbers.
export function shapeErrors(objs, want) {
  const errs = [];
  const get = (kind, name) => objs.find((o) => o.kind === kind && o.metadata.name === name);
  for (const [name, min] of Object.entries(want.minReplicas ?? {})) {
    const d = get('Deployment', name) ?? get('StatefulSet', name);
    if (!d) { errs.push(`${name}: no such Deployment or StatefulSet`); continue; }
    const hpa = objs.find((o) => o.kind === 'HorizontalPodAutoscaler' && o.spec.scaleTargetRef.name === name);
    const n = hpa ? (hpa.spec.minReplicas ?? 1) : (d.spec.replicas ?? 1);
    if (n < min) errs.push(`${id(d)}: ${n} replica(s), want at least ${min}`);
  }
  for (const [name, n] of Object.entries(want.exactReplicas ?? {})) {
    const d = get('Deployment', name) ?? get('StatefulSet', name);
    if ((d?.spec.replicas ?? 1) !== n) errs.push(`${name}: ${d?.spec.replicas ?? 1} replica(s), want ${n}`);
  }
  for (const name of want.hpa ?? [])
    if (!objs.some((o) => o.kind === 'HorizontalPodAutoscaler' && o.spec.scaleTargetRef.name === name))
      errs.push(`${name}: no HorizontalPodAutoscaler`);
  const pods = podTemplates(objs);
  for (const name of want.pdb ?? []) {
    const p = pods.find((x) => x.obj.metadata.name === name);
    if (!objs.some((o) => o.kind === 'PodDisruptionBudget' && p && selectorMatches(o.spec.selector, p.labels)))
      errs.push(`${name}: no PodDisruptionBudget`);
  }
  for (const name of want.pvc ?? []) {
    const s = get('StatefulSet', name);
    const mounted = (s?.spec.template.spec.containers ?? []).flatMap((c) => c.volumeMounts ?? []).map((m) => m.name);
    if (!(s?.spec.volumeClaimTemplates ?? []).some((t) => mounted.includes(t.metadata.name)))
      errs.push(`${name}: data is not on a PersistentVolumeClaim`);
  }
  for (const [key, value] of Object.entries(want.config ?? {})) {
    const cm = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('tally-config'));
    if (cm?.data?.[key] !== value) errs.push(`tally-config: ${key}=${cm?.data?.[key]}, want ${value}`);
  }
  for (const kind of want.kinds ?? [])
    if (!objs.some((o) => o.kind === kind)) errs.push(`no ${kind}`);
  return errs;
}

// ---------------------------------------------------------------------------
// Compose.

export function readCompose(file = path.join(ROOT, 'deploy/compose.yaml')) {
  return YAML.parse(fs.readFileSync(file, 'utf8'), { merge: true });
}

// ${VAR:-default} interpolation as compose does it. With the default empty
// environment, what is checked is what `docker compose up` does with no
// .env file; missing lists variables that have no default.
export function interpolate(value, env = {}, missing = [], where = 'compose') {
  if (typeof value === 'string') {
    return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
      (m, name, op, arg, bare) => {
        if (m === '$$') return '$';
        const v = env[name ?? bare];
        const unset = op?.startsWith(':') ? !v : v === undefined;
        if (unset && (op === ':-' || op === '-')) return arg;
        if (unset) missing.push(`${where}: \${${name ?? bare}} has no default`);
        return v ?? '';
      });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, env, missing, `${where}[${i}]`));
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, env, missing, `${where}.${k}`)]));
  return value;
}

// Every ${VAR} has a default, so the file works without a .env.
export function composeDefaultErrors(doc) {
  const missing = [];
  interpolate(doc, {}, missing);
  return missing;
}

let composeValidator;
export function composeSchemaErrors(doc) {
  if (!composeValidator) {
    const Ajv = require('ajv').default ?? require('ajv');
    // dclint does not export its schema file; read it from the package.
    const schema = JSON.parse(fs.readFileSync(
      new URL('../js/node_modules/dclint/schemas/compose.schema.json', import.meta.url), 'utf8'));
    delete schema.$schema; // draft-07 under an https id, which ajv does not know by that name
    composeValidator = new Ajv({ allErrors: true, strict: false }).compile(schema);
  }
  const errs = [];
  const resolved = interpolate(doc);
  if (!composeValidator(resolved))
    for (const e of composeValidator.errors)
      errs.push(`compose${e.instancePath.replaceAll('/', '.')}: ${e.message}` +
        (e.params?.additionalProperty ? ` (${e.params.additionalProperty})` : ''));
  return errs;
}

const asList = (x) => (Array.isArray(x) ? x : Object.keys(x ?? {}));
const dependsOf = (svc) => Array.isArray(svc.depends_on)
  ? Object.fromEntries(svc.depends_on.map((n) => [n, { condition: 'service_started' }]))
  : (svc.depends_on ?? {});
const isOneShot = (svc) => svc.restart === 'no' || svc.restart === undefined;
const hasHealthcheck = (svc) => svc?.healthcheck && !svc.healthcheck.disable &&
  !(Array.isArray(svc.healthcheck.test) && svc.healthcheck.test[0] === 'NONE') && svc.healthcheck.test;

// Cross-references: services, networks, volumes, healthchecks behind
// service_healthy, build paths.
export function composeRefErrors(doc, composeDir = path.join(ROOT, 'deploy')) {
  const errs = [];
  const services = doc.services ?? {};
  const networks = new Set([...Object.keys(doc.networks ?? {}), 'default']);
  const volumes = new Set(Object.keys(doc.volumes ?? {}));
  for (const [name, svc] of Object.entries(services)) {
    for (const [dep, d] of Object.entries(dependsOf(svc))) {
      const target = services[dep];
      if (!target) { errs.push(`${name}: depends_on ${dep}, which is not a service`); continue; }
      if (d.condition === 'service_healthy' && !hasHealthcheck(target))
        errs.push(`${name}: waits for ${dep} to be healthy, but ${dep} has no healthcheck`);
      if (d.condition === 'service_completed_successfully' && !isOneShot(target))
        errs.push(`${name}: waits for ${dep} to complete, but ${dep} restarts (${target.restart})`);
      if (!svc.profiles && target.profiles)
        errs.push(`${name}: depends on ${dep}, which only exists in profile(s) ${target.profiles.join(', ')}`);
    }
    for (const n of asList(svc.networks))
      if (!networks.has(n)) errs.push(`${name}: network ${n} is not declared`);
    for (const v of svc.volumes ?? []) {
      const src = typeof v === 'string' ? v.split(':')[0] : (v.type === 'volume' ? v.source : null);
      if (src && !/^[./~$]/.test(src) && !volumes.has(src))
        errs.push(`${name}: volume ${src} is not declared`);
    }
    if (svc.build) {
      const ctx = path.resolve(composeDir, typeof svc.build === 'string' ? svc.build : svc.build.context ?? '.');
      if (!fs.existsSync(ctx)) errs.push(`${name}: build context ${ctx} does not exist`);
      const df = path.resolve(ctx, svc.build.dockerfile ?? 'Dockerfile');
      if (!fs.existsSync(df)) errs.push(`${name}: Dockerfile ${df} does not exist`);
    }
  }
  for (const n of Object.keys(doc.networks ?? {}))
    if (!Object.values(services).some((s) => asList(s.networks).includes(n)))
      errs.push(`network ${n} is declared but no service uses it`);
  for (const v of volumes)
    if (!Object.values(services).some((s) => (s.volumes ?? []).some((x) => (typeof x === 'string' ? x.split(':')[0] : x.source) === v)))
      errs.push(`volume ${v} is declared but no service uses it`);
  return errs;
}

// What the issue asks of the compose file: healthchecks, conditions,
// restart policies, loopback-only data stores, host names that resolve.
// networks: {service: [network, ...]} that must be exactly so.
export function composePolicyErrors(doc, contract, { loopbackOnly = [], networks = {} } = {}) {
  const errs = [];
  const services = doc.services ?? {};
  const waitedToComplete = new Set(Object.values(services).flatMap((s) =>
    Object.entries(dependsOf(s)).filter(([, d]) => d.condition === 'service_completed_successfully').map(([n]) => n)));
  const nets = (n) => new Set(asList(services[n]?.networks).length ? asList(services[n].networks) : ['default']);
  const shareNet = (a, b) => [...nets(a)].some((x) => nets(b).has(x));
  const envOf = (svc) => Array.isArray(svc.environment)
    ? Object.fromEntries(svc.environment.map((e) => e.split(/=(.*)/s).slice(0, 2)))
    : (svc.environment ?? {});
  for (const [name, svc] of Object.entries(services)) {
    const oneShot = svc.restart === 'no' && (waitedToComplete.has(name) || svc.profiles);
    if (!oneShot) {
      if (!hasHealthcheck(svc)) errs.push(`${name}: no healthcheck`);
      if (!['always', 'unless-stopped'].includes(svc.restart) && !/^on-failure/.test(svc.restart ?? ''))
        errs.push(`${name}: no restart policy`);
    }
    for (const [dep, d] of Object.entries(dependsOf(svc))) {
      const want = waitedToComplete.has(dep) && services[dep]?.restart === 'no'
        ? 'service_completed_successfully' : 'service_healthy';
      if (d.condition !== want) errs.push(`${name}: depends_on ${dep} with condition ${d.condition}, want ${want}`);
    }
    if (networks[name] && JSON.stringify([...nets(name)].sort()) !== JSON.stringify([...networks[name]].sort()))
      errs.push(`${name}: on networks ${[...nets(name)].join(', ')}, want ${networks[name].join(', ')}`);
    if (loopbackOnly.includes(name)) for (const p of svc.ports ?? []) {
      const host = typeof p === 'string' ? (p.split(':').length === 3 ? p.split(':')[0] : '') : p.host_ip ?? '';
      if (host !== '127.0.0.1') errs.push(`${name}: port ${JSON.stringify(p)} is published beyond 127.0.0.1`);
    }
    // Host names in settings and URLs are services on a shared network.
    const env = envOf(svc);
    const hosts = [];
    for (const [k, v] of Object.entries(env)) {
      if (/HOST$/.test(k)) hosts.push([k, String(v)]);
      for (const m of String(v).matchAll(/[a-z]+:\/\/(?:[^@/\s]*@)?([A-Za-z0-9_.-]+)/g)) hosts.push([k, m[1]]);
    }
    for (const arg of [].concat(svc.command ?? []))
      for (const m of String(arg).matchAll(/[a-z]+:\/\/(?:[^@/\s]*@)?([A-Za-z0-9_.-]+)/g)) hosts.push(['command', m[1]]);
    for (const [k, h] of hosts) {
      if (['127.0.0.1', 'localhost'].includes(h)) continue;
      if (!services[h]) errs.push(`${name}: ${k} names host ${h}, which is not a service`);
      else if (!shareNet(name, h)) errs.push(`${name}: ${k} names ${h}, which shares no network with it`);
    }
    // tally's own services: contract settings, healthcheck on its port.
    const bin = [].concat(svc.command ?? [])[0];
    if (contract && bin in contract.binaries) {
      for (const k of Object.keys(env))
        if (!contract.envVars.has(k)) errs.push(`${name}: ${k} is not a setting in docs/CONTRACTS.md`);
      const port = Number(env.BIND_PORT ?? contract.binaries[bin]);
      if (port && contract.binaries[bin] !== null) {
        const test = [].concat(svc.healthcheck?.test ?? []).join(' ');
        if (!new RegExp(`\\b${port}\\b`).test(test)) errs.push(`${name}: healthcheck does not probe port ${port}`);
        for (const p of svc.ports ?? []) {
          const target = Number(typeof p === 'string' ? p.split(':').at(-1).split('/')[0] : p.target);
          if (target !== port) errs.push(`${name}: publishes container port ${target}, but ${bin} listens on ${port}`);
        }
      }
    }
  }
  return errs;
}

// The seed profile does what the original's seed service did: one run of
// the load generator against the gateway once it is healthy.
export function composeSeedErrors(doc, { service = 'seed', target = 'gateway' } = {}) {
  const svc = doc.services?.[service];
  if (!svc) return [`no ${service} service`];
  const errs = [];
  const cmd = [].concat(svc.command ?? []);
  if (!(svc.profiles ?? []).includes('seed')) errs.push(`${service}: not in profile "seed" (it would run on every up)`);
  if (cmd[0] !== 'tallyctl' || cmd[1] !== 'seed') errs.push(`${service}: command is not "tallyctl seed ..."`);
  const url = cmd[cmd.indexOf('--url') + 1] ?? '';
  if (!cmd.includes('--url') || !new RegExp(`^http://${target}:\\d+/?$`).test(url))
    errs.push(`${service}: --url ${url} is not the ${target} service`);
  if (dependsOf(svc)[target]?.condition !== 'service_healthy')
    errs.push(`${service}: does not wait for ${target} to be healthy`);
  if (svc.restart !== 'no') errs.push(`${service}: a one-shot load generator must not restart`);
  return errs;
}

// ---------------------------------------------------------------------------
// Dockerfile and .dockerignore.

export function dockerfileLintErrors(text) {
  const du = require('dockerfile-utils');
  const all = Object.fromEntries(['deprecatedMaintainer', 'directiveCasing', 'emptyContinuationLine',
    'instructionCasing', 'instructionCmdMultiple', 'instructionEntrypointMultiple',
    'instructionHealthcheckMultiple', 'instructionJSONInSingleQuotes', 'instructionWorkdirRelative']
    .map((k) => [k, du.ValidationSeverity.ERROR]));
  return du.validate(text, all).map((d) => `Dockerfile:${d.range.start.line + 1}: ${d.message}`);
}

// Instructions with continuation lines joined, grouped by stage.
export function dockerfileStages(text) {
  const lines = text.replace(/\\\r?\n/g, ' ').split(/\r?\n/)
    .map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const stages = [];
  for (const l of lines) {
    const [, ins, rest] = /^(\S+)\s*(.*)$/.exec(l);
    const op = ins.toUpperCase();
    if (op === 'FROM') {
      const m = /^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?/i.exec(rest);
      stages.push({ image: m[1], name: m[2], ins: [] });
    } else if (stages.length) {
      stages.at(-1).ins.push({ op, args: rest });
    }
  }
  return stages;
}

const aptPackages = (stage) => stage.ins.filter((i) => i.op === 'RUN')
  .flatMap((i) => [...i.args.matchAll(/apt-get\s+install\s+([^&;|]*)/g)])
  .flatMap((m) => m[1].split(/\s+/).filter((w) => w && !w.startsWith('-')));

// Debian 12's runtime packages of the build's -dev packages; used when
// apt-cache is not there to ask (the tests compare the two when it is).
export const RUNTIME_OF_DEV_BOOKWORM = {
  'libnats-dev': 'libnats3.4', 'libhiredis-dev': 'libhiredis0.14', 'libpq-dev': 'libpq5',
  'libmicrohttpd-dev': 'libmicrohttpd12', 'libprotobuf-c-dev': 'libprotobuf-c1',
  'libjansson-dev': 'libjansson4',
};

// Runtime package of each -dev package, read from the local apt cache
// (libpq-dev -> libpq5): the dev package depends on it with "(= version)".
export function runtimeOfDev(devPackages) {
  const r = spawnSync('apt-cache', ['show', '--no-all-versions', ...devPackages], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return null;
  const map = {};
  for (const rec of r.stdout.split(/\n\n+/)) {
    const pkg = /^Package:\s*(\S+)$/m.exec(rec)?.[1];
    const dep = /^Depends:\s*(.*)$/m.exec(rec)?.[1] ?? '';
    const lib = dep.split(',').map((x) => x.trim()).find((x) => /\(= /.test(x));
    if (pkg && lib) map[pkg] = lib.split(/\s/)[0];
  }
  return map;
}

// The -dev -> runtime map for the image's base (Debian 12): from apt-cache
// on a Debian 12 machine, else the table above.
export function bookwormRuntimeMap(devPackages = Object.keys(RUNTIME_OF_DEV_BOOKWORM)) {
  let release = '';
  try { release = fs.readFileSync('/etc/os-release', 'utf8'); } catch { /* not Linux */ }
  const fromApt = /^VERSION_CODENAME=bookworm$/m.test(release) ? runtimeOfDev(devPackages) : null;
  return { map: fromApt ?? RUNTIME_OF_DEV_BOOKWORM, source: fromApt ? 'apt-cache' : 'table' };
}

// Shared libraries the built binaries link directly (readelf NEEDED),
// mapped to their Debian packages (dpkg -S): each must be installed in the
// runtime stage, or be libc6, which every Debian image has. Returns null
// when there are no binaries or no readelf/dpkg to ask.
export function linkedPackages(binDir, binaries) {
  const out = {};
  for (const b of binaries) {
    const file = path.join(binDir, b);
    if (!fs.existsSync(file)) return null;
    const r = spawnSync('readelf', ['-d', file], { encoding: 'utf8' });
    if (r.error || r.status !== 0) return null;
    for (const [, lib] of r.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)) {
      if (out[lib]) { out[lib].users.push(b); continue; }
      const d = spawnSync('dpkg', ['-S', `*/${lib}`], { encoding: 'utf8' });
      if (d.error) return null;
      const pkg = d.status === 0 ? d.stdout.split('\n')[0].split(':')[0] : null;
      out[lib] = { pkg, users: [b] };
    }
  }
  return out;
}

export function linkedPackageErrors(linked, text) {
  const final = dockerfileStages(text).at(-1);
  const pkgs = new Set([...aptPackages(final), 'libc6']);
  const errs = [];
  for (const [lib, { pkg, users }] of Object.entries(linked)) {
    if (!pkg) errs.push(`${lib} (linked by ${users.join(', ')}) belongs to no installed Debian package`);
    else if (!pkgs.has(pkg)) errs.push(`${lib} (linked by ${users.join(', ')}) comes from ${pkg}, which the runtime stage does not install`);
  }
  return errs;
}

// Docker's .dockerignore matching: later lines win, "!" re-includes, a
// pattern matching a parent folder excludes what is in it.
export function dockerignoreMatcher(text) {
  const rules = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#')).map((l) => {
    const neg = l.startsWith('!');
    const pat = path.posix.normalize((neg ? l.slice(1) : l).trim()).replace(/^\/+|\/+$/g, '');
    let re = '';
    for (let i = 0; i < pat.length; i++) {
      const ch = pat[i];
      if (pat.startsWith('**/', i)) { re += '(?:.*/)?'; i += 2; }
      else if (pat.startsWith('**', i)) { re += '.*'; i += 1; }
      else if (ch === '*') re += '[^/]*';
      else if (ch === '?') re += '[^/]';
      else re += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    }
    return { neg, re: new RegExp(`^${re}$`) };
  });
  return (file) => {
    const parts = path.posix.normalize(file).split('/');
    const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
    let ignored = false;
    for (const r of rules) if (prefixes.some((p) => r.re.test(p))) ignored = !r.neg;
    return ignored;
  };
}

// What the issue and the design ask of the image.
export function dockerfilePolicyErrors(text, { dockerignore = '', contract, runtimeMap, root = ROOT } = {}) {
  const errs = [];
  const stages = dockerfileStages(text);
  if (stages.length < 2) return [`Dockerfile: ${stages.length} stage(s), want a build and a runtime stage`];
  const [build, final] = [stages[0], stages.at(-1)];
  if (!/^debian:bookworm$/.test(build.image)) errs.push(`build stage is ${build.image}, want debian:bookworm`);
  if (!/^debian:bookworm-slim$/.test(final.image)) errs.push(`runtime stage is ${final.image}, want debian:bookworm-slim`);
  const names = new Set();
  stages.forEach((s, i) => {
    for (const ins of s.ins) {
      const from = /--from=(\S+)/.exec(ins.args)?.[1];
      if ((ins.op === 'COPY' || ins.op === 'ADD') && from && !names.has(from) && !(Number(from) < i))
        errs.push(`COPY --from=${from}: no earlier stage of that name`);
      if (ins.op === 'RUN' && /apt-get\s+install/.test(ins.args)) {
        if (!/--no-install-recommends/.test(ins.args)) errs.push(`apt-get install without --no-install-recommends: ${ins.args.slice(0, 60)}`);
        if (!/rm -rf \/var\/lib\/apt\/lists/.test(ins.args)) errs.push(`apt-get install leaves /var/lib/apt/lists in the layer`);
      }
    }
    if (s.name) names.add(s.name);
  });
  const user = final.ins.filter((i) => i.op === 'USER').at(-1)?.args.split(':')[0];
  if (!user) errs.push('runtime stage has no USER: it would run as root');
  else if (!/^\d+$/.test(user) || Number(user) === 0)
    errs.push(`runtime USER ${user} must be a numeric non-root uid (Kubernetes runAsNonRoot checks the number)`);
  if (!final.ins.some((i) => i.op === 'ENV' && /\bBIND_ADDR=0\.0\.0\.0\b/.test(i.args)))
    errs.push('runtime stage does not set BIND_ADDR=0.0.0.0: the services would listen on loopback only');
  const finalPkgs = aptPackages(final);
  for (const p of finalPkgs)
    if (/-dev$|^(gcc|cmake|make|pkg-config|protobuf-c-compiler|build-essential)$/.test(p))
      errs.push(`runtime stage installs build tool or -dev package ${p}`);
  if (runtimeMap) for (const dev of aptPackages(build).filter((p) => /-dev$/.test(p)))
    if (runtimeMap[dev] && !finalPkgs.includes(runtimeMap[dev]))
      errs.push(`build uses ${dev} but the runtime stage lacks ${runtimeMap[dev]}`);
  if (contract) {
    const sources = final.ins.filter((i) => i.op === 'COPY' && /--from=/.test(i.args))
      .flatMap((i) => i.args.split(/\s+/).filter((w) => !w.startsWith('--')).slice(0, -1));
    for (const bin of Object.keys(contract.binaries))
      if (!sources.some((src) => src.endsWith(`/${bin}`) || /\/bin\/?$/.test(src)))
        errs.push(`runtime stage does not copy ${bin}`);
  }
  const ignored = dockerignoreMatcher(dockerignore);
  for (const s of stages) for (const ins of s.ins) {
    if (!['COPY', 'ADD'].includes(ins.op) || /--from=/.test(ins.args)) continue;
    const words = ins.args.split(/\s+/).filter((w) => !w.startsWith('--'));
    for (const src of words.slice(0, -1)) {
      if (src === '.') continue;
      if (!fs.existsSync(path.join(root, src))) errs.push(`COPY ${src}: not in the build context`);
      else if (ignored(src)) errs.push(`COPY ${src}: excluded by .dockerignore`);
    }
  }
  for (const p of ['.git', 'build', 'tests/js/node_modules', '.tally', 'tests/artifacts'])
    if (!ignored(p)) errs.push(`.dockerignore does not exclude ${p}`);
  for (const p of ['CMakeLists.txt', 'lib', 'proto/tally/v1/vote.proto', 'gateway', 'processor', 'reporter', 'tools', 'tests/CMakeLists.txt'])
    if (ignored(p)) errs.push(`.dockerignore excludes ${p}, which the build needs`);
  return errs;
}

// ---------------------------------------------------------------------------
// Shell scripts: *.sh and files whose first line runs a POSIX-like shell,
// among the files git knows (tracked or not ignored), or all files outside
// .git, node_modules and build trees when this is not a git checkout.

const SHEBANG = /^#!\s*(?:\/usr)?\/bin\/(?:env\s+(?:-\S+\s+)*)?(?:ba|da|k)?sh\b/;
export function findShellScripts(root = ROOT) {
  let files;
  const r = spawnSync('git', ['-C', root, 'ls-files', '-co', '--exclude-standard', '-z'], { encoding: 'utf8' });
  if (r.status === 0 && fs.existsSync(path.join(root, '.git'))) {
    files = r.stdout.split('\0').filter(Boolean);
  } else {
    files = [];
    const walk = (rel) => {
      for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
        const p = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) { if (!/^(\.git|node_modules|build.*)$/.test(e.name)) walk(p); }
        else if (e.isFile()) files.push(p);
      }
    };
    walk('');
  }
  return files.filter((f) => {
    const full = path.join(root, f);
    if (!fs.existsSync(full) || !fs.statSync(full).isFile()) return false;
    if (f.endsWith('.sh')) return true;
    const fd = fs.openSync(full, 'r');
    const buf = Buffer.alloc(128);
    const n = fs.readSync(fd, buf, 0, 128, 0);
    fs.closeSync(fd);
    return SHEBANG.test(buf.subarray(0, n).toString('latin1').split('\n')[0]);
  }).sort();
}

export function shellcheckErrors(files, root = ROOT) {
  if (!files.length) return [];
  const r = spawnSync('shellcheck', ['--external-sources', '--source-path=SCRIPTDIR', '--format=gcc', ...files],
    { cwd: root, encoding: 'utf8' });
  if (r.error) throw new Error(`shellcheck not runnable: ${r.error.message}`);
  if (r.status === 0) return [];
  return (r.stdout + r.stderr).split('\n').filter(Boolean);
}

export function readFile(rel, root = ROOT) {
  return fs.readFileSync(path.join(root, rel), 'utf8');
}

// uses() for referenceErrors from the contract's "used by" column.
export function contractUses(contract) {
  return (c, name) => !(c.command?.[0] in contract.binaries) || !contract.usedBy[name] ||
    contract.usedBy[name].has(c.command[0]);
}

