/**
 * Refused TLS handshakes on the collector's port, logged so an operator can
 * tell why a sidecar cannot connect (no client certificate, an unknown CA,
 * an expired certificate, plain HTTP sent to the HTTPS port). At most one
 * line per second: anyone who can reach the port can fail a handshake, and
 * must not be able to fill the log; the rest are counted into the next line.
 */
import type { Socket } from 'node:net';
import type { Server as TlsServer } from 'node:tls';
import type { Logger } from 'pino';

const INTERVAL_MS = 1000;

/** OpenSSL's reasons in words a deployer acts on. */
function hint(err: Error & { code?: string }): string {
  const text = `${err.code ?? ''} ${err.message}`;
  if (/HTTP_REQUEST|http request/i.test(text)) return 'the client spoke plain HTTP to the HTTPS port; use an https:// URL';
  if (/PEER_DID_NOT_RETURN_A_CERTIFICATE|certificate required/i.test(text)) return 'the client presented no certificate; collector.tls.client_ca_file requires one';
  if (/CERTIFICATE_EXPIRED|certificate expired/i.test(text)) return 'the client certificate has expired';
  if (/UNKNOWN_CA|unable to get|self.signed|CERTIFICATE_VERIFY_FAILED/i.test(text)) return 'the client certificate is not issued by a CA of collector.tls.client_ca_file';
  if (/UNSUPPORTED_PROTOCOL|version/i.test(text)) return 'the client offered a TLS version below 1.2';
  return 'TLS handshake failed';
}

export function logTlsRefusals(server: TlsServer, logger: Logger): void {
  // Per kind of refusal, so a flood of one kind does not hide another.
  const last = new Map<string, { at: number; suppressed: number }>();
  server.on('tlsClientError', (err: Error & { code?: string }, socket: Socket) => {
    const why = hint(err);
    const now = Date.now();
    const seen = last.get(why);
    if (seen && now - seen.at < INTERVAL_MS) {
      seen.suppressed++;
      return;
    }
    const suppressed = seen?.suppressed ?? 0;
    last.set(why, { at: now, suppressed: 0 });
    logger.warn(
      { code: err.code ?? 'tls_error', remote: socket.remoteAddress, reason: err.message, ...(suppressed > 0 ? { suppressed } : {}) },
      `TLS handshake refused: ${why}`,
    );
  });
}
