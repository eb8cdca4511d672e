import fs from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, NoteError } from '../../src/core/errors.js';
import { verifierKeyFromSignerKey } from '../../src/core/keys.js';
import { generateKeyPair, openNote, parseSignerKey, parseVerifierKey, signNote } from '../../src/core/note.js';
import {
  createHmacKeyFile,
  createSigningKeyFiles,
  ensureKeyFiles,
  readHmacKey,
  readSigningKey,
  readVerifierKeyFile,
} from '../../src/keyfiles.js';
import { thrown } from '../helpers/errors.js';
import { tempDir, type TempDir } from '../helpers/sidecar-fixtures.js';

function keyPart(skey: string): string {
  return skey.split('+').slice(4).join('+');
}

/** Generates key pairs until one's base64 key part contains '+' (about 1 in 2 do). */
function pairWithPlus(name: string): { skey: string; vkey: string } {
  for (let i = 0; i < 10_000; i++) {
    const kp = generateKeyPair(name);
    if (keyPart(kp.skey).includes('+') && kp.vkey.split('+').slice(2).join('+').includes('+')) return kp;
  }
  throw new Error('no key with "+" found');
}

const expectNoteError = (f: () => unknown): NoteError => thrown(f, NoteError);

describe('verifierKeyFromSignerKey', () => {
  it('derives exactly the vkey generateKeyPair produced, for many keys and names', () => {
    for (const name of ['a', 'sealtrail-sidecar', 'pod_1.example', 'ünïcode', 'x'.repeat(100)]) {
      for (let i = 0; i < 20; i++) {
        const { skey, vkey } = generateKeyPair(name);
        expect(verifierKeyFromSignerKey(skey)).toBe(vkey);
      }
    }
  });

  it('handles keys whose base64 contains "+" (in the signer key and in the verifier key)', () => {
    const { skey, vkey } = pairWithPlus('plus-test');
    expect(keyPart(skey)).toContain('+');
    expect(verifierKeyFromSignerKey(skey)).toBe(vkey);
  });

  it('handles keys whose base64 contains "/"', () => {
    for (let i = 0; i < 10_000; i++) {
      const kp = generateKeyPair('slash');
      if (keyPart(kp.skey).includes('/')) {
        expect(verifierKeyFromSignerKey(kp.skey)).toBe(kp.vkey);
        return;
      }
    }
    throw new Error('no key with "/" found');
  });

  it('derives a key that verifies signatures from the signer key', () => {
    const { skey } = pairWithPlus('roundtrip');
    const vkey = verifierKeyFromSignerKey(skey);
    const note = signNote('hello\n', [parseSignerKey(skey)]);
    expect(openNote(note, [parseVerifierKey(vkey)]).text).toBe('hello\n');
  });

  it('ignores surrounding whitespace (a trailing newline from a key file)', () => {
    const { skey, vkey } = generateKeyPair('ws');
    expect(verifierKeyFromSignerKey(`${skey}\n`)).toBe(vkey);
    expect(verifierKeyFromSignerKey(`  ${skey}\r\n`)).toBe(vkey);
  });

  it('refuses malformed input with NoteError, never echoing key material', () => {
    const { skey, vkey } = generateKeyPair('bad');
    const secret = keyPart(skey);
    const short = Buffer.concat([Buffer.from([1]), Buffer.alloc(16, 9)]).toString('base64');
    const long = Buffer.concat([Buffer.from([1]), Buffer.alloc(40, 9)]).toString('base64');
    const wrongAlg = Buffer.concat([Buffer.from([2]), Buffer.alloc(32, 9)]).toString('base64');
    const [, , , name, hash] = skey.split('+') as [string, string, string, string, string];
    const inputs = [
      '',
      'garbage',
      vkey, // a verifier key is not a signer key
      skey.replace('PRIVATE+KEY+', ''),
      skey.replace('PRIVATE+KEY+', 'PRIVATE+KEYS+'),
      `PRIVATE+KEY+${name}+${hash}`,
      `PRIVATE+KEY+${name}+${hash}+`,
      `PRIVATE+KEY+${name}+zzzzzzzz+${secret}`,
      `PRIVATE+KEY+${name}+${hash.slice(1)}+${secret}`,
      `PRIVATE+KEY++${hash}+${secret}`,
      `PRIVATE+KEY+na me+${hash}+${secret}`,
      `PRIVATE+KEY+${name}+${hash}+${short}`,
      `PRIVATE+KEY+${name}+${hash}+${long}`,
      `PRIVATE+KEY+${name}+${hash}+${wrongAlg}`,
      `PRIVATE+KEY+${name}+${hash}+${secret}!`,
      `PRIVATE+KEY+${name}+${hash}+${secret} trailing`,
      `${skey}\n${skey}`,
    ];
    for (const input of inputs) {
      const err = expectNoteError(() => verifierKeyFromSignerKey(input));
      expect(err.code).toBe('note_malformed');
      expect(err.message).not.toContain(secret);
      expect(err.message).not.toContain(secret.slice(2, 20));
    }
  });

  // BUG: keys.ts copies the key hash from the signer key without checking it
  // against the derived public key, so a signer key with a wrong hash (which
  // parseSignerKey refuses with note_key_invalid) yields a verifier key text
  // that no verifier can use, instead of a NoteError.
  it('refuses a signer key whose key hash does not match the key', () => {
    const { skey } = generateKeyPair('hash');
    const parts = skey.split('+');
    const tampered = [...parts.slice(0, 3), parts[3] === '00000000' ? '00000001' : '00000000', ...parts.slice(4)].join('+');
    expect(() => parseSignerKey(tampered)).toThrow(NoteError);
    expect(() => verifierKeyFromSignerKey(tampered)).toThrow(NoteError);
  });
});

