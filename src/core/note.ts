import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign as cryptoSign,
  verify as cryptoVerify,
  type KeyObject,
} from 'node:crypto';
import { NoteError } from './errors.js';

/**
 * C2SP signed-note (https://c2sp.org/signed-note) with Ed25519 (type 0x01),
 * and key text forms compatible with golang.org/x/mod/sumdb/note, so any
 * standard verifier accepts our checkpoints and our verifier accepts theirs.
 *
 * Codes: 'note_malformed' (syntax), 'note_unverified' (no known key signed),
 * 'note_invalid_signature' (a known key's signature is bad),
 * 'note_ambiguous_key' (two verifiers share a name and key hash),
 * 'note_key_invalid' (signer/verifier key text or key name is bad).
 */

export interface NoteSigner {
  name: string;
  keyHash: number;
  sign(msg: Uint8Array): Buffer;
}

export interface NoteVerifier {
  name: string;
  keyHash: number;
  verify(msg: Uint8Array, sig: Uint8Array): boolean;
}

export interface NoteSignature {
  name: string;
  keyHash: number;
  sig: Buffer;
}

export const MAX_NOTE_BYTES = 1024 * 1024;
export const MAX_NOTE_SIGNATURES = 100;

const ALG_ED25519 = 0x01;
const ED25519_KEY_SIZE = 32;
const ED25519_SIG_SIZE = 64;
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const SIG_PREFIX = '\u2014 ';
const SIG_SPLIT = '\n\n';

// unicode.IsSpace in Go plus what JS \s adds (U+FEFF); U+0085 is not in \s.
const NAME_FORBIDDEN = /[\s\u0085+\u0000-\u001f]|[\ud800-\udfff]/u;
// Valid UTF-8 (in a JS string: no lone surrogates) and no C0 control but \n.
const NOTE_FORBIDDEN = /[\u0000-\u0009\u000b-\u001f]|[\ud800-\udfff]/u;
const BASE64_STD = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const HEX8 = /^[0-9a-fA-F]{8}$/;

function malformed(what: string): NoteError {
  return new NoteError('note_malformed', `signed note: ${what}`);
}

function keyInvalid(what: string): NoteError {
  return new NoteError('note_key_invalid', `note key: ${what}`);
}

export function isValidKeyName(name: unknown): name is string {
  return typeof name === 'string' && name.length > 0 && !NAME_FORBIDDEN.test(name);
}

function isUint32(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
}

/** Standard base64 with padding; refuses anything that does not re-encode identically. */
function decodeBase64Strict(s: string): Buffer | null {
  if (!BASE64_STD.test(s)) return null;
  const b = Buffer.from(s, 'base64');
  return b.toString('base64') === s ? b : null;
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

/** C2SP key ID: first 4 bytes (big-endian) of SHA-256(name || 0x0A || type || public key). */
export function noteKeyHash(name: string, alg: number, publicKey: Uint8Array): number {
  return createHash('sha256')
    .update(name, 'utf8')
    .update(Buffer.from([0x0a, alg]))
    .update(publicKey)
    .digest()
    .readUInt32BE(0);
}

function ed25519PrivateKey(seed: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
}

function ed25519PublicKey(pub: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, pub]), format: 'der', type: 'spki' });
}

function rawPublicKey(key: KeyObject): Buffer {
  const der = key.export({ format: 'der', type: 'spki' });
  return Buffer.from(der.subarray(der.length - ED25519_KEY_SIZE));
}

export function generateKeyPair(name: string): { skey: string; vkey: string } {
  if (!isValidKeyName(name)) throw keyInvalid('name must be non-empty, without spaces or "+"');
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' });
  if (typeof jwk.d !== 'string') throw keyInvalid('could not export the generated key');
  const seed = Buffer.from(jwk.d, 'base64url');
  const pub = rawPublicKey(publicKey);
  const hash = hex8(noteKeyHash(name, ALG_ED25519, pub));
  const skey = `PRIVATE+KEY+${name}+${hash}+${Buffer.concat([Buffer.from([ALG_ED25519]), seed]).toString('base64')}`;
  const vkey = `${name}+${hash}+${Buffer.concat([Buffer.from([ALG_ED25519]), pub]).toString('base64')}`;
  seed.fill(0);
  return { skey, vkey };
}

