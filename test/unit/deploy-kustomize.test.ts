import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { PodMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { isProbe, READY_TIMEOUT_MS } from '../../src/collector/routes/health.js';
import { ShipIdentities } from '../../src/collector/ship-identities.js';
import { parseConfigText, type CollectorConfig, type SidecarConfig } from '../../src/config/index.js';
import { loadRuleset } from '../../src/sidecar/redact/index.js';
import { defaultStreamId } from '../../src/sidecar/stream-id.js';

/**
 * deploy/kubernetes rendered by the real `kubectl kustomize` (no cluster
 * needed): every object is checked against the Kubernetes schemas of
 * kubernetes-models (and the Prometheus Operator's), every pod against the
 * restricted Pod Security Standard plus what this project adds, and every
 * sealtrail config a ConfigMap holds is loaded with sealtrail's own loader
 * and checked against the mounts and Secrets of the container that reads it.
 * The Secrets are not in the workload overlays (an apply must never reset
 * them): they come from deploy/kubernetes/secret-templates, rendered apart.
 * The sidecar's client certificate is its pod's own, from cert-manager's
 * csi-driver (a csi volume), checked against the collector's ship_identities.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const K8S = join(ROOT, 'deploy', 'kubernetes');
const TARGETS = ['base/collector', 'overlays/example', 'overlays/sqlite'] as const;
type Target = (typeof TARGETS)[number];
/** The Secret templates: created once, never part of a workload overlay. */
const SECRET_TEMPLATES = 'secret-templates';
/** cert-manager's csi-driver: the only CSI driver the manifests may use, and the files it writes (its defaults). */
const CSI_DRIVER = 'csi.cert-manager.io';
const CSI_FILES = new Set(['tls.crt', 'tls.key', 'ca.crt']);

// Rendered YAML: shapes vary by kind, so documents are loosely typed and the
// fields this test reads are typed where it reads them.
type Doc = Record<string, any>;

interface SecurityContext {
  runAsNonRoot?: boolean;
  runAsUser?: number;
  runAsGroup?: number;
  fsGroup?: number;
  allowPrivilegeEscalation?: boolean;
  readOnlyRootFilesystem?: boolean;
  privileged?: boolean;
  procMount?: string;
  capabilities?: { add?: string[]; drop?: string[] };
  seccompProfile?: { type?: string };
  appArmorProfile?: { type?: string };
  seLinuxOptions?: { type?: string; user?: string; role?: string };
  windowsOptions?: { hostProcess?: boolean };
  sysctls?: { name: string; value: string }[];
}
interface VolumeMount {
  name: string;
  mountPath: string;
  subPath?: string;
  readOnly?: boolean;
}
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    fieldRef?: { fieldPath: string };
    secretKeyRef?: { name: string; key: string; optional?: boolean };
    configMapKeyRef?: { name: string; key: string; optional?: boolean };
  };
}
interface Container {
  name: string;
  image?: string;
  args?: string[];
  env?: EnvVar[];
  envFrom?: { secretRef?: { name: string }; configMapRef?: { name: string } }[];
  ports?: { name?: string; containerPort: number; hostPort?: number }[];
  restartPolicy?: string;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: SecurityContext;
  volumeMounts?: VolumeMount[];
}
interface Probe {
  httpGet?: { path: string; port: string | number; scheme?: string };
  tcpSocket?: { port: string | number };
  exec?: { command: string[] };
  timeoutSeconds?: number;
}
interface KeyedSource {
  name?: string;
  secretName?: string;
  items?: { key: string; path: string }[];
  optional?: boolean;
}
interface Volume {
  name: string;
  configMap?: KeyedSource;
  secret?: KeyedSource;
  emptyDir?: Record<string, unknown>;
  persistentVolumeClaim?: { claimName: string };
  hostPath?: { path: string };
  csi?: { driver: string; readOnly?: boolean; volumeAttributes?: Record<string, string> };
  [type: string]: unknown;
}
interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  ephemeralContainers?: Container[];
  volumes?: Volume[];
  securityContext?: SecurityContext;
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
  serviceAccountName?: string;
}

const run = promisify(execFile);
const rendered = new Map<Target, Doc[]>();
let templates: Doc[] = [];

function parseDocs(text: string, where: string): Doc[] {
  return parseAllDocuments(text).map((d) => {
    expect(d.errors, where).toEqual([]);
    return d.toJS() as Doc;
  });
}

function docsOf(t: Target): Doc[] {
  const docs = rendered.get(t);
  if (!docs) throw new Error(`${t} was not rendered`);
  return docs;
}

const find = (docs: Doc[], kind: string, name: string, namespace?: string): Doc | undefined =>
  docs.find((d) => d.kind === kind && d.metadata?.name === name && (namespace === undefined || d.metadata?.namespace === namespace));

beforeAll(async () => {
  // The real binary, in parallel; a missing kubectl fails here, loudly.
  await Promise.all(
    TARGETS.map(async (t) => {
      const { stdout } = await run('kubectl', ['kustomize', join(K8S, t)], { maxBuffer: 32 * 1024 * 1024 });
      rendered.set(t, parseDocs(stdout, t));
    }),
  );
  const { stdout } = await run('kubectl', ['kustomize', join(K8S, SECRET_TEMPLATES)], { maxBuffer: 32 * 1024 * 1024 });
  templates = parseDocs(stdout, SECRET_TEMPLATES);
});

/**
 * A ConfigMap or Secret as a pod in `namespace` finds it: ConfigMaps from the
 * rendered overlay, Secrets from the rendered secret-templates (created once,
 * apart from the overlay).
 */
const source = (docs: Doc[], kind: 'ConfigMap' | 'Secret', name: string, namespace: string): Doc | undefined =>
  kind === 'Secret' ? find(templates, 'Secret', name, namespace) : find(docs, kind, name, namespace);

// ---------------------------------------------------------------- schemas

