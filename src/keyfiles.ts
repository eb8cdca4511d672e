import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { ConfigError } from './core/errors.js';
import { verifierKeyFromSignerKey } from './core/keys.js';
import { generateKeyPair, parseSignerKeyPair, type NoteSigner } from './core/note.js';

const MAX_KEY_FILE = 64 * 1024;

function readSmall(path: string, what: string): string {
  let size: number;
  try {
    size = statSync(path).size;
  } catch (err) {
    throw new ConfigError('key_file_missing', `${what} ${path} cannot be read: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  if (size > MAX_KEY_FILE) throw new ConfigError('key_file_invalid', `${what} ${path} is larger than ${MAX_KEY_FILE} bytes`);
  return readFileSync(path, 'utf8');
}

/** Reads a signed-note signer key file; never includes key material in an error. */
export function readSigningKey(path: string): { signer: NoteSigner; vkey: string } {
  const text = readSmall(path, 'signing key file').trim();
  try {
    return parseSignerKeyPair(text);
  } catch {
    throw new ConfigError('key_file_invalid', `signing key file ${path} does not hold a signed-note Ed25519 signer key`);
  }
}

/**
 * Reads a small text file holding one secret or key (an admin token, ...),
 * trimmed. `what` names the file in errors; the content never appears in one.
 */
export function readSecretText(path: string, what: string): string {
  return readSmall(path, what).trim();
}

/** Reads a verifier key file (signed-note "<name>+<hash>+<key>" text). */
export function readVerifierKeyFile(path: string): string {
  return readSecretText(path, 'verifier key file');
}

/**
 * HMAC chain keys are 32+ random bytes stored as base64 (or hex) text. Short
 * keys are refused: the chain is only as strong as its key.
 */
export function readHmacKey(path: string): Buffer {
  const text = readSmall(path, 'HMAC key file').trim();
  let key: Buffer;
  if (/^[0-9a-fA-F]+$/.test(text) && text.length % 2 === 0) {
    key = Buffer.from(text, 'hex');
  } else {
    key = Buffer.from(text, 'base64');
    // Node decodes base64 leniently; a passphrase must not pass for a random key.
    if (key.toString('base64').replace(/=+$/, '') !== text.replace(/=+$/, '')) {
      throw new ConfigError('key_file_invalid', `HMAC key file ${path} must hold base64 or hex text`);
    }
  }
  if (key.length < 32) {
    throw new ConfigError('key_file_invalid', `HMAC key file ${path} must hold at least 32 random bytes (base64 or hex)`);
  }
  return key;
}

function refuseOverwrite(path: string): void {
  if (existsSync(path)) {
    throw new ConfigError('key_file_exists', `${path} already exists; sealtrail never overwrites a key file`);
  }
}

function writeSecret(path: string, text: string): void {
  refuseOverwrite(path);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text, { mode: 0o600, flag: 'wx' });
  chmodSync(path, 0o600);
}

/** Creates a signer key file (0600) and its .vkey beside it, refusing to overwrite. */
export function createSigningKeyFiles(skeyPath: string, vkeyPath: string, name: string): { vkey: string } {
  refuseOverwrite(skeyPath);
  refuseOverwrite(vkeyPath);
  const { skey, vkey } = generateKeyPair(name);
  writeSecret(skeyPath, `${skey}\n`);
  mkdirSync(dirname(vkeyPath), { recursive: true });
  writeFileSync(vkeyPath, `${vkey}\n`, { mode: 0o644, flag: 'wx' });
  return { vkey };
}

export function createHmacKeyFile(path: string): void {
  writeSecret(path, `${randomBytes(32).toString('base64')}\n`);
}

/** Ensures dev keys exist; returns whether they were created now. */
export function ensureKeyFiles(opts: { skey: string; vkey: string; hmac: string; name: string }): boolean {
  let created = false;
  if (!existsSync(opts.skey)) {
    createSigningKeyFiles(opts.skey, opts.vkey, opts.name);
    created = true;
  } else if (!existsSync(opts.vkey)) {
    writeFileSync(opts.vkey, `${verifierKeyFromSignerKey(readSmall(opts.skey, 'signing key file'))}\n`);
  }
  if (!existsSync(opts.hmac)) {
    createHmacKeyFile(opts.hmac);
    created = true;
  }
  return created;
}

/** Pseudonym keys (redaction `operator: hash`) by id, read from their files. */
export function readPseudonymKeys(keys: readonly { id: string; file: string }[]): Map<string, Buffer> {
  return new Map(keys.map((k) => [k.id, readHmacKey(k.file)]));
}
