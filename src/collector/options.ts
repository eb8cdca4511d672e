/**
 * The collector's own view of its configuration. Deliberately narrow and
 * independent of src/config so the HTTP app can be built and tested without
 * the YAML loader; the CLI maps a CollectorConfig onto this shape.
 * Field names follow the YAML (snake_case); durations are ms, sizes bytes.
 * It imports no collector module but rate-limit's types, so the modules that
 * read it (auth, read-audit, the routes) never form an import cycle with it.
 */
import type { NoteSigner } from '../core/note.js';
import type { HttpLimits } from '../http-limits.js';
import type { ServerTlsConfig } from '../tls/types.js';
import type { RateLimits } from './rate-limit.js';

/** One checkpoint key of a stream entry, with its validity period (rotation). */
export interface CollectorKeyVersion {
  /** signed-note verifier key text: "<name>+<hash8hex>+<base64>" */
  vkey: string;
  /** RFC 3339; the key verifies batches received at or after this instant */
  not_before?: string;
  /** RFC 3339; the key verifies batches received before this instant */
  not_after?: string;
}

/**
 * Which keys verify which streams' checkpoints. Exactly one of `vkey` (the
 * original single-key form, valid forever) or `keys` (rotation).
 */
export interface CollectorStreamKey {
  /** a stream id, or a prefix pattern ending in "*" ("agents-*", "*") */
  match: string;
  vkey?: string;
  keys?: CollectorKeyVersion[];
}

/** A query API token stored as the SHA-256 of its text (see docs/access.md). */
export interface CollectorToken {
  /** a name for logs and rate-limit buckets; never the token */
  id: string;
  /** 64 hex digits: SHA-256 of the token's UTF-8 text */
  sha256: string;
  role: 'admin' | 'reader';
  /** required for readers, forbidden for admins: the only tenant a reader sees */
  tenant?: string;
}

/**
 * A sender of batches and the streams it may post (collector.ship_identities,
 * ship-identities.ts). Exactly one of token_sha256, san_uri, san_dns.
 */
export interface ShipIdentity {
  /** a name for logs and answers; never the token */
  id: string;
  /** SHA-256 (hex) of the ship token the sidecar sends as Authorization: Bearer */
  token_sha256?: string;
  /** a URI SAN of a client certificate verified by collector.tls.client_ca_file (e.g. a SPIFFE ID); may hold one `{pod}` (ship-identities.ts) */
  san_uri?: string;
  /** a DNS SAN of such a certificate; may hold one `{pod}` */
  san_dns?: string;
  /** stream ids, or prefixes ending in "*"; with a `{pod}` SAN, patterns may use `{pod}` (`"{pod}-*"`: that pod's own streams) */
  streams: string[];
}

export interface CollectorHmacKey {
  id: string;
  key: Buffer;
}

/** The collector's own stream and keys (read-audit.ts); absent in CollectorOptions: reads are not audited. */
export interface ReadAuditOptions {
  /** the collector's own stream id (default from config: collector-<hostname>) */
  stream: string;
  /** signs the stream's checkpoints */
  signer: NoteSigner;
  /** the signer's verifier key text, registered as the stream's configured key */
  vkey: string;
  /** chains the stream's records */
  hmac_key: { id: string; key: Buffer };
}

export interface CollectorOptions {
  listen: { host: string; port: number };
  /**
   * HTTPS instead of HTTP (collector.tls): certificate and key followed on
   * disk; with client_ca_file, clients must present a certificate of that CA
   * (mTLS). Absent: plain HTTP (behind a TLS-terminating proxy, or loopback).
   */
  tls?: ServerTlsConfig & {
    /** stat poll period of the files, ms (default 10 s; watches usually see a change first) */
    poll_ms?: number;
  };
  /**
   * Header, request and keep-alive timeouts (ms) and the connection cap;
   * what is absent gets the same default as collector.http in YAML
   * (DEFAULT_HTTP_LIMITS), so an embedded collector is never without them.
   */
  http?: Partial<HttpLimits>;
  /** POST /v1/batches body limit; larger bodies get 413 */
  max_body_bytes: number;
  /** bearer tokens allowed on the query API, as plain text (admin role) */
  admin_tokens: string[];
  /** hashed tokens with a role (and a tenant for readers) */
  tokens?: CollectorToken[];
  /** per-token and per-IP request budgets; absent: no limit (tests, embedded use) */
  rate_limit?: RateLimits;
  /** widest from..to span GET /v1/audit accepts, ms (default 31 days) */
  max_query_range?: number;
  /** an exact match wins, then the longest prefix (see stream-keys.ts) */
  streams: CollectorStreamKey[];
  /**
   * Who may post which streams; absent or empty: anyone who reaches the port
   * may post any stream whose key it holds (see ship-identities.ts).
   */
  ship_identities?: ShipIdentity[];
  /** accept an unknown stream's batch 0 with its own `vkey` and pin that key */
  trust_on_first_use: boolean;
  /** chain keys shared with the sidecars; without a key the chain head is only cross-checked */
  hmac_keys: CollectorHmacKey[];
  /**
   * Key for the integrity tag on query cursors. Replicas must share it, so the
   * default is derived from the admin tokens (which replicas already share).
   */
  cursor_key?: Buffer;
  /** upper bound on records in one batch (default 100000) */
  max_batch_records?: number;
  /** UTF-8 bytes of one record's canonical text (default DEFAULT_MAX_RECORD_BYTES, core/wire-limits.ts) */
  max_record_bytes?: number;
  /**
   * Read auditing (docs/read-audit.md): the collector's own stream and keys.
   * Absent: reads are not audited (embedded and test apps only; a collector
   * started from config always audits unless collector.read_audit.enabled is false).
   */
  read_audit?: ReadAuditOptions;
}

export const DEFAULT_MAX_QUERY_RANGE = 31 * 24 * 3600 * 1000;
