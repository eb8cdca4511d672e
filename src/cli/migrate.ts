import { openStore, describeStore } from '../collector/from-config.js';
import { LATEST_PG_VERSION } from '../collector/store/postgres-migrations.js';
import { createLogger } from '../log.js';
import { configSectionFromArgs } from './config-arg.js';
import { UsageError } from './usage.js';

/**
 * Applies the collector store's pending migrations and exits: for upgrades
 * that should run once, alone, before replicas roll out (a Kubernetes Job),
 * rather than inside a starting collector (docs/postgres.md). Postgres needs
 * collector.store.migrate_url (the owner role); a SQLite store migrates when
 * opened; the null store has no schema.
 */
export async function migrateCommand(argv: string[]): Promise<number> {
  const section = configSectionFromArgs(argv, 'migrate', 'collector');
  const store = section.store;
  if (store.type === 'null') {
    process.stdout.write('collector.store is null: it keeps no schema, nothing to migrate\n');
    return 0;
  }
  if (store.type === 'postgres' && store.migrate_url === undefined) {
    throw new UsageError('collector.store.migrate_url (the owner role) is required to migrate a postgres store');
  }
  const opened = await openStore(section, createLogger('migrate'));
  await opened.close();
  const version = store.type === 'postgres' ? `schema version ${LATEST_PG_VERSION}` : 'schema current';
  process.stdout.write(`${describeStore(section)}: ${version}\n`);
  return 0;
}
