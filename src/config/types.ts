/**
 * Loaded configuration. Field names are the YAML keys, unchanged, so the
 * docs, the example files and the code all use one vocabulary. Durations are
 * numbers of milliseconds and sizes numbers of bytes, already parsed (the key
 * keeps its YAML name: `seal.max_interval` holds ms). Relative paths are kept
 * as written; callers resolve them against the working directory.
 */

import type { HttpLimits } from '../http-limits.js';
import type { ClientTlsConfig, ServerTlsConfig } from '../tls/types.js';

/** `tls:` beside a listen (collector.tls, sidecar.telemetry.tls, an otlp source's tls) and ship.tls: src/tls/types.ts. */
export type { ClientTlsConfig, ServerTlsConfig };

/** collector.http, sidecar.telemetry.http (ms; connections): the limits in src/http-limits.ts. */
export type HttpLimitsConfig = HttpLimits;

export type StartAt = 'beginning' | 'end';

/**
 * How a source's lines become events (src/sidecar/formats/): sealtrail's own
 * shape, OTLP/JSON export requests, CloudEvents, a YAML mapping, or `auto`
 * (sealtrail, OTLP/JSON or CloudEvents, recognised line by line).
 */
export type SourceFormatConfig =
  | { format: 'sealtrail' | 'otlp-json' | 'cloudevents' | 'auto'; mapping?: undefined }
  /** `mapping`: a preset name from config/mappings/ or a YAML file (a relative path resolves against the working directory, like every path in the config) */
  | { format: 'mapped'; mapping: string };

export type FileSourceConfig = FileSourceFields & SourceFormatConfig;
interface FileSourceFields {
  id: string;
  type: 'file';
  include: string[];
  exclude: string[];
  /** bytes */
  max_line_bytes: number;
  start_at: StartAt;
}

/** NDJSON over a Unix stream socket; each line acknowledged once durable. */
export type SocketSourceConfig = SocketSourceFields & SourceFormatConfig;
interface SocketSourceFields {
  id: string;
  type: 'socket';
  path: string;
  /** file mode of the socket (default 0o600; 0o660 lets a group connect) */
  mode: number;
  /** bytes */
  max_line_bytes: number;
  max_connections: number;
}

/** POST /v1/events on the sidecar's own port (telemetry.listen). */
export type HttpSourceConfig = HttpSourceFields & SourceFormatConfig;
interface HttpSourceFields {
  id: string;
  type: 'http';
  /** bytes */
  max_body_bytes: number;
  /** events per request */
  max_events: number;
}

/**
 * An OTLP/HTTP receiver (POST /v1/traces, /v1/logs; protobuf or JSON, gzip)
 * on its own port, as the OpenTelemetry Collector's otlp receiver listens.
 */
export interface OtlpSourceConfig {
  id: string;
  type: 'otlp';
  /** host:port; default 127.0.0.1:4318 */
  listen: string;
  /** bytes of a request body after decompression; default 8 MiB (decoding can take tens of times a body's size in memory) */
  max_body_bytes: number;
  /** spans or log records in one request; default 100,000 */
  max_items: number;
  /** timeouts and connections, as collector.http */
  http: HttpLimitsConfig;
  /** HTTPS on listen; client_ca_file: mTLS */
  tls?: ServerTlsConfig;
}

export type SourceConfig = FileSourceConfig | SocketSourceConfig | HttpSourceConfig | OtlpSourceConfig;

