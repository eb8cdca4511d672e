/**
 * From schema-valid plain data to fully typed config: defaults filled in,
 * durations and sizes parsed, and the cross-field rules the schema leaves
 * out. The same code serves a config file and an in-memory object (`sealtrail
 * dev`), so both get identical defaults and identical refusals.
 */
import { PG_DEFAULTS } from '../collector/store/postgres-defaults.js';
import { parseRfc3339 } from '../core/time.js';
import { DEFAULT_MAX_RECORD_BYTES, MAX_BODY_BYTES, MIN_BODY_BYTES, MIN_MAX_RECORD_BYTES } from '../core/wire-limits.js';
import type {
  ClientTlsConfig,
  ShipIdentityConfig,
  CollectorAuthConfig,
  CollectorConfig,
  CollectorStoreConfig,
  SidecarConfig,
  StreamKeyVersionConfig,
  StreamTrustConfig,
  TokenConfig,
} from './types.js';
import { normalizeSources } from './normalize-sources.js';
import { splitHostPort } from './units.js';
import {
  DAY,
  HOUR,
  KiB,
  MINUTE,
  duration,
  fail,
  GiB,
  httpLimits,
  listenAddress,
  MiB,
  SECOND,
  serverTls,
  size,
  strings,
  type NormalizeContext,
  type Raw,
} from './normalize-values.js';
import type { DataPath } from './yaml.js';

export { fail, type NormalizeContext } from './normalize-values.js';

export { COLLECTOR_DEFAULTS, RESERVED_SOURCE_ID, SIDECAR_DEFAULTS } from './defaults.js';
import { COLLECTOR_DEFAULTS, SIDECAR_DEFAULTS } from './defaults.js';

export function normalizeSidecar(raw: Raw, base: DataPath, ctx: NormalizeContext): SidecarConfig {
  const at = (...p: (string | number)[]): DataPath => [...base, ...p];
  const d = SIDECAR_DEFAULTS;

  const stream: SidecarConfig['stream'] = {};
  if (raw.stream?.id !== undefined) stream.id = raw.stream.id;
  if (raw.stream?.name !== undefined) stream.name = raw.stream.name;

  const sources = normalizeSources(raw.sources as Raw[], at, ctx);

  const ship = raw.ship;
  checkHttpUrl(ctx, at('ship', 'url'), ship.url);
  const backoffInitial = duration(ctx, at('ship', 'backoff_initial'), ship.backoff_initial, d.ship_backoff_initial, 1);
  const backoffMax = duration(ctx, at('ship', 'backoff_max'), ship.backoff_max, d.ship_backoff_max, 1);
  if (backoffMax < backoffInitial) {
    fail(ctx, 'config_schema', at('ship', ship.backoff_max === undefined ? 'backoff_initial' : 'backoff_max'), 'ship.backoff_max must not be smaller than ship.backoff_initial');
  }

  const out: SidecarConfig = {
    stream,
    data_dir: raw.data_dir ?? d.data_dir,
    sources,
    redaction: {
      rules: strings(raw.redaction?.rules),
      pseudonym_keys: ((raw.redaction?.pseudonym_keys ?? []) as Raw[]).map((k, i) => {
        if ((raw.redaction.pseudonym_keys as Raw[]).findIndex((o: Raw) => o.id === k.id) !== i) {
          fail(ctx, 'config_schema', at('redaction', 'pseudonym_keys', i, 'id'), 'duplicate pseudonym key id');
        }
        return { id: k.id as string, file: k.file as string };
      }),
    },
    keys: {
      signing_key_file: raw.keys.signing_key_file,
      hmac_key_file: raw.keys.hmac_key_file,
      hmac_key_id: raw.keys.hmac_key_id ?? d.hmac_key_id,
    },
    seal: {
      max_records: raw.seal?.max_records ?? d.seal_max_records,
      max_interval: duration(ctx, at('seal', 'max_interval'), raw.seal?.max_interval, d.seal_max_interval, 10),
      heartbeat_interval: duration(ctx, at('seal', 'heartbeat_interval'), raw.seal?.heartbeat_interval, d.heartbeat_interval, 0),
    },
    ship: {
      url: ship.url,
      timeout: duration(ctx, at('ship', 'timeout'), ship.timeout, d.ship_timeout, 1),
      backoff_initial: backoffInitial,
      backoff_max: backoffMax,
      max_batch_bytes: size(ctx, at('ship', 'max_batch_bytes'), ship.max_batch_bytes, d.ship_max_batch_bytes, MIN_BODY_BYTES, MAX_BODY_BYTES),
    },
    buffer: {
      max_bytes: size(ctx, at('buffer', 'max_bytes'), raw.buffer?.max_bytes, d.buffer_max_bytes, KiB, Number.MAX_SAFE_INTEGER),
      max_records: raw.buffer?.max_records ?? d.buffer_max_records,
    },
    telemetry: {
      listen: listenAddress(ctx, at('telemetry', 'listen'), raw.telemetry?.listen, d.telemetry_listen),
      http: httpLimits(ctx, at('telemetry', 'http'), raw.telemetry?.http),
    },
  };
  if (ship.token !== undefined) out.ship.token = ship.token;
  if (ship.tls !== undefined) out.ship.tls = shipTls(ctx, at('ship'), ship.tls as Raw, ship.url as string);
  const telemetryTls = serverTls(raw.telemetry?.tls);
  if (telemetryTls) out.telemetry.tls = telemetryTls;
  out.sources.forEach((s, i) => {
    if (s.type === 'otlp' && sameSocket(s.listen, out.telemetry.listen)) {
      fail(ctx, 'config_schema', at('sources', i, raw.sources[i]?.listen === undefined ? 'type' : 'listen'), `listens where telemetry.listen (${out.telemetry.listen}) does; give one of them another port`);
    }
  });
  return out;
}

