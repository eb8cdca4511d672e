/**
 * Connections of the Postgres store: pool settings, and the failures that
 * belong to the connection rather than to a statement, reported without
 * the URL's secrets (URLs are never logged or put into errors with their
 * password).
 */
import pg from 'pg';
import type { PoolConfig } from 'pg';
import type { PgMigration } from './postgres-migrations.js';
import { StoreError } from './types.js';

export interface PostgresStoreOptions {
  /** the app role's connection URL (SELECT and INSERT only) */
  url: string;
  /** the owner role's URL: when given, pending migrations run at open */
  migrateUrl?: string;
  /** connections in the pool (default: PG_DEFAULTS) */
  poolSize?: number;
  /** server-side statement_timeout in ms (default: PG_DEFAULTS) */
  statementTimeoutMs?: number;
  /** how long to wait for a connection in ms (default: PG_DEFAULTS) */
  connectTimeoutMs?: number;
  /** for warnings found at open (e.g. an app role that can UPDATE) and pool errors */
  logger?: StoreLogger;
  /** for tests of newer schemas; defaults to the built-in list */
  migrations?: readonly PgMigration[];
}

export interface StoreLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** "postgres://app:***@host/db": the URL as it may appear in logs and errors. */
export function redactPostgresUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    // Query parameters may carry a password too (?password=...).
    for (const k of [...u.searchParams.keys()]) {
      if (/pass|secret|key/i.test(k)) u.searchParams.set(k, '***');
    }
    return u.toString();
  } catch {
    return 'postgres://(unparsable url)';
  }
}

// int8 arrives as text by default (it may exceed 2^53); every bigint here is
// a seq, batch number, tree size or microsecond time key, all below 2^53.
const INT8_OID = 20;
export const typeParsers = {
  getTypeParser(oid: number, format?: 'text' | 'binary'): (v: string) => unknown {
    if (oid === INT8_OID) return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format as 'text') as (v: string) => unknown;
  },
};

export function poolConfig(url: string, size: number, statementTimeoutMs: number, connectTimeoutMs: number): PoolConfig {
  return {
    connectionString: url,
    max: size,
    statement_timeout: statementTimeoutMs,
    // A collector that dies mid-transaction must not keep the stream lock.
    idle_in_transaction_session_timeout: Math.max(statementTimeoutMs * 2, 10_000),
    connectionTimeoutMillis: connectTimeoutMs,
    application_name: 'sealtrail-collector',
    keepAlive: true,
    types: typeParsers,
  };
}

export function sqlState(err: unknown): string | undefined {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === 'string' && /^[0-9A-Z]{5}$/.test(c) ? c : undefined;
}

/**
 * Errors of the connection rather than of a statement: refused, reset, timed
 * out, terminated; and the server's own refusals to connect (SQLSTATE class
 * 08 connection, 28 authorization, 3D000 no such database, 53300 too many
 * connections, 57P0x shutting down or starting up).
 */
export function isConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err instanceof pg.DatabaseError) {
    return /^(08|28|3D)/.test(err.code ?? '') || err.code === '53300' || /^57P0[1-4]$/.test(err.code ?? '');
  }
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (/^E[A-Z]+$/.test(code) || TLS_FAILURE.test(code))) return true;
  return /connect|terminat|timeout|closed|SSL/i.test(err.message);
}

/**
 * Node's and OpenSSL's codes for a TLS handshake that failed (untrusted CA,
 * host name not in the certificate, expired): the server cannot be reached
 * safely, which is "unavailable" (503, not ready), not a bug.
 */
const TLS_FAILURE = /^(ERR_TLS_|ERR_SSL_|ERR_OSSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|HOSTNAME_MISMATCH)/;

/** Connection-level failures, named without the URL's secrets. */
export function unavailable(url: string, err: unknown): StoreError {
  const msg = err instanceof Error ? err.message : String(err);
  return new StoreError('store_unavailable', `postgres ${redactPostgresUrl(url)}: ${msg}`, { cause: err });
}
