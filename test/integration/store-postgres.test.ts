import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeStore, openStore } from '../../src/collector/from-config.js';
import { NullAuditStore } from '../../src/collector/store/null.js';
import { OWN_FUNCTIONS, POSTGRES_MIGRATIONS } from '../../src/collector/store/postgres-migrations.js';
import {
  migratePostgres,
  openPostgresStore,
  redactPostgresUrl,
  PostgresAuditStore,
} from '../../src/collector/store/postgres.js';
import { INDEXED_FILTER_COLUMNS } from '../../src/collector/store/record-fields.js';
import { StoreError, type AppendBatchInput } from '../../src/collector/store/types.js';
import { appendInputOf, verifyBatch } from '../../src/collector/verify-batch.js';
import { parseConfigText } from '../../src/config/load.js';
import { ConfigError } from '../../src/core/errors.js';
import { parseVerifierKey } from '../../src/core/note.js';
import { BatchBuilder, type RecordFields } from '../helpers/collector-batches.js';
import { memoryLogger } from '../helpers/collector-server.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { sleep } from '../harness/wait.js';

/**
 * What only Postgres has: roles and grants, triggers for every role,
 * partitions, versioned migrations under an advisory lock, indexes. The
 * behaviour shared with the other backends is in store-conformance.test.ts.
 */

const HMAC_KEY = Buffer.alloc(32, 7);
const PASSWORD = 'canary-Pw-7f3a1c'; // trust auth ignores it; it must never surface

const dbs: TestDatabase[] = [];
async function freshDb(): Promise<TestDatabase> {
  const db = await createTestDatabase({ password: PASSWORD });
  dbs.push(db);
  return db;
}
afterAll(async () => {
  for (const db of dbs) await db.drop();
});

async function asRole<T>(db: TestDatabase, who: 'admin' | 'owner' | 'app', fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = await db.connect(who);
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

async function ingest(store: PostgresAuditStore, b: BatchBuilder, count: number, fields?: (seq: number) => RecordFields): Promise<AppendBatchInput> {
  const state = await store.getStreamState(b.stream);
  const v = verifyBatch(b.next(count, fields ? { fields } : {}), state, {
    verifiers: [parseVerifierKey(b.vkey)],
    hmacKeys: new Map([['k1', HMAC_KEY]]),
  });
  const input = appendInputOf(v);
  await store.appendBatch(input);
  return input;
}

async function storeError(p: Promise<unknown>): Promise<StoreError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(StoreError);
    return err as StoreError;
  }
  throw new Error('expected a StoreError');
}

