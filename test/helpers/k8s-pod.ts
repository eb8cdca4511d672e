/**
 * Runs containers of rendered Kubernetes manifests the way a kubelet would,
 * on this machine, without a cluster: the same args and env, the same files
 * at the same absolute paths, the same user, a read-only root.
 *
 * How (needs root, as the full-disk tests do; without it start() throws and
 * says so — a manifest test must never pass without having run):
 * - one network namespace (`unshare --net`, loopback only) holds every pod,
 *   so the manifests' fixed ports (7470, 9470, 4318) never meet other tests'
 *   listeners; Service names resolve to 127.0.0.1 through the pods' own
 *   /etc/hosts. Postgres is reached through a Unix-socket bridge to the real
 *   server on 127.0.0.1:5432.
 * - each container gets a root directory of its own (chroot) holding the
 *   image's layout: /usr from this machine, the project at /app (as the
 *   Dockerfile copies it), /etc with passwd/group/hosts, /var/lib/sealtrail
 *   owned by the image's user. The root is remounted read-only when the
 *   container asks for readOnlyRootFilesystem.
 * - volumes are materialised as the kubelet does: ConfigMap and Secret keys as
 *   files with the volume's defaultMode, emptyDir/PVC as empty directories;
 *   with fsGroup every file and directory gets that group and group access
 *   (read-only volumes g+r, others g+rw, directories setgid), which is what
 *   makes a 0400 Secret readable to a non-root user. They are bind-mounted at
 *   each volumeMount's mountPath (subPath included), read-only where the
 *   kubelet mounts them read-only.
 * - the process runs as the pod's runAsUser/runAsGroup with fsGroup as a
 *   supplementary group, in the image's working directory.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { procOf, ROOT, waitFor, type Proc } from './procs.js';

export type K8sDoc = Record<string, any>;

/** `kubectl kustomize dir`, parsed. */
export function kustomize(dir: string): K8sDoc[] {
  const out = execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return parseAllDocuments(out)
    .map((d) => d.toJS() as K8sDoc | null)
    .filter((d): d is K8sDoc => d !== null);
}

export function findDoc(docs: K8sDoc[], kind: string, name: string): K8sDoc {
  const d = docs.find((x) => x.kind === kind && x.metadata?.name === name);
  if (!d) throw new Error(`the rendered manifests have no ${kind} ${name}`);
  return d;
}

/** What fills a Secret key the manifests only template: the test's real material. */
export type SecretFill = (secretName: string, key: string) => Buffer | string | undefined;

/**
 * What a CSI driver would mount for this pod (file name → bytes), e.g. the
 * per-pod certificate cert-manager's csi-driver issues; undefined: this
 * sandbox cannot stand in for that driver.
 */
export type CsiFill = (volume: K8sDoc, pod: PodOptions) => Record<string, Buffer> | undefined;

export interface PodOptions {
  /** the pod's name, as the Deployment/Job controller would make it */
  podName: string;
  namespace: string;
  /** the pod template's spec */
  spec: K8sDoc;
}

export interface ContainerRun {
  proc: Proc;
  /** the container's root directory on this machine */
  root: string;
  /** a volume's directory on this machine (to write into it as the agent would, or to read it) */
  volumeDir(name: string): string;
}

const IMAGE_WORKDIR = '/var/lib/sealtrail';
const IMAGE_ENTRYPOINT = ['/usr/bin/node', '/app/dist/src/cli/main.js'];

