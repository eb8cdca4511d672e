/**
 * JSON Schema for the config file. Every object has additionalProperties:
 * false so a misspelt key is an error at its line instead of a silently
 * ignored setting. Durations and sizes are `integer | string` here; their
 * syntax and ranges are checked in normalize.ts, which knows the units.
 * Cross-field rules (unique ids, exactly one of vkey/vkey_file, URLs) are also
 * there: JSON Schema can express some of them, but only with error messages
 * nobody can act on.
 */
import { COLLECTOR_STREAM_PREFIX } from '../core/reserved-streams.js';
import { CONFIG_KEY_ID, CONFIG_STREAM_ID } from '../core/wire-ids.js';
import { DEFAULT_MAX_BATCH_RECORDS } from '../core/wire-limits.js';
import { HTTP_LIMIT_BOUNDS } from '../http-limits.js';
import { schemaValidator, type SchemaValidator } from './schema-check.js';

const STREAM_ID = CONFIG_STREAM_ID;
const KEY_ID = CONFIG_KEY_ID;
const SOURCE_ID = '^[a-z0-9_-]{1,64}$';
// An exact stream id, or a (possibly empty) prefix followed by "*".
const STREAM_MATCH = '^(?:[A-Za-z0-9._-]{1,128}|[A-Za-z0-9._-]{0,127}\\*)$';
// ship_identities[].streams may also hold `{pod}` (collector/ship-identities.ts): the pod its certificate names.
const IDENTITY_STREAM_MATCH = '^(?:(?:[A-Za-z0-9._-]|\\{pod\\}){1,128}|(?:[A-Za-z0-9._-]|\\{pod\\}){0,127}\\*)$';
const LISTEN = '^(?:\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9.-]+):[0-9]{1,5}$';

const duration = { type: ['integer', 'string'], minimum: 0, maxLength: 64 } as const;
const size = { type: ['integer', 'string'], minimum: 0, maxLength: 64 } as const;
const path = { type: 'string', minLength: 1, maxLength: 4096 } as const;
const glob = { type: 'string', minLength: 1, maxLength: 4096 } as const;
const listen = { type: 'string', maxLength: 300, pattern: LISTEN } as const;
const TOKEN_ID = '^[A-Za-z0-9._:@-]{1,64}$';
const rateLimit = {
  type: 'object',
  additionalProperties: false,
  properties: {
    requests_per_second: { type: 'number', exclusiveMinimum: 0, maximum: 1_000_000 },
    burst: { type: 'integer', minimum: 1, maximum: 1_000_000 },
  },
} as const;

// collector.http and sidecar.telemetry.http: how long and how many clients a listener keeps.
const httpLimits = {
  type: 'object',
  additionalProperties: false,
  properties: {
    header_timeout: duration,
    request_timeout: duration,
    keep_alive_timeout: duration,
    max_connections: { type: 'integer', minimum: HTTP_LIMIT_BOUNDS.max_connections.min, maximum: HTTP_LIMIT_BOUNDS.max_connections.max },
  },
} as const;

// `tls:` beside a `listen` (src/tls/): the server's pair and, for mTLS, the CA clients must chain to.
const serverTls = {
  type: 'object',
  additionalProperties: false,
  required: ['cert_file', 'key_file'],
  properties: { cert_file: path, key_file: path, client_ca_file: path },
} as const;

// ship.tls: the CA that issued the collector's certificate, and the sidecar's own pair (mTLS).
const clientTls = {
  type: 'object',
  additionalProperties: false,
  properties: { ca_file: path, cert_file: path, key_file: path },
} as const;

// A source's format; `mapping` (a preset name or a YAML file) goes with format: mapped.
const format = { enum: ['sealtrail', 'otlp-json', 'cloudevents', 'mapped', 'auto'] } as const;
const mapping = { type: 'string', minLength: 1, maxLength: 4096 } as const;

const fileSource = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'type', 'include'],
  properties: {
    id: { type: 'string', pattern: SOURCE_ID },
    type: { enum: ['file'] },
    include: { type: 'array', minItems: 1, maxItems: 256, items: glob },
    exclude: { type: 'array', maxItems: 256, items: glob },
    max_line_bytes: size,
    start_at: { enum: ['beginning', 'end'] },
    format,
    mapping,
  },
} as const;

