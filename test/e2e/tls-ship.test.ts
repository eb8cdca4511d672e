import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeTestPki, POD_A, type TestPki } from '../helpers/certs.js';
import { makeDeployment, stop, type Deployment } from '../helpers/deployment.js';
import { ROOT, spawnCli, waitFor, type Proc } from '../helpers/procs.js';
import { tlsRequest } from '../helpers/tls-requests.js';
import { createHash } from 'node:crypto';

/**
 * A record shipped between real processes over HTTPS: a collector started
 * from its config with collector.tls and collector.ship_identities, a
 * sidecar with an https:// ship.url, authenticated by a ship token or by
 * its client certificate (mTLS), and the record read back over HTTPS.
 */

const SHIP_TOKEN = 'e2e-ship-token-0123456789abcdef';

const procs: Proc[] = [];
afterEach(async () => {
  for (const p of procs.splice(0)) await stop(p, 'SIGKILL');
});

function configure(d: Deployment, pki: TestPki, mode: 'token' | 'mtls'): string {
  const port = new URL(d.collectorUrl).port;
  let text = readFileSync(d.config, 'utf8');
  const clientCa = mode === 'mtls' ? `, client_ca_file: ${pki.ca.cert}` : '';
  const identity = mode === 'mtls' ? `san_uri: "${POD_A}"` : `token_sha256: "${createHash('sha256').update(SHIP_TOKEN).digest('hex')}"`;
  text = text.replace(
    `  listen: 127.0.0.1:${port}\n`,
    `  listen: 127.0.0.1:${port}\n  tls: { cert_file: ${pki.server.cert}, key_file: ${pki.server.key}${clientCa} }\n  ship_identities: [{ id: e2e-pod, ${identity}, streams: ["e2e-*"] }]\n`,
  );
  const shipAuth = mode === 'mtls' ? `tls: { ca_file: ${pki.ca.cert}, cert_file: ${pki.podA.cert}, key_file: ${pki.podA.key} }` : `token: ${SHIP_TOKEN}`;
  text = text.replace(`ship: { url: "http://127.0.0.1:${port}",`, `ship: { url: "https://127.0.0.1:${port}", ${shipAuth},`);
  writeFileSync(d.config, text);
  return `https://127.0.0.1:${port}`;
}

async function shipOneRecord(mode: 'token' | 'mtls'): Promise<void> {
  const d = await makeDeployment();
  const pki = makeTestPki(join(d.dir, 'pki'));
  const url = configure(d, pki, mode);
  const admin = { ca: pki.ca.cert, ...(mode === 'mtls' ? { cert: pki.podA.cert, key: pki.podA.key } : {}) };
  const collector = spawnCli(['collector', '--config', d.config]);
  procs.push(collector);
  await waitFor('collector over https', async () => {
    if (collector.child.exitCode !== null) throw new Error(`collector exited: ${collector.stderr()}`);
    return (await tlsRequest(`${url}/healthz`, admin)).status === 200;
  }, 30_000);
  // With a token only, the sidecar trusts the test CA the way any Node process can be told to.
  const sidecar = spawnCli(['sidecar', '--config', d.config], mode === 'token' ? { env: { NODE_EXTRA_CA_CERTS: pki.ca.cert } } : {});
  procs.push(sidecar);
  appendFileSync(join(d.traces, 'agent.jsonl'), `${JSON.stringify({ event_type: 'tool_invoked', actor: { id: 'u1', type: 'user' }, tool: { name: 'tls-e2e' } })}\n`);
  const items = await waitFor('the record over https', async () => {
    if (sidecar.child.exitCode !== null) throw new Error(`sidecar exited: ${sidecar.stderr()}`);
    const res = await tlsRequest(`${url}/v1/audit?tool=tls-e2e&limit=10`, admin, { headers: { authorization: `Bearer ${d.token}` } });
    const body = JSON.parse(res.body) as { items?: { stream: string }[] };
    return body.items?.length ? body.items : undefined;
  }, 30_000).catch((err: Error) => {
    throw new Error(`${err.message}\nsidecar: ${sidecar.stderr().slice(-1500)}\ncollector: ${collector.stderr().slice(-1500)}`);
  });
  expect(items.map((i) => i.stream)).toEqual([expect.stringMatching(/^e2e-/)]);
}

describe('sidecar to collector over TLS, real processes', () => {
  it('HTTPS with a ship token mapped to the stream by collector.ship_identities', async () => {
    await shipOneRecord('token');
  });

  it('mTLS: the sidecar\'s client certificate (SAN URI) mapped to the stream', async () => {
    await shipOneRecord('mtls');
  });
});