function run(cmd: string, args: string[]): void {
  execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The kubelet's volume ownership management (pkg/volume/volume_linux.go) for fsGroup. */
function applyFsGroup(path: string, gid: number, readOnly: boolean): void {
  const st = lstatSync(path);
  if (st.isSymbolicLink()) return;
  chownSync(path, st.uid, gid);
  const mask = st.isDirectory() ? (readOnly ? 0o440 : 0o660) | 0o2000 | 0o110 : readOnly ? 0o440 : 0o660;
  chmodSync(path, (st.mode & 0o7777) | mask);
  if (st.isDirectory()) for (const e of readdirSync(path)) applyFsGroup(join(path, e), gid, readOnly);
}

export interface SandboxOptions {
  dir: string;
  /** Service DNS names → 127.0.0.1 in every pod's /etc/hosts */
  serviceNames: string[];
  /** the rendered manifests: ConfigMaps are taken from them */
  docs: K8sDoc[];
  /** the material of the Secrets the manifests template */
  secrets: SecretFill;
  csi?: CsiFill;
  /** the Postgres server on 127.0.0.1 that pods reach as <name>:5432 (default 5432) */
  postgresPort?: number;
}

/**
 * A sandbox of pods: one network namespace, one mount namespace, a bridge to
 * Postgres. start() before anything else; close() kills every process in it.
 */
export class PodSandbox {
  private holder: ChildProcess | undefined;
  private nsPid = 0;
  private pgBridge: net.Server | undefined;
  private readonly bridged = new Set<net.Socket>();
  private readonly runs: Proc[] = [];
  private podCount = 0;

  readonly dir: string;
  private readonly serviceNames: string[];
  private readonly fill: SecretFill;
  private readonly docs: K8sDoc[];
  private readonly csi: CsiFill;
  private readonly postgresPort: number;

  constructor(opts: SandboxOptions) {
    this.dir = opts.dir;
    this.serviceNames = opts.serviceNames;
    this.fill = opts.secrets;
    this.docs = opts.docs;
    this.csi = opts.csi ?? (() => undefined);
    this.postgresPort = opts.postgresPort ?? 5432;
  }

  async start(): Promise<void> {
    if (process.getuid?.() !== 0) {
      throw new Error(
        `running manifests as a kubelet would needs root (namespaces, chroot, bind mounts); uid is ${process.getuid?.()}. ` +
          'This test does not pass without having started the pods.',
      );
    }
    mkdirSync(this.dir, { recursive: true });
    // Host side of the Postgres bridge: a Unix socket the pods' namespace can reach.
    const sock = join(this.dir, 'pg.sock');
    this.pgBridge = net.createServer((c) => {
      const up = net.connect(this.postgresPort, '127.0.0.1');
      this.bridged.add(c).add(up);
      c.pipe(up).pipe(c);
      const end = () => {
        c.destroy();
        up.destroy();
        this.bridged.delete(c);
        this.bridged.delete(up);
      };
      c.on('error', end).on('close', end);
      up.on('error', end).on('close', end);
    });
    await new Promise<void>((r) => this.pgBridge!.listen(sock, r));
    const fwd = join(this.dir, 'pg-forward.mjs');
    writeFileSync(
      fwd,
      `import net from 'node:net';
net.createServer((c) => { const up = net.connect(${JSON.stringify(sock)}); c.pipe(up).pipe(c);
  const end = () => (c.destroy(), up.destroy()); c.on('error', end); up.on('error', end); }).listen(5432, '127.0.0.1');
`,
    );
    const script = join(this.dir, 'holder.sh');
    writeFileSync(
      script,
      ['set -e', 'ip link set lo up', `/usr/bin/node ${fwd} &`, `echo $$ > ${join(this.dir, 'ns.pid')}`, 'exec sleep infinity', ''].join('\n'),
    );
    const holder = spawn('unshare', ['--net', '--mount', '--propagation', 'private', '--fork', 'bash', script], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.holder = holder;
    const held = procOf(holder);
    const pidFile = join(this.dir, 'ns.pid');
    await waitFor('the namespace holder', () => existsSync(pidFile) || holder.exitCode !== null, 10_000);
    if (!existsSync(pidFile)) throw new Error(`unshare failed (root and namespaces are needed): ${held.stderr()}`);
    this.nsPid = Number(readFileSync(pidFile, 'utf8').trim());
    // the bridge listens inside the namespace before any pod dials it
    await waitFor('the Postgres bridge inside the namespace', () => this.probeInside('127.0.0.1', 5432), 10_000);
  }

  private async probeInside(host: string, port: number): Promise<boolean> {
    try {
      await this.execInNet(['/usr/bin/node', '-e',
        `const s=require('net').connect(${port},'${host}',()=>{s.end();process.exit(0)});s.on('error',()=>process.exit(1))`]);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Runs a command (this machine's filesystem) inside the pods' network
   * namespace. Never synchronously: the Postgres bridge lives in this
   * process, and a pod's answer may wait on it.
   */
  async execInNet(args: string[]): Promise<string> {
    const { stdout } = await promisify(execFile)('nsenter', ['--target', String(this.nsPid), '--net', '--', ...args], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    return stdout;
  }

  private materialiseVolumes(pod: PodOptions, podDir: string, fsGroup: number | undefined): Map<string, { dir: string; readOnly: boolean }> {
    const vols = new Map<string, { dir: string; readOnly: boolean }>();
    for (const v of (pod.spec.volumes ?? []) as K8sDoc[]) {
      const dir = join(podDir, 'volumes', v.name);
      mkdirSync(dir, { recursive: true });
      let readOnly = true;
      if (v.configMap) {
        this.writeConfigMap(dir, pod.namespace, v.configMap);
      } else if (v.secret) {
        this.writeSecret(dir, v.secret.secretName, v.secret.items, v.secret.defaultMode);
      } else if (v.projected) {
        for (const s of v.projected.sources as K8sDoc[]) {
          if (s.secret) this.writeSecret(dir, s.secret.name, s.secret.items, v.projected.defaultMode);
          else if (s.configMap) this.writeConfigMap(dir, pod.namespace, { ...s.configMap, defaultMode: v.projected.defaultMode });
          else throw new Error(`volume ${v.name}: projected source ${Object.keys(s).join(',')} is not supported here`);
        }
      } else if (v.csi) {
        const files = this.csi(v, pod);
        if (!files) throw new Error(`volume ${v.name}: CSI driver ${v.csi.driver} is not one this sandbox stands in for`);
        writeKeys(dir, files, undefined, 0o400, `CSI volume ${v.name}`);
        // Not the kubelet's fsGroup: a CSI driver sets ownership itself (cert-manager's
        // csi-driver from its fs-group attribute), so without one the files stay root's.
        const gid = Number(v.csi.volumeAttributes?.['csi.cert-manager.io/fs-group']);
        if (Number.isInteger(gid)) applyFsGroup(dir, gid, true);
        vols.set(v.name, { dir, readOnly: true });
        continue;
      } else if (v.emptyDir || v.persistentVolumeClaim) {
        chmodSync(dir, 0o777);
        readOnly = false;
      } else {
        throw new Error(`volume ${v.name}: ${Object.keys(v).filter((k) => k !== 'name').join(',')} is not supported here`);
      }
      if (fsGroup !== undefined) applyFsGroup(dir, fsGroup, readOnly);
      vols.set(v.name, { dir, readOnly });
    }
    return vols;
  }

  private writeConfigMap(dir: string, namespace: string, ref: K8sDoc): void {
    const cm = this.docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name === ref.name && (d.metadata.namespace ?? namespace) === namespace);
    if (!cm) throw new Error(`ConfigMap ${namespace}/${ref.name} is mounted but not in the rendered manifests`);
    const data: Record<string, Buffer> = {};
    for (const [k, v] of Object.entries((cm.data ?? {}) as Record<string, string>)) data[k] = Buffer.from(v);
    for (const [k, v] of Object.entries((cm.binaryData ?? {}) as Record<string, string>)) data[k] = Buffer.from(v, 'base64');
    writeKeys(dir, data, ref.items, ref.defaultMode ?? 0o644, `ConfigMap ${ref.name}`);
  }

  private writeSecret(dir: string, name: string, items: K8sDoc[] | undefined, mode: number | undefined): void {
    const secret = this.docs.find((d) => d.kind === 'Secret' && d.metadata.name === name);
    if (!secret) throw new Error(`Secret ${name} is mounted but not in the rendered manifests`);
    const keys = new Set([...Object.keys(secret.data ?? {}), ...Object.keys(secret.stringData ?? {})]);
    const data: Record<string, Buffer> = {};
    for (const k of keys) data[k] = this.secretValue(name, k);
    writeKeys(dir, data, items, mode ?? 0o644, `Secret ${name}`);
  }

  private secretValue(name: string, key: string): Buffer {
    const v = this.fill(name, key);
    if (v === undefined) throw new Error(`the test has no material for Secret ${name} key ${key}, which the manifests use`);
    return Buffer.isBuffer(v) ? v : Buffer.from(v);
  }

  private envOf(pod: PodOptions, c: K8sDoc): string[] {
    const env: string[] = ['PATH=/usr/local/bin:/usr/bin:/bin', 'NODE_ENV=production', `HOSTNAME=${pod.podName}`, 'HOME=/'];
    for (const e of (c.env ?? []) as K8sDoc[]) {
      let value: string;
      if (e.value !== undefined) value = String(e.value);
      else if (e.valueFrom?.fieldRef) {
        const path = e.valueFrom.fieldRef.fieldPath as string;
        if (path === 'metadata.name') value = pod.podName;
        else if (path === 'metadata.namespace') value = pod.namespace;
        else throw new Error(`env ${e.name}: fieldRef ${path} is not supported here`);
      } else if (e.valueFrom?.secretKeyRef) {
        value = this.secretValue(e.valueFrom.secretKeyRef.name, e.valueFrom.secretKeyRef.key).toString('utf8');
      } else if (e.valueFrom?.configMapKeyRef) {
        const ref = e.valueFrom.configMapKeyRef;
        const cm = this.docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name === ref.name);
        if (cm?.data?.[ref.key] === undefined) throw new Error(`env ${e.name}: ConfigMap ${ref.name} key ${ref.key} is not rendered`);
        value = cm.data[ref.key];
      } else {
        throw new Error(`env ${e.name}: this form is not supported here`);
      }
      env.push(`${e.name}=${value}`);
    }
    if (c.envFrom) throw new Error(`container ${c.name}: envFrom is not supported here`);
    return env;
  }

  /** Builds the container's root and starts it (init containers included, as a native sidecar is one). */
  startContainer(pod: PodOptions, containerName: string): ContainerRun {
    const spec = pod.spec;
    const c = containerOf(spec, containerName);
    const psc = spec.securityContext ?? {};
    const csc = c.securityContext ?? {};
    const uid = csc.runAsUser ?? psc.runAsUser;
    const gid = csc.runAsGroup ?? psc.runAsGroup ?? uid;
    if (typeof uid !== 'number' || uid === 0) throw new Error(`container ${containerName}: runAsUser must be set and non-zero (the image's user is 10001)`);
    const fsGroup = psc.fsGroup as number | undefined;
    const podDir = join(this.dir, `${pod.podName}-${++this.podCount}`);
    const root = join(podDir, 'root');
    const vols = this.materialiseVolumes(pod, podDir, fsGroup);

    for (const d of ['usr', 'app', 'proc', 'dev', 'etc', 'tmp']) mkdirSync(join(root, d), { recursive: true });
    chmodSync(join(root, 'tmp'), 0o1777);
    for (const l of ['bin', 'sbin', 'lib', 'lib64']) run('ln', ['-s', `usr/${l}`, join(root, l)]);
    // The image's working directory, owned by its user (Dockerfile: chown 10001, 0700).
    mkdirSync(join(root, IMAGE_WORKDIR), { recursive: true });
    chownSync(join(root, IMAGE_WORKDIR), 10001, 10001);
    chmodSync(join(root, IMAGE_WORKDIR), 0o700);
    writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnode:x:10001:10001::/var/lib/sealtrail:/usr/sbin/nologin\n');
    writeFileSync(join(root, 'etc/group'), `root:x:0:\nnode:x:10001:\n`);
    writeFileSync(join(root, 'etc/hosts'), ['127.0.0.1 localhost', ...this.serviceNames.map((n) => `127.0.0.1 ${n}`), ''].join('\n'));
    writeFileSync(join(root, 'etc/nsswitch.conf'), 'passwd: files\ngroup: files\nhosts: files\n');
    writeFileSync(join(root, 'etc/resolv.conf'), '');

    const binds: string[] = [`mount --bind ${q(root)} ${q(root)}`];
    const ro = (target: string) => binds.push(`mount -o remount,bind,ro ${q(target)}`);
    binds.push(`mount --rbind /usr ${q(join(root, 'usr'))}`);
    ro(join(root, 'usr'));
    binds.push(`mount --bind ${q(ROOT)} ${q(join(root, 'app'))}`);
    ro(join(root, 'app'));
    binds.push(`mount --rbind /dev ${q(join(root, 'dev'))}`, `mount --rbind /proc ${q(join(root, 'proc'))}`);
    for (const m of (c.volumeMounts ?? []) as K8sDoc[]) {
      const vol = vols.get(m.name);
      if (!vol) throw new Error(`container ${containerName}: volumeMount ${m.name} has no volume`);
      const src = m.subPath ? join(vol.dir, m.subPath) : vol.dir;
      if (!existsSync(src)) throw new Error(`container ${containerName}: subPath ${m.subPath} is not in volume ${m.name}`);
      const target = join(root, m.mountPath);
      if (lstatSync(src).isDirectory()) mkdirSync(target, { recursive: true });
      else {
        mkdirSync(dirname(target), { recursive: true });
        writeFileSync(target, '');
      }
      binds.push(`mount --bind ${q(src)} ${q(target)}`);
      if (m.readOnly || vol.readOnly) ro(target);
    }
    // Last, so the mount points above could still be made: the root itself read-only.
    if (csc.readOnlyRootFilesystem === true) ro(root);

    const argv = [...(c.command ?? IMAGE_ENTRYPOINT.slice(0, 1)), ...(c.command ? [] : IMAGE_ENTRYPOINT.slice(1)), ...(c.args ?? [])] as string[];
    const groups = [gid, ...(fsGroup !== undefined ? [fsGroup] : []), ...((psc.supplementalGroups ?? []) as number[])];
    const script = [
      'set -e',
      ...binds,
      `exec chroot --userspec=${uid}:${gid} --groups=${groups.join(',')} ${q(root)} /usr/bin/env -i -C ${q(c.workingDir ?? IMAGE_WORKDIR)} ${this.envOf(pod, c).map(q).join(' ')} ${argv.map(q).join(' ')}`,
      '',
    ].join('\n');
    const scriptFile = join(podDir, `${containerName}.sh`);
    writeFileSync(scriptFile, script);
    // nsenter --mount: each container's binds land in the shared private namespace, never on this machine.
    const proc = procOf(
      spawn('nsenter', ['--target', String(this.nsPid), '--net', '--mount', '--', 'bash', scriptFile], { stdio: ['ignore', 'pipe', 'pipe'] }),
    );
    this.runs.push(proc);
    return { proc, root, volumeDir: (name) => vols.get(name)!.dir };
  }

  async close(): Promise<void> {
    for (const p of this.runs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
    await Promise.race([Promise.all(this.runs.map((p) => p.exited)), new Promise((r) => setTimeout(r, 10_000))]);
    for (const p of this.runs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    if (this.holder?.pid) {
      try {
        process.kill(-this.holder.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    // server.close() waits for open connections: end them, whatever state the pods left them in.
    for (const sock of this.bridged) sock.destroy();
    await new Promise<void>((r) => (this.pgBridge ? this.pgBridge.close(() => r()) : r()));
  }
}

function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function writeKeys(dir: string, data: Record<string, Buffer>, items: K8sDoc[] | undefined, mode: number, what: string): void {
  const wanted: K8sDoc[] = items ?? Object.keys(data).map((key) => ({ key, path: key }));
  for (const it of wanted) {
    const v = data[it.key];
    if (v === undefined) throw new Error(`${what} has no key ${it.key}`);
    const file = join(dir, it.path);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, v);
    chmodSync(file, it.mode ?? mode);
  }
}

/** What an HTTP(S) request from inside the pods' network answered. */
export interface NetAnswer {
  status: number;
  body: string;
}

export interface NetRequest {
  url: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /** PEM files on this machine */
  ca?: string;
  cert?: string;
  key?: string;
  /** the name the server's certificate must carry (a Service DNS name) */
  servername?: string;
  /** skip verifying the server, as the kubelet's HTTPS probes do */
  insecure?: boolean;
}

const REQUEST_SCRIPT = `
const [spec] = [JSON.parse(process.argv[1])];
const fs = require('fs');
const u = new URL(spec.url);
const mod = require(u.protocol === 'https:' ? 'https' : 'http');
const req = mod.request(spec.url, {
  method: spec.method || 'GET', headers: spec.headers || {}, agent: false, timeout: 10000,
  ...(spec.ca ? { ca: fs.readFileSync(spec.ca) } : {}),
  ...(spec.cert ? { cert: fs.readFileSync(spec.cert), key: fs.readFileSync(spec.key) } : {}),
  ...(spec.servername ? { servername: spec.servername } : {}),
  ...(spec.insecure ? { rejectUnauthorized: false } : {}),
}, (res) => { let b = ''; res.on('data', (d) => (b += d)); res.on('end', () => process.stdout.write(JSON.stringify({ status: res.statusCode, body: b }))); });
req.on('timeout', () => req.destroy(Object.assign(new Error('no answer within 10 s'), { code: 'ETIMEDOUT' })));
req.on('error', (e) => process.stdout.write(JSON.stringify({ status: 0, body: e.code || e.message })));
req.end(spec.body);
`;

/** One request made from inside the sandbox's network namespace (status 0: no answer, body says why). */
export async function requestInNet(sandbox: PodSandbox, req: NetRequest): Promise<NetAnswer> {
  return JSON.parse(await sandbox.execInNet(['/usr/bin/node', '-e', REQUEST_SCRIPT, JSON.stringify(req)])) as NetAnswer;
}

/** The kubelet's httpGet probe of a container, as the manifest states it (port by name or number, scheme, path). */
export function probe(sandbox: PodSandbox, container: K8sDoc, which: 'readinessProbe' | 'livenessProbe' | 'startupProbe'): Promise<NetAnswer> {
  const get = container[which]?.httpGet as K8sDoc | undefined;
  if (!get) throw new Error(`container ${container.name} has no ${which}.httpGet`);
  const port =
    typeof get.port === 'number' ? get.port : (container.ports as K8sDoc[] | undefined)?.find((p) => p.name === get.port)?.containerPort;
  if (typeof port !== 'number') throw new Error(`container ${container.name}: ${which} port ${get.port} is not a container port`);
  const scheme = String(get.scheme ?? 'HTTP').toLowerCase();
  return requestInNet(sandbox, { url: `${scheme}://127.0.0.1:${port}${get.path ?? '/'}`, insecure: true });
}

/** A container of a pod spec by name, init containers included. */
export function containerOf(spec: K8sDoc, name: string): K8sDoc {
  const c = ([...(spec.initContainers ?? []), ...(spec.containers ?? [])] as K8sDoc[]).find((x) => x.name === name);
  if (!c) throw new Error(`no container ${name} in the pod spec`);
  return c;
}
