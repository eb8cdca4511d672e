/**
 * The client's options, their defaults, and the check that turns a wrong one
 * into `client_options_invalid` naming it: thrown by the constructor, before
 * any event could be lost to a typo.
 */
import { DEFAULT_BACKOFF, type BackoffPolicy } from './backoff.js';
import { ClientError, type ConnectionError } from './errors.js';

const MiB = 1024 * 1024;

export const CLIENT_DEFAULTS = Object.freeze({
  failClosed: false,
  ackTimeoutMs: 5_000,
  maxQueue: 10_000,
  maxQueueBytes: 64 * MiB,
  /** the socket and file sources' default max_line_bytes */
  maxEventBytes: MiB,
  /** the sidecar's default redaction max_depth */
  maxDepth: 64,
  maxBatchEvents: 500,
  maxBatchBytes: MiB,
  requestTimeoutMs: 30_000,
  fsync: false,
  fileMode: 0o600,
});

export interface CommonOptions {
  /**
   * Reject an emit with `client_ack_timeout` when no answer came within
   * ackTimeoutMs, so the agent can refuse to act unaudited. Off: an emit
   * waits, across reconnects, until the sidecar answers.
   */
  failClosed?: boolean;
  /** failClosed's deadline per event, ms (default 5000) */
  ackTimeoutMs?: number;
  /** events emitted and not yet answered, at most (default 10,000); more are rejected with `client_queue_full` */
  maxQueue?: number;
  /** bytes of those events, at most (default 64 MiB) */
  maxQueueBytes?: number;
  /** an event's JSON, at most (default 1 MiB, the sidecar's default max_line_bytes) */
  maxEventBytes?: number;
  /**
   * Levels of objects and arrays an event may nest (default 64, the
   * sidecar's default redaction max_depth; raise both together): a deeper
   * event is rejected before it is queued, as the sidecar would quarantine it
   */
  maxDepth?: number;
  /** delays between reconnects (socket) or resends (http); defaults in DEFAULT_BACKOFF */
  reconnect?: Partial<BackoffPolicy>;
  /** told of every failed connect, dropped connection or retried request; the client retries after `delayMs` */
  onConnectionError?: (err: ConnectionError, retry: { attempt: number; delayMs: number }) => void;
}

/** The sidecar's socket source (docs/socket-source.md): every event answered once durable. */
export interface SocketOptions extends CommonOptions {
  socket: string;
  http?: never;
  file?: never;
}

/** The sidecar's http source (docs/http-events.md): POST /v1/events, batched. */
export interface HttpOptions extends CommonOptions {
  /** base URL, e.g. http://127.0.0.1:9470 (the sidecar's telemetry.listen); /v1/events is added */
  http: string;
  /** events per request, at most (default 500, up to 10,000; the source's max_events must allow it) */
  maxBatchEvents?: number;
  /** bytes per request, at most, unless one event alone is larger (default 1 MiB; below the source's max_body_bytes) */
  maxBatchBytes?: number;
  /** a request not answered within this is abandoned and retried, ms (default 30,000) */
  requestTimeoutMs?: number;
  socket?: never;
  file?: never;
}

/** A JSONL file a file source tails: for agents that cannot reach a socket. */
export interface FileOptions extends CommonOptions {
  file: string;
  /** fsync after writing, before emit resolves (default false) */
  fsync?: boolean;
  /** permissions if the file is created (default 0o600; 0o640 lets the sidecar's group read it) */
  mode?: number;
  socket?: never;
  http?: never;
}

export type AuditClientOptions = SocketOptions | HttpOptions | FileOptions;

export type TransportOptions =
  | { kind: 'socket'; path: string }
  | { kind: 'http'; url: URL; maxBatchEvents: number; maxBatchBytes: number; requestTimeoutMs: number }
  | { kind: 'file'; path: string; fsync: boolean; mode: number };

export interface ResolvedOptions {
  transport: TransportOptions;
  failClosed: boolean;
  ackTimeoutMs: number;
  maxQueue: number;
  maxQueueBytes: number;
  maxEventBytes: number;
  maxDepth: number;
  backoff: BackoffPolicy;
  onConnectionError: CommonOptions['onConnectionError'];
}

function invalid(option: string, what: string): ClientError<'client_options_invalid'> {
  return new ClientError('client_options_invalid', `AuditClient option ${option}: ${what}`);
}

function int(v: unknown, option: string, def: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw invalid(option, `expected an integer from ${min} to ${max}`);
  }
  return v;
}

function bool(v: unknown, option: string, def: boolean): boolean {
  if (v === undefined) return def;
  if (typeof v !== 'boolean') throw invalid(option, 'expected true or false');
  return v;
}

function path(v: unknown, option: string): string {
  if (typeof v !== 'string' || v.length === 0 || v.includes('\0')) throw invalid(option, 'expected a path');
  return v;
}

