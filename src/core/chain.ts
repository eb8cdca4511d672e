import { createHmac, type KeyObject } from 'node:crypto';
import { SealtrailError } from './errors.js';

/**
 * HMAC chain: mac[n] = HMAC-SHA-256(K, mac[n-1] || leaf[n]), mac[-1] = 32 zero bytes.
 *
 * The Merkle tree proves what was logged to anyone; the chain additionally
 * lets a holder of K detect a rewrite by someone who could re-sign
 * checkpoints but does not hold K.
 */

export const MAC_SIZE = 32;

/** mac[-1]. Shared instance: never mutate it. */
export const CHAIN_GENESIS: Buffer = Buffer.alloc(MAC_SIZE);

/** `key` may be a KeyObject made once (createSecretKey): cheaper per MAC than raw bytes. */
export function chainNext(key: Uint8Array | KeyObject, prevMac: Uint8Array, leaf: Uint8Array): Buffer {
  // A short or long prevMac would silently fork the chain into a value no
  // verifier can reproduce, so refuse it here rather than at verify time.
  if (prevMac.length !== MAC_SIZE) {
    throw new SealtrailError('chain_invalid', `chain: previous MAC must be ${MAC_SIZE} bytes, got ${prevMac.length}`);
  }
  return createHmac('sha256', key).update(prevMac).update(leaf).digest();
}
