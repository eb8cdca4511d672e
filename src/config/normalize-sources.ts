/**
 * sidecar.sources: defaults, the one-http-source rule, reserved ids, and
 * each source's `format` (with the `mapping` a mapped format needs).
 */
import type { SourceConfig, SourceFormatConfig } from './types.js';
import { fail, GiB, httpLimits, listenAddress, serverTls, size, strings, type NormalizeContext, type Raw } from './normalize-values.js';
import { RESERVED_SOURCE_ID, SIDECAR_DEFAULTS } from './defaults.js';
import type { DataPath } from './yaml.js';

export function normalizeSources(raw: Raw[], at: (...p: (string | number)[]) => DataPath, ctx: NormalizeContext): SourceConfig[] {
  const d = SIDECAR_DEFAULTS;
  const seen = new Map<string, number>();
  const listens = new Map<string, number>();
  let httpAt: number | undefined;
  return raw.map((s, i): SourceConfig => {
    if (s.id === RESERVED_SOURCE_ID) {
      // the sidecar's own records (heartbeats) carry this source; input must not be able to pose as them
      fail(ctx, 'config_schema', at('sources', i, 'id'), `"${RESERVED_SOURCE_ID}" is reserved for the sidecar's own records`);
    }
    if (seen.has(s.id)) {
      fail(ctx, 'config_schema', at('sources', i, 'id'), `duplicate source id (also used by sources[${seen.get(s.id)}])`);
    }
    seen.set(s.id, i);
    const maxLine = (): number =>
      size(ctx, at('sources', i, 'max_line_bytes'), s.max_line_bytes, d.max_line_bytes, 1, d.max_line_bytes_limit);
    if (s.type === 'otlp') {
      const listen = listenAddress(ctx, at('sources', i, 'listen'), s.listen, d.otlp_listen);
      if (listens.has(listen)) fail(ctx, 'config_schema', at('sources', i, 'listen'), `sources[${listens.get(listen)}] listens on ${listen} already`);
      listens.set(listen, i);
      const tls = serverTls(s.tls);
      return {
        id: s.id,
        type: 'otlp',
        listen,
        max_body_bytes: size(ctx, at('sources', i, 'max_body_bytes'), s.max_body_bytes, d.otlp_max_body_bytes, 1, GiB),
        max_items: s.max_items ?? d.otlp_max_items,
        http: httpLimits(ctx, at('sources', i, 'http'), s.http),
        ...(tls ? { tls } : {}),
      };
    }
    if (s.type === 'socket') {
      return {
        id: s.id,
        type: 'socket',
        path: s.path,
        mode: s.mode === undefined ? d.socket_mode : parseInt(s.mode, 8),
        max_line_bytes: maxLine(),
        max_connections: s.max_connections ?? d.socket_max_connections,
        ...format(s, i, d.format, at, ctx),
      };
    }
    if (s.type === 'http') {
      if (httpAt !== undefined) {
        fail(ctx, 'config_schema', at('sources', i, 'type'), `only one http source may be configured (it serves POST /v1/events on telemetry.listen; sources[${httpAt}] is one)`);
      }
      httpAt = i;
      return {
        id: s.id,
        type: 'http',
        max_body_bytes: size(ctx, at('sources', i, 'max_body_bytes'), s.max_body_bytes, d.http_max_body_bytes, 1, GiB),
        max_events: s.max_events ?? d.http_max_events,
        ...format(s, i, d.format, at, ctx),
      };
    }
    return {
      id: s.id,
      type: 'file',
      include: strings(s.include),
      exclude: strings(s.exclude),
      max_line_bytes: maxLine(),
      start_at: s.start_at ?? d.start_at,
      ...format(s, i, d.file_format, at, ctx),
    };
  });
}

/** `format` and `mapping`: a mapped format needs a mapping, and only it takes one. */
function format(s: Raw, i: number, fallback: SourceFormatConfig['format'], at: (...p: (string | number)[]) => DataPath, ctx: NormalizeContext): SourceFormatConfig {
  const f: SourceFormatConfig['format'] = s.format ?? fallback;
  if (f === 'mapped') {
    if (typeof s.mapping !== 'string') fail(ctx, 'config_schema', at('sources', i, 'format'), 'format: mapped needs `mapping`: a preset name (see config/mappings/) or a YAML mapping file');
    return { format: 'mapped', mapping: s.mapping };
  }
  if (s.mapping !== undefined) fail(ctx, 'config_schema', at('sources', i, 'mapping'), `mapping applies to format: mapped only (this source's format is ${f})`, true);
  return { format: f };
}

