import { SealtrailError } from './core/errors.js';

const CAUSES: Record<string, string> = {
  EADDRINUSE: 'the address is already in use (another process, or a second instance)',
  EACCES: 'permission denied (ports below 1024 need privileges)',
  EADDRNOTAVAIL: 'no interface of this host has that address',
  ENOTFOUND: 'the host name does not resolve',
  EAI_AGAIN: 'the host name does not resolve',
};

/**
 * A listener that could not bind, as a typed error naming the address and the
 * setting to change, instead of Node's stack trace. `setting` is the config
 * key (and flag) the address came from; anything else passes through.
 */
export function listenError(err: unknown, address: string, setting: string): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !(code in CAUSES)) return err;
  return new SealtrailError('listen_failed', `cannot listen on ${address}: ${CAUSES[code]} (${code}); change ${setting} or free the address`, { cause: err });
}
