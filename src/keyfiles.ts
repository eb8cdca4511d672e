import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import type { FileProblem, KeyFileCode } from './core/error-codes.js';
import { ConfigError, FileError } from './core/errors.js';
import { verifierKeyFromSignerKey } from './core/keys.js';
import { generateKeyPair, parseSignerKeyPair, type NoteSigner } from './core/note.js';
import { mkdirPrivate, writeFilePrivate } from './fs/private-files.js';
import { readFileChecked } from './fs/read-file.js';

const MAX_KEY_FILE = 64 * 1024;

/** key_file_missing and key_file_invalid (too large) predate the other problems' codes. */
function keyFileCode(p: FileProblem): KeyFileCode {
  if (p === 'missing' || p === 'not_directory') return 'key_file_missing';
  if (p === 'too_large') return 'key_file_invalid';
  return `key_file_${p}`;
}

/**
 * A key, token or secret file: bounded, and every way it can fail to be read
 * (missing, a directory, permission denied, ...) a ConfigError naming the path.
 */
function readSmall(path: string, what: string): string {
  return asConfigError(() => readFileChecked(path, { what, maxBytes: MAX_KEY_FILE, codes: keyFileCode }).toString('utf8'));
}

/** A FileError becomes a ConfigError, the class key file problems have always had. */
function asConfigError<T>(f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof FileError) throw new ConfigError(err.code, err.message, {}, { cause: err });
    throw err;
  }
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
export function readHmacKey(path: string, what = 'HMAC key file'): Buffer {
  const text = readSmall(path, what).trim();
  let key: Buffer;
  if (/^[0-9a-fA-F]+$/.test(text) && text.length % 2 === 0) {
    key = Buffer.from(text, 'hex');
  } else {
    key = Buffer.from(text, 'base64');
    // Node decodes base64 leniently; a passphrase must not pass for a random key.
    if (key.toString('base64').replace(/=+$/, '') !== text.replace(/=+$/, '')) {
      throw new ConfigError('key_file_invalid', `${what} ${path} must hold base64 or hex text`);
    }
  }
  if (key.length < 32) {
    throw new ConfigError('key_file_invalid', `${what} ${path} must hold at least 32 random bytes (base64 or hex)`);
  }
  return key;
}

function refuseOverwrite(path: string): void {
  if (existsSync(path)) {
    throw new ConfigError('key_file_exists', `${path} already exists; sealtrail never overwrites a key file`);
  }
}

/**
 * Every key file is created 0600 in a 0700 directory (if it makes one),
 * whatever the umask: the verifier key too, though it is public, so a key
 * directory never mixes modes and nothing in it needs a second look.
 */
function writeKeyFile(path: string, text: string, what: string): void {
  refuseOverwrite(path);
  asConfigError(() => {
    mkdirPrivate(dirname(path), 'key directory');
    writeFilePrivate(path, text, what);
  });
}

/** Creates a signer key file (0600) and its .vkey (0600) beside it, refusing to overwrite. */
export function createSigningKeyFiles(skeyPath: string, vkeyPath: string, name: string): { vkey: string } {
  refuseOverwrite(skeyPath);
  refuseOverwrite(vkeyPath);
  const { skey, vkey } = generateKeyPair(name);
  writeKeyFile(skeyPath, `${skey}\n`, 'signing key file');
  writeKeyFile(vkeyPath, `${vkey}\n`, 'verifier key file');
  return { vkey };
}

export function createHmacKeyFile(path: string): void {
  writeKeyFile(path, `${randomBytes(32).toString('base64')}\n`, 'HMAC key file');
}

/** Ensures dev keys exist; returns whether they were created now. */
export function ensureKeyFiles(opts: { skey: string; vkey: string; hmac: string; name: string }): boolean {
  let created = false;
  if (!existsSync(opts.skey)) {
    createSigningKeyFiles(opts.skey, opts.vkey, opts.name);
    created = true;
  } else if (!existsSync(opts.vkey)) {
    writeKeyFile(opts.vkey, `${verifierKeyFromSignerKey(readSmall(opts.skey, 'signing key file'))}\n`, 'verifier key file');
  }
  if (!existsSync(opts.hmac)) {
    createHmacKeyFile(opts.hmac);
    created = true;
  }
  return created;
}

/** Pseudonym keys (redaction `operator: hash`) by id, read from their files. */
export function readPseudonymKeys(keys: readonly { id: string; file: string }[]): Map<string, Buffer> {
  return new Map(keys.map((k) => [k.id, readHmacKey(k.file, `pseudonym key file (id ${k.id})`)]));
}
