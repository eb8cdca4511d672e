import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair } from '../../src/core/note.js';
import { BatchBuilder } from '../helpers/collector-batches.js';
import { ADMIN_TOKEN, getJson, postJson, type JsonResponse } from '../helpers/collector-server.js';
import { createTestDatabase, type TestDatabase, postgresCollectorYaml } from '../helpers/postgres.js';
import { freePort, runCli, spawnCli, stop, waitFor, type Proc } from '../helpers/procs.js';

/**
 * Two collector processes (the built CLI) on one Postgres database with read
 * auditing ON, configured as a Deployment's pods would be: one ConfigMap
 * (identical YAML but for the port), one Secret (the same collector signing
 * and HMAC keys), and the pod name from the downward API in POD_NAME. The
 * read-audit stream id is not configured, so each replica takes the default
 * collector-<POD_NAME>. Concurrent reads hit both; afterwards each replica's
 * stream holds exactly one record per read it answered, no record of the
 * other's, numbered without a gap, and verifies from the outside
 * (`sealtrail verify --url`) and server-side (GET /v1/verify).
 *
 * The second describe runs two replicas WITHOUT distinct pod names (two
 * processes on one host, no POD_NAME): the default then gives both the same
 * stream id, collector-<hostname>; with the same keys that one shared stream
 * must still hold exactly one record per answered read, be unbroken and
 * verify (docs/read-audit.md), and every read must still be answered.
 */

const HMAC_KEY = Buffer.alloc(32, 7);
const COLLECTOR_HMAC = Buffer.alloc(32, 13);
const READER_TOKEN = 'reader-token-acme-replicas-0123456789';
const PODS = ['sealtrail-collector-6f7c9-abcde', 'sealtrail-collector-6f7c9-fghij'];
const READS_PER_REPLICA = 60;

interface Collector {
  proc: Proc;
  url: string;
}

interface Deployment {
  db: TestDatabase;
  dir: string;
  files: { sidecarVkey: string; hmac: string; collectorSkey: string; collectorVkey: string; collectorHmac: string };
  sidecar: BatchBuilder;
  collectors: Collector[];
}

async function deploy(podNames: (string | undefined)[], prefix: string): Promise<Deployment> {
  const db = await createTestDatabase();
  const dir = mkdtempSync(join(tmpdir(), `sealtrail-${prefix}-`));
  const sidecarKeys = generateKeyPair('replicas-sidecar');
  const collectorKeys = generateKeyPair('sealtrail-collector');
  const files = {
    sidecarVkey: join(dir, 'sidecar.vkey'),
    hmac: join(dir, 'hmac.key'),
    collectorSkey: join(dir, 'collector.skey'),
    collectorVkey: join(dir, 'collector.vkey'),
    collectorHmac: join(dir, 'collector.hmac'),
  };
  writeFileSync(files.sidecarVkey, `${sidecarKeys.vkey}\n`);
  writeFileSync(files.hmac, `${HMAC_KEY.toString('hex')}\n`, { mode: 0o600 });
  writeFileSync(files.collectorSkey, `${collectorKeys.skey}\n`, { mode: 0o600 });
  writeFileSync(files.collectorVkey, `${collectorKeys.vkey}\n`);
  writeFileSync(files.collectorHmac, `${COLLECTOR_HMAC.toString('hex')}\n`, { mode: 0o600 });
  const readerSha = createHash('sha256').update(READER_TOKEN).digest('hex');

  const start = async (i: number): Promise<Collector> => {
    const port = await freePort();
    const config = join(dir, `collector-${i}.yaml`);
    writeFileSync(
      config,
      `${postgresCollectorYaml(db, port)}  auth:
    admin_tokens: ["${ADMIN_TOKEN}"]
    tokens: [{ id: acme-reader, sha256: "${readerSha}", role: reader, tenant: acme }]
    rate_limit:
      admin: { requests_per_second: 5000, burst: 5000 }
      reader: { requests_per_second: 5000, burst: 5000 }
  streams: [{ match: "rep-*", vkey_file: ${files.sidecarVkey} }]
  hmac_keys: [{ id: k1, file: ${files.hmac} }]
  keys:
    signing_key_file: ${files.collectorSkey}
    hmac_key_file: ${files.collectorHmac}
    hmac_key_id: collector
  # read_audit is left at its defaults: enabled, stream collector-<POD_NAME or hostname>
`,
    );
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.POD_NAME;
    if (podNames[i] !== undefined) env.POD_NAME = podNames[i];
    const proc = spawnCli(['collector', '--config', config], { env });
    return { proc, url: `http://127.0.0.1:${port}` };
  };
  const collectors = await Promise.all(podNames.map((_, i) => start(i)));
  for (const c of collectors) {
    await waitFor('collector /healthz', async () => {
      if (c.proc.child.exitCode !== null) throw new Error(`collector exited: ${c.proc.stderr()}`);
      return (await getJson(c.url, '/healthz', null)).status === 200;
    });
  }

  // Some agent data to read: 20 records, half of tenant acme.
  const sidecar = new BatchBuilder({ stream: 'rep-agents', skey: sidecarKeys.skey, hmacKey: HMAC_KEY });
  const batch = sidecar.next(20, { fields: (seq) => ({ tenant: seq % 2 === 0 ? 'acme' : 'globex', event_type: 'tool_invoked' }) });
  const res = await postJson(collectors[0]!.url, batch);
  expect(res.status, res.text).toBe(200);
  return { db, dir, files, sidecar, collectors };
}