describe('key files', () => {
  let tmp: TempDir;
  beforeEach(() => {
    tmp = tempDir('sealtrail-keys-');
  });
  afterEach(() => tmp.cleanup());

  function expectConfigError(f: () => unknown, code: string): ConfigError {
    const err = thrown(f, ConfigError, `expected ConfigError ${code}`);
    expect(err.code).toBe(code);
    return err;
  }

  describe('readHmacKey', () => {
    it('accepts 32 bytes as hex (either case) and as base64, trimming whitespace', () => {
      const key = Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 37 + 11) & 0xff));
      fs.writeFileSync(tmp.file('hex'), `${key.toString('hex')}\n`);
      fs.writeFileSync(tmp.file('HEX'), `  ${key.toString('hex').toUpperCase()}\r\n`);
      fs.writeFileSync(tmp.file('b64'), `${key.toString('base64')}\n`);
      expect(readHmacKey(tmp.file('hex')).equals(key)).toBe(true);
      expect(readHmacKey(tmp.file('HEX')).equals(key)).toBe(true);
      expect(readHmacKey(tmp.file('b64')).equals(key)).toBe(true);
    });

    it('accepts longer keys', () => {
      const key = Buffer.alloc(64, 0xab);
      fs.writeFileSync(tmp.file('k'), key.toString('base64'));
      expect(readHmacKey(tmp.file('k')).equals(key)).toBe(true);
      fs.writeFileSync(tmp.file('h'), key.toString('hex'));
      expect(readHmacKey(tmp.file('h')).equals(key)).toBe(true);
    });

    it('refuses keys shorter than 32 bytes, without echoing them', () => {
      const k31 = Buffer.alloc(31, 0xcd);
      for (const text of [k31.toString('hex'), k31.toString('base64'), '', '\n', 'CANARYKEY']) {
        fs.writeFileSync(tmp.file('kf'), text);
        const err = expectConfigError(() => readHmacKey(tmp.file('kf')), 'key_file_invalid');
        expect(err.message).toContain(tmp.file('kf'));
        if (text.length > 4) expect(err.message).not.toContain(text.trim());
      }
    });

    it('reports a missing file with key_file_missing and an over-large one with key_file_invalid', () => {
      expectConfigError(() => readHmacKey(tmp.file('nope')), 'key_file_missing');
      fs.writeFileSync(tmp.file('big'), 'A'.repeat(64 * 1024 + 1));
      expectConfigError(() => readHmacKey(tmp.file('big')), 'key_file_invalid');
    });

    it('reads what createHmacKeyFile wrote (32 random bytes, mode 0600)', () => {
      createHmacKeyFile(tmp.file('sub/dir/hmac.key'));
      const k = readHmacKey(tmp.file('sub/dir/hmac.key'));
      expect(k.length).toBe(32);
      expect(fs.statSync(tmp.file('sub/dir/hmac.key')).mode & 0o777).toBe(0o600);
      expectConfigError(() => createHmacKeyFile(tmp.file('sub/dir/hmac.key')), 'key_file_exists');
      expect(readHmacKey(tmp.file('sub/dir/hmac.key')).equals(k)).toBe(true);
    });
  });

  describe('createSigningKeyFiles', () => {
    it('writes the signer key with mode 0600 and a matching verifier key', () => {
      const oldMask = process.umask(0);
      let vkey: string;
      try {
        vkey = createSigningKeyFiles(tmp.file('keys/s.key'), tmp.file('keys/s.vkey'), 'sidecar-1').vkey;
      } finally {
        process.umask(oldMask);
      }
      expect(fs.statSync(tmp.file('keys/s.key')).mode & 0o777).toBe(0o600);
      expect(readVerifierKeyFile(tmp.file('keys/s.vkey'))).toBe(vkey);
      const skey = fs.readFileSync(tmp.file('keys/s.key'), 'utf8').trim();
      expect(verifierKeyFromSignerKey(skey)).toBe(vkey);
      const { signer, vkey: derived } = readSigningKey(tmp.file('keys/s.key'));
      expect(derived).toBe(vkey);
      expect(openNote(signNote('t\n', [signer]), [parseVerifierKey(vkey)]).verified).toHaveLength(1);
      expect(vkey.startsWith('sidecar-1+')).toBe(true);
    });

    it('refuses to overwrite an existing signer key and leaves it untouched', () => {
      createSigningKeyFiles(tmp.file('s.key'), tmp.file('s.vkey'), 'one');
      const before = fs.readFileSync(tmp.file('s.key'));
      const vbefore = fs.readFileSync(tmp.file('s.vkey'));
      expectConfigError(() => createSigningKeyFiles(tmp.file('s.key'), tmp.file('s.vkey'), 'two'), 'key_file_exists');
      expect(fs.readFileSync(tmp.file('s.key')).equals(before)).toBe(true);
      expect(fs.readFileSync(tmp.file('s.vkey')).equals(vbefore)).toBe(true);
      fs.rmSync(tmp.file('s.vkey'));
      expect(() => createSigningKeyFiles(tmp.file('s.key'), tmp.file('other.vkey'), 'two')).toThrow();
      expect(fs.readFileSync(tmp.file('s.key')).equals(before)).toBe(true);
    });

    it('refuses to overwrite an existing verifier key file', () => {
      fs.writeFileSync(tmp.file('s.vkey'), 'old-vkey\n');
      expect(() => createSigningKeyFiles(tmp.file('s.key'), tmp.file('s.vkey'), 'n')).toThrow();
      expect(fs.readFileSync(tmp.file('s.vkey'), 'utf8')).toBe('old-vkey\n');
    });

    // Regression: the signer key used to be written before the .vkey check
    // failed, leaving a new secret beside an old verifier key.
    it('leaves no new signer key behind when the verifier key file already exists', () => {
      fs.writeFileSync(tmp.file('s.vkey'), 'old-vkey\n');
      expectConfigError(() => createSigningKeyFiles(tmp.file('s.key'), tmp.file('s.vkey'), 'n'), 'key_file_exists');
      expect(fs.existsSync(tmp.file('s.key'))).toBe(false);
      expect(fs.readFileSync(tmp.file('s.vkey'), 'utf8')).toBe('old-vkey\n');
    });

    it('refuses an invalid key name before writing anything', () => {
      expect(() => createSigningKeyFiles(tmp.file('s.key'), tmp.file('s.vkey'), 'bad name')).toThrow(NoteError);
      expect(fs.existsSync(tmp.file('s.key'))).toBe(false);
      expect(fs.existsSync(tmp.file('s.vkey'))).toBe(false);
    });
  });

  describe('readSigningKey', () => {
    it('refuses a file that does not hold a signer key, without echoing it', () => {
      fs.writeFileSync(tmp.file('bad.key'), 'SECRET-CANARY-not-a-key\n');
      const err = expectConfigError(() => readSigningKey(tmp.file('bad.key')), 'key_file_invalid');
      expect(err.message).not.toContain('SECRET-CANARY');
      const { vkey } = generateKeyPair('v');
      fs.writeFileSync(tmp.file('v.key'), vkey);
      expectConfigError(() => readSigningKey(tmp.file('v.key')), 'key_file_invalid');
      expectConfigError(() => readSigningKey(tmp.file('none.key')), 'key_file_missing');
    });

    it('reads signer keys whose base64 contains "+"', () => {
      const { skey, vkey } = pairWithPlus('file-plus');
      fs.writeFileSync(tmp.file('p.key'), `${skey}\n`, { mode: 0o600 });
      expect(readSigningKey(tmp.file('p.key')).vkey).toBe(vkey);
    });
  });

  describe('ensureKeyFiles', () => {
    it('creates missing keys once, then reuses them; recreates only a missing .vkey', () => {
      const opts = { skey: tmp.file('d/s.key'), vkey: tmp.file('d/s.vkey'), hmac: tmp.file('d/h.key'), name: 'dev' };
      expect(ensureKeyFiles(opts)).toBe(true);
      const s = fs.readFileSync(opts.skey, 'utf8');
      const v = fs.readFileSync(opts.vkey, 'utf8');
      const h = fs.readFileSync(opts.hmac, 'utf8');
      expect(ensureKeyFiles(opts)).toBe(false);
      fs.rmSync(opts.vkey);
      expect(ensureKeyFiles(opts)).toBe(false);
      expect(fs.readFileSync(opts.skey, 'utf8')).toBe(s);
      expect(fs.readFileSync(opts.vkey, 'utf8')).toBe(v);
      expect(fs.readFileSync(opts.hmac, 'utf8')).toBe(h);
    });
  });
});
