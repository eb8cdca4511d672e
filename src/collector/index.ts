export { buildCollectorApp, startCollector, type RunningCollector } from './app.js';
export type { CollectorOptions, CollectorStreamKey, CollectorHmacKey } from './options.js';
export { SqliteAuditStore, openSqliteStore, type SqliteStoreOptions } from './store/sqlite.js';
export { NullAuditStore, openNullStore } from './store/null.js';
export { PostgresAuditStore, openPostgresStore, migratePostgres, redactPostgresUrl, type PostgresStoreOptions } from './store/postgres.js';
export * from './store/types.js';
export {
  verifyBatch,
  verifyCheckpointSignature,
  type BatchKeys,
  type VerifiedBatch,
  type VerifiedRecord,
} from './verify-batch.js';
// The wire format is core's (core/wire-batch.ts); re-exported for users of this entry.
export { parseBatch, batchDigest, type ParsedBatch } from '../core/wire-batch.js';
