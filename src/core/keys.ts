import { NoteError } from './errors.js';
import { parseSignerKeyPair } from './note.js';

/**
 * Derives the signed-note verifier key text from a signer key text
 * ("PRIVATE+KEY+<name>+<hash>+<b64(0x01||seed)>" → "<name>+<hash>+<b64(0x01||pub)>"),
 * so a deployment only has to keep the secret file; the public half can always
 * be recomputed and handed to auditors. parseSignerKeyPair checks the key hash
 * against the derived public key, so a damaged key fails here.
 */
export function verifierKeyFromSignerKey(skey: string): string {
  try {
    return parseSignerKeyPair(skey.trim()).vkey;
  } catch {
    // Never the parser's message: it must not risk echoing key material.
    throw new NoteError('note_malformed', 'signer key is not a valid signed-note Ed25519 key (name, hash or key damaged)');
  }
}