async function teardown(d: Deployment | undefined): Promise<void> {
  if (!d) return;
  for (const c of d.collectors) await stop(c.proc);
  await d.db.drop();
  rmSync(d.dir, { recursive: true, force: true });
}

/** The stream id a replica logged at start ("reads are audited in the collector's own stream"). */
function loggedStream(c: Collector): string {
  for (const line of c.proc.stdout().split('\n').concat(c.proc.stderr().split('\n'))) {
    if (!line.includes('reads are audited')) continue;
    return (JSON.parse(line) as { stream: string }).stream;
  }
  throw new Error(`no read-audit start line in the collector's log:\n${c.proc.stderr()}`);
}

interface StoredRead {
  seq: number;
  batch: number;
  record: Record<string, any>;
}

/** A stream exactly as stored in Postgres (read as the superuser: no audited read involved). */
async function storedStream(su: pg.Client, stream: string): Promise<StoredRead[]> {
  const r = await su.query<{ seq: string; batch: string; canonical: string }>(
    'SELECT seq, batch, canonical FROM sealtrail.records WHERE stream = $1 ORDER BY seq',
    [stream],
  );
  return r.rows.map((x) => ({ seq: Number(x.seq), batch: Number(x.batch), record: JSON.parse(x.canonical) }));
}

/** Batch numbers 0..n-1 whose seq ranges tile 0..size-1 exactly. */
async function expectUnbroken(su: pg.Client, stream: string, size: number): Promise<void> {
  const r = await su.query<{ batch: string; first_seq: string; last_seq: string }>(
    'SELECT batch, first_seq, last_seq FROM sealtrail.batches WHERE stream = $1 ORDER BY batch',
    [stream],
  );
  let next = 0;
  r.rows.forEach((b, i) => {
    expect(Number(b.batch), `${stream} batch numbering`).toBe(i);
    expect(Number(b.first_seq), `${stream} batch ${i} first_seq`).toBe(next);
    next = Number(b.last_seq) + 1;
  });
  expect(next, `${stream} batches cover the tree`).toBe(size);
}

/** One read, tagged with a unique actor filter so its audit record can be told apart. */
function read(c: Collector, tag: string, i: number): Promise<JsonResponse> {
  const q = `actor=${tag}&limit=${(i % 7) + 1}`;
  switch (i % 4) {
    case 0:
      return getJson(c.url, `/v1/audit?${q}`);
    case 1:
      return getJson(c.url, `/v1/audit?${q}`, READER_TOKEN);
    case 2:
      return getJson(c.url, `/v1/audit?${q}&stream=rep-agents`);
    default:
      return getJson(c.url, `/v1/audit?${q}&event_type=tool_invoked`, READER_TOKEN);
  }
}

