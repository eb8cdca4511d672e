import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import type { FileProblem, KeyFileCode } from './core/error-codes.js';
import { ConfigError, FileError } from './core/errors.js';
import { verifierKeyFromSignerKey } from './core/keys.js';
import { generateKeyPair, parseSignerKeyPair, parseVerifierKey, type NoteSigner } from './core/note.js';
import { mkdirPrivate, writeFilePrivate } from './fs/private-files.js';
import { readFileChecked } from './fs/read-file.js';

const MAX_KEY_FILE = 64 * 1024;

/**
 * Key file names, one scheme everywhere (keygen, `sealtrail dev`, the
 * example configs, the docs): `<name>.skey` holds a signed-note signer key,
 * `<name>.vkey` its verifier key, and `hmac.key` an HMAC chain key.
 */
export const SIGNER_KEY_EXT = '.skey';
export const VERIFIER_KEY_EXT = '.vkey';
export const HMAC_KEY_FILE = 'hmac.key';

/** What a file holds, for the "what to do" part of an error about it. */
type KeyKind = 'signing' | 'verifier' | 'hmac' | 'secret';

/** How to make a missing file of each kind; a token or secret of the operator's own has no recipe here. */
const MISSING_HINT: Record<KeyKind, string | undefined> = {
  signing: '`sealtrail keygen --name NAME --out DIR` writes the signer key DIR/NAME.skey (name that file here) and its verifier key DIR/NAME.vkey',
  verifier: 'name the NAME.vkey that `sealtrail keygen --name NAME` wrote beside the signer key NAME.skey',
  hmac: '`sealtrail keygen --hmac --out DIR` writes DIR/hmac.key (32 random bytes, base64)',
  secret: undefined,
};

/**
 * Secrets are where a non-root process most often meets EACCES: a Kubernetes
 * Secret volume is root-owned, and with defaultMode 0400 only the pod's
 * fsGroup makes it readable (the kubelet then adds group read, 0440).
 */
const UNREADABLE_HINT =
  "if it is mounted from a Kubernetes Secret (root-owned, defaultMode 0400), set the pod's securityContext.fsGroup so the file becomes 0440 in that group; otherwise chmod 0440 and chgrp it to a group of that user";

/** key_file_missing and key_file_invalid (too large) predate the other problems' codes. */
function keyFileCode(p: FileProblem): KeyFileCode {
  if (p === 'missing' || p === 'not_directory') return 'key_file_missing';
  if (p === 'too_large') return 'key_file_invalid';
  return `key_file_${p}`;
}

/** The FileError's message (it names the path and `what`) and what to do for this kind of file. */
function withHint(err: FileError, kind: KeyKind): string {
  if (err.code === 'key_file_permission_denied') return `${err.message}; ${UNREADABLE_HINT}`;
  const missing = MISSING_HINT[kind];
  if (err.code === 'key_file_missing' && missing !== undefined) return `${err.message}; ${missing}`;
  return err.message;
}

/**
 * A key, token or secret file: bounded, and every way it can fail to be read
 * (missing, a directory, permission denied, ...) a ConfigError naming the
 * path, `what` (its kind and the config field or flag that named it) and
 * what to do.
 */
function readSmall(path: string, what: string, kind: KeyKind): string {
  try {
    return readFileChecked(path, { what, maxBytes: MAX_KEY_FILE, codes: keyFileCode }).toString('utf8');
  } catch (err) {
    if (err instanceof FileError) throw new ConfigError(err.code, withHint(err, kind), {}, { cause: err });
    throw err;
  }
}

