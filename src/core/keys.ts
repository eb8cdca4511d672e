import { createPrivateKey, createPublicKey } from 'node:crypto';
import { NoteError } from './errors.js';
import { parseSignerKey } from './note.js';

const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/**
 * Derives the signed-note verifier key text from a signer key text
 * ("PRIVATE+KEY+<name>+<hash>+<b64(0x01||seed)>" → "<name>+<hash>+<b64(0x01||pub)>"),
 * so a deployment only has to keep the secret file; the public half can always
 * be recomputed and handed to auditors.
 */
export function verifierKeyFromSignerKey(skey: string): string {
  // The base64 key itself may contain '+', so only the first four separators count.
  // parseSignerKey checks the key hash against the key, so a damaged key fails here.
  try {
    parseSignerKey(skey.trim());
  } catch {
    throw new NoteError('note_malformed', 'signer key is not a valid signed-note Ed25519 key (name, hash or key damaged)');
  }
  const m = /^PRIVATE\+KEY\+([^+\s]+)\+([0-9a-fA-F]{8})\+([A-Za-z0-9+/=]+)$/.exec(skey.trim());
  if (!m) {
    throw new NoteError('note_malformed', 'signer key must look like PRIVATE+KEY+<name>+<hash>+<key>');
  }
  const [, name, hash, b64] = m as unknown as [string, string, string, string];
  const raw = Buffer.from(b64, 'base64');
  if (raw.length !== 33 || raw[0] !== 0x01) {
    throw new NoteError('note_malformed', 'signer key is not an Ed25519 signed-note key');
  }
  const priv = createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519_PREFIX, raw.subarray(1)]),
    format: 'der',
    type: 'pkcs8',
  });
  const spki = createPublicKey(priv).export({ format: 'der', type: 'spki' });
  const pub = spki.subarray(spki.length - 32);
  return `${name}+${hash.toLowerCase()}+${Buffer.concat([Buffer.from([0x01]), pub]).toString('base64')}`;
}
