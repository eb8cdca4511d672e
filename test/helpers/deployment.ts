import {
  getJson,
  makeDeployment as makeBenchDeployment,
  type Deployment as BenchDeployment,
  type DeploymentOptions as BenchDeploymentOptions,
} from '../harness/deployment.js';
import { spawnCli, stop, waitFor, type Proc } from './procs.js';

export { getJson };

/** A collector and a sidecar as separate processes, with keys and a config file in a temp dir. */
export type Deployment = BenchDeployment;

/** What an e2e test may set; the stream name, token and read-audit stream are the e2e ones. */
export type DeploymentOptions = Omit<BenchDeploymentOptions, 'name' | 'collectorStream' | 'token'>;

/** The collector's own read-audit stream in a deployment (docs/read-audit.md). */
export const COLLECTOR_STREAM = 'collector-e2e';

/** Items of /v1/audit that a sidecar wrote (not the collector's records of reads). */
export function sidecarItems<T extends { stream: string }>(items: T[]): T[] {
  return items.filter((i) => i.stream !== COLLECTOR_STREAM);
}

export async function makeDeployment(opts: DeploymentOptions = {}): Promise<Deployment> {
  return makeBenchDeployment({
    prefix: 'sealtrail-e2e-',
    ...opts,
    name: 'e2e',
    collectorStream: COLLECTOR_STREAM,
    token: 'e2e-admin-token-0123456789abcdef',
  });
}

export async function startCollectorProc(d: Deployment, env: NodeJS.ProcessEnv = {}): Promise<Proc> {
  const p = spawnCli(['collector', '--config', d.config], { env });
  await waitFor('collector /healthz', async () => {
    if (p.child.exitCode !== null) throw new Error(`collector exited: ${p.stderr()}`);
    return (await getJson(`${d.collectorUrl}/healthz`)).status === 200;
  }, 30_000);
  return p;
}

export async function startSidecarProc(d: Deployment, waitReady = true, env: NodeJS.ProcessEnv = {}): Promise<Proc> {
  const p = spawnCli(['sidecar', '--config', d.config], { env });
  if (waitReady) {
    await waitFor('sidecar /readyz', async () => {
      if (p.child.exitCode !== null) throw new Error(`sidecar exited: ${p.stderr()}`);
      return (await getJson(`${d.telemetryUrl}/readyz`)).status === 200;
    }, 30_000);
  }
  return p;
}

/** Every record of every stream, paging /v1/audit with the cursor. */
export async function queryAll(d: Deployment, params = ''): Promise<any[]> {
  const items: any[] = [];
  let cursor: string | null = null;
  do {
    const q: string = `${d.collectorUrl}/v1/audit?limit=1000${params}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const { status, body } = await getJson(q, d.token);
    if (status !== 200) throw new Error(`GET /v1/audit: ${status} ${JSON.stringify(body)}`);
    items.push(...sidecarItems(body.items as Array<{ stream: string }>));
    cursor = body.next_cursor;
  } while (cursor);
  return items;
}

export async function treeSize(d: Deployment): Promise<number> {
  const { body } = await getJson(`${d.collectorUrl}/v1/streams`, d.token);
  // Sidecar records only: the collector's read-audit stream grows with every read, this one included.
  return sidecarItems(body.streams as Array<{ stream: string; tree_size: number }>).reduce((n, s) => n + s.tree_size, 0);
}

export { stop };
