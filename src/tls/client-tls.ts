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
import { FollowedFiles } from './followed-files.js';
import { readClientMaterial, type ClientMaterial } from './material.js';
import type { TlsLogger } from './server-tls.js';
import { TLS_MIN_VERSION, type ClientTlsConfig } from './types.js';

export interface ClientTlsOptions {
  /** where the block sits in the config: "sidecar.ship.tls" */
  field: string;
  logger?: TlsLogger;
}

export class ReloadingClientTls {
  private readonly opts: ClientTlsOptions;
  private readonly files: FollowedFiles<ClientMaterial>;
  private connector: buildConnector.connector;

  constructor(cfg: ClientTlsConfig, opts: ClientTlsOptions) {
    this.opts = opts;
    const paths = [cfg.ca_file, cfg.cert_file, cfg.key_file].filter((p): p is string => p !== undefined);
    this.files = new FollowedFiles(paths, () => readClientMaterial(cfg, opts.field));
    this.connector = buildConnector(this.connectOptions());
  }

  /** new sets of files taken since start */
  get reloads(): number {
    return this.files.reloads;
  }

  /** changed sets of files refused since start */
  get failures(): number {
    return this.files.failures;
  }

  /** tls.connect options for the current files. */
  connectOptions(): buildConnector.BuildOptions {
    const m = this.files.current;
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
    const r = this.files.refresh();
    const field = this.opts.field;
    if (r.kind === 'refused') {
      this.opts.logger?.error(
        { field, code: (r.error as { code?: string }).code, err: r.error.message },
        `${field}: changed TLS files refused; connecting with the previous ones`,
      );
      return false;
    }
    if (r.kind === 'unchanged') return false;
    this.connector = buildConnector(this.connectOptions());
    this.opts.logger?.info({ field, ...(r.material.pair ? { serial: r.material.pair.leaf.serial } : {}) }, `${field}: TLS files reloaded`);
    return true;
  }
}
