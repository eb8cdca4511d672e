/**
 * Real X.509 material for TLS tests, made with the openssl CLI at test time:
 * a CA, another CA nobody trusts, and leaf certificates with the SANs a test
 * needs (server: IP 127.0.0.1 and DNS localhost; clients: SPIFFE-style URIs),
 * optionally already expired. Everything is written as PEM files into `dir`.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Issued {
  cert: string;
  key: string;
  /** hex serial, uppercase as X509Certificate.serialNumber prints it */
  serial: string;
}

export interface Authority {
  name: string;
  cert: string;
  key: string;
  dir: string;
}

function openssl(args: string[], cwd: string): string {
  return execFileSync('openssl', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function newKey(path: string, cwd: string): void {
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path], cwd);
}

let serialCounter = 0x1000;

/** A self-signed CA with its own `openssl ca` database (so leaves can get any validity period). */
export function makeCa(dir: string, name: string): Authority {
  const d = join(dir, name);
  mkdirSync(join(d, 'issued'), { recursive: true });
  writeFileSync(join(d, 'index.txt'), '');
  writeFileSync(join(d, 'serial'), `${(serialCounter += 0x100).toString(16).toUpperCase()}\n`);
  writeFileSync(
    join(d, 'ca.cnf'),
    [
      '[ca]',
      'default_ca = local',
      '[local]',
      `database = ${join(d, 'index.txt')}`,
      `new_certs_dir = ${join(d, 'issued')}`,
      `serial = ${join(d, 'serial')}`,
      'default_md = sha256',
      'policy = any',
      'unique_subject = no',
      'email_in_dn = no',
      '[any]',
      'commonName = supplied',
      '',
    ].join('\n'),
  );
  const cert = join(d, 'ca.crt');
  const key = join(d, 'ca.key');
  newKey(key, d);
  openssl(
    ['req', '-x509', '-new', '-key', key, '-subj', `/CN=${name}`, '-days', '3650', '-out', cert,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    d,
  );
  return { name, cert, key, dir: d };
}

export interface LeafOptions {
  /** SAN entries as openssl writes them: "IP:127.0.0.1", "DNS:localhost", "URI:spiffe://test/ns/a/sa/pod-a" */
  san: string[];
  /** serverAuth, clientAuth or both */
  usage: ('serverAuth' | 'clientAuth')[];
  /** already expired: valid for one day in 2020 */
  expired?: boolean;
  /** where to write name.crt / name.key (default: the CA's directory) */
  outDir?: string;
}

/** Issues a leaf certificate from `ca`. */
export function issue(ca: Authority, name: string, opts: LeafOptions): Issued {
  const out = opts.outDir ?? ca.dir;
  mkdirSync(out, { recursive: true });
  const key = join(out, `${name}.key`);
  const csr = join(ca.dir, `${name}-${Date.now()}.csr`);
  const cert = join(out, `${name}.crt`);
  const ext = join(ca.dir, `${name}.ext`);
  newKey(key, ca.dir);
  openssl(['req', '-new', '-key', key, '-subj', `/CN=${name}`, '-out', csr], ca.dir);
  writeFileSync(
    ext,
    [
      'basicConstraints = critical,CA:FALSE',
      'keyUsage = critical,digitalSignature',
      `extendedKeyUsage = ${opts.usage.join(',')}`,
      `subjectAltName = ${opts.san.join(',')}`,
      '',
    ].join('\n'),
  );
  const validity = opts.expired ? ['-startdate', '20200101000000Z', '-enddate', '20200102000000Z'] : ['-days', '365'];
  openssl(['ca', '-batch', '-notext', '-config', join(ca.dir, 'ca.cnf'), '-cert', ca.cert, '-keyfile', ca.key,
    '-in', csr, '-out', cert, '-extfile', ext, ...validity], ca.dir);
  const serial = openssl(['x509', '-in', cert, '-noout', '-serial'], ca.dir).trim().replace(/^serial=/, '').toUpperCase();
  return { cert, key, serial };
}

export const POD_A = 'spiffe://test/ns/a/sa/pod-a';
export const POD_B = 'spiffe://test/ns/b/sa/pod-b';

/** The set most TLS tests need. */
export interface TestPki {
  ca: Authority;
  otherCa: Authority;
  server: Issued;
  podA: Issued;
  podB: Issued;
  expired: Issued;
  /** pod-a's SAN, issued by the CA nobody trusts */
  stranger: Issued;
}

export function makeTestPki(dir: string): TestPki {
  const ca = makeCa(dir, 'test-ca');
  const otherCa = makeCa(dir, 'other-ca');
  return {
    ca,
    otherCa,
    server: issue(ca, 'server', { san: ['IP:127.0.0.1', 'DNS:localhost'], usage: ['serverAuth'] }),
    podA: issue(ca, 'pod-a', { san: [`URI:${POD_A}`], usage: ['clientAuth'] }),
    podB: issue(ca, 'pod-b', { san: [`URI:${POD_B}`], usage: ['clientAuth'] }),
    expired: issue(ca, 'expired', { san: [`URI:${POD_A}`], usage: ['clientAuth'], expired: true }),
    stranger: issue(otherCa, 'stranger', { san: [`URI:${POD_A}`], usage: ['clientAuth'] }),
  };
}
