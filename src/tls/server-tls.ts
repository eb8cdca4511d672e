/**
 * A listener's TLS that follows its files: the certificate, key and client
 * CA bundle are re-read when they change on disk and the server's secure
 * context is swapped in place.
 *
 * Contract:
 * - start: the files are read and checked synchronously (FileError or
 *   TlsError naming the file and config key); nothing listens on bad files.
 * - TLS 1.2 minimum. With client_ca_file, every client must present a
 *   certificate that chains to that bundle and is within its validity
 *   period. By default (serverOptions()) the connection is cut right after
 *   the handshake otherwise (requestCert + rejectUnauthorized), which a
 *   client sees only as a reset. A listener that answers the refusal in its
 *   own protocol instead (serverOptions({ answerRefusals: true })) MUST call
 *   clientRefusal(socket) on every request and refuse when it returns a
 *   reason: the TLS layer then lets unverified clients through to it.
 *   Whether client_ca_file is set is fixed at start.
 * - reload: the files are followed as followed-files.ts describes (watch
 *   on files and directories, stat poll). A change is applied with
 *   server.setSecureContext(): new handshakes get the new certificate,
 *   established connections (kept-alive ones too) go on undisturbed.
 * - a bad new set of files (half-written, garbled, key of another cert)
 *   keeps the old context; the failure is logged, counted (`failures`) and
 *   retried at the next change or poll, so a pair written in two steps is
 *   picked up once both halves are there.
 * - close() stops following the files (no watcher or timer is left); the
 *   server keeps the context it has. Safe to call more than once.
 */
import type { Server as TlsServer, TLSSocket, TlsOptions } from 'node:tls';
import { FollowedFiles, type Refresh } from './followed-files.js';
import { RefusalLog, type WarnLogger } from './handshake-log.js';
import { readServerMaterial, type CertSummary, type ServerMaterial } from './material.js';
import { TLS_MIN_VERSION, type ServerTlsConfig } from './types.js';

/** The two log levels this module writes with (a pino logger fits). */
export interface TlsLogger {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface ServerTlsOptions {
  /** where the block sits in the config, for messages: "collector.tls" */
  field: string;
  logger?: TlsLogger;
  /**
   * Set: attach() also logs refused handshakes, and logRefusal() the
   * clients a listener refused itself, each kind at most once a second.
   */
  refusalLogger?: WarnLogger;
  /** stat poll period, ms (default 10 s); 0 turns the poll off (tests) */
  pollMs?: number;
  /** called after a new context is applied */
  onReload?: (leaf: CertSummary) => void;
  /** called when new files were refused (the old context stays) */
  onReloadError?: (err: Error) => void;
}

/** OpenSSL's verify results a client certificate usually fails with, in words. */
const CERT_REASONS: Record<string, string> = {
  CERT_HAS_EXPIRED: 'it has expired; renew it',
  CERT_NOT_YET_VALID: 'it is not valid yet (clock skew?)',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'it is not issued by a CA of client_ca_file',
  UNABLE_TO_GET_ISSUER_CERT: 'it is not issued by a CA of client_ca_file',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'it is not issued by a CA of client_ca_file',
  SELF_SIGNED_CERT_IN_CHAIN: 'it is not issued by a CA of client_ca_file',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'it is self-signed and not in client_ca_file',
  CERT_SIGNATURE_FAILURE: 'its signature does not verify',
  CERT_REVOKED: 'it is revoked',
};

const DEFAULT_POLL_MS = 10_000;

export class ReloadingServerTls {
  private readonly cfg: ServerTlsConfig;
  private readonly opts: ServerTlsOptions;
  private readonly files: FollowedFiles<ServerMaterial>;
  private readonly refusals: RefusalLog | undefined;
  private server: TlsServer | undefined;

  /** Reads and checks the files now; throws FileError or TlsError naming the file and `${field}.<key>`. */
  constructor(cfg: ServerTlsConfig, opts: ServerTlsOptions) {
    this.cfg = cfg;
    this.opts = opts;
    const paths = [cfg.cert_file, cfg.key_file, ...(cfg.client_ca_file !== undefined ? [cfg.client_ca_file] : [])];
    this.files = new FollowedFiles(paths, () => readServerMaterial(cfg, opts.field));
    this.refusals = opts.refusalLogger ? new RefusalLog(opts.refusalLogger) : undefined;
  }

