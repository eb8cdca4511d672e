/**
 * The life of the Postgres schema: migrations run once, as the owner role,
 * under an advisory lock; and the check every collector makes at open that
 * the schema is exactly this build's and that its own role cannot alter
 * history (docs/postgres.md).
 */
import pg from 'pg';
import { PG_DEFAULTS } from './postgres-defaults.js';
import { isConnectionError, redactPostgresUrl, sqlState, typeParsers, unavailable, type StoreLogger } from './postgres-connection.js';
import { appRoleGrants, BOOTSTRAP_SQL, MIGRATION_LOCK, POSTGRES_MIGRATIONS, type PgMigration } from './postgres-migrations.js';
import { StoreError } from './types.js';

const { escapeIdentifier } = pg;

/** What the check needs of a store: its reads, its name for messages, the version it was built for. */
export interface SchemaCheckTarget {
  read<R extends pg.QueryResultRow>(sql: string): Promise<R[]>;
  displayUrl: string;
  latest: number;
  logger: StoreLogger | undefined;
}

/**
 * Refuses a schema that is missing, older or newer than `latest`
 * (StoreError store_schema_missing, store_schema_outdated,
 * store_schema_newer); warns when the role may UPDATE, DELETE or TRUNCATE.
 */
export async function checkSchema(t: SchemaCheckTarget): Promise<void> {
  let version: number | null;
  try {
    const rows = await t.read<{ v: number | null }>('SELECT max(version)::int AS v FROM sealtrail.schema_migrations');
    version = rows[0]?.v ?? null;
  } catch (err) {
    const state = sqlState(err);
    // undefined_table, invalid_schema_name: never migrated; insufficient_privilege: never granted.
    if (err instanceof StoreError) throw err;
    if (state === '42P01' || state === '3F000' || state === '42501') {
      throw new StoreError(
        'store_schema_missing',
        `postgres ${t.displayUrl}: the sealtrail schema is missing or not readable by this role; ` +
          'set collector.store.migrate_url to the owner role so the collector migrates it (see docs/postgres.md)',
        { cause: err },
      );
    }
    if (isConnectionError(err)) throw unavailable(t.displayUrl, err);
    throw err;
  }
  const latest = t.latest;
  if (version === null || version < latest) {
    throw new StoreError(
      'store_schema_outdated',
      `postgres ${t.displayUrl}: schema version ${version ?? 0} but this sealtrail needs ${latest}; ` +
        'set collector.store.migrate_url to the owner role so the collector migrates it (see docs/postgres.md)',
    );
  }
  if (version > latest) {
    throw new StoreError(
      'store_schema_newer',
      `postgres ${t.displayUrl}: schema version ${version} is newer than this sealtrail understands (${latest}); upgrade sealtrail`,
    );
  }
  const priv = await t.read<{ role: string; can: boolean }>(
    `SELECT current_user AS role,
            has_table_privilege('sealtrail.records', 'UPDATE') OR has_table_privilege('sealtrail.records', 'DELETE')
         OR has_table_privilege('sealtrail.records', 'TRUNCATE') OR has_table_privilege('sealtrail.stream_heads', 'UPDATE') AS can`,
  );
  if (priv[0]?.can) {
    t.logger?.warn(
      { store: t.displayUrl, role: priv[0].role },
      `postgres role ${priv[0].role} may UPDATE, DELETE or TRUNCATE the audit tables (it owns them, is a superuser or was granted it); ` +
        'only the triggers stop it from altering history: connect with an app role that has SELECT and INSERT only',
    );
  }
}

/**
 * Runs the pending migrations as the owner role, all in one transaction
 * under an advisory lock (collectors starting together queue here and the
 * later ones find nothing to do), then grants `appRole` its privileges,
 * unless it is the owner itself. Returns the schema version and the owner.
 */
export async function migratePostgres(
  migrateUrl: string,
  appRole: string | null,
  opts: { migrations?: readonly PgMigration[]; connectTimeoutMs?: number } = {},
): Promise<{ version: number; owner: string }> {
  const migrations = opts.migrations ?? POSTGRES_MIGRATIONS;
  const latest = migrations.reduce((m, x) => Math.max(m, x.version), 0);
  const client = new pg.Client({
    connectionString: migrateUrl,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? PG_DEFAULTS.connectTimeoutMs,
    application_name: 'sealtrail-migrate',
    types: typeParsers,
  });
  // Errors after connect (server restart) surface through the query that fails.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (err) {
    throw unavailable(migrateUrl, err);
  }
  let owner = '';
  try {
    await client.query('BEGIN');
    try {
      // Index builds on big tables may take long; the owner's session decides.
      await client.query('SET LOCAL statement_timeout = 0');
      await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [MIGRATION_LOCK]);
      owner = (await client.query<{ r: string }>('SELECT current_user AS r')).rows[0]!.r;
      await client.query(BOOTSTRAP_SQL);
      const { rows } = await client.query<{ v: number | null }>(
        'SELECT max(version)::int AS v FROM sealtrail.schema_migrations',
      );
      const current = rows[0]?.v ?? 0;
      if (current > latest) {
        throw new StoreError(
          'store_schema_newer',
          `postgres ${redactPostgresUrl(migrateUrl)}: schema version ${current} is newer than this sealtrail understands (${latest}); upgrade sealtrail`,
        );
      }
      for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
        if (m.version <= current) continue;
        await client.query(m.sql);
        await client.query('INSERT INTO sealtrail.schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      }
      if (appRole !== null && appRole !== owner) await client.query(appRoleGrants(escapeIdentifier(appRole)));
      await client.query('SELECT sealtrail.ensure_records_partitions()');
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    }
  } catch (err) {
    if (err instanceof StoreError) throw err;
    if (isConnectionError(err)) throw unavailable(migrateUrl, err);
    const msg = err instanceof Error ? err.message : String(err);
    throw new StoreError('store_migration_failed', `postgres ${redactPostgresUrl(migrateUrl)}: migration failed: ${msg}`, {
      cause: err,
    });
  } finally {
    await client.end().catch(() => {});
  }
  return { version: latest, owner };
}