const socketSource = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'type', 'path'],
  properties: {
    id: { type: 'string', pattern: SOURCE_ID },
    type: { const: 'socket' },
    // sun_path holds 107 bytes on Linux
    path: { type: 'string', minLength: 1, maxLength: 107 },
    mode: { type: 'string', pattern: '^0?[0-7]{3}$' },
    max_line_bytes: size,
    max_connections: { type: 'integer', minimum: 1, maximum: 65_536 },
    format,
    mapping,
  },
} as const;

const httpSource = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'type'],
  properties: {
    id: { type: 'string', pattern: SOURCE_ID },
    type: { const: 'http' },
    max_body_bytes: size,
    max_events: { type: 'integer', minimum: 1, maximum: 100_000 },
    format,
    mapping,
  },
} as const;

// OTLP/HTTP receiver on its own port: its format is OTLP by definition.
const otlpSource = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'type'],
  properties: {
    id: { type: 'string', pattern: SOURCE_ID },
    type: { const: 'otlp' },
    listen,
    max_body_bytes: size,
    max_items: { type: 'integer', minimum: 1, maximum: 1_000_000 },
    http: httpLimits,
    tls: serverTls,
  },
} as const;

// Discriminated by `type` so an error names the fields of the source actually meant.
const source = {
  type: 'object',
  required: ['type'],
  properties: { type: { enum: ['file', 'socket', 'http', 'otlp'] } },
  if: { properties: { type: { const: 'socket' } } },
  then: socketSource,
  else: {
    if: { properties: { type: { const: 'http' } } },
    then: httpSource,
    else: { if: { properties: { type: { const: 'otlp' } } }, then: otlpSource, else: fileSource },
  },
} as const;

export const sidecarSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['sources', 'keys', 'ship'],
  properties: {
    stream: {
      type: 'object',
      additionalProperties: false,
      properties: {
        id: { type: 'string', pattern: STREAM_ID },
        name: { type: 'string', pattern: STREAM_ID },
      },
    },
    data_dir: path,
    sources: { type: 'array', minItems: 1, maxItems: 256, items: source },
    redaction: {
      type: 'object',
      additionalProperties: false,
      properties: {
        rules: { type: 'array', maxItems: 256, items: path },
        // Keys for the hash operator (pseudonyms): deployment secrets, named by id in rule files.
        pseudonym_keys: {
          type: 'array',
          maxItems: 64,
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['id', 'file'],
            properties: { id: { type: 'string', pattern: KEY_ID }, file: path },
          },
        },
      },
    },
    keys: {
      type: 'object',
      additionalProperties: false,
      required: ['signing_key_file', 'hmac_key_file'],
      properties: {
        signing_key_file: path,
        hmac_key_file: path,
        hmac_key_id: { type: 'string', pattern: KEY_ID },
      },
    },
    seal: {
      type: 'object',
      additionalProperties: false,
      properties: {
        max_records: { type: 'integer', minimum: 1, maximum: DEFAULT_MAX_BATCH_RECORDS },
        max_interval: duration,
        heartbeat_interval: duration,
      },
    },
    ship: {
      type: 'object',
      additionalProperties: false,
      required: ['url'],
      properties: {
        url: { type: 'string', minLength: 1, maxLength: 2048 },
        token: { type: 'string', minLength: 1, maxLength: 4096 },
        tls: clientTls,
        timeout: duration,
        backoff_initial: duration,
        backoff_max: duration,
        max_batch_bytes: size,
      },
    },
    buffer: {
      type: 'object',
      additionalProperties: false,
      properties: {
        max_bytes: size,
        max_records: { type: 'integer', minimum: 1, maximum: 1_000_000_000 },
      },
    },
    telemetry: {
      type: 'object',
      additionalProperties: false,
      properties: { listen, http: httpLimits, tls: serverTls },
    },
  },
} as const;

