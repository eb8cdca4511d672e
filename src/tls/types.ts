/**
 * The one TLS config shape of every listener and of the ship client, as the
 * YAML spells it. Paths are kept as written (relative ones resolve against
 * the working directory). `field` names where the block sits in the config
 * (`collector.tls`, `sidecar.ship.tls`), so every error can name the key.
 */

/** `tls:` beside a `listen`: the server's certificate, and client verification (mTLS) when client_ca_file is set. */
export interface ServerTlsConfig {
  /** PEM certificate chain, leaf first */
  cert_file: string;
  /** PEM private key of the leaf */
  key_file: string;
  /** PEM CA bundle; set: every client must present a certificate issued by one of these */
  client_ca_file?: string;
}

/** `ship.tls`: whom the client trusts and, optionally, the certificate it presents (mTLS). */
export interface ClientTlsConfig {
  /** PEM CA bundle that replaces the system roots for the collector's certificate; absent: Node's roots */
  ca_file?: string;
  /** PEM client certificate chain; with key_file */
  cert_file?: string;
  /** PEM private key of cert_file */
  key_file?: string;
}

/** TLS 1.2 minimum on every endpoint: 1.0 and 1.1 are deprecated (RFC 8996). */
export const TLS_MIN_VERSION = 'TLSv1.2' as const;
