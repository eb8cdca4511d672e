import { randomBytes } from 'node:crypto';
import pg from 'pg';

/**
 * Test databases on the real Postgres server (127.0.0.1:5432, trust auth;
 * SEALTRAIL_TEST_PG_URL overrides the superuser URL). Nothing here skips:
 * when the server is unreachable the test fails and says how to start it,
 * because a silently skipped Postgres suite looks exactly like a green one.
 *
 * Each TestDatabase is a fresh database with its own owner and app roles.
 * Roles are cluster-wide, so their names carry a random suffix; drop()
 * removes the database and both roles.
 */

export const PG_ADMIN_URL = process.env.SEALTRAIL_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface TestDatabase {
  name: string;
  owner: string;
  app: string;
  /** superuser on this database */
  adminUrl: string;
  /** the owner role (runs migrations) */
  ownerUrl: string;
  /** the app role (SELECT and INSERT only, once migrated) */
  appUrl: string;
  /** a client as `who`; the caller ends it */
  connect(who: 'admin' | 'owner' | 'app'): Promise<pg.Client>;
  drop(): Promise<void>;
}

function withDb(url: string, db: string, user?: string, password?: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  if (user !== undefined) u.username = user;
  if (password !== undefined) u.password = password;
  return u.toString();
}

async function adminClient(url = PG_ADMIN_URL): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  c.on('error', () => {});
  try {
    await c.connect();
  } catch (err) {
    throw new Error(
      `Postgres is not reachable at ${new URL(url).host} (${(err as Error).message}). ` +
        'Start it: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start',
      { cause: err },
    );
  }
  return c;
}

export interface CreateOptions {
  /** put this password in the owner and app URLs (trust auth ignores it; for log-leak checks) */
  password?: string;
}

export async function createTestDatabase(opts: CreateOptions = {}): Promise<TestDatabase> {
  const suffix = randomBytes(5).toString('hex');
  const name = `sealtrail_test_${suffix}`;
  const owner = `sealtrail_owner_${suffix}`;
  const app = `sealtrail_app_${suffix}`;
  const admin = await adminClient();
  try {
    await admin.query(`CREATE ROLE ${owner} LOGIN`);
    await admin.query(`CREATE ROLE ${app} LOGIN`);
    await admin.query(`CREATE DATABASE ${name} OWNER ${owner}`);
    await admin.query(`REVOKE ALL ON DATABASE ${name} FROM PUBLIC`);
    await admin.query(`GRANT CONNECT ON DATABASE ${name} TO ${app}`);
  } finally {
    await admin.end();
  }
  const adminUrl = withDb(PG_ADMIN_URL, name);
  const ownerUrl = withDb(PG_ADMIN_URL, name, owner, opts.password);
  const appUrl = withDb(PG_ADMIN_URL, name, app, opts.password);
  return {
    name,
    owner,
    app,
    adminUrl,
    ownerUrl,
    appUrl,
    async connect(who) {
      return adminClient(who === 'admin' ? adminUrl : who === 'owner' ? ownerUrl : appUrl);
    },
    async drop() {
      const c = await adminClient();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await c.query(`DROP ROLE IF EXISTS ${owner}`);
        await c.query(`DROP ROLE IF EXISTS ${app}`);
      } finally {
        await c.end();
      }
    },
  };
}

/** Creates a login role of its own (cluster-wide, so uniquely named); returns its name. */
export async function createTestRole(prefix: string): Promise<{ name: string; drop(): Promise<void> }> {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  const c = await adminClient();
  try {
    await c.query(`CREATE ROLE ${name} LOGIN`);
  } finally {
    await c.end();
  }
  return {
    name,
    async drop() {
      const d = await adminClient();
      try {
        await d.query(`DROP ROLE IF EXISTS ${name}`);
      } finally {
        await d.end();
      }
    },
  };
}

/**
 * The `collector:` head of a config for a replica on `db`: listen address
 * and a postgres store as the app role, migrating as the owner. Callers
 * append the rest of the section (auth, streams, ...) indented by two spaces.
 */
export function postgresCollectorYaml(db: Pick<TestDatabase, 'appUrl' | 'ownerUrl'>, port: number): string {
  return `collector:
  listen: 127.0.0.1:${port}
  store:
    type: postgres
    url: "${db.appUrl}"
    migrate_url: "${db.ownerUrl}"
    pool_size: 4
`;
}
