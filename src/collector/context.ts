import type { Logger } from 'pino';
import type { AdminAuth } from './auth.js';
import type { CursorCodec } from './cursor.js';
import type { CollectorMetrics } from './metrics.js';
import type { KeyedMutex } from './mutex.js';
import type { CollectorOptions } from './options.js';
import type { ReadAuditor } from './read-audit.js';
import type { ShipIdentities } from './ship-identities.js';
import type { AuditStore } from './store/types.js';
import type { StreamKeys } from './stream-keys.js';

/** What every route needs; built once per app. */
export interface CollectorContext {
  opts: CollectorOptions;
  store: AuditStore;
  logger: Logger;
  auth: AdminAuth;
  cursors: CursorCodec;
  streamKeys: StreamKeys;
  /** who may post which streams; undefined: anyone (collector.ship_identities unset) */
  shipIdentities: ShipIdentities | undefined;
  hmacKeys: ReadonlyMap<string, Buffer>;
  streamLocks: KeyedMutex;
  /** audits every read of the query API (a no-op when not configured) */
  readAudit: ReadAuditor;
  /** GET /metrics (routes/health.ts) */
  metrics: CollectorMetrics;
}