export const collectorSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    listen,
    tls: serverTls,
    http: httpLimits,
    max_body_bytes: size,
    max_record_bytes: size,
    // One object for every store type; which keys each type takes is checked
    // in normalize.ts, where the error can say so in words. `type: null` is
    // YAML's null, so both it and the string "null" mean the null store.
    store: {
      type: 'object',
      additionalProperties: false,
      properties: {
        type: { enum: [null, 'null', 'sqlite', 'postgres'] },
        path,
        url: { type: 'string', minLength: 1, maxLength: 4096 },
        migrate_url: { type: 'string', minLength: 1, maxLength: 4096 },
        pool_size: { type: 'integer', minimum: 1, maximum: 1000 },
        statement_timeout: duration,
      },
    },
    auth: {
      type: 'object',
      additionalProperties: false,
      properties: {
        admin_tokens: {
          type: 'array',
          maxItems: 256,
          items: { type: 'string', minLength: 16, maxLength: 4096 },
        },
        admin_token_files: { type: 'array', maxItems: 256, items: path },
        // Hashed tokens with a role; see docs/access.md.
        tokens: {
          type: 'array',
          maxItems: 10_000,
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['sha256', 'role'],
            properties: {
              id: { type: 'string', pattern: TOKEN_ID },
              sha256: { type: 'string', pattern: '^[0-9a-fA-F]{64}$' },
              role: { enum: ['admin', 'reader'] },
              tenant: { type: 'string', minLength: 1, maxLength: 256 },
            },
          },
        },
        rate_limit: {
          type: 'object',
          additionalProperties: false,
          properties: { admin: rateLimit, reader: rateLimit, failures: rateLimit },
        },
        max_query_range: duration,
      },
    },
    streams: {
      type: 'array',
      maxItems: 10_000,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['match'],
        properties: {
          match: { type: 'string', pattern: STREAM_MATCH },
          vkey: { type: 'string', minLength: 1, maxLength: 1024 },
          vkey_file: path,
          // Several keys with validity periods, for rotation (instead of vkey/vkey_file).
          keys: {
            type: 'array',
            minItems: 1,
            maxItems: 64,
            items: {
              type: 'object',
              additionalProperties: false,
              properties: {
                vkey: { type: 'string', minLength: 1, maxLength: 1024 },
                vkey_file: path,
                not_before: { type: 'string', minLength: 1, maxLength: 64 },
                not_after: { type: 'string', minLength: 1, maxLength: 64 },
              },
            },
          },
        },
      },
    },
    // Who may post which streams (docs/access.md); exactly one of token_sha256, san_uri, san_dns (normalize.ts).
    ship_identities: {
      type: 'array',
      maxItems: 100_000,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['streams'],
        properties: {
          id: { type: 'string', pattern: TOKEN_ID },
          token_sha256: { type: 'string', pattern: '^[0-9a-fA-F]{64}$' },
          san_uri: { type: 'string', minLength: 1, maxLength: 2048 },
          san_dns: { type: 'string', minLength: 1, maxLength: 253 },
          streams: { type: 'array', minItems: 1, maxItems: 10_000, items: { type: 'string', pattern: IDENTITY_STREAM_MATCH } },
        },
      },
    },
    trust_on_first_use: { type: 'boolean' },
    // The collector's own keys: they sign and chain its read-audit stream (docs/read-audit.md).
    keys: {
      type: 'object',
      additionalProperties: false,
      required: ['signing_key_file'],
      properties: {
        signing_key_file: path,
        hmac_key_file: path,
        hmac_key_id: { type: 'string', pattern: KEY_ID },
      },
    },
    read_audit: {
      type: 'object',
      additionalProperties: false,
      properties: {
        enabled: { type: 'boolean' },
        // The prefix every collector reserves for read-audit streams (core/reserved-streams.ts).
        stream: { type: 'string', pattern: `^${COLLECTOR_STREAM_PREFIX}[A-Za-z0-9._-]{1,118}$` },
      },
    },
    hmac_keys: {
      type: 'array',
      maxItems: 256,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'file'],
        properties: {
          id: { type: 'string', pattern: KEY_ID },
          file: path,
        },
      },
    },
  },
} as const;

export const rootSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    sidecar: sidecarSchema,
    collector: collectorSchema,
  },
} as const;

const compiled = new Map<object, SchemaValidator[]>();

/**
 * Two validators per schema, run in order: the first has every `required`
 * removed, so a misspelt key is reported as unknown (at its own line) rather
 * than as the correctly spelt key being missing; the second is the full
 * schema. Interpreted (./schema-check.ts), not compiled: generating code for
 * these schemas cost a sidecar ~25 MiB of resident memory for good.
 */
export function validatorsFor(schema: object): readonly SchemaValidator[] {
  let v = compiled.get(schema);
  if (!v) {
    v = [schemaValidator(withoutRequired(schema) as object), schemaValidator(schema)];
    compiled.set(schema, v);
  }
  return v;
}

/** The schema with every `required` removed (the first of validatorsFor's pair). */
export function withoutRequired(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(withoutRequired);
  if (schema === null || typeof schema !== 'object') return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k === 'required') continue;
    // `properties` maps names to schemas; names themselves are never keywords.
    out[k] = k === 'properties' ? Object.fromEntries(Object.entries(v as object).map(([n, s]) => [n, withoutRequired(s)])) : withoutRequired(v);
  }
  return out;
}
