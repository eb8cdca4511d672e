import { randomBytes } from 'node:crypto';
import { appendFileSync, chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issue, makeCa, type Authority, type Issued } from '../helpers/certs.js';
import {
  containerOf,
  findDoc,
  kustomize,
  PodSandbox,
  probe,
  requestInNet,
  type ContainerRun,
  type K8sDoc,
  type PodOptions,
} from '../helpers/k8s-pod.js';
import { startPostgresTlsServer, type PostgresTlsServer } from '../helpers/postgres-tls-server.js';
import { ROOT, runCli, waitFor } from '../helpers/procs.js';

/**
 * The example overlay, run as the manifests say: `kubectl kustomize`
 * renders it; the migrate Job, the collector and the agent's native sidecar
 * start with the rendered args, env and mounted files, as user 10001 with
 * fsGroup 10001 on a read-only root (test/helpers/k8s-pod.ts). The Secrets
 * hold real material made here (keygen, an X.509 CA); Postgres is a private
 * server speaking TLS, reached with the Secret template's URL form
 * (sslmode=verify-full, the CA mounted from the Secret); cert-manager's
 * csi-driver is stood in for by issuing each pod its own certificate from
 * the volume's SAN templates. A line the agent writes comes back from the
 * collector's query API redacted, shipped over mTLS under that pod's
 * identity; a sidecar holding one replica's certificate is refused the
 * stream of another replica of the same Deployment; without fsGroup the
 * 0400 keys are unreadable and the sidecar says so.
 */

const OVERLAY = join(ROOT, 'deploy', 'kubernetes', 'overlays', 'example');
const SECRET_TEMPLATES = join(ROOT, 'deploy', 'kubernetes', 'secret-templates');
const COLLECTOR_HOST = 'sealtrail-collector.sealtrail.svc';
const PG_HOST = 'postgres.sealtrail.svc';
// Pod names as a ReplicaSet / Job controller makes them.
const COLLECTOR_POD = 'sealtrail-collector-5d8f7c9b6-q7x2m';
const AGENT_POD = 'claims-agent-7d9c5b6f4-x2x9q';
// Another replica of the same Deployment: same signing key, same collector rules, its own certificate.
const OTHER_POD = 'claims-agent-7d9c5b6f4-aaaaa';

let dir: string;
let docs: K8sDoc[];
let pgServer: PostgresTlsServer;
const PG_DB = 'sealtrail';
const PG_OWNER = 'sealtrail_owner';
const PG_APP = 'sealtrail_app';
const PG_PASSWORD = randomBytes(12).toString('hex');
let sandbox: PodSandbox;
let ca: Authority;
let auditor: Issued;
const adminToken = randomBytes(24).toString('hex');

/** The rendered pod template of a workload, by kind and name prefix (a Job's name may carry a suffix). */
function podSpec(kind: string, name: string): { spec: K8sDoc; namespace: string } {
  const d = docs.find((x) => x.kind === kind && (x.metadata.name === name || String(x.metadata.name).startsWith(`${name}-`)));
  if (!d) throw new Error(`the example overlay renders no ${kind} ${name}`);
  return { spec: d.spec.template.spec, namespace: d.metadata.namespace };
}

/**
 * Starts a workload's container and waits until its readinessProbe, as the
 * manifest states it, passes. `mutate` changes a copy of the pod spec first.
 */
async function startReady(
  kind: string,
  name: string,
  container: string,
  podName: string,
  mutate: (spec: K8sDoc) => void = () => {},
): Promise<ContainerRun> {
  const pod = podSpec(kind, name);
  const spec = structuredClone(pod.spec);
  mutate(spec);
  const run = sandbox.startContainer({ podName, namespace: pod.namespace, spec }, container);
  const c = containerOf(pod.spec, container);
  await waitFor(
    `the ${container} readiness probe`,
    async () => run.proc.child.exitCode === null && (await probe(sandbox, c, 'readinessProbe')).status === 200,
    30_000,
    250,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n${run.proc.stderr()}\n${run.proc.stdout().slice(-4000)}`);
  });
  return run;
}

async function collectorApi(path: string): Promise<{ status: number; body: any }> {
  const r = await requestInNet(sandbox, {
    url: `https://127.0.0.1:7470${path}`,
    servername: COLLECTOR_HOST,
    ca: ca.cert,
    cert: auditor.cert,
    key: auditor.key,
    headers: { authorization: `Bearer ${adminToken}` },
  });
  return { status: r.status, body: r.status === 0 ? r.body : JSON.parse(r.body) };
}