interface Model {
  validate(): void;
}
type ModelClass = (new (data: any) => Model) & { apiVersion: string; kind: string };
/** Each class with the module it comes from (whose type declarations list its fields). */
const MODEL_MODULES: [ModelClass, string][] = [
  [Namespace, 'kubernetes-models/v1/Namespace'],
  [ConfigMap, 'kubernetes-models/v1/ConfigMap'],
  [Secret, 'kubernetes-models/v1/Secret'],
  [Service, 'kubernetes-models/v1/Service'],
  [ServiceAccount, 'kubernetes-models/v1/ServiceAccount'],
  [PersistentVolumeClaim, 'kubernetes-models/v1/PersistentVolumeClaim'],
  [Deployment, 'kubernetes-models/apps/v1/Deployment'],
  [Job, 'kubernetes-models/batch/v1/Job'],
  [NetworkPolicy, 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy'],
  [PodDisruptionBudget, 'kubernetes-models/policy/v1/PodDisruptionBudget'],
  [ServiceMonitor, '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor'],
  [PodMonitor, '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor'],
];
const MODELS = MODEL_MODULES.map(([m]) => m);
const MODEL_BY_TYPE = new Map(MODELS.map((m) => [`${m.apiVersion}/${m.kind}`, m]));
const MODULE_BY_TYPE = new Map(MODEL_MODULES.map(([m, mod]) => [`${m.apiVersion}/${m.kind}`, mod]));

/**
 * The compiled validators of kubernetes-models check types, enums and
 * required fields but let unknown fields through (a misspelt
 * `readOnlyRootFileSystem` would pass). The package's type declarations list
 * every field of every object, so unknown fields are found from those: one
 * interface per .d.ts file, its properties (and those of the interfaces it
 * extends), each typed by an imported interface, an array of one, or a leaf.
 */
interface Shape {
  name: string;
  props: Map<string, string>;
  imports: Map<string, string>;
}
const shapes = new Map<string, Shape | null>();

function declarationFile(specifier: string, from?: string): string {
  const bare = specifier.replace(/\.js$/, '');
  return bare.startsWith('.') ? join(from!, '..', `${bare}.d.ts`) : join(ROOT, 'node_modules', `${bare}.d.ts`);
}

function shapeOf(file: string): Shape | null {
  const cached = shapes.get(file);
  if (cached !== undefined) return cached;
  const text = readFileSync(file, 'utf8').replace(/\/\*\*[\s\S]*?\*\//g, '');
  const imports = new Map<string, string>();
  for (const m of text.matchAll(/^import \{ (\w+) \} from "([^"]+)";$/gm)) imports.set(m[1]!, declarationFile(m[2]!, file));
  const head = /^export interface (\w+)(?: extends ([\w, ]+))? \{$/m.exec(text);
  if (!head) {
    shapes.set(file, null);
    return null;
  }
  const body = text.slice(head.index + head[0].length, text.indexOf('\n}', head.index));
  const props = new Map<string, string>();
  for (const m of body.matchAll(/^ {4}"([^"]+)"\??: (.*?);?$/gm)) props.set(m[1]!, m[2]!);
  const shape: Shape = { name: head[1]!, props, imports };
  shapes.set(file, shape);
  for (const parent of (head[2] ?? '').split(',').map((p) => p.trim())) {
    const parentFile = imports.get(parent);
    const ps = parentFile ? shapeOf(parentFile) : null;
    for (const [k, v] of ps?.props ?? []) if (!props.has(k)) props.set(k, v);
    for (const [k, v] of ps?.imports ?? []) if (!imports.has(k)) imports.set(k, v);
  }
  return shape;
}

function unknownFields(value: unknown, shape: Shape, path: string, out: string[]): void {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return;
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    const type = shape.props.get(key);
    if (type === undefined) {
      out.push(`${path}.${key}: not a field of ${shape.name}`);
      continue;
    }
    const m = /^(?:Array<(\w+)>|(\w+))$/.exec(type);
    const file = m ? shape.imports.get((m[1] ?? m[2])!) : undefined;
    const inner = file ? shapeOf(file) : null;
    if (!inner) continue;
    if (m![1] !== undefined && Array.isArray(v)) v.forEach((item, i) => unknownFields(item, inner, `${path}.${key}[${i}]`, out));
    else unknownFields(v, inner, `${path}.${key}`, out);
  }
}

function unknownFieldsOf(d: Doc): string[] {
  const mod = MODULE_BY_TYPE.get(`${d.apiVersion}/${d.kind}`);
  if (!mod) return [`no schema for ${d.apiVersion} ${d.kind}`];
  const shape = shapeOf(declarationFile(mod));
  if (!shape) return [`no interface in the declarations of ${mod}`];
  const out: string[] = [];
  unknownFields(d, shape, d.kind as string, out);
  return out;
}

/** The schema errors of one document, or a message that no schema is known for its type (never silently passed). */
function schemaErrors(d: Doc): string | undefined {
  const model = MODEL_BY_TYPE.get(`${d.apiVersion}/${d.kind}`);
  if (!model) return `no schema for ${d.apiVersion} ${d.kind}: add its kubernetes-models class to MODELS`;
  try {
    new model(d).validate();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

// -------------------------------------------------------------- workloads

interface Workload {
  doc: Doc;
  where: string;
  namespace: string;
  pod: PodSpec;
  podMeta: Doc;
  /** a pod name as the controller would make it */
  podName: string;
}

function workloads(docs: Doc[]): Workload[] {
  const out: Workload[] = [];
  for (const d of docs) {
    const name = String(d.metadata?.name);
    const namespace = String(d.metadata?.namespace ?? 'default');
    const where = `${d.kind} ${namespace}/${name}`;
    if (['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job'].includes(d.kind)) {
      const podName = d.kind === 'Deployment' ? `${name}-7d9c5b6f4-x2x9q` : d.kind === 'StatefulSet' ? `${name}-0` : `${name}-x2x9q`;
      out.push({ doc: d, where, namespace, pod: d.spec.template.spec, podMeta: d.spec.template.metadata ?? {}, podName });
    } else if (d.kind === 'CronJob') {
      out.push({ doc: d, where, namespace, pod: d.spec.jobTemplate.spec.template.spec, podMeta: d.spec.jobTemplate.spec.template.metadata ?? {}, podName: `${name}-29000000-x2x9q` });
    } else if (d.kind === 'Pod') {
      out.push({ doc: d, where, namespace, pod: d.spec, podMeta: d.metadata, podName: name });
    }
  }
  return out;
}

const allContainers = (pod: PodSpec): Container[] => [...(pod.initContainers ?? []), ...pod.containers, ...(pod.ephemeralContainers ?? [])];

// ------------------------------------------------- Pod Security Standards

/** Volume types the restricted profile allows. */
const RESTRICTED_VOLUMES = new Set(['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret']);
/** The "safe" sysctls of the baseline profile. */
const SAFE_SYSCTLS = new Set([
  'kernel.shm_rmid_forced',
  'net.ipv4.ip_local_port_range',
  'net.ipv4.ip_unprivileged_port_start',
  'net.ipv4.tcp_syncookies',
  'net.ipv4.ping_group_range',
  'net.ipv4.ip_local_reserved_ports',
  'net.ipv4.tcp_keepalive_time',
  'net.ipv4.tcp_fin_timeout',
  'net.ipv4.tcp_keepalive_intvl',
  'net.ipv4.tcp_keepalive_probes',
]);
const SELINUX_TYPES = new Set(['', 'container_t', 'container_init_t', 'container_kvm_t', 'container_engine_t']);
/** The image's numeric user and group (deploy/Dockerfile: USER 10001:10001). */
const IMAGE_ID = 10001;

/**
 * What the "restricted" Pod Security Standard (which includes "baseline")
 * refuses in a pod, plus this project's own rules: read-only root
 * filesystem, requests and limits for cpu and memory, the image's uid/gid
 * and fsGroup (so Secret files mounted 0400 are readable). Empty when the pod
 * passes.
 */
function podSecurityViolations(pod: PodSpec, podMeta: Doc = {}): string[] {
  const v: string[] = [];
  const psc = pod.securityContext ?? {};
  for (const k of ['hostNetwork', 'hostPID', 'hostIPC'] as const) if (pod[k] === true) v.push(`pod: ${k} must not be true`);
  if (psc.windowsOptions?.hostProcess === true) v.push('pod: windowsOptions.hostProcess must not be true');
  for (const vol of pod.volumes ?? []) {
    const type = Object.keys(vol).find((k) => k !== 'name');
    if (vol.hostPath !== undefined) v.push(`volume ${vol.name}: hostPath volumes are not allowed`);
    else if (type === undefined || !RESTRICTED_VOLUMES.has(type)) v.push(`volume ${vol.name}: type ${String(type)} is not allowed`);
  }
  for (const s of psc.sysctls ?? []) if (!SAFE_SYSCTLS.has(s.name)) v.push(`pod: sysctl ${s.name} is not allowed`);
  if (psc.seccompProfile?.type === 'Unconfined') v.push('pod: seccompProfile Unconfined');
  if (psc.appArmorProfile?.type === 'Unconfined') v.push('pod: appArmorProfile Unconfined');
  if (psc.runAsNonRoot === false) v.push('pod: runAsNonRoot must not be false');
  if (psc.runAsUser === 0) v.push('pod: runAsUser must not be 0');
  if (psc.fsGroup !== IMAGE_ID) v.push(`pod: fsGroup must be ${IMAGE_ID} (Secret files mounted 0400)`);
  const se = psc.seLinuxOptions;
  if (se && (!SELINUX_TYPES.has(se.type ?? '') || se.user || se.role)) v.push('pod: seLinuxOptions not allowed');
  for (const [k, val] of Object.entries((podMeta.annotations ?? {}) as Record<string, string>)) {
    if (k.startsWith('container.apparmor.security.beta.kubernetes.io/') && val === 'unconfined') v.push(`pod: ${k} unconfined`);
  }

  for (const c of allContainers(pod)) {
    const at = `container ${c.name}`;
    const sc = c.securityContext ?? {};
    if (sc.privileged === true) v.push(`${at}: privileged must not be true`);
    if (sc.windowsOptions?.hostProcess === true) v.push(`${at}: windowsOptions.hostProcess must not be true`);
    if (sc.procMount !== undefined && sc.procMount !== 'Default') v.push(`${at}: procMount must be Default`);
    const cse = sc.seLinuxOptions;
    if (cse && (!SELINUX_TYPES.has(cse.type ?? '') || cse.user || cse.role)) v.push(`${at}: seLinuxOptions not allowed`);
    if (sc.appArmorProfile?.type === 'Unconfined') v.push(`${at}: appArmorProfile Unconfined`);
    for (const p of c.ports ?? []) if (p.hostPort !== undefined && p.hostPort !== 0) v.push(`${at}: hostPort ${p.hostPort} not allowed`);
    const added = sc.capabilities?.add ?? [];
    for (const cap of added) if (cap !== 'NET_BIND_SERVICE') v.push(`${at}: capabilities.add ${cap} (only NET_BIND_SERVICE allowed)`);
    if (!(sc.capabilities?.drop ?? []).includes('ALL')) v.push(`${at}: capabilities.drop must include ALL`);
    const seccomp = sc.seccompProfile?.type ?? psc.seccompProfile?.type;
    if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') v.push(`${at}: seccompProfile must be RuntimeDefault or Localhost (is ${String(seccomp)})`);
    const nonRoot = sc.runAsNonRoot ?? psc.runAsNonRoot;
    if (nonRoot !== true) v.push(`${at}: runAsNonRoot must be true`);
    const uid = sc.runAsUser ?? psc.runAsUser;
    const gid = sc.runAsGroup ?? psc.runAsGroup;
    if (uid === 0) v.push(`${at}: runAsUser must not be 0`);
    else if (uid !== IMAGE_ID) v.push(`${at}: runAsUser must be ${IMAGE_ID} (is ${String(uid)})`);
    if (gid !== IMAGE_ID) v.push(`${at}: runAsGroup must be ${IMAGE_ID} (is ${String(gid)})`);
    if (sc.allowPrivilegeEscalation !== false) v.push(`${at}: allowPrivilegeEscalation must be false`);
    if (sc.readOnlyRootFilesystem !== true) v.push(`${at}: readOnlyRootFilesystem must be true`);
    for (const kind of ['requests', 'limits'] as const) {
      for (const r of ['cpu', 'memory']) if (c.resources?.[kind]?.[r] === undefined) v.push(`${at}: resources.${kind}.${r} must be set`);
    }
  }
  return v;
}

// ------------------------------------------------- configs in ConfigMaps

/** A value of a ConfigMap or Secret, whichever field holds it. */
function keyValue(obj: Doc, key: string): string | undefined {
  if (typeof obj.stringData?.[key] === 'string') return obj.stringData[key] as string;
  if (typeof obj.data?.[key] === 'string') return obj.kind === 'Secret' ? Buffer.from(obj.data[key] as string, 'base64').toString('utf8') : (obj.data[key] as string);
  if (typeof obj.binaryData?.[key] === 'string') return Buffer.from(obj.binaryData[key] as string, 'base64').toString('utf8');
  return undefined;
}

/** The container's environment as the kubelet would set it; every reference must resolve in the rendered objects. */
function envOf(docs: Doc[], w: Workload, c: Container): Record<string, string> {
  const env: Record<string, string> = {};
  const ref = (kind: 'Secret' | 'ConfigMap', name: string): Doc => {
    const obj = source(docs, kind, name, w.namespace);
    if (!obj) throw new Error(`${w.where} ${c.name}: env refers to ${kind} ${w.namespace}/${name}, which is not rendered`);
    return obj;
  };
  for (const from of c.envFrom ?? []) {
    const obj = from.secretRef ? ref('Secret', from.secretRef.name) : ref('ConfigMap', from.configMapRef!.name);
    for (const k of Object.keys({ ...obj.data, ...obj.stringData })) env[k] = keyValue(obj, k)!;
  }
  for (const e of c.env ?? []) {
    const vf = e.valueFrom;
    if (e.value !== undefined) env[e.name] = e.value;
    else if (vf?.secretKeyRef || vf?.configMapKeyRef) {
      const r = (vf.secretKeyRef ?? vf.configMapKeyRef)!;
      const value = keyValue(ref(vf.secretKeyRef ? 'Secret' : 'ConfigMap', r.name), r.key);
      if (value === undefined) throw new Error(`${w.where} ${c.name}: env ${e.name} refers to key ${r.key} of ${r.name}, which it lacks`);
      env[e.name] = value;
    } else if (vf?.fieldRef?.fieldPath === 'metadata.name') env[e.name] = w.podName;
    else if (vf?.fieldRef?.fieldPath === 'metadata.namespace') env[e.name] = w.namespace;
    else throw new Error(`${w.where} ${c.name}: env ${e.name} has a source this test does not resolve`);
  }
  return env;
}

interface Resolved {
  mount: VolumeMount;
  volume: Volume;
  /** the content, for a file from a ConfigMap or Secret */
  text?: string;
  /** the file's name, for a file the csi-driver writes (no content here: issued per pod) */
  csiFile?: string;
}

/**
 * Where `file` comes from in container `c`: the mount that covers it, its
 * volume, and for a ConfigMap or Secret volume the object (rendered, same
 * namespace; Secrets from the secret-templates) and its key; for cert-manager's
 * csi volume, one of the files that driver writes. Throws naming what is
 * missing.
 */
function resolveFile(docs: Doc[], w: Workload, c: Container, file: string): Resolved {
  const at = `${w.where} container ${c.name}: ${file}`;
  const mounts = [...(c.volumeMounts ?? [])].sort((a, b) => b.mountPath.length - a.mountPath.length);
  const mount = mounts.find((m) => (m.subPath !== undefined ? file === m.mountPath : file === m.mountPath || file.startsWith(`${m.mountPath}/`)));
  if (!mount) throw new Error(`${at}: no volumeMount covers it`);
  const volume = (w.pod.volumes ?? []).find((v) => v.name === mount.name);
  if (!volume) throw new Error(`${at}: mount ${mount.mountPath} names volume ${mount.name}, which the pod lacks`);
  if (volume.csi) {
    if (volume.csi.driver !== CSI_DRIVER) throw new Error(`${at}: CSI driver ${volume.csi.driver} (only ${CSI_DRIVER})`);
    const attrs = volume.csi.volumeAttributes ?? {};
    // Other file names than the driver's defaults are not used here.
    for (const k of ['ca-file', 'certificate-file', 'privatekey-file']) {
      if (attrs[`csi.cert-manager.io/${k}`] !== undefined) throw new Error(`${at}: csi.cert-manager.io/${k} renames the driver's files`);
    }
    const rel = mount.subPath ?? posix.relative(mount.mountPath, file);
    if (!CSI_FILES.has(rel)) throw new Error(`${at}: the csi-driver writes no ${rel} (only ${[...CSI_FILES].join(', ')})`);
    return { mount, volume, csiFile: rel };
  }
  const src = volume.configMap ?? volume.secret;
  if (!src) return { mount, volume };
  const kind = volume.configMap ? 'ConfigMap' : 'Secret';
  const name = (volume.configMap ? src.name : src.secretName)!;
  const obj = source(docs, kind, name, w.namespace);
  if (!obj) throw new Error(`${at}: ${kind} ${w.namespace}/${name} is not rendered${kind === 'Secret' ? ` in ${SECRET_TEMPLATES}` : ''}`);
  const rel = mount.subPath ?? posix.relative(mount.mountPath, file);
  if (rel === '') throw new Error(`${at}: is the mount directory itself, not a file`);
  const item = src.items?.find((i) => i.path === rel);
  if (src.items && !item) throw new Error(`${at}: the volume's items do not project ${rel}`);
  const key = item?.key ?? rel;
  const text = keyValue(obj, key);
  if (text === undefined) throw new Error(`${at}: ${kind} ${name} has no key ${key}`);
  return { mount, volume, text };
}

/** A directory the process must write: under a writable mount of an emptyDir, ephemeral or PVC volume. */
function expectWritable(docs: Doc[], w: Workload, c: Container, dir: string): void {
  const r = resolveFile(docs, w, c, dir === '/' ? dir : `${dir}/.probe`);
  expect(r.mount.readOnly, `${w.where} ${c.name}: ${dir} on a read-only mount`).not.toBe(true);
  expect(Boolean(r.volume.emptyDir || r.volume.persistentVolumeClaim || r.volume['ephemeral']), `${w.where} ${c.name}: ${dir} not on a writable volume`).toBe(true);
}

interface NamedFile {
  field: string;
  path: string;
}

function urlFiles(field: string, url: string | undefined): NamedFile[] {
  if (url === undefined) return [];
  const q = new URL(url).searchParams;
  return ['sslrootcert', 'sslcert', 'sslkey'].flatMap((p) => (q.get(p) ? [{ field: `${field}?${p}`, path: q.get(p)! }] : []));
}

function collectorFiles(c: CollectorConfig): NamedFile[] {
  const f: NamedFile[] = [];
  const add = (field: string, path: string | undefined) => path !== undefined && f.push({ field, path });
  add('tls.cert_file', c.tls?.cert_file);
  add('tls.key_file', c.tls?.key_file);
  add('tls.client_ca_file', c.tls?.client_ca_file);
  c.auth.admin_token_files.forEach((p, i) => add(`auth.admin_token_files[${i}]`, p));
  c.streams.forEach((s, i) => {
    add(`streams[${i}].vkey_file`, s.vkey_file);
    s.keys?.forEach((k, j) => add(`streams[${i}].keys[${j}].vkey_file`, k.vkey_file));
  });
  c.hmac_keys.forEach((k, i) => add(`hmac_keys[${i}].file`, k.file));
  add('keys.signing_key_file', c.keys?.signing_key_file);
  add('keys.hmac_key_file', c.keys?.hmac_key_file);
  if (c.store.type === 'postgres') f.push(...urlFiles('store.url', c.store.url), ...urlFiles('store.migrate_url', c.store.migrate_url));
  return f;
}

function sidecarFiles(s: SidecarConfig): NamedFile[] {
  const f: NamedFile[] = [];
  const add = (field: string, path: string | undefined) => path !== undefined && f.push({ field, path });
  s.redaction.rules.forEach((p, i) => add(`redaction.rules[${i}]`, p));
  s.redaction.pseudonym_keys.forEach((k, i) => add(`redaction.pseudonym_keys[${i}].file`, k.file));
  add('keys.signing_key_file', s.keys.signing_key_file);
  add('keys.hmac_key_file', s.keys.hmac_key_file);
  add('ship.tls.ca_file', s.ship.tls?.ca_file);
  add('ship.tls.cert_file', s.ship.tls?.cert_file);
  add('ship.tls.key_file', s.ship.tls?.key_file);
  return f;
}

/** A sealtrail container's config, loaded with sealtrail's loader in exactly the container's environment. */
interface LoadedConfig {
  target: Target;
  w: Workload;
  c: Container;
  path: string;
  text: string;
  env: Record<string, string>;
  collector?: CollectorConfig;
  sidecar?: SidecarConfig;
}

function sealtrailContainers(t: Target): LoadedConfig[] {
  const docs = docsOf(t);
  const out: LoadedConfig[] = [];
  for (const w of workloads(docs)) {
    for (const c of allContainers(w.pod)) {
      const i = (c.args ?? []).indexOf('--config');
      if (i < 0) continue;
      const path = c.args![i + 1]!;
      const { text } = resolveFile(docs, w, c, path);
      const env = envOf(docs, w, c);
      // Only the container's own environment: a reference without default
      // that the container does not set fails here (config_env_missing).
      const cfg = parseConfigText(text!, `${t}: ${w.where} ${c.name} ${path}`, env);
      out.push({ target: t, w, c, path, text: text!, env, ...(cfg.collector ? { collector: cfg.collector } : {}), ...(cfg.sidecar ? { sidecar: cfg.sidecar } : {}) });
    }
  }
  return out;
}

const clone = <T>(x: T): T => structuredClone(x);

/** The sidecar's TLS files the csi-driver may provide, and which of its files each must be. */
const CSI_ROLE: Record<string, string> = {
  'ship.tls.ca_file': 'ca.crt',
  'ship.tls.cert_file': 'tls.crt',
  'ship.tls.key_file': 'tls.key',
};

/** The csi-driver's variable expansion (Go's os.Expand over the pod's name, namespace, uid, service account); unknown names fail, as in the driver. */
function expandCsi(template: string, pod: { name: string; namespace: string; uid: string; serviceAccount: string }): string {
  const vars: Record<string, string> = { POD_NAME: pod.name, POD_NAMESPACE: pod.namespace, POD_UID: pod.uid, SERVICE_ACCOUNT_NAME: pod.serviceAccount };
  return template.replace(/\$\{(\w+)\}|\$(\w+)/g, (_m, a: string | undefined, b: string | undefined) => {
    const v = vars[(a ?? b)!];
    if (v === undefined) throw new Error(`csi-driver: undefined variable ${a ?? b}`);
    return v;
  });
}

/** A mocked TLS request carrying a verified client certificate with these SAN URIs. */
const fromCert = (...uris: string[]) => ({ headers: {}, socket: { authorized: true, getPeerCertificate: () => ({ subjectaltname: uris.map((u) => `URI:${u}`).join(', ') }) } });

/** The error ShipIdentities.authorize throws, or undefined when it allows. */
function refusal(fn: () => void): { status: number; code: string } | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return { status: (err as { status: number }).status, code: (err as { code: string }).code };
  }
}

// ================================================================== tests

describe('deploy/kubernetes: kubectl kustomize renders every overlay and the base', () => {
  it('renders each target, and every overlay directory is one of them', () => {
    const overlays = readdirSync(join(K8S, 'overlays'), { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => `overlays/${d.name}`);
    expect(TARGETS.filter((t) => t.startsWith('overlays/')).sort()).toEqual(overlays.sort());
    for (const t of TARGETS) {
      expect(docsOf(t).length, t).toBeGreaterThan(3);
      for (const d of docsOf(t)) expect(typeof d.metadata?.name, `${t}: ${d.kind}`).toBe('string');
    }
  });

  it('every rendered object validates against its Kubernetes (or Prometheus Operator) schema', () => {
    for (const [cls, key] of MODELS.map((m) => [m, `${m.apiVersion}/${m.kind}`] as const)) expect(MODEL_BY_TYPE.get(key)).toBe(cls);
    for (const t of TARGETS) {
      for (const d of docsOf(t)) expect(schemaErrors(d), `${t}: ${d.kind} ${d.metadata?.name}`).toBeUndefined();
    }
  });

  it('the schema check catches a broken object (so it is not vacuous), and knows restartPolicy on init containers', () => {
    const agent = clone(find(docsOf('overlays/example'), 'Deployment', 'claims-agent', 'agents')!);
    expect(schemaErrors(agent)).toBeUndefined();
    agent.spec.template.spec.initContainers[0].restartPolicy = 5;
    expect(schemaErrors(agent)).toMatch(/initContainers\/0\/restartPolicy must be string/);
    const collector = clone(find(docsOf('overlays/example'), 'Deployment', 'sealtrail-collector', 'sealtrail')!);
    collector.spec.template.spec.containers[0].ports[0].containerPort = '7470';
    expect(schemaErrors(collector)).toMatch(/containerPort must be integer/);
    delete collector.spec.selector;
    expect(schemaErrors(collector)).toMatch(/required property selector/);
    expect(schemaErrors({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } })).toMatch(/no schema/);
  });

  it('no rendered object has a field its schema does not know (checked from the type declarations)', () => {
    for (const t of TARGETS) {
      for (const d of docsOf(t)) expect(unknownFieldsOf(d), `${t}: ${d.kind} ${d.metadata?.name}`).toEqual([]);
    }
    const agent = clone(find(docsOf('overlays/example'), 'Deployment', 'claims-agent', 'agents')!);
    const sc = agent.spec.template.spec.initContainers[0].securityContext;
    sc.readOnlyRootFileSystem = true;
    agent.spec.template.spec.volumes[0].emptyDir.sizelimit = '1Gi';
    agent.metadata.lables = {};
    expect(schemaErrors(agent)).toBeUndefined(); // what the package's validator lets through
    expect(unknownFieldsOf(agent)).toEqual([
      'Deployment.metadata.lables: not a field of IObjectMeta',
      'Deployment.spec.template.spec.initContainers[0].securityContext.readOnlyRootFileSystem: not a field of ISecurityContext',
      'Deployment.spec.template.spec.volumes[0].emptyDir.sizelimit: not a field of IEmptyDirVolumeSource',
    ]);
    const sm = clone(find(docsOf('overlays/example'), 'ServiceMonitor', 'sealtrail-collector', 'sealtrail')!);
    sm.spec.endpoints[0].tlsConfig.serverNmae = 'x';
    expect(unknownFieldsOf(sm)).toHaveLength(1);
  });

  it('the example has the collector, its Job, Service, PDB, NetworkPolicy, ServiceMonitor and the agent with its native sidecar', () => {
    const docs = docsOf('overlays/example');
    expect(find(docs, 'Namespace', 'sealtrail')).toBeDefined();
    expect(find(docs, 'Namespace', 'agents')).toBeDefined();
    const collector = find(docs, 'Deployment', 'sealtrail-collector', 'sealtrail')!;
    expect(collector.spec.replicas).toBeGreaterThanOrEqual(2);
    const cc = (collector.spec.template.spec as PodSpec).containers.find((c) => c.name === 'collector')!;
    expect(cc.args).toEqual(['collector', '--config', '/etc/sealtrail/collector.yaml']);
    const job = find(docs, 'Job', 'sealtrail-migrate', 'sealtrail')!;
    const mc = (job.spec.template.spec as PodSpec).containers.find((c) => c.name === 'migrate')!;
    expect(mc.args).toEqual(['migrate', '--config', '/etc/sealtrail/migrate.yaml']);
    expect(job.spec.ttlSecondsAfterFinished).toBeGreaterThan(0);
    const svc = find(docs, 'Service', 'sealtrail-collector', 'sealtrail')!;
    expect(svc.spec.ports.map((p: Doc) => p.port)).toContain(7470);
    expect(find(docs, 'PodDisruptionBudget', 'sealtrail-collector', 'sealtrail')).toBeDefined();
    expect(find(docs, 'NetworkPolicy', 'sealtrail-collector', 'sealtrail')).toBeDefined();
    expect(find(docs, 'ServiceMonitor', 'sealtrail-collector', 'sealtrail')).toBeDefined();

    const agent = find(docs, 'Deployment', 'claims-agent', 'agents')!;
    const pod = agent.spec.template.spec as PodSpec;
    expect(pod.containers.map((c) => c.name)).toContain('agent');
    const sidecar = pod.initContainers!.find((c) => c.name === 'sealtrail')!;
    expect(sidecar.restartPolicy).toBe('Always');
    expect(sidecar.args).toEqual(['sidecar', '--config', '/etc/sealtrail/sidecar.yaml']);
    expect(sidecar.env!.find((e) => e.name === 'POD_NAME')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.name');
    // The agent writes its trace files where the sidecar reads them: one volume, emptyDir.
    const agentMount = pod.containers.find((c) => c.name === 'agent')!.volumeMounts!.find((m) => m.mountPath === '/var/log/agent')!;
    const sidecarMount = sidecar.volumeMounts!.find((m) => m.mountPath === '/var/log/agent')!;
    expect(agentMount.name).toBe(sidecarMount.name);
    expect(pod.volumes!.find((v) => v.name === agentMount.name)?.emptyDir).toBeDefined();
  });

  it('no workload overlay renders a Secret (re-applying one never resets a real Secret); the templates live apart', () => {
    for (const t of TARGETS) expect(docsOf(t).filter((d) => d.kind === 'Secret').map((d) => d.metadata.name), t).toEqual([]);
    // The templates are a kustomization of their own, outside base/, components/ and overlays/.
    for (const dir of ['base', 'components', 'overlays']) {
      const files = readdirSync(join(K8S, dir), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.yaml'));
      for (const f of files) expect(readFileSync(join(K8S, dir, f), 'utf8'), `${dir}/${f}`).not.toMatch(/^kind: Secret$/m);
    }
    expect(templates.length).toBeGreaterThan(0);
    expect(templates.every((d) => d.kind === 'Secret'), 'secret-templates holds only Secrets').toBe(true);
  });

  it('the Secret templates: every value a placeholder, each Secret one the manifests use, none for the sidecar certificate', () => {
    for (const s of templates) {
      const at = `${s.metadata.namespace}/${s.metadata.name}`;
      expect(s.metadata.namespace, at).toBeDefined();
      expect(s.metadata.labels?.['sealtrail.dev/secret-template'], at).toBe('true');
      expect(s.data, `${at} holds data`).toBeUndefined();
      for (const [k, v] of Object.entries(s.stringData as Record<string, string>)) expect(v, `${at} ${k}`).toContain('REPLACE_ME');
      expect(schemaErrors(s), at).toBeUndefined();
      expect(unknownFieldsOf(s), at).toEqual([]);
    }
    // Each template is referenced by a rendered pod (volume or env) or monitor: no stale template.
    const used = new Set<string>();
    for (const t of TARGETS) {
      for (const d of docsOf(t)) {
        for (const w of workloads([d])) {
          for (const v of w.pod.volumes ?? []) if (v.secret?.secretName) used.add(`${w.namespace}/${v.secret.secretName}`);
          for (const c of allContainers(w.pod)) for (const e of c.env ?? []) if (e.valueFrom?.secretKeyRef) used.add(`${w.namespace}/${e.valueFrom.secretKeyRef.name}`);
        }
        if (d.kind === 'ServiceMonitor' || d.kind === 'PodMonitor') {
          // tlsConfig's SecretKeySelectors: { secret: { name, key } } and keySecret: { name, key }.
          const walk = (x: unknown, key: string): void => {
            if (x === null || typeof x !== 'object') return;
            const o = x as Record<string, unknown>;
            if ((key === 'secret' || key === 'keySecret') && typeof o.name === 'string') used.add(`${d.metadata.namespace}/${o.name}`);
            for (const [k, v] of Object.entries(o)) walk(v, k);
          };
          walk(d.spec, 'spec');
        }
      }
    }
    expect(templates.map((s) => `${s.metadata.namespace}/${s.metadata.name}`).sort()).toEqual([...used].sort());
    expect(find(templates, 'Secret', 'sealtrail-sidecar-tls')).toBeUndefined();
  });

  it('the migrate Job is no Argo CD hook; sync waves order the Job before the collector Deployment', () => {
    for (const t of ['base/collector', 'overlays/example'] as const) {
      const docs = docsOf(t);
      const job = find(docs, 'Job', 'sealtrail-migrate', 'sealtrail')!;
      const ann = (job.metadata.annotations ?? {}) as Record<string, string>;
      expect(Object.keys(ann).filter((k) => k.startsWith('argocd.argoproj.io/hook')), t).toEqual([]);
      const wave = (d: Doc) => Number((d.metadata.annotations ?? {})['argocd.argoproj.io/sync-wave'] ?? 0);
      const deploy = find(docs, 'Deployment', 'sealtrail-collector', 'sealtrail')!;
      expect(wave(job), t).toBeGreaterThan(0);
      expect(wave(deploy), t).toBeGreaterThan(wave(job));
      // Everything the Job needs (its namespace, its ConfigMap) comes in an earlier wave.
      const cm = docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name === (job.spec.template.spec as PodSpec).volumes!.find((v) => v.configMap)!.configMap!.name)!;
      expect(cm).toBeDefined();
      for (const d of [cm, find(docs, 'Namespace', 'sealtrail')!]) expect(wave(d), `${t} ${d.kind}`).toBeLessThan(wave(job));
    }
  });
});

describe('deploy/kubernetes: the restricted Pod Security Standard and the image user', () => {
  it('every pod and container of every target passes', () => {
    let pods = 0;
    for (const t of TARGETS) {
      for (const w of workloads(docsOf(t))) {
        pods++;
        expect(podSecurityViolations(w.pod, w.podMeta), `${t}: ${w.where}`).toEqual([]);
      }
    }
    expect(pods).toBeGreaterThanOrEqual(5);
  });

  it('the namespaces enforce the restricted profile', () => {
    for (const ns of docsOf('overlays/example').filter((d) => d.kind === 'Namespace')) {
      expect(ns.metadata.labels['pod-security.kubernetes.io/enforce'], ns.metadata.name).toBe('restricted');
    }
  });

  const agentPod = (): PodSpec => clone(find(docsOf('overlays/example'), 'Deployment', 'claims-agent', 'agents')!.spec.template.spec as PodSpec);
  const sidecarOf = (p: PodSpec): Container => p.initContainers!.find((c) => c.name === 'sealtrail')!;
  const mutations: [string, (p: PodSpec) => void, RegExp][] = [
    ['allowPrivilegeEscalation removed', (p) => delete sidecarOf(p).securityContext!.allowPrivilegeEscalation, /sealtrail: allowPrivilegeEscalation/],
    ['a capability added', (p) => (sidecarOf(p).securityContext!.capabilities!.add = ['SYS_ADMIN']), /capabilities\.add SYS_ADMIN/],
    ['drop ALL removed', (p) => (p.containers[0]!.securityContext!.capabilities = {}), /agent: capabilities\.drop/],
    [
      'seccomp removed at both levels',
      (p) => {
        delete p.securityContext!.seccompProfile;
        delete sidecarOf(p).securityContext!.seccompProfile;
      },
      /sealtrail: seccompProfile/,
    ],
    ['seccomp Unconfined on a container', (p) => (p.containers[0]!.securityContext!.seccompProfile = { type: 'Unconfined' }), /agent: seccompProfile/],
    ['runAsNonRoot false on a container', (p) => (sidecarOf(p).securityContext!.runAsNonRoot = false), /sealtrail: runAsNonRoot/],
    ['runAsUser 0', (p) => (p.containers[0]!.securityContext!.runAsUser = 0), /agent: runAsUser must not be 0/],
    ['another uid', (p) => (sidecarOf(p).securityContext!.runAsUser = 1000), /sealtrail: runAsUser must be 10001/],
    ['privileged', (p) => (sidecarOf(p).securityContext!.privileged = true), /privileged/],
    ['hostNetwork', (p) => (p.hostNetwork = true), /hostNetwork/],
    ['hostPID', (p) => (p.hostPID = true), /hostPID/],
    ['a hostPath volume', (p) => p.volumes!.push({ name: 'host', hostPath: { path: '/var/log' } }), /hostPath/],
    ['a hostPort', (p) => (sidecarOf(p).ports![0]!.hostPort = 9470), /hostPort/],
    ['readOnlyRootFilesystem false', (p) => (sidecarOf(p).securityContext!.readOnlyRootFilesystem = false), /readOnlyRootFilesystem/],
    ['no limits', (p) => delete p.containers[0]!.resources!.limits, /agent: resources\.limits\.cpu/],
    ['no fsGroup', (p) => delete p.securityContext!.fsGroup, /fsGroup/],
    ['an unsafe sysctl', (p) => (p.securityContext!.sysctls = [{ name: 'kernel.msgmax', value: '1' }]), /sysctl kernel\.msgmax/],
  ];

  it.each(mutations)('flags a pod with %s', (_name, mutate, expected) => {
    const pod = agentPod();
    expect(podSecurityViolations(pod)).toEqual([]);
    mutate(pod);
    const v = podSecurityViolations(pod);
    expect(v.some((m) => expected.test(m)), v.join('\n')).toBe(true);
  });
});

describe('deploy/kubernetes: the configs in the ConfigMaps load with sealtrail\'s loader and find their files', () => {
  it('every sealtrail container config loads, and every file it names is mounted from a defined ConfigMap/Secret key', () => {
    const seen: string[] = [];
    for (const t of TARGETS) {
      const docs = docsOf(t);
      for (const l of sealtrailContainers(t)) {
        seen.push(`${t} ${l.c.name}`);
        const files = [...(l.collector ? collectorFiles(l.collector) : []), ...(l.sidecar ? sidecarFiles(l.sidecar) : [])];
        for (const f of files) {
          const r = resolveFile(docs, l.w, l.c, f.path);
          // From a ConfigMap/Secret key; only the ship client's three TLS files may come from
          // the csi-driver's per-pod volume, each the file the driver writes for that role.
          if (r.csiFile !== undefined) expect(`${f.field} ${r.csiFile}`, `${t} ${l.c.name}`).toBe(`${f.field} ${CSI_ROLE[f.field]}`);
          else expect(r.text, `${t} ${l.c.name} ${f.field}`).toBeDefined();
        }
        if (l.collector?.store.type === 'sqlite') expectWritable(docs, l.w, l.c, posix.dirname(l.collector.store.path));
        if (l.sidecar) {
          expectWritable(docs, l.w, l.c, l.sidecar.data_dir);
          for (const s of l.sidecar.sources) {
            if (s.type === 'file') for (const g of s.include) resolveFile(docs, l.w, l.c, g);
            if (s.type === 'socket') expectWritable(docs, l.w, l.c, posix.dirname(s.path));
          }
        }
      }
    }
    expect(seen.sort()).toEqual(
      [
        'base/collector collector',
        'base/collector migrate',
        'overlays/example collector',
        'overlays/example migrate',
        'overlays/example sealtrail',
        'overlays/sqlite collector',
      ].sort(),
    );
  });

  it('every ConfigMap/Secret a pod mounts or reads env from is rendered, with the keys it projects', () => {
    for (const t of TARGETS) {
      const docs = docsOf(t);
      for (const w of workloads(docs)) {
        for (const vol of w.pod.volumes ?? []) {
          const src = vol.configMap ?? vol.secret;
          if (!src) continue;
          const kind = vol.configMap ? 'ConfigMap' : 'Secret';
          const name = (vol.configMap ? src.name : src.secretName)!;
          const obj = source(docs, kind, name, w.namespace);
          expect(obj, `${t}: ${w.where} volume ${vol.name}: ${kind} ${name}`).toBeDefined();
          for (const item of src.items ?? []) expect(keyValue(obj!, item.key), `${t}: ${kind} ${name} key ${item.key}`).toBeDefined();
        }
        for (const c of allContainers(w.pod)) {
          envOf(docs, w, c);
          for (const m of c.volumeMounts ?? []) expect((w.pod.volumes ?? []).some((v) => v.name === m.name), `${t}: ${w.where} ${c.name} mount ${m.name}`).toBe(true);
        }
      }
    }
  });

  it('only the migrate Job holds the owner role; the replicas run as the app role', () => {
    const loaded = sealtrailContainers('overlays/example');
    const serving = loaded.find((l) => l.c.name === 'collector')!.collector!;
    const migrate = loaded.find((l) => l.c.name === 'migrate')!.collector!;
    expect(serving.store.type).toBe('postgres');
    expect(migrate.store.type).toBe('postgres');
    if (serving.store.type !== 'postgres' || migrate.store.type !== 'postgres') return;
    expect(serving.store.migrate_url).toBeUndefined();
    expect(new URL(serving.store.url).username).toBe('sealtrail_app');
    expect(new URL(migrate.store.migrate_url!).username).toBe('sealtrail_owner');
    for (const url of [serving.store.url, migrate.store.migrate_url!]) expect(new URL(url).searchParams.get('sslmode')).toBe('verify-full');
    for (const w of workloads(docsOf('overlays/example')).filter((x) => x.doc.kind !== 'Job')) {
      for (const c of allContainers(w.pod)) {
        for (const e of c.env ?? []) expect(e.valueFrom?.secretKeyRef?.key, `${w.where} ${c.name} ${e.name}`).not.toBe('owner-url');
      }
    }
  });

  it('the redaction rules the sidecar mounts load with sealtrail\'s rule loader', () => {
    const l = sealtrailContainers('overlays/example').find((x) => x.sidecar)!;
    const dir = mkdtempSync(join(tmpdir(), 'sealtrail-k8s-rules-'));
    try {
      const paths = l.sidecar!.redaction.rules.map((p, i) => {
        const local = join(dir, `${i}-${posix.basename(p)}`);
        writeFileSync(local, resolveFile(docsOf('overlays/example'), l.w, l.c, p).text!);
        return local;
      });
      expect(paths.length).toBeGreaterThan(0);
      expect(() => loadRuleset(paths)).not.toThrow();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the rules in the sidecar component are config/redaction/pii-basic.yaml unchanged, and the drain fits in the grace period', () => {
    expect(readFileSync(join(K8S, 'components', 'sidecar', 'pii-basic.yaml'), 'utf8')).toBe(readFileSync(join(ROOT, 'config', 'redaction', 'pii-basic.yaml'), 'utf8'));
    const l = sealtrailContainers('overlays/example').find((x) => x.sidecar)!;
    const drain = Number(l.env.SEALTRAIL_DRAIN_SECONDS ?? 25);
    expect(drain).toBeLessThan((l.w.pod as PodSpec & { terminationGracePeriodSeconds?: number }).terminationGracePeriodSeconds ?? 30);
    // Reading pauses at buffer.max_bytes, before the kubelet would evict the pod for its buffer volume.
    const dataMount = l.c.volumeMounts!.find((m) => m.mountPath === l.sidecar!.data_dir)!;
    const limit = (l.w.pod.volumes!.find((v) => v.name === dataMount.name)!.emptyDir as { sizeLimit?: string } | undefined)?.sizeLimit;
    if (limit !== undefined) {
      const m = /^(\d+)(Ki|Mi|Gi|Ti)$/.exec(limit)!;
      expect(m, limit).not.toBeNull();
      const bytes = Number(m[1]) * 1024 ** (['Ki', 'Mi', 'Gi', 'Ti'].indexOf(m[2]!) + 1);
      expect(l.sidecar!.buffer.max_bytes).toBeLessThan(bytes);
    }
  });

  it("the example sidecar's stream (its pod's name) is covered by the collector's streams and its ship identity, over the Service, with TLS", () => {
    const docs = docsOf('overlays/example');
    const loaded = sealtrailContainers('overlays/example');
    const side = loaded.find((l) => l.sidecar)!;
    const coll = loaded.find((l) => l.c.name === 'collector')!.collector!;
    expect(side.w.podName).toBe('claims-agent-7d9c5b6f4-x2x9q');
    const stream = side.sidecar!.stream.id ?? defaultStreamId(side.sidecar!.stream.name, side.env);
    expect(stream.startsWith('claims-agent-7d9c5b6f4-x2x9q-')).toBe(true);
    const matches = (pattern: string, s: string) => (pattern.endsWith('*') ? s.startsWith(pattern.slice(0, -1)) : s === pattern);
    expect(coll.streams.some((s) => matches(s.match, stream)), coll.streams.map((s) => s.match).join(', ')).toBe(true);
    expect(coll.streams.some((s) => matches(s.match, 'billing-agent-5f6d-abcde-20260101T000000Z'))).toBe(false);

    // The identity the sidecar's certificate carries: its pod's own SAN URI, as the csi-driver
    // expands the volume's uri-sans for this pod; the collector's real ShipIdentities decides.
    const tlsMount = side.c.volumeMounts!.find((m) => side.sidecar!.ship.tls!.cert_file!.startsWith(`${m.mountPath}/`))!;
    const csi = side.w.pod.volumes!.find((v) => v.name === tlsMount.name)!.csi!;
    const pod = { name: side.w.podName, namespace: side.w.namespace, uid: '0b8f6c1e-2f4a-4d59-9a43-7c1d2e3f4a5b', serviceAccount: side.w.pod.serviceAccountName ?? 'default' };
    const sans = csi.volumeAttributes!['csi.cert-manager.io/uri-sans']!.split(',').map((u) => expandCsi(u.trim(), pod));
    expect(sans).toEqual(['spiffe://cluster.local/ns/agents/pod/claims-agent-7d9c5b6f4-x2x9q']);
    const ids = new ShipIdentities(coll.ship_identities);
    const own = fromCert(...sans);
    expect(stream).toMatch(/^claims-agent-7d9c5b6f4-x2x9q-\d{8}T\d{6}Z$/);
    expect(refusal(() => ids.authorize(own, stream))).toBeUndefined();
    expect(refusal(() => ids.authorize(own, 'claims-agent-7d9c5b6f4-x2x9q-20261207T101500Z'))).toBeUndefined();
    // Another replica's stream, and a stream that merely begins with this pod's name: refused.
    for (const other of ['claims-agent-7d9c5b6f4-aaaaa-20261207T101500Z', 'claims-agent-7d9c5b6f4-x2x9q-extra-20261207T101500Z', 'billing-agent-5f6d-abcde-20260101T000000Z']) {
      expect(refusal(() => ids.authorize(own, other)), other).toEqual({ status: 403, code: 'stream_forbidden' });
    }
    // The other replica, with its own certificate, may post its own stream, not this pod's.
    const replica = fromCert(expandCsi(csi.volumeAttributes!['csi.cert-manager.io/uri-sans']!, { ...pod, name: 'claims-agent-7d9c5b6f4-aaaaa' }));
    expect(refusal(() => ids.authorize(replica, 'claims-agent-7d9c5b6f4-aaaaa-20261207T101500Z'))).toBeUndefined();
    expect(refusal(() => ids.authorize(replica, 'claims-agent-7d9c5b6f4-x2x9q-20261207T101500Z'))).toEqual({ status: 403, code: 'stream_forbidden' });
    // A pod of another namespace, or the old shared service-account identity: not an identity at all.
    expect(refusal(() => ids.authorize(fromCert('spiffe://cluster.local/ns/other/pod/claims-agent-7d9c5b6f4-x2x9q'), stream))?.status).toBe(401);
    expect(refusal(() => ids.authorize(fromCert('spiffe://cluster.local/ns/agents/sa/claims-agent'), stream))?.status).toBe(401);

    // ship.url reaches the collector's Service port, which reaches the collector's container port, over https.
    const url = new URL(side.sidecar!.ship.url);
    expect(url.protocol).toBe(coll.tls ? 'https:' : 'http:');
    const [svcName, svcNs] = url.hostname.split('.');
    const svc = find(docs, 'Service', svcName!, svcNs)!;
    expect(svc, url.hostname).toBeDefined();
    const port = (svc.spec.ports as Doc[]).find((p) => p.port === Number(url.port))!;
    expect(port, url.port).toBeDefined();
    const collectorPod = find(docs, 'Deployment', 'sealtrail-collector', 'sealtrail')!.spec.template.spec as PodSpec;
    const cport = collectorPod.containers[0]!.ports!.find((p) => p.name === port.targetPort || p.containerPort === port.targetPort)!;
    expect(cport.containerPort).toBe(Number(coll.listen.split(':')[1]));
    expect(svc.spec.selector).toEqual(
      Object.fromEntries(Object.entries(find(docs, 'Deployment', 'sealtrail-collector', 'sealtrail')!.spec.template.metadata.labels as Record<string, string>).filter(([k]) => k in svc.spec.selector)),
    );
    // The NetworkPolicy lets the agents' namespace in on that port.
    const np = find(docs, 'NetworkPolicy', 'sealtrail-collector', 'sealtrail')!;
    const agentsNs = find(docs, 'Namespace', side.w.namespace)!;
    const allowed = (np.spec.ingress as Doc[]).some(
      (r) =>
        (r.ports as Doc[]).some((p) => p.port === cport.containerPort) &&
        (r.from as Doc[]).some((f) => Object.entries(f.namespaceSelector?.matchLabels ?? {}).every(([k, v]) => agentsNs.metadata.labels?.[k] === v)),
    );
    expect(allowed).toBe(true);
  });

  it("the sidecar's certificate: cert-manager's csi-driver, issued per pod by the ClusterIssuer sealtrail-ca for client auth, readable by group 10001", () => {
    const l = sealtrailContainers('overlays/example').find((x) => x.sidecar)!;
    const tls = l.sidecar!.ship.tls!;
    const dirs = new Set([tls.ca_file, tls.cert_file, tls.key_file].map((f) => resolveFile(docsOf('overlays/example'), l.w, l.c, f!).volume.name));
    expect(dirs.size).toBe(1);
    const vol = l.w.pod.volumes!.find((v) => v.name === [...dirs][0])!;
    expect(vol.csi?.driver).toBe(CSI_DRIVER);
    expect(vol.csi?.readOnly).toBe(true);
    expect(l.c.volumeMounts!.find((m) => m.name === vol.name)!.readOnly).toBe(true);
    const a = vol.csi!.volumeAttributes!;
    expect(a['csi.cert-manager.io/issuer-name']).toBe('sealtrail-ca');
    expect(a['csi.cert-manager.io/issuer-kind']).toBe('ClusterIssuer');
    expect(a['csi.cert-manager.io/uri-sans']).toBe('spiffe://cluster.local/ns/${POD_NAMESPACE}/pod/${POD_NAME}');
    expect(a['csi.cert-manager.io/fs-group']).toBe(String(IMAGE_ID));
    // The driver's list syntax: comma separated, trimmed; cert-manager's usage names.
    const usages = a['csi.cert-manager.io/key-usages']!.split(',').map((u) => u.trim());
    expect(usages).toContain('client auth');
    for (const u of usages) expect(['digital signature', 'key encipherment', 'client auth', 'server auth'], u).toContain(u);
    // Every attribute is one the driver knows (a misspelt key would be passed on as a CertificateRequest annotation).
    const known = ['issuer-name', 'issuer-kind', 'issuer-group', 'uri-sans', 'dns-names', 'ip-sans', 'common-name', 'duration', 'renew-before', 'key-usages', 'key-algorithm', 'key-size', 'key-encoding', 'fs-group', 'reuse-private-key'];
    for (const k of Object.keys(a)) expect(known.map((x) => `csi.cert-manager.io/${x}`), k).toContain(k);
    // Only the driver's own variables, which it fills from the pod.
    expect(() => expandCsi(a['csi.cert-manager.io/uri-sans']!, { name: 'p', namespace: 'n', uid: 'u', serviceAccount: 's' })).not.toThrow();
    expect(() => expandCsi('spiffe://x/${POD_IP}', { name: 'p', namespace: 'n', uid: 'u', serviceAccount: 's' })).toThrow(/POD_IP/);
  });

  it("the sidecar's telemetry port: plain HTTP serving only probes and metrics (no http source, so no POST /v1/events); probes and PodMonitor agree", () => {
    const docs = docsOf('overlays/example');
    const l = sealtrailContainers('overlays/example').find((x) => x.sidecar)!;
    const secure = l.sidecar!.telemetry.tls !== undefined;
    expect(secure).toBe(false);
    expect(l.sidecar!.sources.map((s) => s.type)).not.toContain('http');
    for (const p of [l.c.startupProbe, l.c.readinessProbe, l.c.livenessProbe]) {
      expect(p?.httpGet, 'probe').toBeDefined();
      expect(p!.httpGet!.scheme ?? 'HTTP').toBe(secure ? 'HTTPS' : 'HTTP');
    }
    const pm = find(docs, 'PodMonitor', 'sealtrail-sidecars', 'sealtrail')!;
    for (const ep of pm.spec.podMetricsEndpoints as Doc[]) expect(ep.scheme ?? 'http').toBe(secure ? 'https' : 'http');
  });

  it("the collector's probes: readiness is /readyz (the store), liveness /healthz, over HTTPS, on paths served without a client certificate", () => {
    for (const t of TARGETS) {
      const l = sealtrailContainers(t).find((x) => x.c.name === 'collector')!;
      const ready = l.c.readinessProbe?.httpGet;
      const live = l.c.livenessProbe?.httpGet;
      expect(ready?.path, t).toBe('/readyz');
      expect(live?.path, t).toBe('/healthz');
      // /readyz waits up to READY_TIMEOUT_MS for the store; the probe must wait longer.
      expect((l.c.readinessProbe!.timeoutSeconds ?? 1) * 1000, t).toBeGreaterThan(READY_TIMEOUT_MS);
      for (const g of [ready!, live!]) {
        expect(g.scheme ?? 'HTTP', t).toBe(l.collector!.tls ? 'HTTPS' : 'HTTP');
        // With client_ca_file the kubelet (no client certificate) reaches only the exempt paths.
        expect(isProbe('GET', g.path), `${t} ${g.path}`).toBe(true);
        const port = l.c.ports!.find((p) => p.name === g.port || p.containerPort === g.port);
        expect(port?.containerPort, t).toBe(Number(l.collector!.listen.split(':')[1]));
      }
    }
    expect(isProbe('GET', '/metrics')).toBe(false);
  });

  it('the ServiceMonitor and PodMonitor select what exists: the Service and its port, the sidecar pods and their port', () => {
    const docs = docsOf('overlays/example');
    const sm = find(docs, 'ServiceMonitor', 'sealtrail-collector', 'sealtrail')!;
    const svc = find(docs, 'Service', 'sealtrail-collector', 'sealtrail')!;
    for (const [k, v] of Object.entries(sm.spec.selector.matchLabels as Record<string, string>)) expect(svc.metadata.labels?.[k], k).toBe(v);
    for (const ep of sm.spec.endpoints as Doc[]) {
      expect((svc.spec.ports as Doc[]).some((p) => p.name === ep.port), ep.port).toBe(true);
      expect(ep.scheme).toBe('https');
      // mTLS: Prometheus presents a client certificate from a rendered Secret in its namespace.
      for (const ref of [ep.tlsConfig.cert.secret, ep.tlsConfig.keySecret, ep.tlsConfig.ca.secret] as { name: string; key: string }[]) {
        const s = find(templates, 'Secret', ref.name, sm.metadata.namespace);
        expect(s && keyValue(s, ref.key), `${ref.name} ${ref.key}`).toBeDefined();
      }
    }
    const pm = find(docs, 'PodMonitor', 'sealtrail-sidecars', 'sealtrail')!;
    const agent = find(docs, 'Deployment', 'claims-agent', 'agents')!;
    for (const [k, v] of Object.entries(pm.spec.selector.matchLabels as Record<string, string>)) expect(agent.spec.template.metadata.labels?.[k], k).toBe(v);
    const sidecar = (agent.spec.template.spec as PodSpec).initContainers!.find((c) => c.name === 'sealtrail')!;
    for (const ep of pm.spec.podMetricsEndpoints as Doc[]) expect(sidecar.ports!.some((p) => p.name === ep.port), ep.port).toBe(true);
  });

  it('the loader check fails on a config that needs an env the container does not set (so it can fail)', () => {
    const l = sealtrailContainers('overlays/example').find((x) => x.c.name === 'collector')!;
    const env = { ...l.env };
    delete env.SEALTRAIL_PG_APP_URL;
    expect(() => parseConfigText(l.text, 'collector.yaml', env)).toThrow(/SEALTRAIL_PG_APP_URL/);
    const w = clone(l.w);
    w.pod.volumes = w.pod.volumes!.filter((v) => v.name !== 'tls');
    expect(() => resolveFile(docsOf('overlays/example'), w, l.c, l.collector!.tls!.cert_file)).toThrow(/lacks/);
    expect(() => resolveFile(docsOf('overlays/example'), l.w, l.c, '/etc/sealtrail/nowhere/x.key')).toThrow(/no volumeMount/);
    expect(() => resolveFile(docsOf('overlays/example'), l.w, l.c, '/etc/sealtrail/tls/missing.crt')).toThrow(/has no key missing\.crt/);
    // The csi volume: only cert-manager's driver, only the files it writes.
    const side = sealtrailContainers('overlays/example').find((x) => x.sidecar)!;
    expect(resolveFile(docsOf('overlays/example'), side.w, side.c, '/etc/sealtrail/tls/tls.key').csiFile).toBe('tls.key');
    expect(() => resolveFile(docsOf('overlays/example'), side.w, side.c, '/etc/sealtrail/tls/other.pem')).toThrow(/writes no other\.pem/);
    const sw = clone(side.w);
    sw.pod.volumes!.find((v) => v.name === 'sealtrail-tls')!.csi!.driver = 'secrets-store.csi.k8s.io';
    expect(() => resolveFile(docsOf('overlays/example'), sw, side.c, '/etc/sealtrail/tls/tls.key')).toThrow(/only csi\.cert-manager\.io/);
    // A Secret the templates lack is caught.
    const cw = clone(l.w);
    cw.pod.volumes!.find((v) => v.name === 'admin-token')!.secret!.secretName = 'sealtrail-no-such-secret';
    expect(() => resolveFile(docsOf('overlays/example'), cw, l.c, '/etc/sealtrail/admin/token')).toThrow(/not rendered in secret-templates/);
  });
});
