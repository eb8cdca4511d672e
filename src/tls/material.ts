/**
 * Reading and checking PEM files for TLS. Every file is read whole and
 * checked before it is used, so a garbled or mismatched file is refused with
 * an error naming the file and the config key, at start or at reload,
 * instead of surfacing later as an opaque handshake failure.
 */
import { createHash, createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { statSync } from 'node:fs';
import { readFileChecked } from '../fs/read-file.js';
import { TlsError } from './errors.js';
import type { ClientTlsConfig, ServerTlsConfig } from './types.js';

/** Certificates, keys and bundles are small; this bounds what a wrong path (a log file) costs. */
const MAX_PEM_BYTES = 1024 * 1024;
const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** What logs and tests may say about a loaded certificate: never key material. */
export interface CertSummary {
  /** hex serial number, as OpenSSL prints it */
  serial: string;
  subject: string;
  /** SAN entries as Node prints them ("DNS:localhost, IP Address:127.0.0.1, URI:spiffe://...") */
  san: string;
  /** RFC 3339 */
  not_after: string;
}

function read(path: string, field: string, kind: string): Buffer {
  return readFileChecked(path, { what: `${kind} (${field})`, maxBytes: MAX_PEM_BYTES });
}

/** Every certificate of a PEM file, parsed; refuses a file with none or with one OpenSSL cannot read. */
export function parseCertificates(pem: Buffer, path: string, field: string, kind: string): X509Certificate[] {
  const text = pem.toString('latin1');
  const blocks = text.match(CERT_BLOCK) ?? [];
  // A chain or bundle cut short (a file caught half-written) must not load
  // as the blocks before the cut: that would serve a partial chain or drop
  // client CAs until the next change.
  const begun = text.split('-----BEGIN CERTIFICATE-----').length - 1;
  if (begun > blocks.length) {
    throw new TlsError(
      'tls_pem_invalid',
      field,
      path,
      `${kind} ${path} (${field}): certificate ${blocks.length + 1} of the file is cut off (no matching END line); the file may be half-written, replace it`,
    );
  }
  if (blocks.length === 0) {
    throw new TlsError('tls_pem_invalid', field, path, `${kind} ${path} (${field}) holds no PEM "BEGIN CERTIFICATE" block; give a PEM certificate file`);
  }
  return blocks.map((b, i) => {
    try {
      return new X509Certificate(b);
    } catch (err) {
      throw new TlsError('tls_pem_invalid', field, path, `${kind} ${path} (${field}): certificate ${i + 1} of the file cannot be parsed (${(err as Error).message}); replace the file`, { cause: err });
    }
  });
}

function parseKey(pem: Buffer, path: string, field: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch (err) {
    throw new TlsError(
      'tls_pem_invalid',
      field,
      path,
      `private key file ${path} (${field}) is not an unencrypted PEM private key (${(err as Error).message}); give the key in PEM without a passphrase`,
      { cause: err },
    );
  }
}

export function summarize(cert: X509Certificate): CertSummary {
  return { serial: cert.serialNumber, subject: cert.subject, san: cert.subjectAltName ?? '', not_after: new Date(cert.validTo).toISOString() };
}

/** A certificate chain and its key, checked to belong together. */
export interface KeyPair {
  cert: Buffer;
  key: Buffer;
  leaf: CertSummary;
}

/**
 * Reads cert_file and key_file; the key must be the leaf certificate's
 * (tls_key_mismatch otherwise). Messages name `${field}.cert_file` and
 * `${field}.key_file`, or `names` when the files came from elsewhere (CLI flags).
 */
export function readKeyPair(certFile: string, keyFile: string, field: string, names?: { cert: string; key: string }): KeyPair {
  const certField = names?.cert ?? `${field}.cert_file`;
  const keyField = names?.key ?? `${field}.key_file`;
  const cert = read(certFile, certField, 'certificate file');
  const key = read(keyFile, keyField, 'private key file');
  const leaf = parseCertificates(cert, certFile, certField, 'certificate file')[0]!;
  const keyObject = parseKey(key, keyFile, keyField);
  if (!leaf.checkPrivateKey(keyObject)) {
    throw new TlsError(
      'tls_key_mismatch',
      keyField,
      keyFile,
      `private key file ${keyFile} (${keyField}) is not the key of certificate ${certFile} (${certField}, serial ${leaf.serialNumber}); give the pair issued together`,
    );
  }
  return { cert, key, leaf: summarize(leaf) };
}

/** A CA bundle: at least one parsable certificate. */
export function readCaBundle(path: string, field: string): Buffer {
  const pem = read(path, field, 'CA bundle file');
  parseCertificates(pem, path, field, 'CA bundle file');
  return pem;
}

/** The server side of a listener: its pair and, for mTLS, the CA bundle clients must chain to. */
export interface ServerMaterial extends KeyPair {
  clientCa: Buffer | undefined;
  /** changes whenever any file's bytes change */
  digest: string;
}

export function readServerMaterial(cfg: ServerTlsConfig, field: string): ServerMaterial {
  const pair = readKeyPair(cfg.cert_file, cfg.key_file, field);
  const clientCa = cfg.client_ca_file === undefined ? undefined : readCaBundle(cfg.client_ca_file, `${field}.client_ca_file`);
  return { ...pair, clientCa, digest: digestOf([pair.cert, pair.key, clientCa]) };
}

/** The client side: whom to trust and what to present. */
export interface ClientMaterial {
  ca: Buffer | undefined;
  pair: KeyPair | undefined;
  digest: string;
}

export function readClientMaterial(cfg: ClientTlsConfig, field: string): ClientMaterial {
  checkClientConfig(cfg, field);
  const ca = cfg.ca_file === undefined ? undefined : readCaBundle(cfg.ca_file, `${field}.ca_file`);
  const pair = cfg.cert_file === undefined ? undefined : readKeyPair(cfg.cert_file, cfg.key_file!, field);
  return { ca, pair, digest: digestOf([ca, pair?.cert, pair?.key]) };
}

/** cert_file and key_file go together: half a client identity is a mistake, not a choice. */
export function checkClientConfig(cfg: ClientTlsConfig, field: string): void {
  if ((cfg.cert_file === undefined) !== (cfg.key_file === undefined)) {
    const missing = cfg.cert_file === undefined ? 'cert_file' : 'key_file';
    throw new TlsError('tls_options_invalid', `${field}.${missing}`, undefined, `${field}: cert_file and key_file go together; set ${field}.${missing} too, or neither`);
  }
}

function digestOf(parts: (Buffer | undefined)[]): string {
  const h = createHash('sha256');
  for (const p of parts) {
    const b = p ?? Buffer.alloc(0);
    h.update(`${b.length}:`).update(b);
  }
  return h.digest('hex');
}

/**
 * What changes when a file is replaced, cheaply: device, inode, size and
 * mtime of each path, symlinks followed (kubelet and cert-manager swap a
 * `..data` symlink, which changes the inode the path resolves to). A path
 * that cannot be stat'ed counts as a change; the reload then reports why.
 */
export function statFingerprint(paths: readonly string[]): string {
  return paths
    .map((p) => {
      try {
        const s = statSync(p);
        return `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}`;
      } catch (err) {
        return `error:${(err as { code?: string }).code ?? 'unknown'}`;
      }
    })
    .join('|');
}
