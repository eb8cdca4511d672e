import type { CollectorConfig } from '../config/types.js';
import { splitHostPort } from '../config/units.js';
import { ConfigError } from '../core/errors.js';
import { readHmacKey, readSecretText, readVerifierKeyFile } from '../keyfiles.js';
import type { Logger } from '../log.js';
import { startCollector, type RunningCollector } from './app.js';
import type { CollectorOptions } from './options.js';
import { DEFAULT_RATE_LIMITS, type RateLimits } from './rate-limit.js';
import { openNullStore } from './store/null.js';
import { openPostgresStore, redactPostgresUrl } from './store/postgres.js';
import { openSqliteStore } from './store/sqlite.js';
import type { AuditStore } from './store/types.js';

function rateLimits(given: CollectorConfig['auth']['rate_limit']): RateLimits {
  const d = DEFAULT_RATE_LIMITS;
  return {
    admin: { ...d.admin, ...given?.admin },
    reader: { ...d.reader, ...given?.reader },
    failures: { ...d.failures, ...given?.failures },
  };
}

/** Reads the key and token files a collector config names into CollectorOptions. */
export function collectorOptionsFromConfig(cfg: CollectorConfig): CollectorOptions {
  const tokens = [...cfg.auth.admin_tokens];
  for (const f of cfg.auth.admin_token_files) {
    const t = readSecretText(f, 'admin token file');
    if (t.length < 16) throw new ConfigError('token_file_invalid', `admin token file ${f} must hold a token of at least 16 characters`);
    tokens.push(t);
  }
  return {
    listen: splitHostPort(cfg.listen),
    max_body_bytes: cfg.max_body_bytes,
    admin_tokens: tokens,
    streams: cfg.streams.map((s) =>
      s.keys
        ? {
            match: s.match,
            keys: s.keys.map((k) => ({
              vkey: k.vkey ?? readVerifierKeyFile(k.vkey_file!),
              ...(k.not_before !== undefined ? { not_before: k.not_before } : {}),
              ...(k.not_after !== undefined ? { not_after: k.not_after } : {}),
            })),
          }
        : { match: s.match, vkey: s.vkey ?? readVerifierKeyFile(s.vkey_file!) },
    ),
    ...(cfg.auth.tokens ? { tokens: cfg.auth.tokens } : {}),
    // A deployment from config is always rate limited; only embedded and test
    // apps built from CollectorOptions directly may leave it off.
    rate_limit: rateLimits(cfg.auth.rate_limit),
    ...(cfg.auth.max_query_range !== undefined ? { max_query_range: cfg.auth.max_query_range } : {}),
    trust_on_first_use: cfg.trust_on_first_use,
    hmac_keys: cfg.hmac_keys.map((k) => ({ id: k.id, key: readHmacKey(k.file) })),
  };
}

/**
 * Opens the configured store. Postgres connects, migrates when migrate_url
 * is set, and refuses to start (StoreError with a code naming why) when its
 * schema is not current, before the collector accepts any batch.
 */
export async function openStore(cfg: CollectorConfig, logger?: Logger): Promise<AuditStore> {
  const s = cfg.store;
  switch (s.type) {
    case 'null':
      return openNullStore();
    case 'sqlite':
      // openDatabase creates the parent directory.
      return openSqliteStore(s.path);
    case 'postgres':
      return openPostgresStore({
        url: s.url,
        ...(s.migrate_url !== undefined ? { migrateUrl: s.migrate_url } : {}),
        poolSize: s.pool_size,
        statementTimeoutMs: s.statement_timeout,
        ...(logger ? { logger: logger.child({ component: 'store' }) } : {}),
      });
  }
}

/** The store as it may appear in a log line: never a password. */
export function describeStore(cfg: CollectorConfig): string {
  const s = cfg.store;
  switch (s.type) {
    case 'null':
      return 'null (verifies and discards)';
    case 'sqlite':
      return `sqlite ${s.path}`;
    case 'postgres':
      return `postgres ${redactPostgresUrl(s.url)}`;
  }
}

export interface CollectorHandle {
  running: RunningCollector;
  store: AuditStore;
  shutdown(): Promise<void>;
}

export async function startCollectorFromConfig(cfg: CollectorConfig, logger: Logger): Promise<CollectorHandle> {
  const opts = collectorOptionsFromConfig(cfg);
  if (opts.admin_tokens.length === 0 && (opts.tokens ?? []).length === 0) {
    logger.warn('no admin tokens configured: the audit query API will refuse every request');
  }
  if (opts.trust_on_first_use) {
    logger.warn('trust_on_first_use is on: an unknown stream\'s first batch pins its own key (use only in development)');
  }
  const store = await openStore(cfg, logger);
  let running: RunningCollector;
  try {
    running = await startCollector(opts, store, logger);
  } catch (err) {
    await store.close();
    throw err;
  }
  logger.info({ url: running.url, store: describeStore(cfg) }, 'collector listening');
  return {
    running,
    store,
    async shutdown() {
      await running.close();
      await store.close();
    },
  };
}
