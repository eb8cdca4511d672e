import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { poolConfig } from '../../src/collector/store/postgres-connection.js';
import { migratePostgres, openPostgresStore, type PostgresAuditStore } from '../../src/collector/store/postgres.js';
import { StoreError } from '../../src/collector/store/types.js';
import { appendInputOf, verifyBatch } from '../../src/collector/verify-batch.js';
import { parseVerifierKey } from '../../src/core/note.js';
import { issue, makeCa, type Authority } from '../helpers/certs.js';
import { BatchBuilder } from '../helpers/collector-batches.js';
import { PG_ADMIN_URL } from '../helpers/postgres.js';
import { startPostgresTlsServer, type PostgresTlsServer } from '../helpers/postgres-tls-server.js';

/**
 * docs/postgres.md "TLS to Postgres (`sslmode`)" against real connections:
 * a private Postgres 15 that speaks TLS (hostssl-only pg_hba, scram
 * passwords), reached through the store's own code (openPostgresStore,
 * migratePostgres, poolConfig). Its certificate is issued by a private CA
 * for IP 127.0.0.1 only, so a URL naming `localhost` reaches the same server
 * under a name the certificate does not have. test/unit/postgres-tls-url.test.ts
 * holds the same table at the level of the options node-postgres derives.
 */

const PASSWORD = 'canary-PgTls-4e91b7'; // scram checks it; no message may carry it
const HMAC_KEY = Buffer.alloc(32, 9);
const dir = mkdtempSync(join(tmpdir(), 'sealtrail-pgtls-'));
let server: PostgresTlsServer | undefined;
let ca: Authority;
let otherCa: Authority;

beforeAll(async () => {
  ca = makeCa(dir, 'pg-ca');
  otherCa = makeCa(dir, 'pg-other-ca');
  const cert = issue(ca, 'pg-server', { san: ['IP:127.0.0.1'], usage: ['serverAuth'] });
  server = await startPostgresTlsServer({ cert: cert.cert, key: cert.key });
  const admin = await server.admin();
  try {
    await admin.query(`CREATE ROLE owner LOGIN PASSWORD '${PASSWORD}'`);
    await admin.query(`CREATE ROLE app LOGIN PASSWORD '${PASSWORD}'`);
    for (const db of ['sealtrail', 'sealtrail_modes']) {
      await admin.query(`CREATE DATABASE ${db} OWNER owner`);
      await admin.query(`REVOKE ALL ON DATABASE ${db} FROM PUBLIC`);
      await admin.query(`GRANT CONNECT ON DATABASE ${db} TO app`);
    }
  } finally {
    await admin.end();
  }
});