/** Whether two listen addresses would take the same port: the same host, or either binds every address. */
function sameSocket(a: string, b: string): boolean {
  const x = splitHostPort(a);
  const y = splitHostPort(b);
  const any = (h: string): boolean => h === '0.0.0.0' || h === '::';
  return x.port === y.port && x.port !== 0 && (x.host === y.host || any(x.host) || any(y.host));
}

function checkHttpUrl(ctx: NormalizeContext, path: DataPath, value: string): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    fail(ctx, 'config_schema', path, 'must be an absolute http:// or https:// URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    fail(ctx, 'config_schema', path, 'must be an absolute http:// or https:// URL');
  }
  // Credentials in a URL end up in logs and process listings; ship.token exists for that.
  if (url.username !== '' || url.password !== '') {
    fail(ctx, 'config_schema', path, 'must not contain credentials; use ship.token');
  }
}

/** collector.ship_identities: one way to recognise each sender, unique ids and tokens. */
function shipIdentities(ctx: NormalizeContext, path: DataPath, raw: Raw[]): ShipIdentityConfig[] {
  const ids = new Map<string, number>();
  const tokens = new Map<string, number>();
  return raw.map((r, i) => {
    const kinds = ['token_sha256', 'san_uri', 'san_dns'].filter((k) => r[k] !== undefined);
    if (kinds.length !== 1) fail(ctx, 'config_schema', [...path, i], 'needs exactly one of "token_sha256", "san_uri" or "san_dns"');
    const id = (r.id as string | undefined) ?? `ship_identities[${i}]`;
    if (ids.has(id)) fail(ctx, 'config_schema', [...path, i, 'id'], `duplicate id (also used by ship_identities[${ids.get(id)}])`);
    ids.set(id, i);
    const out: ShipIdentityConfig = { id, streams: (r.streams as string[]).slice() };
    if (r.token_sha256 !== undefined) {
      const t = (r.token_sha256 as string).toLowerCase();
      if (tokens.has(t)) fail(ctx, 'config_schema', [...path, i, 'token_sha256'], `the same token as ship_identities[${tokens.get(t)}]; list all its streams in one entry`);
      tokens.set(t, i);
      out.token_sha256 = t;
    }
    if (r.san_uri !== undefined) out.san_uri = r.san_uri as string;
    if (r.san_dns !== undefined) out.san_dns = r.san_dns as string;
    return out;
  });
}

/** ship.tls: cert_file and key_file together, and only with an https:// url (it would be silently unused otherwise). */
function shipTls(ctx: NormalizeContext, path: DataPath, raw: Raw, url: string): ClientTlsConfig {
  if ((raw.cert_file === undefined) !== (raw.key_file === undefined)) {
    const missing = raw.cert_file === undefined ? 'cert_file' : 'key_file';
    fail(ctx, 'config_schema', [...path, 'tls', raw.cert_file === undefined ? 'key_file' : 'cert_file'], `ship.tls.cert_file and ship.tls.key_file go together; set ship.tls.${missing} too, or neither`);
  }
  if (new URL(url).protocol !== 'https:') {
    fail(ctx, 'config_schema', [...path, 'tls'], 'ship.tls applies to an https:// ship.url only; change the url to https:// or remove ship.tls');
  }
  const out: ClientTlsConfig = {};
  for (const k of ['ca_file', 'cert_file', 'key_file'] as const) if (raw[k] !== undefined) out[k] = raw[k] as string;
  return out;
}

