/**
 * How long and how many clients an HTTP listener keeps: the collector's API
 * (`collector.http`) and the sidecar's telemetry server, which also serves
 * POST /v1/events (`sidecar.telemetry.http`). Without these, a client that
 * sends its headers or body one byte at a time, or connects and sends
 * nothing, holds a socket and its memory for as long as it likes.
 *
 * Field names are the YAML keys; durations are ms. The defaults and bounds
 * here are the ones src/config applies to a file, so a listener built in
 * code (tests, embedded use) is exactly as safe as one built from YAML.
 */
import type { Server, ServerOptions } from 'node:http';
import type { OptionsCode } from './core/error-codes.js';
import { SealtrailError } from './core/errors.js';

export interface HttpLimits {
  /** ms until a request's headers are complete, counted from the connection or from the request's first byte */
  header_timeout: number;
  /** ms from the start of a request until all of it, body included, has arrived */
  request_timeout: number;
  /** ms an idle kept-alive connection stays open after a response */
  keep_alive_timeout: number;
  /** connections open at once; more are closed as soon as they are accepted */
  max_connections: number;
}

export const DEFAULT_HTTP_LIMITS: Readonly<HttpLimits> = Object.freeze({
  header_timeout: 10_000,
  request_timeout: 60_000,
  keep_alive_timeout: 5_000,
  max_connections: 1024,
});

/**
 * Inclusive bounds. Below 100 ms a slow network is indistinguishable from an
 * attack; the upper bounds keep a typo (a duration in the wrong unit) from
 * reopening the hole. A 16 MiB batch at 1 Mbit/s takes about two minutes,
 * well inside the request bound.
 */
export const HTTP_LIMIT_BOUNDS: Readonly<Record<keyof HttpLimits, { min: number; max: number }>> = Object.freeze({
  header_timeout: { min: 100, max: 10 * 60_000 },
  request_timeout: { min: 100, max: 60 * 60_000 },
  keep_alive_timeout: { min: 100, max: 10 * 60_000 },
  max_connections: { min: 1, max: 65_536 },
});

const KEYS = Object.keys(DEFAULT_HTTP_LIMITS) as (keyof HttpLimits)[];

/**
 * The given limits with defaults filled in, checked against the bounds and
 * against Node's rule that headers cannot take longer than the whole
 * request. Throws SealtrailError(`code`) naming the key.
 */
export function resolveHttpLimits(given: Partial<HttpLimits> | undefined, code: OptionsCode, prefix = 'http'): HttpLimits {
  const out = { ...DEFAULT_HTTP_LIMITS };
  for (const key of KEYS) {
    const v = given?.[key];
    if (v === undefined) continue;
    const { min, max } = HTTP_LIMIT_BOUNDS[key];
    if (!Number.isSafeInteger(v) || v < min || v > max) {
      throw new SealtrailError(code, `${prefix}.${key} must be an integer from ${min} to ${max}`);
    }
    out[key] = v;
  }
  if (out.header_timeout > out.request_timeout) {
    throw new SealtrailError(code, `${prefix}.header_timeout must not be longer than ${prefix}.request_timeout`);
  }
  return out;
}

/**
 * Node checks the header and request timeouts on a timer, not per socket, so
 * a connection can outlive its bound by one interval: a quarter of the
 * shorter timeout keeps that overshoot small, and 1 s caps the work (one
 * pass over the open connections) at the defaults.
 */
export function connectionsCheckingInterval(limits: HttpLimits): number {
  return Math.max(25, Math.min(1000, Math.floor(Math.min(limits.header_timeout, limits.request_timeout) / 4)));
}

/**
 * Options for http.createServer. All three timeouts go in at construction,
 * where Node checks headersTimeout ≤ requestTimeout against its own default
 * request timeout otherwise. Node closes an idle kept-alive connection about
 * a second after keepAliveTimeout (and advertises the shorter value in
 * `Keep-Alive: timeout=`), so a client never sends into a socket being closed.
 */
export function httpServerOptions(limits: HttpLimits, checkIntervalMs = connectionsCheckingInterval(limits)): ServerOptions {
  return {
    headersTimeout: limits.header_timeout,
    requestTimeout: limits.request_timeout,
    keepAliveTimeout: limits.keep_alive_timeout,
    connectionsCheckingInterval: checkIntervalMs,
  };
}

/** The connection cap: Node closes a connection accepted beyond it before reading anything. */
export function capConnections(server: Server, limits: HttpLimits): void {
  server.maxConnections = limits.max_connections;
}