afterAll(() => {
  try {
    server?.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

interface UrlOpts {
  user?: 'app' | 'owner';
  host?: string;
  db?: string;
  /** CA file for sslrootcert; none: Node's public roots */
  root?: Authority;
}

function url(params: string, o: UrlOpts = {}): string {
  const q = [params, ...(o.root ? [`sslrootcert=${encodeURIComponent(o.root.cert)}`] : [])].filter((s) => s !== '').join('&');
  return `postgres://${o.user ?? 'app'}:${PASSWORD}@${o.host ?? '127.0.0.1'}:${server!.port}/${o.db ?? 'sealtrail'}?${q}`;
}

const stores: PostgresAuditStore[] = [];
async function open(appUrl: string, migrateUrl?: string): Promise<PostgresAuditStore> {
  const s = await openPostgresStore({ url: appUrl, ...(migrateUrl !== undefined ? { migrateUrl } : {}), poolSize: 2, connectTimeoutMs: 5000 });
  stores.push(s);
  return s;
}
afterAll(async () => {
  for (const s of stores) await s.close();
});

async function failure(p: Promise<unknown>): Promise<Error & { code?: unknown; cause?: { code?: unknown } }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { code?: unknown; cause?: { code?: unknown } };
  }
  throw new Error('expected the connection to be refused, but it was made');
}

/** What a refusal says once it reaches the caller, whichever layer raised it. */
function tlsCode(err: { code?: unknown; cause?: { code?: unknown } }): unknown {
  return err instanceof StoreError ? err.cause?.code : err.code;
}

/** Asked on a connection made from the store's pool config, so the server's own view is read. */
async function serverSeesTls(u: string): Promise<{ ssl: boolean; version: string | null }> {
  const pool = new pg.Pool(poolConfig(u, 1, 5000, 5000));
  try {
    const { rows } = await pool.query<{ ssl: boolean; version: string | null }>(
      'SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
    );
    return rows[0]!;
  } finally {
    await pool.end();
  }
}

const NOT_TRUSTED = 'UNABLE_TO_VERIFY_LEAF_SIGNATURE';
const WRONG_NAME = 'ERR_TLS_CERT_ALTNAME_INVALID';

describe('sslmode=verify-full with the CA that signed the server certificate', () => {
  it('migrates, opens, writes and reads, all over TLS the server reports', async () => {
    const b = new BatchBuilder({ stream: 'pg-tls', hmacKey: HMAC_KEY });
    const store = await open(url('sslmode=verify-full', { root: ca }), url('sslmode=verify-full', { user: 'owner', root: ca }));
    await store.ping();
    const state = await store.getStreamState(b.stream);
    expect(state).toBeUndefined();
    const input = appendInputOf(
      verifyBatch(b.next(3), state, { verifiers: [parseVerifierKey(b.vkey)], hmacKeys: new Map([['k1', HMAC_KEY]]) }),
    );
    await store.appendBatch(input);
    const rows = await store.readStreamRecords(b.stream, 0, 10);
    expect(rows.map((r) => r.canonical)).toEqual(input.records.map((r) => r.canonical));

    // The store's own idle connections, as the server sees them.
    const admin = await server!.admin('sealtrail');
    try {
      const { rows: conns } = await admin.query<{ ssl: boolean; version: string }>(
        `SELECT s.ssl, s.version FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
          WHERE a.usename = 'app' AND a.application_name = 'sealtrail-collector'`,
      );
      expect(conns.length).toBeGreaterThan(0);
      for (const c of conns) expect(c).toMatchObject({ ssl: true, version: expect.stringMatching(/^TLSv1\.[23]$/) });
      const { rows: migrations } = await admin.query<{ n: number }>('SELECT count(*)::int AS n FROM sealtrail.schema_migrations');
      expect(migrations[0]!.n).toBeGreaterThan(0);
    } finally {
      await admin.end();
    }
    expect(await serverSeesTls(url('sslmode=verify-full', { root: ca }))).toMatchObject({ ssl: true });
  });
});

describe('a server certificate the collector must not accept', () => {
  beforeAll(async () => {
    await migratePostgres(url('sslmode=verify-full', { user: 'owner', db: 'sealtrail_modes', root: ca }), 'app');
  });

  it('another CA in sslrootcert: store_unavailable naming the host and the TLS failure, never the password', async () => {
    const err = await failure(open(url('sslmode=verify-full', { root: otherCa }), url('sslmode=verify-full', { user: 'owner', root: otherCa })));
    expect(err).toBeInstanceOf(StoreError);
    expect(err.code).toBe('store_unavailable');
    expect(tlsCode(err)).toBe(NOT_TRUSTED);
    expect(err.message).toContain(`@127.0.0.1:${server!.port}/`);
    expect(err.message).toMatch(/unable to verify the first certificate/);
    expect(err.message).not.toContain(PASSWORD);
  });

  it('a name the certificate lacks: store_unavailable naming the host and the mismatch, never the password', async () => {
    const at = { host: 'localhost', root: ca };
    const err = await failure(open(url('sslmode=verify-full', at), url('sslmode=verify-full', { ...at, user: 'owner' })));
    expect(err).toBeInstanceOf(StoreError);
    expect(err.code).toBe('store_unavailable');
    expect(tlsCode(err)).toBe(WRONG_NAME);
    expect(err.message).toContain(`@localhost:${server!.port}/`);
    expect(err.message).toMatch(/does not match certificate's altnames: Host: localhost/);
    expect(err.message).not.toContain(PASSWORD);
  });

  // Without migrate_url (replicas) the refusal comes from checkSchema's first read.
  it('without migrate_url the refusal is a store_unavailable StoreError as well', async () => {
    for (const u of [url('sslmode=verify-full', { root: otherCa }), url('sslmode=verify-full', { host: 'localhost', root: ca })]) {
      const err = await failure(open(u));
      expect(tlsCode(err)).toMatch(/^(UNABLE_TO_VERIFY_LEAF_SIGNATURE|ERR_TLS_CERT_ALTNAME_INVALID)$/);
      expect(err).toBeInstanceOf(StoreError);
      expect(err.code).toBe('store_unavailable');
      expect(err.message).toContain(`:${server!.port}/`);
      expect(err.message).not.toContain(PASSWORD);
    }
  });

  it('prefer, require and verify-ca refuse a certificate without the URL host, exactly like verify-full', async () => {
    for (const mode of ['prefer', 'require', 'verify-ca', 'verify-full']) {
      const at = { host: 'localhost', root: ca, db: 'sealtrail_modes' };
      const err = await failure(open(url(`sslmode=${mode}`, at), url(`sslmode=${mode}`, { ...at, user: 'owner' })));
      expect({ mode, code: err.code, tls: tlsCode(err) }).toEqual({ mode, code: 'store_unavailable', tls: WRONG_NAME });
    }
  });

  it('require without sslrootcert refuses the private CA (Node trusts public roots only)', async () => {
    const err = await failure(open(url('sslmode=require', { db: 'sealtrail_modes' }), url('sslmode=require', { user: 'owner', db: 'sealtrail_modes' })));
    expect(err.code).toBe('store_unavailable');
    expect(tlsCode(err)).toBe(NOT_TRUSTED);
  });

  it('no-verify connects to the misnamed, untrusted server: encrypted, nothing verified', async () => {
    for (const o of [{ host: 'localhost', db: 'sealtrail_modes' }, { root: otherCa, db: 'sealtrail_modes' }]) {
      const store = await open(url('sslmode=no-verify', o));
      await store.ping();
      expect(await serverSeesTls(url('sslmode=no-verify', o))).toMatchObject({ ssl: true });
    }
  });

  it('disable: the server itself refuses a connection without TLS (hostssl only)', async () => {
    for (const params of ['sslmode=disable', '']) {
      const err = await failure(open(url(params, { db: 'sealtrail_modes' })));
      expect(err).toBeInstanceOf(StoreError);
      expect(err.code).toBe('store_unavailable');
      expect(tlsCode(err)).toBe('28000');
      expect(err.message).toMatch(/no pg_hba\.conf entry for host "127\.0\.0\.1", user "app", database "sealtrail_modes", no encryption/);
      expect(err.message).not.toContain(PASSWORD);
    }
  });
});

describe('uselibpqcompat=true (pg-connection-string >= 2.8): libpq semantics', () => {
  const modes = { db: 'sealtrail_modes' };

  it('require without sslrootcert connects to an untrusted, misnamed server, encrypted', async () => {
    for (const o of [{ ...modes, host: 'localhost' }, modes]) {
      const store = await open(url('uselibpqcompat=true&sslmode=require', o));
      await store.ping();
      expect(await serverSeesTls(url('uselibpqcompat=true&sslmode=require', o))).toMatchObject({ ssl: true });
    }
  });

  it('require and verify-ca with sslrootcert verify the CA but not the host name', async () => {
    for (const mode of ['require', 'verify-ca']) {
      const store = await open(url(`uselibpqcompat=true&sslmode=${mode}`, { ...modes, host: 'localhost', root: ca }));
      await store.ping();
      const err = await failure(open(url(`uselibpqcompat=true&sslmode=${mode}`, { ...modes, root: otherCa })));
      expect({ mode, tls: tlsCode(err) }).toEqual({ mode, tls: NOT_TRUSTED });
    }
  });

  it('verify-full still verifies the host name', async () => {
    const err = await failure(open(url('uselibpqcompat=true&sslmode=verify-full', { ...modes, host: 'localhost', root: ca })));
    expect(tlsCode(err)).toBe(WRONG_NAME);
  });
});

describe('prefer against a server without TLS (the shared test server, ssl off)', () => {
  // Read-only use: one refused TLS request, nothing changed on that server.
  function sharedWith(params: Record<string, string>): string {
    const u = new URL(PG_ADMIN_URL);
    for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
    return u.toString();
  }

  beforeAll(async () => {
    const c = new pg.Client({ connectionString: sharedWith({ sslmode: 'disable' }), connectionTimeoutMillis: 10_000 });
    c.on('error', () => {});
    try {
      await c.connect();
    } catch (err) {
      throw new Error(`the shared Postgres at ${new URL(PG_ADMIN_URL).host} is not reachable: ${(err as Error).message}`, { cause: err });
    }
    try {
      const { rows } = await c.query<{ ssl: string }>('SHOW ssl');
      if (rows[0]!.ssl !== 'off') throw new Error(`the shared Postgres has ssl ${rows[0]!.ssl}; these cases need a server without TLS`);
    } finally {
      await c.end();
    }
  });

  it('is refused with and without uselibpqcompat: node-postgres never falls back to plain text', async () => {
    const cases: Record<string, string>[] = [{ sslmode: 'prefer' }, { sslmode: 'prefer', uselibpqcompat: 'true' }];
    for (const params of cases) {
      const err = await failure(open(sharedWith(params)));
      expect(err).toBeInstanceOf(StoreError);
      expect(err.code).toBe('store_unavailable');
      expect(err.message).toMatch(/The server does not support SSL connections$/);
    }
  });
});
