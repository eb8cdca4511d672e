import { Agent, setGlobalDispatcher } from 'undici';
import { readCaBundle, readKeyPair } from '../tls/material.js';
import { TLS_MIN_VERSION } from '../tls/types.js';
import { UsageError } from './usage.js';

/**
 * --ca-file, --cert-file, --key-file for the commands that ask a collector
 * over HTTPS (query, export, report --url, verify --url): the CA that issued
 * the collector's certificate (instead of the system roots, as curl's
 * --cacert) and, where the collector wants mTLS (collector.tls
 * client_ca_file), the certificate this client presents.
 */
export const TLS_ARG_SPEC = {
  'ca-file': { type: 'string' },
  'cert-file': { type: 'string' },
  'key-file': { type: 'string' },
} as const;

export const TLS_USAGE = '[--ca-file FILE] [--cert-file FILE --key-file FILE]';

/**
 * Reads and checks the files (TlsError / FileError naming the flag) and
 * makes every request of this process use them. A CLI command is one
 * process talking to one collector, so the process-wide dispatcher is the
 * honest scope; nothing long-running calls this.
 */
export function useCollectorTls(values: { 'ca-file'?: string; 'cert-file'?: string; 'key-file'?: string }, url: string | undefined): void {
  const caFile = values['ca-file'];
  const certFile = values['cert-file'];
  const keyFile = values['key-file'];
  const given = [caFile && '--ca-file', certFile && '--cert-file', keyFile && '--key-file'].filter(Boolean);
  // Unused TLS flags would let a token go out in clear while the user believes otherwise.
  if (given.length > 0 && !url?.startsWith('https://')) {
    throw new UsageError(`${given.join(', ')}: only for an https:// --url${url === undefined ? '' : ` (got ${url.split('://')[0]}://)`}`);
  }
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new UsageError(`--cert-file and --key-file go together: give ${certFile === undefined ? '--cert-file' : '--key-file'} too, or neither`);
  }
  if (caFile === undefined && certFile === undefined) return;
  const ca = caFile === undefined ? undefined : readCaBundle(caFile, '--ca-file');
  const pair = certFile === undefined ? undefined : readKeyPair(certFile, keyFile!, '', { cert: '--cert-file', key: '--key-file' });
  setGlobalDispatcher(
    new Agent({
      connect: { minVersion: TLS_MIN_VERSION, ...(ca ? { ca } : {}), ...(pair ? { cert: pair.cert, key: pair.key } : {}) },
    }),
  );
}