/** Splits "<name>+<hash8>+<base64>"; the base64 part may itself contain '+'. */
function splitKey(s: string): { name: string; hash: number; key: Buffer } {
  const i = s.indexOf('+');
  const j = i < 0 ? -1 : s.indexOf('+', i + 1);
  if (i < 0 || j < 0) throw keyInvalid('expected <name>+<hash>+<key>');
  const name = s.slice(0, i);
  const hash16 = s.slice(i + 1, j);
  const key = decodeBase64Strict(s.slice(j + 1));
  if (!isValidKeyName(name)) throw keyInvalid('invalid key name');
  if (!HEX8.test(hash16)) throw keyInvalid('key hash must be 8 hex digits');
  if (key === null || key.length === 0) throw keyInvalid('key is not valid base64');
  return { name, hash: Number.parseInt(hash16, 16), key };
}

export function parseSignerKey(skey: string): NoteSigner {
  return parseSignerKeyPair(skey).signer;
}

/**
 * Parses a signer key and also returns its verifier key text, derived from the
 * same parse (the public half is computed anyway to check the key hash).
 */
export function parseSignerKeyPair(skey: string): { signer: NoteSigner; vkey: string } {
  if (typeof skey !== 'string' || !skey.startsWith('PRIVATE+KEY+')) {
    throw keyInvalid('signer key must start with PRIVATE+KEY+');
  }
  const { name, hash, key } = splitKey(skey.slice('PRIVATE+KEY+'.length));
  try {
    if (key[0] !== ALG_ED25519) throw keyInvalid('unknown key algorithm');
    if (key.length !== 1 + ED25519_KEY_SIZE) throw keyInvalid('Ed25519 seed must be 32 bytes');
    let privateKey: KeyObject;
    try {
      privateKey = ed25519PrivateKey(key.subarray(1));
    } catch {
      throw keyInvalid('unusable Ed25519 seed');
    }
    // The hash names the public key, so it can only be checked after derivation.
    const pub = rawPublicKey(createPublicKey(privateKey));
    if (noteKeyHash(name, ALG_ED25519, pub) !== hash) throw keyInvalid('key hash does not match the key');
    return {
      signer: {
        name,
        keyHash: hash,
        sign: (msg: Uint8Array): Buffer => cryptoSign(null, msg, privateKey),
      },
      vkey: `${name}+${hex8(hash)}+${Buffer.concat([Buffer.from([ALG_ED25519]), pub]).toString('base64')}`,
    };
  } finally {
    key.fill(0);
  }
}

export function parseVerifierKey(vkey: string): NoteVerifier {
  if (typeof vkey !== 'string') throw keyInvalid('verifier key must be a string');
  const { name, hash, key } = splitKey(vkey);
  if (noteKeyHash(name, key[0] as number, key.subarray(1)) !== hash) {
    throw keyInvalid('key hash does not match the key');
  }
  if (key[0] !== ALG_ED25519) throw keyInvalid('unknown key algorithm');
  if (key.length !== 1 + ED25519_KEY_SIZE) throw keyInvalid('Ed25519 public key must be 32 bytes');
  let publicKey: KeyObject;
  try {
    publicKey = ed25519PublicKey(key.subarray(1));
  } catch {
    throw keyInvalid('unusable Ed25519 public key');
  }
  return {
    name,
    keyHash: hash,
    verify: (msg: Uint8Array, sig: Uint8Array): boolean => {
      if (sig.length !== ED25519_SIG_SIZE) return false;
      try {
        return cryptoVerify(null, msg, publicKey, sig);
      } catch {
        return false;
      }
    },
  };
}

function checkText(text: string): void {
  if (!text.endsWith('\n')) throw malformed('text must end with a newline');
  if (NOTE_FORBIDDEN.test(text)) throw malformed('text has control characters or invalid UTF-16');
}