describe('postgres store: roles, privileges and triggers', () => {
  let db: TestDatabase;
  let store: PostgresAuditStore;
  const b = new BatchBuilder({ stream: 'pg-roles', hmacKey: HMAC_KEY });
  const TABLES = ['streams', 'stream_heads', 'batches', 'checkpoints', 'records'];

  beforeAll(async () => {
    db = await freshDb();
    store = await openPostgresStore({ url: db.appUrl, migrateUrl: db.ownerUrl, poolSize: 2 });
    await ingest(store, b, 4);
    await ingest(store, b, 3);
  });
  afterAll(async () => {
    await store?.close();
  });

  it('the owner owns every table; the app role may SELECT and INSERT, nothing else', async () => {
    const owners = await asRole(db, 'admin', async (c) =>
      (await c.query(`SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'sealtrail'`)).rows,
    );
    expect(owners.length).toBeGreaterThanOrEqual(TABLES.length + 1);
    for (const r of owners) expect(r.tableowner).toBe(db.owner);

    const privs = await asRole(db, 'app', async (c) =>
      (
        await c.query(
          `SELECT t, p, has_table_privilege(format('sealtrail.%I', t), p) AS has
           FROM unnest($1::text[]) t, unnest(ARRAY['SELECT','INSERT','UPDATE','DELETE','TRUNCATE','REFERENCES','TRIGGER']) p`,
          [[...TABLES, 'schema_migrations']],
        )
      ).rows as { t: string; p: string; has: boolean }[],
    );
    for (const { t, p, has } of privs) {
      const want = p === 'SELECT' || (p === 'INSERT' && t !== 'schema_migrations');
      expect(has, `${t} ${p}`).toBe(want);
    }
  });

  it('the grants name every function of the schema that is sealtrail\'s own (not btree_gin\'s)', async () => {
    const own = await asRole(db, 'admin', async (c) =>
      (
        await c.query(
          `SELECT p.oid::regprocedure::text AS f FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = 'sealtrail'
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')`,
        )
      ).rows.map((r) => r.f as string),
    );
    expect([...own].sort()).toEqual([...OWN_FUNCTIONS].sort());
  });

  it('the app role cannot UPDATE, DELETE or TRUNCATE history (permission denied)', async () => {
    await asRole(db, 'app', async (c) => {
      for (const t of TABLES) {
        for (const sql of [
          `UPDATE sealtrail.${t} SET stream = 'x'`,
          `DELETE FROM sealtrail.${t} WHERE stream = 'pg-roles'`,
          `TRUNCATE sealtrail.${t}`,
          `TRUNCATE sealtrail.${t} CASCADE`,
        ]) {
          await expect(c.query(sql), sql).rejects.toThrow(/permission denied/);
        }
      }
    });
    expect((await store.readStreamRecords('pg-roles', 0, 100)).length).toBe(7);
  });

  it('the app role cannot drop, alter, disable triggers, create tables or reach partitions directly', async () => {
    const part = await asRole(db, 'admin', async (c) =>
      (await c.query(`SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                      WHERE i.inhparent = 'sealtrail.records'::regclass ORDER BY 1 LIMIT 1`)).rows[0].relname as string,
    );
    await asRole(db, 'app', async (c) => {
      for (const sql of [
        'DROP TABLE sealtrail.records',
        'DROP TABLE sealtrail.batches CASCADE',
        'DROP SCHEMA sealtrail CASCADE',
        'ALTER TABLE sealtrail.records DISABLE TRIGGER ALL',
        'ALTER TABLE sealtrail.checkpoints DISABLE TRIGGER checkpoints_append_only',
        'ALTER TABLE sealtrail.records ADD COLUMN x int',
        'DROP TRIGGER records_append_only ON sealtrail.records',
        'CREATE TABLE sealtrail.evil (x int)',
        'CREATE OR REPLACE FUNCTION sealtrail.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$',
        'DROP FUNCTION sealtrail.check_head_extends() CASCADE',
        `DELETE FROM sealtrail.${part}`,
        `UPDATE sealtrail.${part} SET canonical = '{}'`,
        `SELECT count(*) FROM sealtrail.${part}`,
        `ALTER TABLE sealtrail.records DETACH PARTITION sealtrail.${part}`,
        `SELECT sealtrail.create_records_partition('2030-01-01')`,
      ]) {
        await expect(c.query(sql), sql).rejects.toThrow(/permission denied|must be owner/);
      }
      // Not an error in Postgres, only a warning: "no privileges were granted".
      await c.query('GRANT UPDATE, DELETE, TRUNCATE ON sealtrail.records TO PUBLIC');
      const after = await c.query(
        `SELECT has_table_privilege('sealtrail.records', 'UPDATE') OR has_table_privilege('sealtrail.records', 'DELETE')
             OR has_table_privilege('sealtrail.records', 'TRUNCATE') AS can`,
      );
      expect(after.rows[0].can).toBe(false);
    });
    expect((await store.readStreamRecords('pg-roles', 0, 100)).length).toBe(7);
  });

  it('even the owner meets the triggers: UPDATE, DELETE and TRUNCATE refused on tables and partitions', async () => {
    const parts = await asRole(db, 'admin', async (c) =>
      (await c.query(`SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                      WHERE i.inhparent = 'sealtrail.records'::regclass`)).rows.map((r) => r.relname as string),
    );
    expect(parts.length).toBeGreaterThanOrEqual(2);
    await asRole(db, 'owner', async (c) => {
      let nonEmpty = 0;
      for (const t of [...TABLES, 'schema_migrations', ...parts]) {
        const col = t === 'schema_migrations' ? 'name' : 'stream';
        const rows = (await c.query(`SELECT count(*)::int AS n FROM sealtrail.${t}`)).rows[0].n as number;
        // Row triggers fire per row: on an empty partition UPDATE and DELETE
        // change nothing and succeed; TRUNCATE is refused regardless.
        const statements = [`TRUNCATE sealtrail.${t} CASCADE`];
        if (rows > 0) {
          nonEmpty++;
          statements.push(`UPDATE sealtrail.${t} SET ${col} = 'x'`, `DELETE FROM sealtrail.${t}`);
        }
        for (const sql of statements) {
          await expect(c.query(sql), sql).rejects.toThrow(/append-only/);
        }
      }
      expect(nonEmpty).toBeGreaterThanOrEqual(TABLES.length + 2);
    });
    expect((await store.readStreamRecords('pg-roles', 0, 100)).length).toBe(7);
    expect(await store.getStreamState('pg-roles')).toMatchObject({ treeSize: 7, nextBatch: 2 });
  });

  it('refuses, for every role, a head that does not extend the stored one by a stored batch', async () => {
    const head = (next: number, size: number, vkey: string | null = null) =>
      `INSERT INTO sealtrail.stream_heads (stream, next_batch, tree_size, frontier, pinned_vkey)
       VALUES ('pg-roles', ${next}, ${size}, '\\x00', ${vkey === null ? 'NULL' : `'${vkey}'`})`;
    for (const who of ['app', 'owner'] as const) {
      await asRole(db, who, async (c) => {
        await expect(c.query(head(2, 7)), 'same head again').rejects.toThrow(/duplicate key|does not extend/);
        await expect(c.query(head(3, 6)), 'tree shrinks').rejects.toThrow(/does not extend/);
        await expect(c.query(head(4, 9)), 'batch skipped').rejects.toThrow(/does not extend/);
        await expect(c.query(head(3, 9)), 'no stored batch 2').rejects.toThrow(/no stored batch/);
        await expect(c.query(head(3, 9, 'other+key')), 'pinned key changes').rejects.toThrow(/does not extend/);
        // A fork of a stored batch, a batch out of turn or overlapping the tree, a stray checkpoint.
        const batch = (n: number, first: number, last: number) =>
          `INSERT INTO sealtrail.batches (stream, batch, first_seq, last_seq, checkpoint, digest, received_at)
           VALUES ('pg-roles', ${n}, ${first}, ${last}, 'x', 'y', now())`;
        await expect(c.query(batch(1, 4, 6)), 'fork of batch 1').rejects.toThrow(/not the next one|duplicate key/);
        await expect(c.query(batch(3, 7, 9)), 'gap').rejects.toThrow(/not the next one/);
        await expect(c.query(batch(2, 5, 9)), 'overlap').rejects.toThrow(/starts at seq 5/);
        await expect(
          c.query(`INSERT INTO sealtrail.checkpoints (stream, batch, tree_size, note, received_at) VALUES ('pg-roles', 5, 99, 'n', now())`),
        ).rejects.toThrow(/not the next one/);
        // Records of no stored batch, outside their batch's range, or a second copy of a stored seq.
        const rec = (seq: number, b: number) =>
          `INSERT INTO sealtrail.records (stored_at, stream, seq, batch, time, time_key, canonical, leaf, mac, key_id)
           VALUES (now(), 'pg-roles', ${seq}, ${b}, 't', 0, '{}', '\\x00', 'm', 'k1')`;
        await expect(c.query(rec(7, 2)), 'no batch 2').rejects.toThrow(/does not belong/);
        await expect(c.query(rec(9, 1)), 'outside batch 1').rejects.toThrow(/does not belong/);
        await expect(c.query(rec(5, 1)), 'seq 5 again').rejects.toThrow(/duplicate key/);
      });
    }
    expect(await store.getStreamState('pg-roles')).toMatchObject({ treeSize: 7, nextBatch: 2 });
  });
});