export interface SidecarConfig {
  /** `name` left unset means: the caller fills it from POD_NAME or the hostname. */
  stream: { id?: string; name?: string };
  data_dir: string;
  sources: SourceConfig[];
  redaction: { rules: string[]; pseudonym_keys: { id: string; file: string }[] };
  keys: { signing_key_file: string; hmac_key_file: string; hmac_key_id: string };
  seal: {
    max_records: number;
    /** ms */
    max_interval: number;
    /** ms; an idle stream still signs a checkpoint this often (0: never) */
    heartbeat_interval: number;
  };
  ship: {
    url: string;
    token?: string;
    /** the collector's CA and the sidecar's client certificate (mTLS); only for an https:// url */
    tls?: ClientTlsConfig;
    /** ms */
    timeout: number;
    /** ms */
    backoff_initial: number;
    /** ms */
    backoff_max: number;
    /** bytes */
    max_batch_bytes: number;
  };
  buffer: {
    /** bytes */
    max_bytes: number;
    max_records: number;
  };
  telemetry: {
    listen: string;
    http: HttpLimitsConfig;
    /** HTTPS on listen; client_ca_file: mTLS (the probes /healthz and /readyz excepted) */
    tls?: ServerTlsConfig;
  };
}

export interface StreamKeyVersionConfig {
  vkey?: string;
  vkey_file?: string;
  /** RFC 3339, as written */
  not_before?: string;
  not_after?: string;
}

/** Exactly one of vkey, vkey_file, keys. */
export interface StreamTrustConfig {
  /** exact stream id, or a prefix ending in "*" */
  match: string;
  vkey?: string;
  vkey_file?: string;
  keys?: StreamKeyVersionConfig[];
}

/** collector.ship_identities[]: exactly one of token_sha256, san_uri, san_dns. */
export interface ShipIdentityConfig {
  /** defaults to "ship_identities[<index>]" */
  id: string;
  /** lowercase hex SHA-256 of the ship token */
  token_sha256?: string;
  san_uri?: string;
  san_dns?: string;
  /** stream ids, or prefixes ending in "*" */
  streams: string[];
}

export interface TokenConfig {
  /** defaults to "tokens[<index>]" */
  id: string;
  /** lowercase hex SHA-256 of the token */
  sha256: string;
  role: 'admin' | 'reader';
  /** exactly for readers */
  tenant?: string;
}

export interface RateLimitConfig {
  requests_per_second: number;
  burst: number;
}

/**
 * collector.auth. The optional members appear only when configured;
 * the collector fills in their defaults (see collectorOptionsFromConfig).
 */
export interface CollectorAuthConfig {
  admin_tokens: string[];
  admin_token_files: string[];
  tokens?: TokenConfig[];
  /** as written; the collector fills in what is missing */
  rate_limit?: { [R in 'admin' | 'reader' | 'failures']?: Partial<RateLimitConfig> };
  /** ms */
  max_query_range?: number;
}

export interface CollectorConfig {
  listen: string;
  /** HTTPS on listen; client_ca_file: mTLS */
  tls?: ServerTlsConfig;
  http: HttpLimitsConfig;
  /** bytes */
  max_body_bytes: number;
  /** bytes of one record's canonical text; at least what a sidecar accepts, at most max_body_bytes */
  max_record_bytes: number;
  store: CollectorStoreConfig;
  auth: CollectorAuthConfig;
  streams: StreamTrustConfig[];
  /** who may post which streams; empty: anyone who reaches the port (docs/access.md) */
  ship_identities: ShipIdentityConfig[];
  trust_on_first_use: boolean;
  hmac_keys: { id: string; file: string }[];
  /**
   * The collector's own keys for its read-audit stream (docs/read-audit.md).
   * Absent: generated on first start beside a SQLite store; required otherwise.
   */
  keys?: CollectorKeysConfig;
  read_audit: CollectorReadAuditConfig;
}

export interface CollectorKeysConfig {
  signing_key_file: string;
  /** absent: an HMAC key generated beside the signing key (<signing key>.hmac) */
  hmac_key_file?: string;
  /** default "collector" */
  hmac_key_id: string;
}

export interface CollectorReadAuditConfig {
  /** default true: every read of the query API is recorded before its data is sent */
  enabled: boolean;
  /** the collector's own stream id; absent: collector-<POD_NAME or hostname> */
  stream?: string;
}

/**
 * collector.store. `path?: undefined` on the other types lets code written
 * for the SQLite store (which prints store.path) compile and see undefined.
 */
