/**
 * The collector's cost per verified record, in process: what POST
 * /v1/batches does after the bytes arrived (JSON.parse of the body,
 * parseBatch, the stream head read, verifyBatch, appendBatch into a real
 * store), without HTTP, sidecar or a second process on the CPUs.
 *
 *   npm run bench:collector
 *   BENCH_STORE=postgres npm run bench:collector
 *
 * BENCH_RECORDS (default 100,000) records of the pii corpus (bench/corpus.ts)
 * with the members a sidecar adds (id, stream, seq, received_at, source,
 * redaction), sealed up front with the project's own code into batches of
 * BENCH_BATCH (1,000, the sidecar's default seal size) on one stream, HMAC
 * chained under a key the store's verifier holds, Ed25519 checkpoints.
 * BENCH_REPEAT (3) fresh stores, each ingesting every batch; it prints the
 * records per CPU-second of this process (user + system, so SQLite's work
 * is counted; Postgres's server backends are not) for each repeat and their
 * median, and the share of CPU spent in verification versus the store.
 * BENCH_PG_URL: superuser URL (default postgres://postgres@127.0.0.1:5432/test);
 * a database per repeat is created and dropped. BENCH_KEEP=1 keeps the
 * SQLite file and prints where it is.
 *
 * Against an earlier commit on this noisy shared machine: export it with
 * `git archive <ref> | tar -x -C DIR`, link node_modules, copy this file
 * into DIR/bench, build there with `npx tsc -p tsconfig.json`, and run the
 * two builds' dist/bench/collector-ingest.js alternately with
 * BENCH_REPEAT=1 (figures of separate sittings differ by a third).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { canonicalize } from '../src/core/canonical.js';
import { CHAIN_GENESIS, chainNext } from '../src/core/chain.js';
import { formatCheckpoint, originForStream } from '../src/core/checkpoint.js';
import { Frontier, leafHash } from '../src/core/merkle.js';
import { generateKeyPair, parseSignerKey, parseVerifierKey, signNote } from '../src/core/note.js';
import type { SealedBatch, WireRecord } from '../src/core/types.js';
import { parseBatch } from '../src/core/wire-batch.js';
import { openPostgresStore } from '../src/collector/store/postgres.js';
import { openSqliteStore } from '../src/collector/store/sqlite.js';
import type { AuditStore } from '../src/collector/store/types.js';
import { appendInputOf, verifyBatch } from '../src/collector/verify-batch.js';
import { corpusGenerator } from './corpus.js';

const RECORDS = Number(process.env.BENCH_RECORDS ?? 100_000);
const BATCH = Number(process.env.BENCH_BATCH ?? 1000);
const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);
const STORE = process.env.BENCH_STORE ?? 'sqlite';
const PG_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const STREAM = 'bench-collector-0';

function cpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** Wire bodies as a sidecar would send them, built before any clock starts. */
function sealBodies(hmacKey: Buffer, skey: string): string[] {
  const signer = parseSignerKey(skey);
  const gen = corpusGenerator('pii');
  const frontier = Frontier.empty();
  let chain: Buffer = CHAIN_GENESIS;
  let prev: string | null = null;
  const bodies: string[] = [];
  for (let first = 0, batch = 0; first < RECORDS; first += BATCH, batch++) {
    const count = Math.min(BATCH, RECORDS - first);
    const records: WireRecord[] = [];
    for (let seq = first; seq < first + count; seq++) {
      const event = JSON.parse(gen(seq).line) as Record<string, unknown>;
      const canonical = canonicalize({
        ...event,
        id: `0190f0f0-0000-7000-8000-${seq.toString(16).padStart(12, '0')}`,
        stream: STREAM,
        seq,
        received_at: new Date(Date.UTC(2026, 10, 22) + seq * 37 + 2).toISOString(),
        source: 'file:/var/log/agent/trace.jsonl',
        redaction: { ruleset: '0'.repeat(64), hits: { email: 1 } },
      });
      const leaf = leafHash(Buffer.from(canonical, 'utf8'));
      frontier.append(leaf);
      chain = chainNext(hmacKey, chain, leaf);
      records.push({ seq, canonical, mac: chain.toString('hex'), key_id: 'k1' });
    }
    const checkpoint = signNote(
      formatCheckpoint({ origin: originForStream(STREAM), size: frontier.size, root: frontier.root(), extensions: [] }),
      [signer],
    );
    const b: SealedBatch = {
      v: 1,
      stream: STREAM,
      batch,
      first_seq: first,
      last_seq: first + count - 1,
      records,
      chain_head: chain.toString('hex'),
      prev_checkpoint: prev,
      checkpoint,
    };
    prev = checkpoint;
    bodies.push(JSON.stringify(b));
  }
  return bodies;
}

