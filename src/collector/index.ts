export { buildCollectorApp, startCollector, type RunningCollector } from './app.js';
export type { CollectorOptions, CollectorStreamKey, CollectorHmacKey } from './options.js';
export { SqliteAuditStore, openSqliteStore, type SqliteStoreOptions } from './store/sqlite.js';
export { NullAuditStore, openNullStore } from './store/null.js';
export { PostgresAuditStore, openPostgresStore, migratePostgres, redactPostgresUrl, type PostgresStoreOptions } from './store/postgres.js';
export * from './store/types.js';
export {
  verifyBatch,
  parseBatch,
  batchDigest,
  verifyCheckpointSignature,
  type BatchKeys,
  type ParsedBatch,
  type VerifiedBatch,
  type VerifiedRecord,
} from './verify-batch.js';