export type CollectorStoreConfig =
  | { type: 'null'; path?: undefined }
  | { type: 'sqlite'; path: string }
  | PostgresStoreConfig;

export interface PostgresStoreConfig {
  type: 'postgres';
  path?: undefined;
  /** the app role (SELECT and INSERT only); may hold a password, never logged */
  url: string;
  /** the owner role, used only to run migrations at start */
  migrate_url?: string;
  pool_size: number;
  /** ms */
  statement_timeout: number;
}

export interface SealtrailConfig {
  /** the path the config was loaded from (as given), or the name passed to parseConfigText */
  file: string;
  sidecar?: SidecarConfig;
  collector?: CollectorConfig;
}

/** A duration as written: integer ms or "250ms", "1.5s", "5m", "1h". */
export type DurationInput = number | string;
/** A size as written: integer bytes or "512B", "64KiB", "10MB". */
export type SizeInput = number | string;

/** collector.http / sidecar.telemetry.http as written. */
export interface HttpLimitsInput {
  header_timeout?: DurationInput;
  request_timeout?: DurationInput;
  keep_alive_timeout?: DurationInput;
  max_connections?: number;
}

/** What `defaultSidecarConfig` accepts: the YAML shape, with everything defaultable left out. */
export interface SidecarConfigInput {
  stream?: { id?: string; name?: string };
  data_dir?: string;
  sources: (
    | {
        id: string;
        type: 'file';
        include: string[];
        exclude?: string[];
        max_line_bytes?: SizeInput;
        start_at?: StartAt;
        format?: SourceFormatConfig['format'];
        mapping?: string;
      }
    | { id: string; type: 'otlp'; listen?: string; max_body_bytes?: SizeInput; max_items?: number; http?: HttpLimitsInput; tls?: ServerTlsConfig }
    | { id: string; type: 'http'; max_body_bytes?: SizeInput; max_events?: number; format?: SourceFormatConfig['format']; mapping?: string }
    | { id: string; type: 'socket'; path: string; mode?: number; max_line_bytes?: SizeInput; max_connections?: number; format?: SourceFormatConfig['format']; mapping?: string }
  )[];
  redaction?: { rules?: string[]; pseudonym_keys?: { id: string; file: string }[] };
  keys: { signing_key_file: string; hmac_key_file: string; hmac_key_id?: string };
  seal?: { max_records?: number; max_interval?: DurationInput };
  ship: {
    url: string;
    token?: string;
    tls?: ClientTlsConfig;
    timeout?: DurationInput;
    backoff_initial?: DurationInput;
    backoff_max?: DurationInput;
    max_batch_bytes?: SizeInput;
  };
  buffer?: { max_bytes?: SizeInput; max_records?: number };
  telemetry?: { listen?: string; http?: HttpLimitsInput; tls?: ServerTlsConfig };
}

/** What `defaultCollectorConfig` accepts. */
export interface CollectorConfigInput {
  listen?: string;
  tls?: ServerTlsConfig;
  http?: HttpLimitsInput;
  max_body_bytes?: SizeInput;
  max_record_bytes?: SizeInput;
  store?: {
    type?: 'null' | 'sqlite' | 'postgres' | null;
    path?: string;
    url?: string;
    migrate_url?: string;
    pool_size?: number;
    statement_timeout?: DurationInput;
  };
  auth?: {
    admin_tokens?: string[];
    admin_token_files?: string[];
    tokens?: { id?: string; sha256: string; role: 'admin' | 'reader'; tenant?: string }[];
    rate_limit?: { [R in 'admin' | 'reader' | 'failures']?: Partial<RateLimitConfig> };
    max_query_range?: DurationInput;
  };
  streams?: StreamTrustConfig[];
  ship_identities?: { id?: string; token_sha256?: string; san_uri?: string; san_dns?: string; streams: string[] }[];
  trust_on_first_use?: boolean;
  hmac_keys?: { id: string; file: string }[];
  keys?: { signing_key_file: string; hmac_key_file?: string; hmac_key_id?: string };
  read_audit?: { enabled?: boolean; stream?: string };
}
