/**
 * The collector on Postgres, through its real HTTP path: a collector process
 * (the built CLI, store type postgres, app role + owner role on a fresh
 * database) receives signed sealed batches from this process, verifies and
 * stores them; then GET /v1/audit is timed on the full table.
 *
 *   npm run build && node dist/bench/postgres-ingest.js
 *
 * BENCH_RECORDS (default 1,000,000), BENCH_STREAMS (4, one sender each),
 * BENCH_COLLECTORS (1; with more, collector replicas share the database
 * and stream i goes to replica i mod N, as behind a load balancer),
 * BENCH_BATCH (1000 records), BENCH_QUERIES (200 per kind),
 * BENCH_PG_URL (a superuser URL; default postgres://postgres@127.0.0.1:5432/test).
 * The database and its two roles are created and dropped by the benchmark.
 *
 * The batches are built here (canonical JSON, SHA-256 leaves, HMAC chain,
 * Ed25519 checkpoints) before the clock starts, as sidecars would have
 * sealed them elsewhere; then this process only sends them, and the
 * collector and Postgres share the machine's CPUs.
 * BENCH_COLLECTOR_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/p") is
 * passed to the collector's node.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createSigningKeyFiles } from '../src/keyfiles.js';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { request } from 'undici';
import { canonicalize } from '../src/core/canonical.js';
import { CHAIN_GENESIS, chainNext } from '../src/core/chain.js';
import { formatCheckpoint, originForStream } from '../src/core/checkpoint.js';
import { Frontier, leafHash } from '../src/core/merkle.js';
import { generateKeyPair, parseSignerKey, signNote, type NoteSigner } from '../src/core/note.js';
import type { SealedBatch, WireRecord } from '../src/core/types.js';

const RECORDS = Number(process.env.BENCH_RECORDS ?? 1_000_000);
const STREAMS = Number(process.env.BENCH_STREAMS ?? 4);
const BATCH = Number(process.env.BENCH_BATCH ?? 1000);
const QUERIES = Number(process.env.BENCH_QUERIES ?? 200);
const COLLECTORS = Number(process.env.BENCH_COLLECTORS ?? 1);
const PG_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const TOKEN = randomBytes(24).toString('hex');
const HMAC_KEY = randomBytes(32);
const BASE = Date.UTC(2026, 10, 1);

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

function dbUrl(db: string, user?: string): string {
  const u = new URL(PG_URL);
  u.pathname = `/${db}`;
  if (user !== undefined) {
    u.username = user;
    u.password = '';
  }
  return u.toString();
}

async function admin<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** A sidecar's sealing, reduced to what the wire needs. */
class Sealer {
  private frontier = Frontier.empty();
  private chain: Buffer = CHAIN_GENESIS;
  private prev: string | null = null;
  batch = 0;
  constructor(
    readonly stream: string,
    private readonly signer: NoteSigner,
  ) {}

  next(count: number): SealedBatch {
    const records: WireRecord[] = [];
    const first = this.frontier.size;
    for (let seq = first; seq < first + count; seq++) {
      const canonical = canonicalize(record(this.stream, seq));
      const leaf = leafHash(Buffer.from(canonical, 'utf8'));
      this.frontier.append(leaf);
      this.chain = chainNext(HMAC_KEY, this.chain, leaf);
      records.push({ seq, canonical, mac: this.chain.toString('hex'), key_id: 'k1' });
    }
    const checkpoint = signNote(
      formatCheckpoint({ origin: originForStream(this.stream), size: this.frontier.size, root: this.frontier.root(), extensions: [] }),
      [this.signer],
    );
    const b: SealedBatch = {
      v: 1,
      stream: this.stream,
      batch: this.batch++,
      first_seq: first,
      last_seq: first + count - 1,
      records,
      chain_head: this.chain.toString('hex'),
      prev_checkpoint: this.prev,
      checkpoint,
    };
    this.prev = checkpoint;
    return b;
  }
}