describe('postgres store: migrations', () => {
  it('upgrades a v2 database with records to the GIN filter index of v3, losing nothing', async () => {
    const db = await freshDb();
    const v2 = POSTGRES_MIGRATIONS.filter((m) => m.version <= 2);
    await migratePostgres(db.ownerUrl, db.app, { migrations: v2 });
    const b = new BatchBuilder({ stream: 'pg-upgrade', hmacKey: HMAC_KEY });
    const fields = (seq: number): RecordFields => ({ tenant: seq % 2 ? 'odd' : 'even', actor: { id: `u-${seq % 3}`, type: 'user' } });
    // Written as a v2 collector wrote them: plain INSERTs as the app role.
    const v = verifyBatch(b.next(40, { fields }), undefined, { verifiers: [parseVerifierKey(b.vkey)], hmacKeys: new Map([['k1', HMAC_KEY]]) });
    const input = appendInputOf(v);
    await asRole(db, 'app', async (c) => {
      await c.query('BEGIN');
      await c.query('INSERT INTO sealtrail.streams (stream) VALUES ($1)', [b.stream]);
      await c.query('INSERT INTO sealtrail.checkpoints (stream, batch, tree_size, note, received_at) VALUES ($1, 0, 40, $2, now())', [b.stream, input.checkpoint]);
      await c.query(
        'INSERT INTO sealtrail.batches (stream, batch, first_seq, last_seq, checkpoint, digest, received_at) VALUES ($1, 0, 0, 39, $2, $3, now())',
        [b.stream, input.checkpoint, input.digest],
      );
      for (const r of input.records) {
        await c.query(
          `INSERT INTO sealtrail.records (stored_at, stream, batch, seq, id, time, time_key, tenant, actor_id, canonical, leaf, mac, key_id)
           VALUES (now(), $1, 0, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
          [b.stream, r.seq, r.id, r.time, r.timeKey, r.tenant, r.actorId, r.canonical, r.leaf, r.mac, r.keyId],
        );
      }
      const ns = input.newState;
      await c.query(
        `INSERT INTO sealtrail.stream_heads (stream, next_batch, tree_size, frontier, last_checkpoint, chain_head, chain_key_id, pinned_vkey)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [ns.stream, ns.nextBatch, ns.treeSize, ns.frontier, ns.lastCheckpoint, ns.chainHead, ns.chainKeyId, ns.pinnedVkey],
      );
      await c.query('COMMIT');
    });
    const indexes = async () =>
      asRole(db, 'admin', async (c) =>
        (await c.query(`SELECT indexname FROM pg_indexes WHERE schemaname = 'sealtrail' AND tablename = 'records' ORDER BY 1`)).rows.map(
          (r) => r.indexname as string,
        ),
      );
    expect(await indexes()).toContain('records_tenant_time');

    const store = await openPostgresStore({ url: db.appUrl, migrateUrl: db.ownerUrl, poolSize: 2 });
    try {
      const after = await indexes();
      expect(after).toContain('records_filters');
      expect(after.filter((n) => /^records_.*_time$/.test(n))).toEqual([]);
      const versions = await asRole(db, 'admin', async (c) =>
        (await c.query('SELECT version FROM sealtrail.schema_migrations ORDER BY version')).rows.map((r) => r.version as number),
      );
      expect(versions).toEqual(POSTGRES_MIGRATIONS.map((m) => m.version));
      // Old records are found through the new index; new ones land beside them.
      await ingest(store, b, 20, fields);
      const odd = await store.queryRecords({ filters: { tenant: 'odd', actorId: 'u-1' }, limit: 100 });
      expect(odd.map((r) => r.seq)).toEqual(Array.from({ length: 60 }, (_, i) => i).filter((i) => i % 2 === 1 && i % 3 === 1));
      expect((await store.getStreamState(b.stream))?.treeSize).toBe(60);
    } finally {
      await store.close();
    }
  });

  it('migrates once, records the version, and a second start finds nothing to do', async () => {
    const db = await freshDb();
    const s1 = await openPostgresStore({ url: db.appUrl, migrateUrl: db.ownerUrl, poolSize: 1 });
    await s1.close();
    const s2 = await openPostgresStore({ url: db.appUrl, migrateUrl: db.ownerUrl, poolSize: 1 });
    await s2.close();
    const rows = await asRole(db, 'admin', async (c) =>
      (await c.query('SELECT version, name, applied_by FROM sealtrail.schema_migrations ORDER BY version')).rows,
    );
    expect(rows).toEqual(POSTGRES_MIGRATIONS.map((m) => ({ version: m.version, name: m.name, applied_by: db.owner })));
  });

  it('is safe when many collectors start at once (advisory lock)', async () => {
    const db = await freshDb();
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, () => openPostgresStore({ url: db.appUrl, migrateUrl: db.ownerUrl, poolSize: 1 })),
    );
    for (const r of results) expect(r.status, r.status === 'rejected' ? String(r.reason) : '').toBe('fulfilled');
    for (const r of results) if (r.status === 'fulfilled') await r.value.close();
    const n = await asRole(db, 'admin', async (c) => (await c.query('SELECT count(*)::int AS n FROM sealtrail.schema_migrations')).rows[0].n);
    expect(n).toBe(POSTGRES_MIGRATIONS.length);
  });

  it('without migrate_url refuses to start on a missing, outdated or newer schema, with a clear error', async () => {
    const db = await freshDb();
    const missing = await storeError(openPostgresStore({ url: db.appUrl }));
    expect(missing.code).toBe('store_schema_missing');
    expect(missing.message).toMatch(/migrate_url/);

    await migratePostgres(db.ownerUrl, db.app);
    const next = [...POSTGRES_MIGRATIONS, { version: 99, name: 'future', sql: 'SELECT 1' }];
    const outdated = await storeError(openPostgresStore({ url: db.appUrl, migrations: next }));
    expect(outdated.code).toBe('store_schema_outdated');
    expect(outdated.message).toMatch(/needs 99/);

    // A newer build migrated; this build must not write into it.
    await migratePostgres(db.ownerUrl, db.app, { migrations: next });
    const newer = await storeError(openPostgresStore({ url: db.appUrl }));
    expect(newer.code).toBe('store_schema_newer');
    const newerMigrate = await storeError(openPostgresStore({ url: db.appUrl, migrateUrl: db.ownerUrl }));
    expect(newerMigrate.code).toBe('store_schema_newer');
  });

  it('warns when the app role could alter history (same role as the owner)', async () => {
    const db = await freshDb();
    const { logger, lines } = memoryLogger();
    const s = await openPostgresStore({ url: db.ownerUrl, migrateUrl: db.ownerUrl, poolSize: 1, logger });
    await s.close();
    const text = lines.join('');
    expect(text).toMatch(/same role/);
    expect(text).toMatch(/may UPDATE, DELETE or TRUNCATE/);
    expect(text).not.toContain(PASSWORD);
  });

  it('never shows the password: errors, logs and the store description', async () => {
    const db = await freshDb();
    const bad = db.appUrl.replace(`/${db.name}`, '/no_such_database_here');
    const err = await storeError(openPostgresStore({ url: bad, connectTimeoutMs: 5000 }));
    expect(err.code).toBe('store_unavailable');
    expect(err.message).toContain('***');
    expect(err.message).not.toContain(PASSWORD);
    const down = await storeError(openPostgresStore({ url: `postgres://app:${PASSWORD}@127.0.0.1:1/x`, connectTimeoutMs: 5000 }));
    expect(down.code).toBe('store_unavailable');
    expect(down.message).not.toContain(PASSWORD);
    const mig = await storeError(openPostgresStore({ url: db.appUrl, migrateUrl: bad }));
    expect(mig.message).not.toContain(PASSWORD);

    expect(redactPostgresUrl(`postgres://u:${PASSWORD}@h/db?password=${PASSWORD}`)).not.toContain(PASSWORD);

    const { logger, lines } = memoryLogger();
    const s = await openPostgresStore({ url: db.appUrl, migrateUrl: db.ownerUrl, poolSize: 1, logger });
    await s.close();
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.join('')).not.toContain(PASSWORD);
  });

  it('a read that cannot reach the server is store_unavailable (503, retry), not a bare driver error', async () => {
    // Constructed directly: openPostgresStore would already refuse at open.
    const s = new PostgresAuditStore({ url: `postgres://app:${PASSWORD}@127.0.0.1:1/x`, connectTimeoutMs: 2000 });
    try {
      for (const read of [
        () => s.getStreamState('s'),
        () => s.listStreams(),
        () => s.queryRecords({ filters: {}, limit: 10 }),
        () => s.getSubtreeHashes('s', [{ level: 1, index: 0 }]),
      ]) {
        const err = await storeError(read());
        expect(err.code).toBe('store_unavailable');
        expect(err.message).not.toContain(PASSWORD);
      }
    } finally {
      await s.close();
    }
  });
});