let issued = 0;
/** cert-manager's csi-driver, as far as these pods use it: a certificate per pod, its SAN templates expanded for that pod. */
function csiDriver(volume: K8sDoc, pod: PodOptions): Record<string, Buffer> | undefined {
  if (volume.csi.driver !== 'csi.cert-manager.io') return undefined;
  const attrs = (volume.csi.volumeAttributes ?? {}) as Record<string, string>;
  const expand = (t: string) =>
    t
      .replaceAll('${POD_NAME}', pod.podName)
      .replaceAll('${POD_NAMESPACE}', pod.namespace)
      .replaceAll('${SERVICE_ACCOUNT_NAME}', pod.spec.serviceAccountName ?? 'default');
  const list = (key: string) => (attrs[key] ?? '').split(',').map((x) => x.trim()).filter(Boolean).map(expand);
  const san = [...list('csi.cert-manager.io/uri-sans').map((u) => `URI:${u}`), ...list('csi.cert-manager.io/dns-names').map((d) => `DNS:${d}`)];
  if (san.length === 0) throw new Error(`volume ${volume.name}: no uri-sans or dns-names to issue a certificate for`);
  const usages = attrs['csi.cert-manager.io/key-usages'] ?? '';
  const leaf = issue(ca, `csi-${++issued}`, {
    san,
    usage: usages.includes('server auth') ? ['clientAuth', 'serverAuth'] : ['clientAuth'],
    outDir: join(dir, 'csi'),
  });
  return { 'tls.crt': readFileSync(leaf.cert), 'tls.key': readFileSync(leaf.key), 'ca.crt': readFileSync(ca.cert) };
}