/** ~600-byte agent events with realistic cardinalities for every filter. */
function record(stream: string, seq: number): Record<string, unknown> {
  const n = seq * 7919 + stream.length;
  return {
    id: `0190f0f0-0000-7000-8000-${seq.toString(16).padStart(12, '0')}`,
    stream,
    seq,
    time: new Date(BASE + seq * 250).toISOString(),
    received_at: new Date(BASE + seq * 250 + 3).toISOString(),
    source: 'bench',
    redaction: { ruleset: '0'.repeat(64), hits: {} },
    event_type: ['tool_invoked', 'data_accessed', 'agent_response_generated', 'policy_evaluation'][n % 4],
    tenant: `tenant-${n % 20}`,
    actor: { id: `user-${n % 5000}`, type: 'user' },
    agent: { id: `agent-${n % 50}`, name: 'claims-assistant' },
    action: 'lookup_claim',
    tool: { name: `tool-${n % 30}`, arguments: { claim_id: `CLM-${100000 + seq}`, query: `status of claim for member ${n % 5000}` } },
    resource: { type: ['claim', 'patient', 'file'][n % 3], id: `res-${n % 100_000}` },
    outcome: n % 20 === 0 ? 'denied' : 'success',
    ...(n % 10 === 0 ? { approval: { status: n % 20 === 0 ? 'denied' : 'granted', approver: 'supervisor' } } : {}),
    model: { provider: 'anthropic', name: `model-${n % 4}` },
    trace_id: `trace-${Math.floor(seq / 20)}-${stream}`,
    session_id: `sess-${n % 3000}`,
    data_classification: ['public', 'internal', 'phi', 'pci'][Math.floor(n / 7) % 4],
    details: { latency_ms: n % 900, tokens: 120 + (n % 400) },
  };
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function main(): Promise<void> {
  const suffix = randomBytes(4).toString('hex');
  const db = `sealtrail_bench_${suffix}`;
  const owner = `sealtrail_bench_owner_${suffix}`;
  const app = `sealtrail_bench_app_${suffix}`;
  const dir = mkdtempSync(join(tmpdir(), 'sealtrail-bench-pg-'));
  const children: ChildProcess[] = [];
  await admin(PG_URL, async (c) => {
    await c.query(`CREATE ROLE ${owner} LOGIN`);
    await c.query(`CREATE ROLE ${app} LOGIN`);
    await c.query(`CREATE DATABASE ${db} OWNER ${owner}`);
    await c.query(`REVOKE ALL ON DATABASE ${db} FROM PUBLIC`);
    await c.query(`GRANT CONNECT ON DATABASE ${db} TO ${app}`);
  });
  try {
    const { skey, vkey } = generateKeyPair('bench');
    const signer = parseSignerKey(skey);
    writeFileSync(join(dir, 'bench.vkey'), `${vkey}\n`);
    writeFileSync(join(dir, 'hmac.key'), `${HMAC_KEY.toString('hex')}\n`, { mode: 0o600 });
    // The collector signs its own read-audit stream (every timed GET below is recorded, as in production).
    createSigningKeyFiles(join(dir, 'collector.skey'), join(dir, 'collector.vkey'), 'collector');
    const urls: string[] = [];
    for (let n = 0; n < COLLECTORS; n++) {
      const port = await freePort();
      urls.push(`http://127.0.0.1:${port}`);
      writeFileSync(
        join(dir, `collector-${n}.yaml`),
        `collector:
  listen: 127.0.0.1:${port}
  max_body_bytes: 64MiB
  store: { type: postgres, url: "${dbUrl(db, app)}", migrate_url: "${dbUrl(db, owner)}", pool_size: ${STREAMS + 2} }
  auth: { admin_tokens: ["${TOKEN}"] }
  streams: [{ match: "*", vkey_file: ${join(dir, 'bench.vkey')} }]
  hmac_keys: [{ id: k1, file: ${join(dir, 'hmac.key')} }]
  keys: { signing_key_file: ${join(dir, 'collector.skey')}, hmac_key_file: ${join(dir, 'hmac.key')}, hmac_key_id: k1 }
`,
      );
      const nodeArgs = (process.env.BENCH_COLLECTOR_NODE_ARGS ?? '').split(' ').filter(Boolean);
      children.push(
        spawn(process.execPath, [...nodeArgs, CLI, 'collector', '--config', join(dir, `collector-${n}.yaml`)], {
          // Each replica is its own pod: its own read-audit stream.
          env: { ...process.env, SEALTRAIL_LOG_LEVEL: 'warn', POD_NAME: `bench-collector-${n}` },
          stdio: ['ignore', 'ignore', 'inherit'],
        }),
      );
    }
    for (const u of urls) {
      for (let i = 0; ; i++) {
        try {
          if ((await request(`${u}/healthz`)).statusCode === 200) break;
        } catch {
          // not listening yet
        }
        if (i > 300) throw new Error('collector did not start');
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const url = urls[0]!;

    // The batches are sealed before the clock starts: sealing is the
    // sidecars' work on their own machines, not the collector's.
    const perStream = Math.ceil(RECORDS / STREAMS);
    const tGen = performance.now();
    const bodies: Buffer[][] = Array.from({ length: STREAMS }, (_, i) => {
      const s = new Sealer(`bench-${i}`, signer);
      const out: Buffer[] = [];
      for (let sent = 0; sent < perStream; ) {
        const n = Math.min(BATCH, perStream - sent);
        out.push(Buffer.from(JSON.stringify(s.next(n))));
        sent += n;
      }
      return out;
    });
    const bodyBytes = bodies.flat().reduce((a, b) => a + b.length, 0);
    console.log(
      `sealed ${(perStream * STREAMS).toLocaleString('en-US')} records in ${((performance.now() - tGen) / 1000).toFixed(1)} s ` +
        `(${(bodyBytes / 2 ** 20).toFixed(0)} MiB of batch bodies, not timed)`,
    );

    // Ingest: one sender per stream, batches in order, as sidecars do.
    const batchMs: number[] = [];
    const t0 = performance.now();
    await Promise.all(
      bodies.map(async (list, i) => {
        const target = urls[i % urls.length]!;
        for (const body of list) {
          const t = performance.now();
          const res = await request(`${target}/v1/batches`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
          const text = await res.body.text();
          if (res.statusCode !== 200) throw new Error(`batch refused: ${res.statusCode} ${text.slice(0, 300)}`);
          batchMs.push(performance.now() - t);
        }
      }),
    );
    const secs = (performance.now() - t0) / 1000;
    const total = perStream * STREAMS;
    batchMs.sort((a, b) => a - b);
    console.log(`ingest: ${COLLECTORS} collector process(es), ${STREAMS} streams`);
    console.log(`        ${total.toLocaleString('en-US')} records in ${secs.toFixed(1)} s = ${Math.round(total / secs).toLocaleString('en-US')} records/s verified and stored`);
    console.log(`        POST /v1/batches (${BATCH} records): p50 ${quantile(batchMs, 0.5).toFixed(0)} ms, p99 ${quantile(batchMs, 0.99).toFixed(0)} ms`);
    const size = await admin(dbUrl(db), async (c) => {
      await c.query('ANALYZE sealtrail.records');
      return (await c.query(`SELECT pg_size_pretty(pg_total_relation_size('sealtrail.records_' || to_char(now() AT TIME ZONE 'UTC', 'YYYY_MM'))) AS s`)).rows[0].s as string;
    });
    console.log(`        table + indexes of this month's partition: ${size}`);

    // Queries on the full table.
    const mid = new Date(BASE + (perStream / 2) * 250).toISOString();
    const kinds: [string, (i: number) => string][] = [
      ['newest 100 (order=desc)', () => 'order=desc&limit=100'],
      ['oldest 100', () => 'limit=100'],
      ['tenant', (i) => `tenant=tenant-${i % 20}&limit=100`],
      ['actor (rare)', (i) => `actor=user-${(i * 37) % 5000}&limit=100`],
      ['agent + order=desc', (i) => `agent=agent-${i % 50}&order=desc&limit=100`],
      ['resource (~10 records)', (i) => `resource=res-${(i * 7919 + 7) % 100_000}&limit=100`],
      ['approval=denied', () => 'approval=denied&limit=100'],
      ['data_classification + event_type', (i) => `data_classification=phi&event_type=tool_invoked&limit=${50 + (i % 50)}`],
      ['time window from..to', (i) => `from=${encodeURIComponent(new Date(BASE + i * 60_000).toISOString())}&to=${encodeURIComponent(mid)}&limit=100`],
      ['trace_id (20 records)', (i) => `trace_id=trace-${(i * 101) % Math.floor(perStream / 20)}-bench-${i % STREAMS}&limit=100`],
    ];
    console.log(`GET /v1/audit on ${total.toLocaleString('en-US')} records, ${QUERIES} requests each:`);
    for (const [name, q] of kinds) {
      const ms: number[] = [];
      let items = 0;
      for (let i = 0; i < QUERIES; i++) {
        const t = performance.now();
        const res = await request(`${url}/v1/audit?${q(i)}`, { headers: { authorization: `Bearer ${TOKEN}` } });
        const text = await res.body.text();
        if (res.statusCode !== 200) throw new Error(`query ${name}: ${res.statusCode} ${text.slice(0, 200)}`);
        ms.push(performance.now() - t);
        items += (JSON.parse(text) as { items: unknown[] }).items.length;
      }
      ms.sort((a, b) => a - b);
      console.log(
        `  ${name.padEnd(34)} p50 ${quantile(ms, 0.5).toFixed(1).padStart(7)} ms   p99 ${quantile(ms, 0.99).toFixed(1).padStart(7)} ms   (${(items / QUERIES).toFixed(0)} items/page)`,
      );
    }
  } finally {
    await Promise.all(
      children
        .filter((c) => c.exitCode === null)
        .map((c) => {
          c.kill('SIGTERM');
          return new Promise((r) => c.once('exit', r));
        }),
    );
    await admin(PG_URL, async (c) => {
      await c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
      await c.query(`DROP ROLE IF EXISTS ${owner}`);
      await c.query(`DROP ROLE IF EXISTS ${app}`);
    });
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