function verifyArgs(d: Deployment, url: string): string[] {
  return [
    'verify',
    '--url',
    url,
    '--token',
    ADMIN_TOKEN,
    '--vkey',
    d.files.sidecarVkey,
    '--vkey',
    d.files.collectorVkey,
    '--hmac-key',
    `${d.files.hmac}:k1`,
    '--hmac-key',
    `${d.files.collectorHmac}:collector`,
  ];
}

describe('collector replicas on one Postgres, read auditing on, one stream per pod', () => {
  let d: Deployment;
  let su: pg.Client;

  beforeAll(async () => {
    d = await deploy(PODS, 'replicas-ra');
    su = await d.db.connect('admin');
  });

  afterAll(async () => {
    await su?.end();
    await teardown(d);
  });

  it('each replica records exactly the reads it answered, in its own unbroken stream, and both verify', async () => {
    const [c1, c2] = d.collectors as [Collector, Collector];
    const streams = PODS.map((p) => `collector-${p}`);
    // Distinct pod names give distinct default stream ids.
    expect([loggedStream(c1), loggedStream(c2)]).toEqual(streams);
    // Nothing read yet (healthz and the sidecar's batch are not reads of the query API).
    for (const s of streams) expect(await storedStream(su, s)).toEqual([]);

    // Concurrent reads against both replicas at once, each with a unique tag.
    const tags = d.collectors.map((_, r) => Array.from({ length: READS_PER_REPLICA }, (_, i) => `probe-${r}-${i}`));
    const results = await Promise.all(
      d.collectors.flatMap((c, r) => tags[r]!.map((tag, i) => read(c, tag, i).then((res) => ({ r, i, res })))),
    );
    for (const { r, i, res } of results) expect(res.status, `replica ${r} read ${i}: ${res.text}`).toBe(200);

    for (const [r, stream] of streams.entries()) {
      const stored = await storedStream(su, stream);
      // One record per read, exactly the reads this replica answered, none of the other's.
      expect(stored).toHaveLength(READS_PER_REPLICA);
      expect(stored.map((s) => s.seq)).toEqual(Array.from({ length: READS_PER_REPLICA }, (_, i) => i));
      expect(stored.map((s) => s.record.details.filters.actor).sort()).toEqual([...tags[r]!].sort());
      for (const s of stored) {
        const i = Number(String(s.record.details.filters.actor).split('-')[2]);
        const reader = i % 2 === 1;
        expect(s.record).toMatchObject({
          stream,
          seq: s.seq,
          source: 'collector',
          event_type: 'data_accessed',
          action: 'audit.query',
          actor: reader ? { id: 'acme-reader', type: 'user' } : { id: 'admin_tokens[0]', type: 'admin' },
          details: { role: reader ? 'reader' : 'admin', filters: { limit: String((i % 7) + 1) }, rows: 0, status: 200 },
        });
        if (reader) expect(s.record.tenant).toBe('acme');
        else expect(s.record.tenant).toBeUndefined();
      }
      await expectUnbroken(su, stream, READS_PER_REPLICA);
    }

    // Reads that return data are recorded with their row counts, on either replica.
    const withData = await getJson(c2.url, '/v1/audit?stream=rep-agents&limit=7', READER_TOKEN);
    expect(withData.status).toBe(200);
    expect(withData.body.items).toHaveLength(7);
    const last = (await storedStream(su, streams[1]!)).at(-1)!;
    expect(last.record).toMatchObject({
      seq: READS_PER_REPLICA,
      tenant: 'acme',
      details: { filters: { stream: 'rep-agents', limit: '7', tenant: 'acme' }, rows: 7 },
    });

    // Server-side verification of each replica's own stream, and of its
    // peer's: behind a load balancer either replica may be asked (both
    // verify every collector- stream with the shared collector key).
    for (const [r, c] of d.collectors.entries()) {
      const size = (await storedStream(su, streams[r]!)).length;
      const v = await getJson(c.url, `/v1/verify?stream=${streams[r]}`);
      expect(v.status, v.text).toBe(200);
      expect(v.body).toMatchObject({ stream: streams[r], ok: true, chain_checked: true, tree_size: size, checked_records: size });
      const peer = streams[1 - r]!;
      const pv = await getJson(c.url, `/v1/verify?stream=${peer}`);
      expect(pv.status, pv.text).toBe(200);
      expect(pv.body).toMatchObject({ stream: peer, ok: true, chain_checked: true });
    }

    // An auditor's check from the outside passes against either replica, covering both collector streams.
    for (const c of d.collectors) {
      const res = await runCli(verifyArgs(d, c.url));
      expect(res.code, `${res.stdout}\n${res.stderr}`).toBe(0);
      for (const s of [...streams, 'rep-agents']) expect(res.stdout).toContain(s);
      expect(res.stdout).toMatch(/verified 3 stream\(s\)/);
    }

    // Every read, the auditor's included, was accounted: the streams only grew, still gap-free.
    for (const s of streams) {
      const stored = await storedStream(su, s);
      expect(stored.length).toBeGreaterThan(READS_PER_REPLICA);
      expect(stored.map((x) => x.seq)).toEqual(stored.map((_, i) => i));
      await expectUnbroken(su, s, stored.length);
    }

    const logs = c1.proc.stderr() + c2.proc.stderr() + c1.proc.stdout() + c2.proc.stdout();
    expect(logs).not.toContain(READER_TOKEN);
    expect(logs).not.toContain(ADMIN_TOKEN);
    expect(logs).not.toContain('read_audit_failed');
  });
});