describe('postgres store: config', () => {
  const NO_ENV = {};
  const cfgError = (text: string): ConfigError => {
    try {
      parseConfigText(text, 'x.yaml', { PGPW: PASSWORD });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return err as ConfigError;
    }
    throw new Error('expected a ConfigError');
  };

  it('parses the three store types with their defaults', () => {
    expect(parseConfigText('collector:\n  store: { type: null }\n', 'x.yaml', NO_ENV).collector!.store).toEqual({ type: 'null' });
    expect(parseConfigText('collector:\n  store: { type: "null" }\n', 'x.yaml', NO_ENV).collector!.store).toEqual({ type: 'null' });
    expect(parseConfigText('collector:\n  store: { path: /x/a.db }\n', 'x.yaml', NO_ENV).collector!.store).toEqual({
      type: 'sqlite',
      path: '/x/a.db',
    });
    const pgCfg = parseConfigText(
      'collector:\n  store:\n    type: postgres\n    url: "postgres://app:${env:PGPW}@db:5432/audit"\n    migrate_url: postgres://owner@db/audit\n',
      'x.yaml',
      { PGPW: PASSWORD },
    ).collector!;
    expect(pgCfg.store).toEqual({
      type: 'postgres',
      url: `postgres://app:${PASSWORD}@db:5432/audit`,
      migrate_url: 'postgres://owner@db/audit',
      pool_size: 10,
      statement_timeout: 10_000,
    });
    expect(describeStore(pgCfg)).toBe('postgres postgres://app:***@db:5432/audit');
    expect(
      parseConfigText('collector:\n  store: { type: postgres, url: "postgres://a@h/d", pool_size: 3, statement_timeout: 2s }\n', 'x.yaml', NO_ENV)
        .collector!.store,
    ).toMatchObject({ pool_size: 3, statement_timeout: 2000 });
  });

  it('refuses keys of another store type and bad URLs, at file:line:col, without echoing the URL', () => {
    let e = cfgError('collector:\n  store: { type: postgres, url: "postgres://a@h/d", path: /x }\n');
    expect(e.message).toMatch(/collector\.store\.path: not used by the postgres store/);
    expect([e.line, e.col]).toEqual([2, 53]);
    e = cfgError('collector:\n  store: { type: sqlite, url: "postgres://a@h/d" }\n');
    expect(e.message).toMatch(/collector\.store\.url: not used by the sqlite store/);
    e = cfgError('collector:\n  store: { type: null, path: /x }\n');
    expect(e.message).toMatch(/not used by the null store/);
    e = cfgError('collector:\n  store: { type: postgres }\n');
    expect(e.message).toMatch(/needs "url"/);
    for (const url of [`mysql://u:\${env:PGPW}@h/d`, `postgres://u:\${env:PGPW}@/d`, `postgres://u:\${env:PGPW}@h`, 'not a url ${env:PGPW}']) {
      e = cfgError(`collector:\n  store: { type: postgres, url: "${url}" }\n`);
      expect(e.code).toBe('config_schema');
      expect(e.message).toMatch(/collector\.store\.url/);
      expect(e.message).not.toContain(PASSWORD);
    }
    e = cfgError('collector:\n  store: { type: postgres, url: "postgres://a@h/d", statement_timeout: 10ms }\n');
    expect(e.message).toMatch(/statement_timeout: must be at least/);
    e = cfgError('collector:\n  store: { type: mongodb }\n');
    expect(e.code).toBe('config_schema');
  });

  it('openStore opens each configured type', async () => {
    const db = await freshDb();
    const cfg = parseConfigText(
      `collector:\n  store: { type: postgres, url: "${db.appUrl}", migrate_url: "${db.ownerUrl}", pool_size: 2 }\n`,
      'x.yaml',
      NO_ENV,
    ).collector!;
    const s = await openStore(cfg);
    try {
      expect(await s.listStreams()).toEqual([]);
    } finally {
      await s.close();
    }
    const n = await openStore(parseConfigText('collector:\n  store: { type: null }\n', 'x.yaml', NO_ENV).collector!);
    expect(n).toBeInstanceOf(NullAuditStore);
    await n.close();
  });
});

