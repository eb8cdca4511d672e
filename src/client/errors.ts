/**
 * What the client rejects an emit (or refuses its options) with. Every
 * failure is a ClientError, a SealtrailError, so an agent can tell "the
 * sidecar refused this event" from "nobody answered in time" by `code` alone
 * and decide whether to act unaudited. Messages name the option or field to
 * change and never quote the event: it may hold PII.
 */
import type { ClientCode } from '../core/error-codes.js';
import { SealtrailError } from '../core/errors.js';

export type { ClientCode } from '../core/error-codes.js';

/** A client failure; `code` is one of ClientCode (src/core/error-codes.ts). */
export class ClientError<C extends ClientCode = ClientCode> extends SealtrailError<C> {
  declare readonly code: C;
  /** the event_id of the event an emit was rejected for, when there was one */
  readonly eventId: string | undefined;
  constructor(code: C, message: string, options?: { cause?: unknown; eventId?: string }) {
    super(code, message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.eventId = options?.eventId;
  }
}

/**
 * An event that was not stored because of what it holds, so sending it again
 * unchanged fails the same way: refused before sending
 * (`client_event_invalid`, `client_event_too_large`) or by the sidecar
 * (`client_event_refused`).
 */
export class EventRejectedError extends ClientError<'client_event_invalid' | 'client_event_too_large' | 'client_event_refused'> {
  /**
   * The reason in the sidecar's vocabulary (docs/socket-source.md, "Line
   * error codes"): `record_invalid`, `redact_too_deep`, `line_too_long`, …;
   * for a refusal made before sending, the code the sidecar would have given.
   */
  readonly reason: string;
  /** the path of the field at fault (`event_type`, `actor.id`) when known */
  readonly field: string | undefined;
  constructor(
    code: 'client_event_invalid' | 'client_event_too_large' | 'client_event_refused',
    reason: string,
    message: string,
    field?: string,
    options?: { cause?: unknown; eventId?: string },
  ) {
    super(code, message, options);
    this.reason = reason;
    this.field = field;
  }
}

/**
 * Reaching the sidecar failed: connect refused, connection dropped, a
 * connection error from the socket source, an HTTP status to retry. Never an
 * emit's rejection (the client retries); onConnectionError receives it.
 */
export class ConnectionError extends ClientError<'client_connection_failed'> {
  /**
   * What failed: an errno code (`ECONNREFUSED`, `ENOENT`, `EPIPE`), the
   * socket source's connection error (`source_closed`,
   * `too_many_connections`), `closed` for a connection ended without one,
   * or `http_<status>` (`http_503`).
   */
  readonly reason: string;
  constructor(reason: string, message: string, options?: { cause?: unknown }) {
    super('client_connection_failed', message, options);
    this.reason = reason;
  }
}
