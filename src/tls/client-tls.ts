/**
 * The ship client's TLS (sidecar `ship.tls`), as an undici connector that
 * follows its files.
 *
 * Contract:
 * - start: the files are read and checked synchronously (FileError or
 *   TlsError naming the file and config key).
 * - TLS 1.2 minimum; the server's certificate is always verified, against
 *   ca_file when set (it replaces Node's roots), else Node's roots; the
 *   host name is checked by Node as for any https URL.
 * - reload: before each new connection the files are stat'ed (a handful of
 *   syscalls; kept-alive connections make new ones rare) and re-read when
 *   they changed, so a rotated client certificate or CA bundle is used from
 *   the next connection on; open connections are not touched. New files that
 *   do not load keep the previous ones, are logged and counted, and are
 *   tried again at the next connection.
 */
import { buildConnector } from 'undici';
import { readClientMaterial, statFingerprint, type ClientMaterial } from './material.js';
import type { TlsLogger } from './server-tls.js';
import { TLS_MIN_VERSION, type ClientTlsConfig } from './types.js';

export interface ClientTlsOptions {
  /** where the block sits in the config: "sidecar.ship.tls" */
  field: string;
  logger?: TlsLogger;
}

export class ReloadingClientTls {
  private readonly cfg: ClientTlsConfig;
  private readonly opts: ClientTlsOptions;
  private material: ClientMaterial;
  private fingerprint: string;
  private connector: buildConnector.connector;
  reloads = 0;
  failures = 0;

  constructor(cfg: ClientTlsConfig, opts: ClientTlsOptions) {
    this.cfg = cfg;
    this.opts = opts;
    this.fingerprint = statFingerprint(this.paths());
    this.material = readClientMaterial(cfg, opts.field);
    this.connector = buildConnector(this.connectOptions());
  }

  private paths(): string[] {
    const c = this.cfg;
    return [c.ca_file, c.cert_file, c.key_file].filter((p): p is string => p !== undefined);
  }

  /** tls.connect options for the current files. */
  connectOptions(): buildConnector.BuildOptions {
    const m = this.material;
    return {
      minVersion: TLS_MIN_VERSION,
      rejectUnauthorized: true,
      ...(m.ca ? { ca: m.ca } : {}),
      ...(m.pair ? { cert: m.pair.cert, key: m.pair.key } : {}),
    };
  }

  /** undici's `connect` option: each new connection first picks up changed files. */
  readonly connect: buildConnector.connector = (options, callback) => {
    this.refresh();
    this.connector(options, callback);
  };

  /** Re-reads the files if they changed; true when new ones are in use. */
  refresh(): boolean {
    const fp = statFingerprint(this.paths());
    if (fp === this.fingerprint) return false;
    let next: ClientMaterial;
    try {
      next = readClientMaterial(this.cfg, this.opts.field);
    } catch (err) {
      this.failures++;
      this.opts.logger?.error(
        { field: this.opts.field, code: (err as { code?: string }).code, err: (err as Error).message },
        `${this.opts.field}: changed TLS files refused; connecting with the previous ones`,
      );
      return false;
    }
    this.fingerprint = fp;
    if (next.digest === this.material.digest) return false;
    this.material = next;
    this.connector = buildConnector(this.connectOptions());
    this.reloads++;
    this.opts.logger?.info({ field: this.opts.field, ...(next.pair ? { serial: next.pair.leaf.serial } : {}) }, `${this.opts.field}: TLS files reloaded`);
    return true;
  }
}