// Which keys each store type takes (besides `type`).
const STORE_KEYS: Record<CollectorStoreConfig['type'], readonly string[]> = {
  null: [],
  sqlite: ['path'],
  postgres: ['url', 'migrate_url', 'pool_size', 'statement_timeout'],
};

/**
 * A Postgres connection URL, checked without ever quoting it: it may hold a
 * password (often from ${env:...}), and error messages end up in logs.
 */
function checkPostgresUrl(ctx: NormalizeContext, path: DataPath, value: string): void {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') || url.hostname === '') {
    fail(
      ctx,
      'config_schema',
      path,
      'must be a URL like postgres://user:password@host:5432/database (special characters in the password percent-encoded)',
    );
  }
  if (url.pathname.length <= 1) fail(ctx, 'config_schema', path, 'must name the database: postgres://user@host/database');
}

function normalizeStore(raw: Raw, path: DataPath, ctx: NormalizeContext): CollectorStoreConfig {
  const d = COLLECTOR_DEFAULTS;
  const type: CollectorStoreConfig['type'] = raw.type === undefined ? 'sqlite' : raw.type === null ? 'null' : raw.type;
  for (const k of Object.keys(raw)) {
    if (k !== 'type' && !STORE_KEYS[type].includes(k)) {
      fail(ctx, 'config_schema', [...path, k], `not used by the ${type} store`, true);
    }
  }
  if (type === 'null') return { type };
  if (type === 'sqlite') return { type, path: raw.path ?? d.store_path };
  if (raw.url === undefined) fail(ctx, 'config_schema', [...path, 'type'], 'the postgres store needs "url" (the app role)');
  checkPostgresUrl(ctx, [...path, 'url'], raw.url);
  if (raw.migrate_url !== undefined) checkPostgresUrl(ctx, [...path, 'migrate_url'], raw.migrate_url);
  return {
    type,
    url: raw.url,
    ...(raw.migrate_url !== undefined ? { migrate_url: raw.migrate_url as string } : {}),
    pool_size: raw.pool_size ?? PG_DEFAULTS.poolSize,
    statement_timeout: duration(ctx, [...path, 'statement_timeout'], raw.statement_timeout, PG_DEFAULTS.statementTimeoutMs, 100, HOUR),
  };
}

function keyVersion(ctx: NormalizeContext, path: DataPath, k: Raw): StreamKeyVersionConfig {
  if ((k.vkey === undefined) === (k.vkey_file === undefined)) {
    fail(ctx, 'config_schema', path, 'needs exactly one of "vkey" or "vkey_file"');
  }
  const out: StreamKeyVersionConfig = k.vkey !== undefined ? { vkey: k.vkey } : { vkey_file: k.vkey_file };
  const bound = (name: 'not_before' | 'not_after'): number | undefined => {
    if (k[name] === undefined) return undefined;
    const ms = parseRfc3339(k[name]);
    if (ms === undefined) fail(ctx, 'config_schema', [...path, name], 'must be an RFC 3339 timestamp with offset, e.g. 2026-03-01T00:00:00Z');
    out[name] = k[name];
    return ms;
  };
  const nb = bound('not_before');
  const na = bound('not_after');
  if (nb !== undefined && na !== undefined && nb >= na) {
    fail(ctx, 'config_schema', [...path, 'not_after'], 'must be later than not_before');
  }
  return out;
}

/** collector.auth; optional members stay absent unless written (the collector has the defaults). */
function normalizeAuth(raw: Raw, path: DataPath, ctx: NormalizeContext): CollectorAuthConfig {
  const auth: CollectorAuthConfig = {
    admin_tokens: strings(raw.admin_tokens),
    admin_token_files: strings(raw.admin_token_files),
  };
  if (raw.tokens !== undefined) {
    const ids = new Map<string, number>();
    const hashes = new Map<string, number>();
    auth.tokens = (raw.tokens as Raw[]).map((t, i): TokenConfig => {
      const at = [...path, 'tokens', i];
      const id: string = t.id ?? `tokens[${i}]`;
      if (ids.has(id)) fail(ctx, 'config_schema', [...at, 'id'], `duplicate id (also used by tokens[${ids.get(id)}])`);
      ids.set(id, i);
      const sha256 = (t.sha256 as string).toLowerCase();
      if (hashes.has(sha256)) fail(ctx, 'config_schema', [...at, 'sha256'], `same token as tokens[${hashes.get(sha256)}]`);
      hashes.set(sha256, i);
      if (t.role === 'reader' && t.tenant === undefined) {
        // A reader without a tenant would see every tenant: that is an admin.
        fail(ctx, 'config_schema', at, 'a reader token needs "tenant" (use role: admin for a token that sees every tenant)');
      }
      if (t.role === 'admin' && t.tenant !== undefined) {
        fail(ctx, 'config_schema', [...at, 'tenant'], 'an admin token sees every tenant; use role: reader to restrict it');
      }
      return { id, sha256, role: t.role, ...(t.tenant !== undefined ? { tenant: t.tenant as string } : {}) };
    });
  }
  if (raw.rate_limit !== undefined) auth.rate_limit = raw.rate_limit;
  if (raw.max_query_range !== undefined) {
    auth.max_query_range = duration(ctx, [...path, 'max_query_range'], raw.max_query_range, 0, MINUTE, 3660 * DAY);
  }
  return auth;
}

