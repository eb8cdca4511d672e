import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { CollectorConfig } from '../config/types.js';
import { splitHostPort } from '../config/units.js';
import { ConfigError } from '../core/errors.js';
import { createHmacKeyFile, ensureKeyFiles, readHmacKey, readSecretText, readSigningKey, readVerifierKeyFile } from '../keyfiles.js';
import type { Logger } from '../log.js';
import { startCollector, type RunningCollector } from './app.js';
import type { CollectorOptions, ReadAuditOptions } from './options.js';
import { DEFAULT_RATE_LIMITS, type RateLimits } from './rate-limit.js';
import { defaultReadAuditStream } from './read-audit.js';
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
    const t = readSecretText(f, 'admin token file (collector.auth.admin_token_files)');
    if (t.length < 16) throw new ConfigError('token_file_invalid', `admin token file ${f} must hold a token of at least 16 characters`);
    tokens.push(t);
  }
  return {
    listen: splitHostPort(cfg.listen),
    ...(cfg.tls ? { tls: cfg.tls } : {}),
    http: cfg.http,
    max_body_bytes: cfg.max_body_bytes,
    max_record_bytes: cfg.max_record_bytes,
    admin_tokens: tokens,
    streams: cfg.streams.map((s, i) =>
      s.keys
        ? {
            match: s.match,
            keys: s.keys.map((k, j) => ({
              vkey: k.vkey ?? readVerifierKeyFile(k.vkey_file!, `verifier key file (collector.streams[${i}].keys[${j}].vkey_file)`),
              ...(k.not_before !== undefined ? { not_before: k.not_before } : {}),
              ...(k.not_after !== undefined ? { not_after: k.not_after } : {}),
            })),
          }
        : { match: s.match, vkey: s.vkey ?? readVerifierKeyFile(s.vkey_file!, `verifier key file (collector.streams[${i}].vkey_file)`) },
    ),
    ...(cfg.auth.tokens ? { tokens: cfg.auth.tokens } : {}),
    // A deployment from config is always rate limited; only embedded and test
    // apps built from CollectorOptions directly may leave it off.
    rate_limit: rateLimits(cfg.auth.rate_limit),
    ...(cfg.auth.max_query_range !== undefined ? { max_query_range: cfg.auth.max_query_range } : {}),
    ...(cfg.ship_identities.length > 0 ? { ship_identities: cfg.ship_identities } : {}),
    trust_on_first_use: cfg.trust_on_first_use,
    hmac_keys: cfg.hmac_keys.map((k) => ({ id: k.id, key: readHmacKey(k.file, `HMAC key file (collector.hmac_keys, id ${k.id})`) })),
  };
}

/** How key file errors name the collector's own keys (the sidecar's fields are keyfiles.ts's defaults). */
const OWN_SKEY = 'signing key file (collector.keys.signing_key_file)';
const OWN_HMAC = 'HMAC key file (collector.keys.hmac_key_file)';

/** Where the collector's keys are generated when collector.keys is absent (SQLite store only). */
export function defaultCollectorKeyFiles(storePath: string): { skey: string; vkey: string; hmac: string } {
  const dir = join(dirname(storePath), 'collector-keys');
  return { skey: join(dir, 'collector.skey'), vkey: join(dir, 'collector.vkey'), hmac: join(dir, 'collector.hmac') };
}

/**
 * The read-audit stream and keys (docs/read-audit.md); undefined when
 * read_audit is disabled or the store is the null store (it keeps no records,
 * so every read answers nothing). Without collector.keys a SQLite collector
 * generates its keys once beside its database (logged with the verifier key);
 * a Postgres collector must be given them, because its replicas have no
 * shared directory and a key an auditor never saw verifies nothing.
 */
export function readAuditFromConfig(cfg: CollectorConfig, logger?: Logger): ReadAuditOptions | undefined {
  if (!cfg.read_audit.enabled || cfg.store.type === 'null') return undefined;
  const stream = cfg.read_audit.stream ?? defaultReadAuditStream();
  let skeyFile: string;
  let hmacFile: string;
  let hmacId = 'collector';
  if (cfg.keys) {
    skeyFile = cfg.keys.signing_key_file;
    hmacId = cfg.keys.hmac_key_id;
    hmacFile = cfg.keys.hmac_key_file ?? join(dirname(skeyFile), `${basename(skeyFile).replace(/\.skey$/, '')}.hmac`);
    if (cfg.keys.hmac_key_file === undefined && !existsSync(hmacFile)) {
      // A bad signing_key_file (missing, /proc, a directory) fails before a key is created beside it.
      readSigningKey(skeyFile, OWN_SKEY);
      createHmacKeyFile(hmacFile);
      logger?.warn({ file: hmacFile }, 'generated the collector\'s read-audit HMAC key beside its signing key');
    }
  } else if (cfg.store.type === 'sqlite') {
    const files = defaultCollectorKeyFiles(cfg.store.path);
    const created = ensureKeyFiles({ ...files, name: 'sealtrail-collector' });
    skeyFile = files.skey;
    hmacFile = files.hmac;
    if (created) {
      logger?.warn(
        { skey: files.skey, vkey: readVerifierKeyFile(files.vkey) },
        'generated the collector\'s read-audit signing key beside the store; give its verifier key to auditors (or set collector.keys)',
      );
    }
  } else {
    throw new ConfigError(
      'collector_keys_required',
      'collector.keys.signing_key_file is required with a postgres store while collector.read_audit is enabled (see docs/read-audit.md)',
    );
  }
  const { signer, vkey } = readSigningKey(skeyFile, cfg.keys ? OWN_SKEY : 'read-audit signing key file (generated beside the store; or set collector.keys)');
  return { stream, signer, vkey, hmac_key: { id: hmacId, key: readHmacKey(hmacFile, cfg.keys?.hmac_key_file !== undefined ? OWN_HMAC : 'read-audit HMAC key file (generated; or set collector.keys.hmac_key_file)') } };
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
  const readAudit = readAuditFromConfig(cfg, logger);
  if (readAudit) {
    opts.read_audit = readAudit;
    logger.info({ stream: readAudit.stream, vkey: readAudit.vkey }, 'reads are audited in the collector\'s own stream');
  } else {
    logger.warn(
      { enabled: cfg.read_audit.enabled, store: cfg.store.type },
      cfg.read_audit.enabled ? 'reads are not audited: the null store keeps no records' : 'reads are NOT audited (collector.read_audit.enabled is false)',
    );
  }
  if (opts.admin_tokens.length === 0 && (opts.tokens ?? []).length === 0) {
    logger.warn('no admin tokens configured: the audit query API will refuse every request');
  }
  if (cfg.ship_identities.length === 0) {
    logger.warn(
      'collector.ship_identities is not set: any client that reaches this port may post any stream whose checkpoint key it holds (docs/access.md)',
    );
  }
  if (cfg.tls?.client_ca_file === undefined && cfg.ship_identities.some((s) => s.token_sha256 === undefined)) {
    logger.warn('collector.ship_identities names certificate SANs but collector.tls.client_ca_file is not set: no client certificate is verified, so those entries match nobody');
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
