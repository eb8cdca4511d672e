/**
 * The value parsers of config normalisation: durations, sizes, listen
 * addresses, HTTP limits, each refused with the file:line:col of its node.
 */
import type { ConfigCode } from '../core/error-codes.js';
import { ConfigError } from '../core/errors.js';
import { DEFAULT_HTTP_LIMITS, HTTP_LIMIT_BOUNDS } from '../http-limits.js';
import type { HttpLimitsConfig, ServerTlsConfig } from './types.js';
import { parseDuration, parseSize, splitHostPort, UnitError } from './units.js';
import { formatDataPath } from './schema-errors.js';
import type { DataPath, Place } from './yaml.js';

export interface NormalizeContext {
  /** file:line:col of the node at a data path (or just the file, or nothing for in-memory config) */
  place(path: DataPath, preferKey?: boolean): Place;
}

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

// The input has already passed the schema, so its shape is known; typing it twice adds nothing.
export type Raw = any;

export function fail(ctx: NormalizeContext, code: ConfigCode, path: DataPath, message: string, preferKey = false): never {
  const name = formatDataPath(path);
  throw new ConfigError(code, name ? `${name}: ${message}` : message, ctx.place(path, preferKey));
}

function quantity(
  ctx: NormalizeContext,
  path: DataPath,
  value: unknown,
  fallback: number,
  parse: (v: unknown) => number,
  range: { min: number; max: number; show: (n: number) => string },
): number {
  if (value === undefined) return fallback;
  let n: number;
  try {
    n = parse(value);
  } catch (err) {
    if (err instanceof UnitError) fail(ctx, err.code, path, err.message);
    throw err;
  }
  if (n < range.min) fail(ctx, 'config_schema', path, `must be at least ${range.show(range.min)}`);
  if (n > range.max) fail(ctx, 'config_schema', path, `must be at most ${range.show(range.max)}`);
  return n;
}

export function duration(ctx: NormalizeContext, path: DataPath, value: unknown, fallback: number, min: number, max = DAY): number {
  return quantity(ctx, path, value, fallback, parseDuration, { min, max, show: showMs });
}

export function size(ctx: NormalizeContext, path: DataPath, value: unknown, fallback: number, min: number, max: number): number {
  return quantity(ctx, path, value, fallback, parseSize, { min, max, show: showBytes });
}

export function showMs(ms: number): string {
  if (ms % HOUR === 0) return `${ms / HOUR}h`;
  if (ms % MINUTE === 0) return `${ms / MINUTE}m`;
  if (ms % SECOND === 0) return `${ms / SECOND}s`;
  return `${ms}ms`;
}

export function showBytes(b: number): string {
  if (b >= GiB && b % GiB === 0) return `${b / GiB}GiB`;
  if (b >= MiB && b % MiB === 0) return `${b / MiB}MiB`;
  if (b >= KiB && b % KiB === 0) return `${b / KiB}KiB`;
  return `${b}B`;
}

export function listenAddress(ctx: NormalizeContext, path: DataPath, value: unknown, fallback: string): string {
  if (value === undefined) return fallback;
  try {
    splitHostPort(value as string);
  } catch (err) {
    if (err instanceof UnitError) fail(ctx, err.code, path, err.message);
    throw err;
  }
  return value as string;
}

/** collector.http, sidecar.telemetry.http: defaults and bounds from src/http-limits.ts. */
export function httpLimits(ctx: NormalizeContext, path: DataPath, raw: Raw): HttpLimitsConfig {
  const d = DEFAULT_HTTP_LIMITS;
  const b = HTTP_LIMIT_BOUNDS;
  const timeout = (key: 'header_timeout' | 'request_timeout' | 'keep_alive_timeout'): number =>
    duration(ctx, [...path, key], raw?.[key], d[key], b[key].min, b[key].max);
  const out: HttpLimitsConfig = {
    header_timeout: timeout('header_timeout'),
    request_timeout: timeout('request_timeout'),
    keep_alive_timeout: timeout('keep_alive_timeout'),
    max_connections: raw?.max_connections ?? d.max_connections,
  };
  // The request timeout covers the headers too; Node refuses the other order.
  if (out.header_timeout > out.request_timeout) {
    const key = raw?.header_timeout === undefined ? 'request_timeout' : 'header_timeout';
    fail(ctx, 'config_schema', [...path, key], `header_timeout (${showMs(out.header_timeout)}) must not be longer than request_timeout (${showMs(out.request_timeout)})`);
  }
  return out;
}

/** `tls:` beside a listen (collector.tls, sidecar.telemetry.tls, an otlp source's tls); the schema has checked its shape. */
export function serverTls(raw: Raw): ServerTlsConfig | undefined {
  if (raw === undefined) return undefined;
  return {
    cert_file: raw.cert_file as string,
    key_file: raw.key_file as string,
    ...(raw.client_ca_file !== undefined ? { client_ca_file: raw.client_ca_file as string } : {}),
  };
}

export function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.map(String) : [];
}