describe('postgres store: partitions and indexes', () => {
  let db: TestDatabase;
  let store: PostgresAuditStore;

  beforeAll(async () => {
    db = await freshDb();
    store = await openPostgresStore({ url: db.appUrl, migrateUrl: db.ownerUrl, poolSize: 2 });
  });
  afterAll(async () => {
    await store?.close();
  });

  const partitions = () =>
    asRole(db, 'admin', async (c) =>
      (
        await c.query(`SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound
                       FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                       WHERE i.inhparent = 'sealtrail.records'::regclass ORDER BY 1`)
      ).rows as { relname: string; bound: string }[],
    );

  it('has the current and the next month (by the database clock) ready after start', async () => {
    const months = await asRole(db, 'admin', async (c) =>
      (
        await c.query(`SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY_MM') AS cur,
                              to_char((now() AT TIME ZONE 'UTC') + interval '1 month', 'YYYY_MM') AS nxt`)
      ).rows[0],
    );
    const names = (await partitions()).map((p) => p.relname);
    expect(names).toEqual(expect.arrayContaining([`records_${months.cur}`, `records_${months.nxt}`]));
  });

  it('creates partitions for months far apart, each with its unique (stream, seq) index and TRUNCATE trigger', async () => {
    await asRole(db, 'owner', async (c) => {
      for (const m of ['1999-12-15', '2019-03-01', '2041-11-30', '2041-11-02']) {
        await c.query('SELECT sealtrail.create_records_partition($1)', [m]);
      }
      // Batches stored in those months (as if received then) land in them
      // and are served like any other. Each record must belong to a stored
      // batch of its own month.
      for (const [at, stream] of [
        ['1999-12-31T23:59:59.999Z', 'm-1999'],
        ['2019-03-15T00:00:00Z', 'm-2019'],
        ['2041-11-30T12:00:00Z', 'm-2041'],
      ] as const) {
        await c.query(
          `INSERT INTO sealtrail.batches (stream, batch, first_seq, last_seq, checkpoint, digest, received_at, stored_at)
           VALUES ($1, 0, 0, 1, 'cp', 'd', $2, $2)`,
          [stream, at],
        );
        await c.query(
          `INSERT INTO sealtrail.records (stored_at, stream, seq, batch, time, time_key, canonical, leaf, mac, key_id, tenant)
           VALUES ($1, $2, 0, 0, '2020-01-01T00:00:00Z', $3, '{}', '\\x00', 'm', 'k1', 'acme'),
                  ($1, $2, 1, 0, '2020-01-01T00:00:00Z', $3, '{}', '\\x00', 'm', 'k1', 'acme')`,
          [at, stream, 1_577_836_800_000_000 + Number(stream.slice(2))],
        );
      }
      // The same seq again, in its own month or another one: refused.
      await expect(
        c.query(`INSERT INTO sealtrail.records (stored_at, stream, seq, batch, time, time_key, canonical, leaf, mac, key_id)
                 VALUES ('2019-03-20', 'm-2019', 1, 0, 't', 0, '{}', '\\x00', 'm', 'k1')`),
      ).rejects.toThrow(/duplicate key/);
      await expect(
        c.query(`INSERT INTO sealtrail.records (stored_at, stream, seq, batch, time, time_key, canonical, leaf, mac, key_id)
                 VALUES ('2041-11-02', 'm-2019', 1, 0, 't', 0, '{}', '\\x00', 'm', 'k1')`),
      ).rejects.toThrow(/does not belong to a stored batch/);
      await expect(
        c.query(`INSERT INTO sealtrail.records (stored_at, stream, seq, batch, time, time_key, canonical, leaf, mac, key_id)
                 VALUES ('2060-01-01', 'm-2019', 9, 0, 't', 0, '{}', '\\x00', 'm', 'k1')`),
      ).rejects.toThrow(/no partition/);
    });
    const parts = await partitions();
    const byName = new Map(parts.map((p) => [p.relname, p.bound]));
    expect(byName.get('records_1999_12')).toBe("FOR VALUES FROM ('1999-12-01 00:00:00+00') TO ('2000-01-01 00:00:00+00')");
    expect(byName.has('records_2019_03')).toBe(true);
    expect(byName.has('records_2041_11')).toBe(true);
    expect(parts.filter((p) => p.relname === 'records_2041_11')).toHaveLength(1);

    const checks = await asRole(db, 'admin', async (c) =>
      (
        await c.query(
          `SELECT c.relname,
                  EXISTS (SELECT 1 FROM pg_index x JOIN pg_class ic ON ic.oid = x.indexrelid
                          WHERE x.indrelid = c.oid AND x.indisunique AND ic.relname = c.relname || '_stream_seq') AS uniq,
                  EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = c.relname || '_no_truncate') AS trunc,
                  EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = c.relname || '_in_batch') AS inbatch
           FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'sealtrail.records'::regclass`,
        )
      ).rows as { relname: string; uniq: boolean; trunc: boolean; inbatch: boolean }[],
    );
    expect(checks.length).toBeGreaterThanOrEqual(5);
    for (const r of checks) expect([r.relname, r.uniq, r.trunc, r.inbatch]).toEqual([r.relname, true, true, true]);

    expect((await store.readStreamRecords('m-2019', 0, 10)).map((r) => r.seq)).toEqual([0, 1]);
    const acme = await store.queryRecords({ filters: { tenant: 'acme' }, order: 'desc', limit: 10 });
    expect(acme.map((r) => `${r.stream}/${r.seq}`)).toEqual(['m-2041/1', 'm-2041/0', 'm-2019/1', 'm-2019/0', 'm-1999/1', 'm-1999/0']);
  });

  it('serves every filter from an index', async () => {
    // Each filter column holds a rare "needle" value on a few records among
    // many, as real audit data does; after ANALYZE the planner must reach
    // them through that column's index, not by scanning the table.
    const b = new BatchBuilder({ stream: 'pg-idx', hmacKey: HMAC_KEY });
    const cols = INDEXED_FILTER_COLUMNS;
    const needleFields = (col: string): RecordFields => {
      switch (col) {
        case 'tenant':
          return { tenant: 'needle' };
        case 'actor_id':
          return { actor: { id: 'needle', type: 'user' } };
        case 'agent_id':
          return { agent: { id: 'needle' } };
        case 'event_type':
          return { event_type: 'needle' };
        case 'tool':
          return { tool: { name: 'needle' } };
        case 'outcome':
          return { outcome: 'needle' };
        case 'model':
          return { model: { name: 'needle' } };
        case 'trace_id':
          return { trace_id: 'needle' };
        case 'session_id':
          return { session_id: 'needle' };
        case 'resource_id':
        case 'resource_type':
          return { resource: { type: 'needle', id: 'needle' } };
        case 'approval':
          return { approval: { status: 'needle' } };
        case 'data_classification':
          return { data_classification: 'needle' };
      }
      throw new Error(`no needle for ${col}`);
    };
    const total = 30_000;
    const fields = (seq: number): RecordFields => {
      const f: RecordFields = {
        resource: { type: 'file', id: `f-${seq % 500}` },
        agent: { id: `agent-${seq % 50}` },
        approval: { status: seq % 2 ? 'granted' : 'pending' },
        data_classification: seq % 3 ? 'internal' : 'public',
        trace_id: `t-${seq}`,
        session_id: `s-${seq % 1000}`,
      };
      if (seq % 1000 === 7) Object.assign(f, needleFields(cols[(seq / 1000) % cols.length | 0]!));
      return f;
    };
    while (b.seq < total) await ingest(store, b, 5000, fields);
    await asRole(db, 'owner', (c) => c.query('ANALYZE sealtrail.records'));

    // Everything above was stored this month, into this month's partition;
    // the other (near-empty) partitions may be planned any way.
    const cur = await asRole(db, 'admin', async (c) =>
      (await c.query(`SELECT 'records_' || to_char(now() AT TIME ZONE 'UTC', 'YYYY_MM') AS p`)).rows[0].p as string,
    );
    // The partition's part of the one GIN index over every filter column (schema v3).
    const gin = await asRole(db, 'admin', async (c) =>
      (
        await c.query(
          `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
           WHERE i.inhparent = 'sealtrail.records_filters'::regclass AND c.relname LIKE $1 || '%'`,
          [cur],
        )
      ).rows[0].relname as string,
    );
    expect(gin).toMatch(new RegExp(`^${cur}_`));
    await asRole(db, 'app', async (c) => {
      const explain = async (sql: string) => (await c.query(`EXPLAIN ${sql}`)).rows.map((r) => r['QUERY PLAN'] as string).join('\n');
      for (const col of cols) {
        for (const dir of ['', ' DESC']) {
          const plan = await explain(
            `SELECT stream, seq FROM sealtrail.records WHERE ${col} = 'needle' ORDER BY time_key${dir}, stream${dir}, seq${dir} LIMIT 101`,
          );
          expect(plan, `${col}${dir}:\n${plan}`).toContain(`Bitmap Index Scan on ${gin}`);
          expect(plan, `${col}${dir}`).not.toContain(`Seq Scan on ${cur}`);
        }
      }
      // Two rare values together: one bitmap scan of the same index.
      const both = await explain(`SELECT seq FROM sealtrail.records WHERE tenant = 'needle' AND outcome = 'needle' ORDER BY time_key LIMIT 101`);
      expect(both, both).toContain(`Bitmap Index Scan on ${gin}`);
      // A value most records share is found walking the time index in order, without a sort of its matches.
      const common = await explain(`SELECT seq FROM sealtrail.records WHERE stream = 'pg-idx' ORDER BY time_key, stream, seq LIMIT 101`);
      expect(common, common).toMatch(/time_key_stream_seq_idx|Bitmap Index Scan/);
      expect(common, common).not.toContain(`Seq Scan on ${cur}`);
      // The unfiltered page, a time range and a stream's records walk their indexes too.
      for (const [sql, idx] of [
        ['SELECT seq FROM sealtrail.records ORDER BY time_key DESC, stream DESC, seq DESC LIMIT 101', 'time_key_stream_seq_idx'],
        [
          'SELECT seq FROM sealtrail.records WHERE time_key >= 1767225600000000 AND time_key < 1767225610000000 ORDER BY time_key, stream, seq LIMIT 101',
          'time_key_stream_seq_idx',
        ],
        [`SELECT seq FROM sealtrail.records WHERE stream = 'pg-idx' AND seq >= 20000 ORDER BY seq LIMIT 1000`, 'stream_seq'],
      ] as const) {
        const plan = await explain(sql);
        expect(plan, plan).toContain(`${cur}_${idx}`);
        expect(plan, plan).not.toContain(`Seq Scan on ${cur}`);
      }
    });
    // And the needles come back through the store.
    for (const col of cols) {
      const field = { tenant: 'tenant', actor_id: 'actorId', agent_id: 'agentId', event_type: 'eventType', tool: 'tool', outcome: 'outcome',
        model: 'model', trace_id: 'traceId', session_id: 'sessionId', resource_id: 'resourceId', resource_type: 'resourceType',
        approval: 'approval', data_classification: 'dataClassification' }[col]!;
      const rows = await store.queryRecords({ filters: { [field]: 'needle' }, limit: 1000 });
      expect(rows.length, col).toBeGreaterThan(0);
    }
  });
});