  /** where the block sits in the config ("sidecar.telemetry.tls") */
  get field(): string {
    return this.opts.field;
  }

  /** new contexts applied since start */
  get reloads(): number {
    return this.files.reloads;
  }

  /** sets of new files refused since start */
  get failures(): number {
    return this.files.failures;
  }

  /** The leaf certificate in use. */
  get leaf(): CertSummary {
    return this.files.current.leaf;
  }

  /** Whether clients must present a certificate (client_ca_file is set). */
  get verifiesClients(): boolean {
    return this.cfg.client_ca_file !== undefined;
  }

  /**
   * Options for https.createServer / tls.createServer (merge with the HTTP
   * ones). answerRefusals: see the contract above; the caller then owns the
   * check of every request (clientRefusal).
   */
  serverOptions(opts: { answerRefusals?: boolean } = {}): TlsOptions {
    const mtls = this.verifiesClients;
    return { ...this.contextOptions(), requestCert: mtls, rejectUnauthorized: mtls && opts.answerRefusals !== true };
  }

  /**
   * Why this connection's client may not be served, or undefined when it
   * may: no certificate, or one that does not verify against client_ca_file
   * (expired, another CA). Always undefined without client_ca_file.
   */
  clientRefusal(socket: TLSSocket): string | undefined {
    if (!this.verifiesClients) return undefined;
    // The certificate is looked at before `authorized`: a TLS 1.3 session
    // resumed by a client that presented none at first is `authorized`
    // (OpenSSL takes the ticket for PSK authentication), which would let a
    // refused client in on its second connection.
    const peer = socket.getPeerCertificate();
    if (peer === null || peer === undefined || Object.keys(peer).length === 0) {
      return 'no client certificate presented; this listener requires one issued by its client_ca_file';
    }
    if (socket.authorized === true) return undefined;
    const code = String(socket.authorizationError ?? 'UNVERIFIED');
    const why = CERT_REASONS[code] ?? 'does not verify against client_ca_file';
    return `client certificate (serial ${peer.serialNumber}) refused: ${why} (${code})`;
  }

  /** Logs (rate-limited, with refusalLogger) a client the listener refused for `reason` (clientRefusal's). */
  logRefusal(socket: TLSSocket, reason: string): void {
    const kind = reason.replace(/\(serial [^)]*\) /, '');
    this.refusals?.note(kind, { field: this.opts.field, code: 'client_certificate_refused', remote: socket.remoteAddress, reason }, `${this.opts.field}: client refused: ${reason}`);
  }

  private contextOptions(): TlsOptions {
    const m = this.files.current;
    return { cert: m.cert, key: m.key, minVersion: TLS_MIN_VERSION, ...(m.clientCa ? { ca: m.clientCa } : {}) };
  }

  /** Starts following the files for `server` (created with serverOptions()). */
  attach(server: TlsServer): void {
    this.server = server;
    this.refusals?.watchHandshakes(server, this.opts.field);
    this.files.follow(() => this.check(), this.opts.pollMs ?? DEFAULT_POLL_MS);
  }

  /** Re-reads the files if they changed since the last good load; true when a new context was applied. */
  check(): boolean {
    return this.apply(this.files.refresh());
  }

  /** Re-reads the files now, changed or not (SIGHUP, tests); true when a new context was applied. */
  reload(): boolean {
    return this.apply(this.files.refresh(true));
  }

  private apply(r: Refresh<ServerMaterial>): boolean {
    const field = this.opts.field;
    if (r.kind === 'refused') {
      this.opts.logger?.error(
        { field, code: (r.error as { code?: string }).code, err: r.error.message, serial: this.leaf.serial },
        `${field}: new certificate files refused; still serving the previous certificate`,
      );
      this.opts.onReloadError?.(r.error);
      return false;
    }
    if (r.kind === 'unchanged') return false;
    this.server?.setSecureContext(this.contextOptions());
    this.opts.logger?.info({ field, ...r.material.leaf }, `${field}: certificate reloaded`);
    this.opts.onReload?.(r.material.leaf);
    return true;
  }

  close(): void {
    this.files.close();
    this.server = undefined;
  }
}