interface Run {
  cpuS: number;
  wallS: number;
  verifyCpuS: number;
  storeCpuS: number;
}

async function ingest(store: AuditStore, bodies: readonly string[], vkey: string, hmacKey: Buffer): Promise<Run> {
  const keys = { verifiers: [parseVerifierKey(vkey)], hmacKeys: new Map([['k1', new Uint8Array(hmacKey)]]) };
  let verifyCpu = 0;
  let storeCpu = 0;
  const wall0 = performance.now();
  const cpu0 = cpuMicros();
  for (const body of bodies) {
    const c0 = cpuMicros();
    const batch = parseBatch(JSON.parse(body));
    const state = await store.getStreamState(batch.stream);
    const verified = verifyBatch(batch, state, keys);
    const c1 = cpuMicros();
    await store.appendBatch(appendInputOf(verified));
    const c2 = cpuMicros();
    verifyCpu += c1 - c0;
    storeCpu += c2 - c1;
  }
  return {
    cpuS: (cpuMicros() - cpu0) / 1e6,
    wallS: (performance.now() - wall0) / 1e3,
    verifyCpuS: verifyCpu / 1e6,
    storeCpuS: storeCpu / 1e6,
  };
}

async function withPostgres<T>(fn: (url: string) => Promise<T>): Promise<T> {
  const db = `sealtrail_bench_ci_${randomBytes(4).toString('hex')}`;
  const admin = async (sql: string): Promise<void> => {
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  await admin(`CREATE DATABASE ${db}`);
  try {
    const u = new URL(PG_URL);
    u.pathname = `/${db}`;
    return await fn(u.toString());
  } finally {
    await admin(`DROP DATABASE ${db} WITH (FORCE)`);
  }
}

async function oneRun(bodies: readonly string[], vkey: string, hmacKey: Buffer): Promise<Run> {
  if (STORE === 'postgres') {
    return withPostgres(async (url) => {
      // One role for both: the bench measures ingest, not the privilege split.
      const store = await openPostgresStore({ url, migrateUrl: url, poolSize: 2 });
      try {
        return await ingest(store, bodies, vkey, hmacKey);
      } finally {
        await store.close();
      }
    });
  }
  const dir = mkdtempSync(join(tmpdir(), 'sealtrail-bench-collector-'));
  try {
    const store = openSqliteStore(join(dir, 'collector.db'));
    try {
      return await ingest(store, bodies, vkey, hmacKey);
    } finally {
      await store.close();
    }
  } finally {
    if (!process.env.BENCH_KEEP) rmSync(dir, { recursive: true, force: true });
    else console.log(`kept ${dir}`);
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  if (STORE !== 'sqlite' && STORE !== 'postgres') throw new Error(`BENCH_STORE must be sqlite or postgres, not ${STORE}`);
  const hmacKey = randomBytes(32);
  const { skey, vkey } = generateKeyPair('bench');
  const bodies = sealBodies(hmacKey, skey);
  const mib = bodies.reduce((n, b) => n + Buffer.byteLength(b), 0) / 2 ** 20;
  console.log(
    `collector ingest, in process: ${RECORDS} pii records in ${bodies.length} batches of ${BATCH} (${mib.toFixed(1)} MiB of bodies), store ${STORE}, Node ${process.version}`,
  );
  const rates: number[] = [];
  for (let i = 0; i < REPEAT; i++) {
    const r = await oneRun(bodies, vkey, hmacKey);
    const rate = RECORDS / r.cpuS;
    rates.push(rate);
    console.log(
      `  run ${i + 1}: ${Math.round(rate).toLocaleString('en-US')} records per CPU-second ` +
        `(${r.cpuS.toFixed(2)} CPU s over ${r.wallS.toFixed(2)} s wall; parse + verify ${r.verifyCpuS.toFixed(2)} CPU s, ` +
        `store ${r.storeCpuS.toFixed(2)} CPU s)`,
    );
  }
  console.log(`median: ${Math.round(median(rates)).toLocaleString('en-US')} records per CPU-second`);
  console.log(
    `rerun: BENCH_STORE=${STORE} BENCH_RECORDS=${RECORDS} BENCH_BATCH=${BATCH} BENCH_REPEAT=${REPEAT} npm run bench:collector`,
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