beforeAll(async () => {
  dir = mkdtempSync('/tmp/sealtrail-k8s-');
  // The workloads, and the Secrets they need as the templates shape them (filled with `material` below).
  docs = [...kustomize(OVERLAY), ...kustomize(SECRET_TEMPLATES)];

  const keys = join(dir, 'keys');
  for (const name of ['agents', 'collector']) {
    const out = join(keys, name);
    const r = await runCli(['keygen', '--name', name, '--hmac', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
  }
  const pem = join(dir, 'pki');
  mkdirSync(pem);
  ca = makeCa(pem, 'cluster-ca');
  const server = issue(ca, 'collector', { san: [`DNS:${COLLECTOR_HOST}`, `DNS:${COLLECTOR_HOST}.cluster.local`], usage: ['serverAuth'] });
  auditor = issue(ca, 'auditor', { san: ['URI:spiffe://cluster.local/ns/audit/sa/auditor'], usage: ['clientAuth'] });
  // The test reads these as root; the pods get their own copies through the Secrets.
  for (const f of [auditor.key]) chmodSync(f, 0o600);

  // Postgres as docs/postgres.md sets it up, speaking TLS with a certificate for the name the pods use.
  const pgCert = issue(ca, 'postgres', { san: [`DNS:${PG_HOST}`], usage: ['serverAuth'] });
  pgServer = await startPostgresTlsServer({ cert: pgCert.cert, key: pgCert.key });
  const admin = await pgServer.admin();
  try {
    await admin.query(`CREATE ROLE ${PG_OWNER} LOGIN PASSWORD '${PG_PASSWORD}'`);
    await admin.query(`CREATE ROLE ${PG_APP} LOGIN PASSWORD '${PG_PASSWORD}'`);
    await admin.query(`CREATE DATABASE ${PG_DB} OWNER ${PG_OWNER}`);
    await admin.query(`REVOKE ALL ON DATABASE ${PG_DB} FROM PUBLIC`);
    await admin.query(`GRANT CONNECT ON DATABASE ${PG_DB} TO ${PG_APP}`);
  } finally {
    await admin.end();
  }
  // The Secret template's URL form (verify-full against the mounted CA), filled in.
  const pgUrl = (role: string) =>
    `postgres://${role}:${PG_PASSWORD}@${PG_HOST}:5432/${PG_DB}?sslmode=verify-full&sslrootcert=/etc/sealtrail/pg/ca.crt`;
  const file = (...p: string[]) => readFileSync(join(...p));
  const material: Record<string, Record<string, Buffer | string>> = {
    'sealtrail-sidecar-keys': { 'agents.skey': file(keys, 'agents', 'agents.skey'), 'hmac.key': file(keys, 'agents', 'hmac.key') },
    'sealtrail-admin-token': { token: adminToken },
    'sealtrail-chain-hmac': { 'hmac.key': file(keys, 'agents', 'hmac.key') },
    'sealtrail-collector-keys': { 'collector.skey': file(keys, 'collector', 'collector.skey'), 'hmac.key': file(keys, 'collector', 'hmac.key') },
    'sealtrail-collector-tls': { 'ca.crt': file(ca.cert), 'tls.crt': file(server.cert), 'tls.key': file(server.key) },
    'sealtrail-verifier-keys': { 'agents.vkey': file(keys, 'agents', 'agents.vkey') },
    'sealtrail-postgres': { 'app-url': pgUrl(PG_APP), 'owner-url': pgUrl(PG_OWNER), 'ca.crt': file(ca.cert) },
  };
  sandbox = new PodSandbox({
    dir: join(dir, 'pods'),
    serviceNames: [COLLECTOR_HOST, `${COLLECTOR_HOST}.cluster.local`, PG_HOST],
    docs,
    secrets: (s, k) => material[s]?.[k],
    csi: csiDriver,
    postgresPort: pgServer.port,
  });
  await sandbox.start();
});

afterAll(async () => {
  await sandbox?.close();
  pgServer?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('deploy/kubernetes/overlays/example, run as rendered', () => {
  let collector: ContainerRun;
  let sidecar: ContainerRun;

  it('the migrate Job applies the schema as the owner role and exits 0', async () => {
    const job = podSpec('Job', 'sealtrail-migrate');
    const run = sandbox.startContainer({ podName: 'sealtrail-migrate-8xk2p', ...job }, 'migrate');
    const { code } = await run.proc.exited;
    expect(code, `${run.proc.stdout()}\n${run.proc.stderr()}`).toBe(0);
    const c = await pgServer.admin(PG_DB);
    try {
      const { rows } = await c.query<{ owner: string }>(
        "SELECT tableowner AS owner FROM pg_tables WHERE schemaname = 'sealtrail' AND tablename = 'records'",
      );
      expect(rows).toEqual([{ owner: PG_OWNER }]);
    } finally {
      await c.end();
    }
  });

  it('the collector starts as the Deployment says, as the app role, and its readiness probe passes', async () => {
    collector = await startReady('Deployment', 'sealtrail-collector', 'collector', COLLECTOR_POD);
    const c = containerOf(podSpec('Deployment', 'sealtrail-collector').spec, 'collector');
    expect((await probe(sandbox, c, 'livenessProbe')).status).toBe(200);
    // mTLS: the API wants a client certificate, the probes do not.
    const bare = await requestInNet(sandbox, { url: 'https://127.0.0.1:7470/v1/streams', servername: COLLECTOR_HOST, ca: ca.cert });
    expect(bare.status).toBe(403);
    expect(JSON.parse(bare.body).error.code).toBe('client_certificate_refused');
    const app = await pgServer.admin(PG_DB);
    try {
      // Its connections: the app role only, every one over TLS.
      const { rows } = await app.query<{ usename: string; ssl: boolean }>(
        'SELECT a.usename, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s ON s.pid = a.pid WHERE a.datname = $1 AND a.pid <> pg_backend_pid()',
        [PG_DB],
      );
      expect(rows.map((r) => r.usename)).toContain(PG_APP);
      expect(rows.map((r) => r.usename)).not.toContain(PG_OWNER);
      expect(rows.every((r) => r.ssl)).toBe(true);
    } finally {
      await app.end();
    }
  });

  it("the agent's native sidecar ships what the agent writes, redacted, over mTLS", async () => {
    sidecar = await startReady('Deployment', 'claims-agent', 'sealtrail', AGENT_POD);
    const pod = podSpec('Deployment', 'claims-agent');

    // The agent container writes its trace file into the shared volume, as its own user.
    const agent = containerOf(pod.spec, 'agent');
    const traces = (agent.volumeMounts as K8sDoc[]).find((m) => m.mountPath === '/var/log/agent')!;
    const traceDir = sidecar.volumeDir(traces.name);
    const trace = join(traceDir, 'agent.jsonl');
    appendFileSync(
      trace,
      `${JSON.stringify({ event_type: 'tool_invoked', actor: { id: 'u-17', type: 'user' }, tool: { name: 'lookup', arguments: { q: 'claim of jane.roe@example.com' } } })}\n`,
    );
    chownSync(trace, 10001, 10001);

    const items = await waitFor(
      'the record at the collector',
      async () => {
        const r = await collectorApi('/v1/audit?event_type=tool_invoked');
        return r.status === 200 && r.body.items?.length === 1 ? r.body.items : undefined;
      },
      45_000,
      500,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\nsidecar:\n${sidecar.proc.stdout().slice(-3000)}\ncollector:\n${collector.proc.stdout().slice(-3000)}`);
    });
    expect(items[0].record.tool.arguments.q).toBe('claim of [REDACTED:email]');
    // The stream is the pod's name and the buffer's creation time (a new buffer is a new stream).
    expect(items[0].stream).toMatch(new RegExp(`^${AGENT_POD}-\\d{8}T\\d{6}Z$`));
    expect(JSON.stringify(items)).not.toContain('jane.roe@example.com');
  });

  it('drains and exits 0 on SIGTERM, as on pod deletion', async () => {
    sidecar.proc.child.kill('SIGTERM');
    const { code } = await sidecar.proc.exited;
    expect(code, sidecar.proc.stdout().slice(-3000)).toBe(0);
  });

  it("refuses a sidecar holding one replica's certificate when it posts another replica's stream", async () => {
    const pod = podSpec('Deployment', 'claims-agent');
    // Pod OTHER_POD, but with the certificate the csi-driver issued to AGENT_POD.
    const other = await startReady('Deployment', 'claims-agent', 'sealtrail', OTHER_POD, (spec) => {
      for (const v of spec.volumes as K8sDoc[]) {
        const attrs = v.csi?.volumeAttributes as Record<string, string> | undefined;
        if (attrs?.['csi.cert-manager.io/uri-sans']) attrs['csi.cert-manager.io/uri-sans'] = attrs['csi.cert-manager.io/uri-sans'].replaceAll('${POD_NAME}', AGENT_POD);
      }
    });
    try {
      const agent = containerOf(pod.spec, 'agent');
      const traces = (agent.volumeMounts as K8sDoc[]).find((m) => m.mountPath === '/var/log/agent')!;
      appendFileSync(join(other.volumeDir(traces.name), 'agent.jsonl'), `${JSON.stringify({ event_type: 'tool_invoked', tool: { name: 'pay' } })}\n`);
      // Its first sealed batch is refused: the metrics name the reason.
      const halted = await waitFor(
        'the refusal',
        async () => {
          const m = (await requestInNet(sandbox, { url: 'http://127.0.0.1:9470/metrics' })).body;
          return /sealtrail_shipping_halt_info\{[^}]*stream_forbidden[^}]*\} 1/.test(m) ? m : undefined;
        },
        30_000,
        500,
      ).catch((err: Error) => {
        throw new Error(`${err.message}\n${other.proc.stdout().slice(-3000)}`);
      });
      expect(halted).toContain('sealtrail_shipping_halted 1');
      const streams = await collectorApi('/v1/streams');
      expect(streams.status).toBe(200);
      expect(JSON.stringify(streams.body)).not.toContain(OTHER_POD);
    } finally {
      // SIGTERM would wait out SEALTRAIL_DRAIN_SECONDS trying to ship what the collector refuses.
      other.proc.child.kill('SIGKILL');
      await other.proc.exited;
    }
  });

  it('without fsGroup the keys mounted 0400 are unreadable, and the sidecar stops naming the file', async () => {
    const pod = podSpec('Deployment', 'claims-agent');
    const spec = structuredClone(pod.spec);
    delete spec.securityContext.fsGroup;
    const run = sandbox.startContainer({ podName: AGENT_POD, namespace: pod.namespace, spec }, 'sealtrail');
    const { code } = await run.proc.exited;
    expect(code).not.toBe(0);
    const out = run.proc.stdout() + run.proc.stderr();
    expect(out).toContain('key_file_permission_denied');
    expect(out).toContain('/etc/sealtrail/keys/');
    expect(out).not.toMatch(/\n\s+at .+\(.+:\d+:\d+\)/);
  });
});
