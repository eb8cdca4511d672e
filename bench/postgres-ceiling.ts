/**
 * What Postgres alone can take on this machine: COPY of rows shaped like the
 * collector's records (same columns, ~650-byte record text, the filter
 * cardinalities of bench/postgres-ingest.ts) into a table with
 *   none       no index at all,
 *   v2         the fourteen per-filter btrees of schema versions 1-2,
 *   v3         the time/id/(stream, seq) btrees plus one GIN index (schema v3),
 * with no HTTP, no verification and no collector: an upper bound for
 * `npm run bench:postgres` on the same machine.
 *
 *   npm run build && node dist/bench/postgres-ceiling.js
 *
 * BENCH_ROWS (default 400,000), BENCH_PG_URL (a superuser URL; default
 * postgres://postgres@127.0.0.1:5432/test). A throwaway database is created
 * and dropped.
 */
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { INDEXED_FILTER_COLUMNS } from '../src/collector/store/record-fields.js';

const ROWS = Number(process.env.BENCH_ROWS ?? 400_000);
const PG_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const FILTERS = INDEXED_FILTER_COLUMNS;

const TABLE = `(stored_at timestamptz NOT NULL DEFAULT now(), stream text COLLATE "C" NOT NULL, seq bigint NOT NULL, batch bigint NOT NULL,
  id text, time text NOT NULL, time_key bigint NOT NULL, received_at text,
  ${FILTERS.map((c) => `${c} text COLLATE "C"`).join(', ')},
  canonical text NOT NULL, leaf bytea NOT NULL, mac text NOT NULL, key_id text NOT NULL)`;

const BASE_INDEXES = (t: string) => [
  `CREATE INDEX ON ${t} (time_key, stream, seq)`,
  `CREATE UNIQUE INDEX ON ${t} (stream, seq)`,
  `CREATE INDEX ON ${t} (id) WHERE id IS NOT NULL`,
];

const VARIANTS: [name: string, indexes: (t: string) => string[]][] = [
  ['none', () => []],
  [
    'v2: 14 btrees per filter',
    (t) => [
      ...BASE_INDEXES(t),
      `CREATE INDEX ON ${t} (stream, time_key, seq)`,
      ...FILTERS.map((c) => `CREATE INDEX ON ${t} (${c}, time_key) WHERE ${c} IS NOT NULL`),
    ],
  ],
  ['v3: one GIN over every filter', (t) => [...BASE_INDEXES(t), `CREATE INDEX ON ${t} USING gin (stream, ${FILTERS.join(', ')})`]],
];

// Server-side rows with the cardinalities of bench/postgres-ingest.ts's records.
const GENERATE = `SELECT 'bench-' || (g % 4) AS stream, g / 4 AS seq, g / 4000 AS batch,
  '0190f0f0-0000-7000-8000-' || lpad(to_hex(g), 12, '0') AS id, '2026-11-01T00:00:00.000Z' AS time,
  1761955200000000 + g * 62500 AS time_key, '2026-11-01T00:00:00.003Z' AS received_at,
  'tenant-' || (g * 7919 % 20), 'user-' || (g * 7919 % 5000), 'agent-' || (g * 7919 % 50),
  (ARRAY['tool_invoked','data_accessed','agent_response_generated','policy_evaluation'])[1 + g * 7919 % 4],
  'tool-' || (g * 7919 % 30), CASE WHEN g * 7919 % 20 = 0 THEN 'denied' ELSE 'success' END, 'model-' || (g % 4),
  'trace-' || (g / 80) || '-' || (g % 4), 'sess-' || (g * 7919 % 3000), 'res-' || (g * 7919 % 100000),
  (ARRAY['claim','patient','file'])[1 + g * 7919 % 3], CASE WHEN g % 10 = 0 THEN 'granted' END,
  (ARRAY['public','internal','phi','pci'])[1 + (g * 7919 / 7) % 4],
  repeat('x', 650), sha256(g::text::bytea), encode(sha256(g::text::bytea), 'hex'), 'k1'
  FROM generate_series(0::bigint, $1::bigint - 1) g ORDER BY g`;

const COLUMNS = `stream, seq, batch, id, time, time_key, received_at, ${FILTERS.join(', ')}, canonical, leaf, mac, key_id`;

async function main(): Promise<void> {
  const db = `sealtrail_ceiling_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${db}`);
  const u = new URL(PG_URL);
  u.pathname = `/${db}`;
  const c = new pg.Client({ connectionString: u.toString() });
  await c.connect();
  try {
    await c.query('CREATE EXTENSION btree_gin');
    await c.query(`CREATE UNLOGGED TABLE staging ${TABLE}`);
    await c.query(`INSERT INTO staging (${COLUMNS}) ${GENERATE}`, [ROWS]);
    // The rows as COPY text, in memory, as a collector would stream them:
    // one piece per stream, so two sessions can load two streams at once.
    const perStream: Buffer[][] = [];
    for (let k = 0; k < 4; k++) {
      const chunks: Buffer[] = [];
      await pipeline(
        c.query(copyTo(`COPY (SELECT ${COLUMNS} FROM staging WHERE stream = 'bench-${k}' ORDER BY seq) TO STDOUT`)),
        new Writable({
          write(chunk: Buffer, _enc, done) {
            chunks.push(chunk);
            done();
          },
        }),
      );
      perStream.push(chunks);
    }
    const bytes = perStream.flat().reduce((a, b) => a + b.length, 0);
    console.log(`COPY of ${ROWS.toLocaleString('en-US')} record-shaped rows (${(bytes / 2 ** 20).toFixed(0)} MiB of COPY text):`);
    const second = new pg.Client({ connectionString: u.toString() });
    await second.connect();
    try {
      for (const [name, indexes] of VARIANTS) {
        for (const sessions of [1, 2]) {
          await c.query('DROP TABLE IF EXISTS target');
          await c.query(`CREATE TABLE target ${TABLE}`);
          for (const sql of indexes('target')) await c.query(sql);
          await c.query('CHECKPOINT');
          const clients = sessions === 1 ? [c] : [c, second];
          const t0 = performance.now();
          await Promise.all(
            clients.map(async (client, i) => {
              for (let k = i; k < 4; k += clients.length) {
                await pipeline(Readable.from(perStream[k]!), client.query(copyFrom(`COPY target (${COLUMNS}) FROM STDIN`)));
              }
            }),
          );
          const secs = (performance.now() - t0) / 1000;
          const size = (await c.query(`SELECT pg_size_pretty(pg_total_relation_size('target')) AS s`)).rows[0].s as string;
          console.log(
            `  ${name.padEnd(32)} ${sessions} session${sessions > 1 ? 's' : ' '} ${secs.toFixed(1).padStart(6)} s = ` +
              `${Math.round(ROWS / secs).toLocaleString('en-US').padStart(8)} rows/s   (table + indexes ${size})`,
          );
        }
      }
    } finally {
      await second.end();
    }
  } finally {
    await c.end();
    await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    await admin.end();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
