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
 * - reload: fs.watch on each file and on its directory (cert-manager and
 *   kubelet replace files by swapping a symlink in the directory, which a
 *   watch on the old file never sees), plus a stat poll as a fallback
 *   (watches are lost on some filesystems). A change is applied with
 *   server.setSecureContext(): new handshakes get the new certificate,
 *   established connections (kept-alive ones too) go on undisturbed.
 * - a bad new set of files (half-written, garbled, key of another cert)
 *   keeps the old context; the failure is logged, counted (`failures`) and
 *   retried at the next change or poll, so a pair written in two steps is
 *   picked up once both halves are there.
 */
import { watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import type { Server as TlsServer, TLSSocket, TlsOptions } from 'node:tls';
import { readServerMaterial, statFingerprint, type CertSummary, type ServerMaterial } from './material.js';
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

/** Coalesces a burst of watch events (a secret update touches several names). */
const SETTLE_MS = 100;
const DEFAULT_POLL_MS = 10_000;

export class ReloadingServerTls {
  private readonly cfg: ServerTlsConfig;
  private readonly opts: ServerTlsOptions;
  private material: ServerMaterial;
  private fingerprint: string;
  private server: TlsServer | undefined;
  private watchers: FSWatcher[] = [];
  private poll: NodeJS.Timeout | undefined;
  private settle: NodeJS.Timeout | undefined;
  /** new contexts applied since start */
  reloads = 0;
  /** sets of new files refused since start */
  failures = 0;

  /** Reads and checks the files now; throws FileError or TlsError naming the file and `${field}.<key>`. */
  constructor(cfg: ServerTlsConfig, opts: ServerTlsOptions) {
    this.cfg = cfg;
    this.opts = opts;
    this.fingerprint = statFingerprint(this.paths());
    this.material = readServerMaterial(cfg, opts.field);
  }

  /** The leaf certificate in use. */
  get leaf(): CertSummary {
    return this.material.leaf;
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
    if (socket.authorized === true) return undefined;
    const peer = socket.getPeerCertificate();
    if (peer === null || peer === undefined || Object.keys(peer).length === 0) {
      return 'no client certificate presented; this listener requires one issued by its client_ca_file';
    }
    const code = String(socket.authorizationError ?? 'UNVERIFIED');
    const why = CERT_REASONS[code] ?? 'does not verify against client_ca_file';
    return `client certificate (serial ${peer.serialNumber}) refused: ${why} (${code})`;
  }

  private contextOptions(): TlsOptions {
    const m = this.material;
    return { cert: m.cert, key: m.key, minVersion: TLS_MIN_VERSION, ...(m.clientCa ? { ca: m.clientCa } : {}) };
  }

  private paths(): string[] {
    const c = this.cfg;
    return [c.cert_file, c.key_file, ...(c.client_ca_file !== undefined ? [c.client_ca_file] : [])];
  }

  /** Starts following the files for `server` (created with serverOptions()). */
  attach(server: TlsServer): void {
    this.server = server;
    const onEvent = (): void => {
      clearTimeout(this.settle);
      this.settle = setTimeout(() => this.check(), SETTLE_MS);
      this.settle.unref();
    };
    const watched = new Set<string>();
    for (const p of this.paths()) {
      for (const target of [p, dirname(p)]) {
        if (watched.has(target)) continue;
        watched.add(target);
        try {
          const w = watch(target, { persistent: false }, onEvent);
          // A watch that dies (its directory removed) leaves the poll in charge.
          w.on('error', () => w.close());
          this.watchers.push(w);
        } catch {
          // unwatchable (permissions, filesystem): the poll covers it
        }
      }
    }
    const pollMs = this.opts.pollMs ?? DEFAULT_POLL_MS;
    if (pollMs > 0) {
      this.poll = setInterval(() => this.check(), pollMs);
      this.poll.unref();
    }
  }

  /** Re-reads the files if they changed since the last good load; true when a new context was applied. */
  check(): boolean {
    const fp = statFingerprint(this.paths());
    if (fp === this.fingerprint) return false;
    return this.reload(fp);
  }

  /** Re-reads the files now, changed or not (SIGHUP, tests); true when a new context was applied. */
  reload(fp = statFingerprint(this.paths())): boolean {
    let next: ServerMaterial;
    try {
      next = readServerMaterial(this.cfg, this.opts.field);
    } catch (err) {
      this.failures++;
      this.opts.logger?.error(
        { field: this.opts.field, code: (err as { code?: string }).code, err: (err as Error).message, serial: this.material.leaf.serial },
        `${this.opts.field}: new certificate files refused; still serving the previous certificate`,
      );
      this.opts.onReloadError?.(err as Error);
      return false;
    }
    // Only a good load moves the fingerprint, so a refused set is retried at the next poll.
    this.fingerprint = fp;
    if (next.digest === this.material.digest) return false;
    this.material = next;
    this.server?.setSecureContext(this.contextOptions());
    this.reloads++;
    this.opts.logger?.info({ field: this.opts.field, ...next.leaf }, `${this.opts.field}: certificate reloaded`);
    this.opts.onReload?.(next.leaf);
    return true;
  }

  close(): void {
    clearInterval(this.poll);
    clearTimeout(this.settle);
    for (const w of this.watchers) w.close();
    this.watchers = [];
    this.server = undefined;
  }
}
