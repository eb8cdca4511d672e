/**
 * Refused TLS clients of a listener, logged so an operator can tell why a
 * client cannot connect (plain HTTP sent to the HTTPS port, a TLS version
 * below 1.2, no or a wrong client certificate). At most one line per
 * second per kind of refusal: anyone who can reach the port can be
 * refused, and must not be able to fill the log; the rest are counted into
 * the next line of that kind.
 */
import type { Socket } from 'node:net';
import type { Server as TlsServer } from 'node:tls';

const INTERVAL_MS = 1000;

/** The one level this module writes with (a pino logger fits). */
export interface WarnLogger {
  warn(obj: object, msg: string): void;
}

/** OpenSSL's reasons in words a deployer acts on; `field` is the listener's tls block ("sidecar.telemetry.tls"). */
export function handshakeHint(err: Error & { code?: string }, field: string): string {
  const text = `${err.code ?? ''} ${err.message}`;
  if (/HTTP_REQUEST|http request/i.test(text)) return 'the client spoke plain HTTP to the HTTPS port; use an https:// URL';
  if (/PEER_DID_NOT_RETURN_A_CERTIFICATE|certificate required/i.test(text)) return `the client presented no certificate; ${field}.client_ca_file requires one`;
  if (/CERTIFICATE_EXPIRED|certificate expired/i.test(text)) return 'the client certificate has expired';
  if (/UNKNOWN_CA|unable to get|self.signed|CERTIFICATE_VERIFY_FAILED/i.test(text)) return `the client certificate is not issued by a CA of ${field}.client_ca_file`;
  if (/UNSUPPORTED_PROTOCOL|version/i.test(text)) return 'the client offered a TLS version below 1.2';
  return 'TLS handshake failed';
}

/** One line per kind per second, the suppressed ones counted into the next. */
export class RefusalLog {
  private readonly logger: WarnLogger;
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(logger: WarnLogger) {
    this.logger = logger;
  }

  /** Logs `msg` unless a line of the same kind went out less than a second ago. */
  note(kind: string, obj: object, msg: string): void {
    const now = Date.now();
    const seen = this.last.get(kind);
    if (seen && now - seen.at < INTERVAL_MS) {
      seen.suppressed++;
      return;
    }
    const suppressed = seen?.suppressed ?? 0;
    this.last.set(kind, { at: now, suppressed: 0 });
    this.logger.warn({ ...obj, ...(suppressed > 0 ? { suppressed } : {}) }, msg);
  }

  /** Logs the handshakes `server` refuses. */
  watchHandshakes(server: TlsServer, field: string): void {
    server.on('tlsClientError', (err: Error & { code?: string }, socket: Socket) => {
      const why = handshakeHint(err, field);
      this.note(why, { field, code: err.code ?? 'tls_error', remote: socket.remoteAddress, reason: err.message }, `${field}: TLS handshake refused: ${why}`);
    });
  }
}
