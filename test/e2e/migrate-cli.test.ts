import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POSTGRES_MIGRATIONS } from '../../src/collector/store/postgres-migrations.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { freePort, runCli } from '../helpers/procs.js';

/** `sealtrail migrate`: the upgrade run once, alone, before replicas roll out (docs/postgres.md). */
describe('sealtrail migrate', () => {
  const PASSWORD = 'canary-Migrate-Pw-91c2';
  let db: TestDatabase;
  let dir: string;
  beforeAll(async () => {
    db = await createTestDatabase({ password: PASSWORD });
    dir = mkdtempSync(join(tmpdir(), 'sealtrail-migrate-'));
  });
  afterAll(async () => {
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  const config = (name: string, store: string): string => {
    const file = join(dir, name);
    writeFileSync(file, `collector:\n  store: ${store}\n`);
    return file;
  };

  it('applies every pending version as the owner, grants the app role, and is a no-op the second time', async () => {
    const file = config('pg.yaml', `{ type: postgres, url: "${db.appUrl}", migrate_url: "${db.ownerUrl}" }`);
    const latest = Math.max(...POSTGRES_MIGRATIONS.map((m) => m.version));
    for (let run = 0; run < 2; run++) {
      const r = await runCli(['migrate', '--config', file]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(`schema version ${latest}`);
      expect(r.stdout + r.stderr).not.toContain(PASSWORD);
    }
    const c = await db.connect('app');
    try {
      const v = await c.query('SELECT version, applied_by FROM sealtrail.schema_migrations ORDER BY version');
      expect(v.rows.map((x) => x.version)).toEqual(POSTGRES_MIGRATIONS.map((m) => m.version));
      expect(new Set(v.rows.map((x) => x.applied_by))).toEqual(new Set([db.owner]));
      const can = await c.query(`SELECT has_table_privilege('sealtrail.records', 'INSERT') AS i, has_table_privilege('sealtrail.records', 'UPDATE') AS u`);
      expect(can.rows[0]).toEqual({ i: true, u: false });
    } finally {
      await c.end();
    }
  });

  it('refuses a postgres store without migrate_url (usage, exit 2) and names an unreachable server without its password (exit 1)', async () => {
    const noOwner = await runCli(['migrate', '--config', config('no-owner.yaml', `{ type: postgres, url: "${db.appUrl}" }`)]);
    expect(noOwner.code).toBe(2);
    expect(noOwner.stderr).toMatch(/migrate_url/);
    const port = await freePort();
    const down = `postgres://app:${PASSWORD}@127.0.0.1:${port}/x`;
    const r = await runCli(['migrate', '--config', config('down.yaml', `{ type: postgres, url: "${down}", migrate_url: "${down}" }`)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/store_unavailable/);
    expect(r.stdout + r.stderr).not.toContain(PASSWORD);
    expect((await runCli(['migrate'])).code).toBe(2);
    expect((await runCli(['migrate', '--config', join(dir, 'missing.yaml')])).code).toBe(2);
  });

  it('migrates a SQLite store by opening it; the null store has nothing to do', async () => {
    const sqlite = await runCli(['migrate', '--config', config('sqlite.yaml', `{ type: sqlite, path: "${join(dir, 'audit.db')}" }`)]);
    expect(sqlite.code, sqlite.stderr).toBe(0);
    expect(sqlite.stdout).toContain('schema current');
    const none = await runCli(['migrate', '--config', config('null.yaml', '{ type: "null" }')]);
    expect(none.code, none.stderr).toBe(0);
    expect(none.stdout).toMatch(/nothing to migrate/);
  });
});