describe('collector replicas without pod names share the default read-audit stream', () => {
  let d: Deployment;
  let su: pg.Client;

  beforeAll(async () => {
    d = await deploy([undefined, undefined], 'replicas-ra-shared');
    su = await d.db.connect('admin');
  });

  afterAll(async () => {
    await su?.end();
    await teardown(d);
  });

  it('both take collector-<hostname>; concurrent reads on both still make one complete, unbroken, verifying stream', async () => {
    const [c1, c2] = d.collectors as [Collector, Collector];
    const shared = loggedStream(c1);
    expect(shared).toMatch(/^collector-/);
    expect(loggedStream(c2)).toBe(shared);

    const tags = d.collectors.map((_, r) => Array.from({ length: READS_PER_REPLICA }, (_, i) => `shared-${r}-${i}`));
    const results = await Promise.all(
      d.collectors.flatMap((c, r) => tags[r]!.map((tag, i) => read(c, tag, i).then((res) => ({ r, i, res })))),
    );
    // The auditors retry a lost race for the shared head after a random
    // pause, so every read is answered (before the pause, up to 58 of these
    // 120 were refused with 503 read_audit_failed).
    const answered = results.filter(({ res }) => res.status === 200);
    expect(results.filter(({ res }) => res.status !== 200).map(({ res }) => `${res.status} ${res.text}`)).toEqual([]);

    // One stream, exactly one record per answered read, none for a refused one, no gap.
    const stored = await storedStream(su, shared);
    expect(stored).toHaveLength(answered.length);
    expect(stored.map((s) => s.seq)).toEqual(stored.map((_, i) => i));
    expect(stored.map((s) => s.record.details.filters.actor).sort()).toEqual(answered.map(({ r, i }) => tags[r]![i]!).sort());
    await expectUnbroken(su, shared, answered.length);

    for (const c of d.collectors) {
      const v = await getJson(c.url, `/v1/verify?stream=${shared}`);
      expect(v.status, v.text).toBe(200);
      expect(v.body).toMatchObject({ ok: true, chain_checked: true });
      const res = await runCli(verifyArgs(d, c.url));
      expect(res.code, `${res.stdout}\n${res.stderr}`).toBe(0);
      expect(res.stdout).toContain(shared);
    }
  });
});