export function normalizeCollector(raw: Raw, base: DataPath, ctx: NormalizeContext): CollectorConfig {
  const at = (...p: (string | number)[]): DataPath => [...base, ...p];
  const d = COLLECTOR_DEFAULTS;

  const matches = new Map<string, number>();
  const streams: StreamTrustConfig[] = ((raw.streams ?? []) as Raw[]).map((s, i) => {
    const hasKey = s.vkey !== undefined;
    const hasFile = s.vkey_file !== undefined;
    const hasKeys = s.keys !== undefined;
    if (Number(hasKey) + Number(hasFile) + Number(hasKeys) !== 1) {
      fail(ctx, 'config_schema', at('streams', i), 'needs exactly one of "vkey", "vkey_file" or "keys"');
    }
    if (matches.has(s.match)) {
      fail(ctx, 'config_schema', at('streams', i, 'match'), `duplicate match (also used by streams[${matches.get(s.match)}])`);
    }
    matches.set(s.match, i);
    const entry: StreamTrustConfig = { match: s.match };
    if (hasKey) entry.vkey = s.vkey;
    if (hasFile) entry.vkey_file = s.vkey_file;
    if (hasKeys) entry.keys = (s.keys as Raw[]).map((k, j) => keyVersion(ctx, at('streams', i, 'keys', j), k));
    return entry;
  });

  const ids = new Map<string, number>();
  const hmacKeys = ((raw.hmac_keys ?? []) as Raw[]).map((k, i) => {
    if (ids.has(k.id)) {
      fail(ctx, 'config_schema', at('hmac_keys', i, 'id'), `duplicate key id (also used by hmac_keys[${ids.get(k.id)}])`);
    }
    ids.set(k.id, i);
    return { id: k.id as string, file: k.file as string };
  });

  const maxBody = size(ctx, at('max_body_bytes'), raw.max_body_bytes, d.max_body_bytes, MIN_BODY_BYTES, MAX_BODY_BYTES);
  return {
    listen: listenAddress(ctx, at('listen'), raw.listen, d.listen),
    ...(raw.tls !== undefined ? { tls: serverTls(raw.tls)! } : {}),
    http: httpLimits(ctx, at('http'), raw.http),
    max_body_bytes: maxBody,
    // A record that takes the whole body can only be sent alone; max_body_bytes bounds it.
    max_record_bytes: size(ctx, at('max_record_bytes'), raw.max_record_bytes, Math.min(DEFAULT_MAX_RECORD_BYTES, maxBody), MIN_MAX_RECORD_BYTES, maxBody),
    store: normalizeStore(raw.store ?? {}, at('store'), ctx),
    auth: normalizeAuth(raw.auth ?? {}, at('auth'), ctx),
    streams,
    ship_identities: shipIdentities(ctx, at('ship_identities'), (raw.ship_identities ?? []) as Raw[]),
    trust_on_first_use: raw.trust_on_first_use ?? false,
    hmac_keys: hmacKeys,
    ...(raw.keys !== undefined
      ? {
          keys: {
            signing_key_file: raw.keys.signing_key_file as string,
            ...(raw.keys.hmac_key_file !== undefined ? { hmac_key_file: raw.keys.hmac_key_file as string } : {}),
            hmac_key_id: (raw.keys.hmac_key_id as string | undefined) ?? 'collector',
          },
        }
      : {}),
    read_audit: {
      enabled: raw.read_audit?.enabled ?? true,
      ...(raw.read_audit?.stream !== undefined ? { stream: raw.read_audit.stream as string } : {}),
    },
  };
}
