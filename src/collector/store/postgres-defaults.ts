/**
 * The Postgres store's defaults, in one place: openPostgresStore applies them
 * to options left unset, and the config loader (config/normalize.ts) fills
 * `collector.store.pool_size` / `statement_timeout` from them, so a config
 * and a direct caller get the same pool. A leaf module: the loader takes
 * these without loading `pg`.
 */
export const PG_DEFAULTS = {
  /** connections in the pool */
  poolSize: 10,
  /** server-side statement_timeout, ms */
  statementTimeoutMs: 10_000,
  /** how long to wait for a connection, ms */
  connectTimeoutMs: 10_000,
} as const;