export function signNote(text: string, signers: NoteSigner[]): string {
  if (typeof text !== 'string') throw malformed('text must be a string');
  checkText(text);
  if (!Array.isArray(signers) || signers.length === 0) throw malformed('at least one signer is required');
  const msg = Buffer.from(text, 'utf8');
  let out = text + '\n';
  const seen = new Set<string>();
  for (const s of signers) {
    if (!isValidKeyName(s.name)) throw keyInvalid('invalid signer name');
    if (!isUint32(s.keyHash)) throw keyInvalid('signer key hash must be a uint32');
    const id = `${s.name}+${hex8(s.keyHash)}`;
    if (seen.has(id)) continue;
    seen.add(id);
    const sig = s.sign(msg);
    const blob = Buffer.alloc(4 + sig.length);
    blob.writeUInt32BE(s.keyHash, 0);
    blob.set(sig, 4);
    out += `${SIG_PREFIX}${s.name} ${blob.toString('base64')}\n`;
  }
  if (Buffer.byteLength(out, 'utf8') > MAX_NOTE_BYTES) throw malformed(`note exceeds ${MAX_NOTE_BYTES} bytes`);
  return out;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Bytes are accepted too, so that invalid UTF-8 is refused rather than silently replaced. */
function noteString(note: string | Uint8Array): string {
  if (typeof note === 'string') return note;
  if (!(note instanceof Uint8Array)) throw malformed('note must be a string or bytes');
  if (note.length > MAX_NOTE_BYTES) throw malformed(`note exceeds ${MAX_NOTE_BYTES} bytes`);
  try {
    return UTF8.decode(note);
  } catch {
    throw malformed('note is not valid UTF-8');
  }
}

export function parseNote(input: string | Uint8Array): { text: string; sigs: NoteSignature[] } {
  const note = noteString(input);
  // UTF-8 is never shorter than the UTF-16 length, so the cheap test first.
  if (note.length > MAX_NOTE_BYTES || Buffer.byteLength(note, 'utf8') > MAX_NOTE_BYTES) {
    throw malformed(`note exceeds ${MAX_NOTE_BYTES} bytes`);
  }
  if (NOTE_FORBIDDEN.test(note)) throw malformed('note has control characters or invalid UTF-16');

  // The text may contain blank lines; the last blank line starts the signatures.
  const split = note.lastIndexOf(SIG_SPLIT);
  if (split < 0) throw malformed('no blank line before the signatures');
  const text = note.slice(0, split + 1);
  const block = note.slice(split + 2);
  if (block.length === 0 || !block.endsWith('\n')) throw malformed('signature block missing or not newline-terminated');

  const sigs: NoteSignature[] = [];
  let pos = 0;
  while (pos < block.length) {
    const nl = block.indexOf('\n', pos);
    const line = block.slice(pos, nl);
    pos = nl + 1;
    if (sigs.length >= MAX_NOTE_SIGNATURES) throw malformed(`more than ${MAX_NOTE_SIGNATURES} signatures`);
    if (!line.startsWith(SIG_PREFIX)) throw malformed('signature line must start with an em dash and a space');
    const rest = line.slice(SIG_PREFIX.length);
    const sp = rest.indexOf(' ');
    if (sp < 0) throw malformed('signature line has no signature');
    const name = rest.slice(0, sp);
    if (!isValidKeyName(name)) throw malformed('invalid key name in signature line');
    const blob = decodeBase64Strict(rest.slice(sp + 1));
    if (blob === null) throw malformed('signature is not valid base64');
    if (blob.length < 5) throw malformed('signature too short');
    sigs.push({ name, keyHash: blob.readUInt32BE(0), sig: Buffer.from(blob.subarray(4)) });
  }
  return { text, sigs };
}

export function openNote(
  note: string | Uint8Array,
  verifiers: NoteVerifier[],
): { text: string; verified: { name: string; keyHash: number }[] } {
  const { text, sigs } = parseNote(note);

  const known = new Map<string, NoteVerifier[]>();
  for (const v of verifiers) {
    const id = `${v.name}+${hex8(v.keyHash)}`;
    const list = known.get(id);
    if (list) list.push(v);
    else known.set(id, [v]);
  }

  const msg = Buffer.from(text, 'utf8');
  const verified: { name: string; keyHash: number }[] = [];
  const seen = new Set<string>();
  for (const s of sigs) {
    const id = `${s.name}+${hex8(s.keyHash)}`;
    const candidates = known.get(id);
    // Unknown keys must be ignored (witness cosignatures, rotated keys, ...).
    if (candidates === undefined) continue;
    if (candidates.length > 1) {
      throw new NoteError('note_ambiguous_key', `signed note: more than one verifier for key ${id}`);
    }
    const v = candidates[0] as NoteVerifier;
    // Every signature from a known key is checked, repeats included: a bad
    // one means someone tampered with the note, whatever else it carries.
    let ok: boolean;
    try {
      ok = v.verify(msg, s.sig) === true;
    } catch {
      ok = false;
    }
    if (!ok) throw new NoteError('note_invalid_signature', `signed note: invalid signature for key ${id}`);
    if (!seen.has(id)) {
      seen.add(id);
      verified.push({ name: s.name, keyHash: s.keyHash });
    }
  }
  if (verified.length === 0) throw new NoteError('note_unverified', 'signed note: no signature from a known key');
  return { text, verified };
}