/** A key file's text, trimmed; an empty one is key_file_invalid, said as such rather than as "not a key". */
function readKeyText(path: string, what: string, kind: Exclude<KeyKind, 'secret'>): string {
  const text = readSmall(path, what, kind).trim();
  if (text === '') throw new ConfigError('key_file_invalid', `${what} ${path}: is empty; ${MISSING_HINT[kind]}`);
  return text;
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

function isVerifierKey(text: string): boolean {
  try {
    parseVerifierKey(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * Reads a signed-note signer key file; never includes key material in an
 * error. `what` names the file's kind and the field or flag that named it;
 * the default is the sidecar's field, whose caller passes none.
 */
export function readSigningKey(path: string, what = 'signing key file (sidecar.keys.signing_key_file)'): { signer: NoteSigner; vkey: string } {
  const text = readKeyText(path, what, 'signing');
  try {
    return parseSignerKeyPair(text);
  } catch {
    // The usual mix-up of a pair, named as such: the public half where the secret one belongs.
    const why = isVerifierKey(text)
      ? 'holds a verifier key (NAME.vkey), not a signer key; name the signer key NAME.skey written beside it'
      : 'does not hold a signed-note Ed25519 signer key ("PRIVATE+KEY+NAME+HASH+KEY", as in the NAME.skey `sealtrail keygen` writes)';
    throw new ConfigError('key_file_invalid', `${what} ${path}: ${why}`);
  }
}

/**
 * Reads a small text file holding one secret or key (an admin token, ...),
 * trimmed. `what` names the file in errors; the content never appears in one.
 */
export function readSecretText(path: string, what: string): string {
  return readSmall(path, what, 'secret').trim();
}

/**
 * Reads a verifier key file (signed-note "<name>+<hash>+<key>" text) and
 * checks that it is one, so a garbled file is named here, by path and field,
 * rather than later by whoever parses the text.
 */
export function readVerifierKeyFile(path: string, what = 'verifier key file'): string {
  const text = readKeyText(path, what, 'verifier');
  try {
    parseVerifierKey(text);
  } catch (err) {
    // A signer key here is a secret in a place meant for public keys: say so, never echo it.
    const why = text.startsWith('PRIVATE+KEY+')
      ? 'holds a signer key, which is secret; name the verifier key NAME.vkey written beside it, and keep NAME.skey out of verifier key directories'
      : `is not a signed-note verifier key "NAME+HASH+KEY" (${(err as Error).message})`;
    throw new ConfigError('key_file_invalid', `${what} ${path}: ${why}`);
  }
  return text;
}

/**
 * HMAC chain keys are 32+ random bytes stored as base64 (or hex) text. Short
 * keys are refused: the chain is only as strong as its key.
 */
export function readHmacKey(path: string, what = 'HMAC key file (sidecar.keys.hmac_key_file)'): Buffer {
  const text = readKeyText(path, what, 'hmac');
  let key: Buffer;
  if (/^[0-9a-fA-F]+$/.test(text) && text.length % 2 === 0) {
    key = Buffer.from(text, 'hex');
  } else {
    key = Buffer.from(text, 'base64');
    // Node decodes base64 leniently; a passphrase must not pass for a random key.
    if (key.toString('base64').replace(/=+$/, '') !== text.replace(/=+$/, '')) {
      throw new ConfigError('key_file_invalid', `${what} ${path} must hold base64 or hex text (${MISSING_HINT.hmac})`);
    }
  }
  if (key.length < 32) {
    throw new ConfigError('key_file_invalid', `${what} ${path} must hold at least 32 random bytes (base64 or hex; ${MISSING_HINT.hmac})`);
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
    writeKeyFile(opts.vkey, `${verifierKeyFromSignerKey(readSmall(opts.skey, 'signing key file', 'signing'))}\n`, 'verifier key file');
  }
  if (!existsSync(opts.hmac)) {
    createHmacKeyFile(opts.hmac);
    created = true;
  }
  return created;
}

/** Pseudonym keys (redaction `operator: hash`) by id, read from their files. */
export function readPseudonymKeys(keys: readonly { id: string; file: string }[]): Map<string, Buffer> {
  return new Map(keys.map((k) => [k.id, readHmacKey(k.file, `pseudonym key file (sidecar.redaction.pseudonym_keys, id ${k.id})`)]));
}