function eventsUrl(v: unknown): URL {
  let url: URL;
  try {
    url = new URL(String(v));
  } catch {
    throw invalid('http', 'expected a URL such as http://127.0.0.1:9470');
  }
  if (typeof v !== 'string' || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw invalid('http', 'expected an http:// or https:// URL such as http://127.0.0.1:9470');
  }
  if (url.search || url.hash) throw invalid('http', 'expected a base URL without ?query or #fragment');
  // A base behind a proxy prefix (http://host/audit/) keeps its path.
  if (!url.pathname.endsWith('/v1/events')) url.pathname = `${url.pathname.replace(/\/+$/, '')}/v1/events`;
  return url;
}

function backoff(v: unknown): BackoffPolicy {
  if (v === undefined) return { ...DEFAULT_BACKOFF };
  if (typeof v !== 'object' || v === null) throw invalid('reconnect', 'expected an object');
  const r = v as Partial<BackoffPolicy>;
  const initialDelayMs = int(r.initialDelayMs, 'reconnect.initialDelayMs', DEFAULT_BACKOFF.initialDelayMs, 1, 3_600_000);
  const maxDelayMs = int(r.maxDelayMs, 'reconnect.maxDelayMs', Math.max(DEFAULT_BACKOFF.maxDelayMs, initialDelayMs), initialDelayMs, 3_600_000);
  const multiplier = r.multiplier ?? DEFAULT_BACKOFF.multiplier;
  if (typeof multiplier !== 'number' || !(multiplier >= 1 && multiplier <= 100)) throw invalid('reconnect.multiplier', 'expected a number from 1 to 100');
  const jitter = r.jitter ?? DEFAULT_BACKOFF.jitter;
  if (typeof jitter !== 'number' || !(jitter >= 0 && jitter <= 1)) throw invalid('reconnect.jitter', 'expected a number from 0 to 1');
  return { initialDelayMs, maxDelayMs, multiplier, jitter };
}

export function resolveOptions(raw: AuditClientOptions): ResolvedOptions {
  if (typeof raw !== 'object' || raw === null) throw invalid('(options)', 'expected an object with socket, http or file');
  // Read as unknowns: the options may come from JavaScript or a config file, not only from checked TypeScript.
  const o = raw as unknown as Record<string, unknown>;
  const given = (['socket', 'http', 'file'] as const).filter((k) => o[k] !== undefined);
  if (given.length !== 1) {
    throw invalid(given.length === 0 ? 'socket' : given.join('/'), 'set exactly one of socket (a Unix socket path), http (a URL) or file (a JSONL path)');
  }
  let transport: TransportOptions;
  if (o.socket !== undefined) {
    transport = { kind: 'socket', path: path(o.socket, 'socket') };
  } else if (o.http !== undefined) {
    transport = {
      kind: 'http',
      url: eventsUrl(o.http),
      maxBatchEvents: int(o.maxBatchEvents, 'maxBatchEvents', CLIENT_DEFAULTS.maxBatchEvents, 1, 10_000),
      maxBatchBytes: int(o.maxBatchBytes, 'maxBatchBytes', CLIENT_DEFAULTS.maxBatchBytes, 1),
      requestTimeoutMs: int(o.requestTimeoutMs, 'requestTimeoutMs', CLIENT_DEFAULTS.requestTimeoutMs, 1),
    };
  } else {
    transport = {
      kind: 'file',
      path: path(o.file, 'file'),
      fsync: bool(o.fsync, 'fsync', CLIENT_DEFAULTS.fsync),
      mode: int(o.mode, 'mode', CLIENT_DEFAULTS.fileMode, 0, 0o777),
    };
  }
  if (o.onConnectionError !== undefined && typeof o.onConnectionError !== 'function') throw invalid('onConnectionError', 'expected a function');
  return {
    transport,
    failClosed: bool(o.failClosed, 'failClosed', CLIENT_DEFAULTS.failClosed),
    // setTimeout's own ceiling: a larger delay would fire at once.
    ackTimeoutMs: int(o.ackTimeoutMs, 'ackTimeoutMs', CLIENT_DEFAULTS.ackTimeoutMs, 1, 2 ** 31 - 1),
    maxQueue: int(o.maxQueue, 'maxQueue', CLIENT_DEFAULTS.maxQueue, 1),
    maxQueueBytes: int(o.maxQueueBytes, 'maxQueueBytes', CLIENT_DEFAULTS.maxQueueBytes, 1),
    maxEventBytes: int(o.maxEventBytes, 'maxEventBytes', CLIENT_DEFAULTS.maxEventBytes, 1),
    maxDepth: int(o.maxDepth, 'maxDepth', CLIENT_DEFAULTS.maxDepth, 1),
    backoff: backoff(o.reconnect),
    onConnectionError: o.onConnectionError as CommonOptions['onConnectionError'],
  };
}