describe('postgres store: a connection lost during an append', () => {
  it('fails that append as store_unavailable, keeps the process alive, writes nothing, and the next append succeeds', async () => {
    const db = await freshDb();
    const store = await openPostgresStore({ url: db.appUrl, migrateUrl: db.ownerUrl, poolSize: 2 });
    const blocker = await db.connect('admin');
    const watcher = await db.connect('admin');
    try {
      const b = new BatchBuilder({ stream: 'pg-lost', hmacKey: HMAC_KEY });
      await ingest(store, b, 3);
      const state = await store.getStreamState(b.stream);
      const input = appendInputOf(
        verifyBatch(b.next(2000), state, { verifiers: [parseVerifierKey(b.vkey)], hmacKeys: new Map([['k1', HMAC_KEY]]) }),
      );
      for (const when of ['waiting for the stream lock', 'inside the transaction'] as const) {
        // Hold the stream's lock, so the append waits on it where we can find and end its backend.
        await blocker.query('BEGIN');
        await blocker.query(`SELECT pg_advisory_xact_lock(hashtextextended('sealtrail/stream/' || $1, 0))`, [b.stream]);
        const pending = store.appendBatch(input).then(
          () => undefined,
          (err: unknown) => err,
        );
        let pid: number | undefined;
        for (let i = 0; i < 200 && pid === undefined; i++) {
          // From another session: pg_stat_activity is a snapshot per transaction, and the blocker is inside one.
          const rows = await watcher.query(
            `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'sealtrail-collector'
               AND wait_event_type = 'Lock' AND wait_event = 'advisory'`,
          );
          pid = rows.rows[0]?.pid as number | undefined;
          if (pid === undefined) await sleep(25);
        }
        expect(pid, when).toBeDefined();
        if (when === 'inside the transaction') {
          // Let it take the lock first, then end it while it streams its COPY or writes the head.
          await blocker.query('COMMIT');
          await blocker.query('SELECT pg_terminate_backend($1)', [pid]);
        } else {
          await blocker.query('SELECT pg_terminate_backend($1)', [pid]);
          await blocker.query('COMMIT');
        }
        const err = await pending;
        if (when === 'inside the transaction' && err === undefined) {
          // The append may have committed before the signal landed; then it is stored whole.
          expect((await store.getStreamState(b.stream))?.treeSize).toBe(2003);
          return;
        }
        expect(err, when).toBeInstanceOf(StoreError);
        expect((err as StoreError).code, when).toBe('store_unavailable');
        expect((err as Error).message, when).not.toContain(PASSWORD);
        // Nothing of the batch was written.
        expect((await store.getStreamState(b.stream))?.treeSize, when).toBe(3);
        const count = await blocker.query('SELECT count(*)::int AS n FROM sealtrail.records WHERE stream = $1', [b.stream]);
        expect(count.rows[0].n, when).toBe(3);
      }
      // The pool replaced the lost connection: the same batch goes in now.
      await store.appendBatch(input);
      expect((await store.getStreamState(b.stream))?.treeSize).toBe(2003);
      expect((await store.readStreamRecords(b.stream, 2000, 10)).map((r) => r.seq)).toEqual([2000, 2001, 2002]);
    } finally {
      await blocker.end();
      await watcher.end();
      await store.close();
    }
  });
});
