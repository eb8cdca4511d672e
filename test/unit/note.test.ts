import { describe, it, expect } from 'vitest';
import {
  MAX_NOTE_BYTES,
  generateKeyPair,
  isValidKeyName,
  noteKeyHash,
  openNote,
  parseNote,
  parseSignerKey,
  parseVerifierKey,
  signNote,
  type NoteVerifier,
} from '../../src/core/note.js';
import { NoteError } from '../../src/core/errors.js';
import { codeOf as codeOfError } from '../helpers/errors.js';

const codeOf = (fn: () => unknown): string | undefined => codeOfError(fn, NoteError);

// ---------------------------------------------------------------------------
// Vectors from golang.org/x/mod sumdb/note/note_test.go (golang/mod).
// ---------------------------------------------------------------------------
const PETER_SKEY = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz';
const PETER_VKEY = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
const ENOCH_VKEY = 'EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop';
const TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const PETER_SIG =
  '\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n';
const ENOCH_SIG =
  '\u2014 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n';
// TestSign "want"
const SIGNED = TEXT + '\n' + PETER_SIG;

/** Go slices strings by byte; insert at a UTF-8 byte offset like peterSig[:60]+"ABCD"+peterSig[60:]. */
function insertAtByte(s: string, at: number, ins: string): string {
  const b = Buffer.from(s, 'utf8');
  return Buffer.concat([b.subarray(0, at), Buffer.from(ins), b.subarray(at)]).toString('utf8');
}

describe('golang.org/x/mod/sumdb/note vectors', () => {
  it('parses the PeterNeumann signer and verifier keys', () => {
    const s = parseSignerKey(PETER_SKEY);
    const v = parseVerifierKey(PETER_VKEY);
    expect(s.name).toBe('PeterNeumann');
    expect(v.name).toBe('PeterNeumann');
    expect(s.keyHash).toBe(0xc74f20a3);
    expect(v.keyHash).toBe(0xc74f20a3);
    // Go's testSignerAndVerifier
    const msg = Buffer.from('hi');
    const sig = s.sign(msg);
    expect(v.verify(msg, sig)).toBe(true);
    sig[0]! += 1;
    expect(v.verify(msg, sig)).toBe(false);
    sig[0]! -= 1;
    msg[0]! += 1;
    expect(v.verify(msg, sig)).toBe(false);
  });

  it('TestSign: signNote produces the published note byte for byte', () => {
    expect(signNote(TEXT, [parseSignerKey(PETER_SKEY)])).toBe(SIGNED);
  });

  it('TestSign bad inputs: text without final newline, bad signer name', () => {
    const signer = parseSignerKey(PETER_SKEY);
    expect(codeOf(() => signNote('abc', [signer]))).toBe('note_malformed');
    expect(codeOf(() => signNote(TEXT, [{ ...signer, name: 'bad name' }]))).toBe('note_key_invalid');
    expect(codeOf(() => signNote(TEXT, [{ ...signer, name: 'a+b' }]))).toBe('note_key_invalid');
    expect(codeOf(() => signNote(TEXT, []))).toBe('note_malformed');
  });

  it('TestOpen: opens the published note', () => {
    expect(openNote(SIGNED, [parseVerifierKey(PETER_VKEY)])).toEqual({
      text: TEXT,
      verified: [{ name: 'PeterNeumann', keyHash: 0xc74f20a3 }],
    });
  });

  it('TestOpen: one signature verified, the unknown one ignored', () => {
    const r = openNote(TEXT + '\n' + PETER_SIG + ENOCH_SIG, [parseVerifierKey(PETER_VKEY)]);
    expect(r.text).toBe(TEXT);
    expect(r.verified).toEqual([{ name: 'PeterNeumann', keyHash: 0xc74f20a3 }]);
  });

  it('TestOpen: both verified', () => {
    const r = openNote(TEXT + '\n' + PETER_SIG + ENOCH_SIG, [
      parseVerifierKey(PETER_VKEY),
      parseVerifierKey(ENOCH_VKEY),
    ]);
    expect(r.verified).toEqual([
      { name: 'PeterNeumann', keyHash: 0xc74f20a3 },
      { name: 'EnochRoot', keyHash: 0xaf0cfe78 },
    ]);
  });

  it('TestOpen: both unverified -> note_unverified', () => {
    expect(codeOf(() => openNote(TEXT + '\n' + PETER_SIG + ENOCH_SIG, []))).toBe('note_unverified');
  });

  it('TestOpen: duplicated verifier is ambiguous only when used', () => {
    const enoch = parseVerifierKey(ENOCH_VKEY);
    const peter = parseVerifierKey(PETER_VKEY);
    expect(codeOf(() => openNote(TEXT + '\n' + ENOCH_SIG, [enoch, peter, enoch]))).toBe('note_ambiguous_key');
    expect(openNote(TEXT + '\n' + PETER_SIG, [enoch, peter, enoch]).verified).toHaveLength(1);
  });

  it('TestOpen: too many signatures (101) is malformed, with or without known keys', () => {
    const many = TEXT + '\n' + PETER_SIG.repeat(101);
    expect(codeOf(() => openNote(many, [parseVerifierKey(PETER_VKEY)]))).toBe('note_malformed');
    expect(codeOf(() => openNote(many, []))).toBe('note_malformed');
    // 100 is still fine
    expect(openNote(TEXT + '\n' + PETER_SIG.repeat(100), [parseVerifierKey(PETER_VKEY)]).verified).toHaveLength(1);
  });

  it('TestOpen: invalid signature from a known key -> note_invalid_signature', () => {
    const bad = TEXT + '\n' + insertAtByte(PETER_SIG, 60, 'ABCD');
    expect(codeOf(() => openNote(bad, [parseVerifierKey(PETER_VKEY)]))).toBe('note_invalid_signature');
  });

  it('TestOpen: duplicated verified and unverified signatures are accepted, verified once', () => {
    const msg = TEXT + '\n' + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG + insertAtByte(ENOCH_SIG, 60, 'ABCD');
    const r = openNote(msg, [parseVerifierKey(PETER_VKEY)]);
    expect(r.verified).toEqual([{ name: 'PeterNeumann', keyHash: 0xc74f20a3 }]);
    expect(parseNote(msg).sigs).toHaveLength(5);
  });

  it('TestOpen: invalid encoded message syntax -> note_malformed', () => {
    const bad = [
      TEXT,
      TEXT + '\n',
      TEXT + '\n' + PETER_SIG.slice(0, -1),
      '\x01' + TEXT + '\n' + PETER_SIG,
      // Go's "\xff" (invalid UTF-8): as a JS string a lone surrogate, as bytes 0xff.
      '\udcff' + TEXT + '\n' + PETER_SIG,
      TEXT +
        '\n' +
        '\u2014 Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=',
      TEXT + '\n' + PETER_SIG + 'Unexpected line.\n',
    ];
    for (const msg of bad) {
      expect(codeOf(() => openNote(msg, [parseVerifierKey(PETER_VKEY)])), JSON.stringify(msg)).toBe('note_malformed');
    }
    const invalidUtf8 = Buffer.concat([Buffer.from([0xff]), Buffer.from(TEXT + '\n' + PETER_SIG)]);
    expect(codeOf(() => openNote(invalidUtf8, [parseVerifierKey(PETER_VKEY)]))).toBe('note_malformed');
    expect(openNote(Buffer.from(SIGNED), [parseVerifierKey(PETER_VKEY)]).text).toBe(TEXT);
  });

  it('TestOpen: signatures naming another key are ignored (unknown), not accepted', () => {
    const misnamed = PETER_SIG.replace(/PeterNeumann/g, 'CarmenSandiego');
    expect(codeOf(() => openNote(TEXT + '\n' + misnamed, [parseVerifierKey(PETER_VKEY)]))).toBe('note_unverified');
    const wrongHash = PETER_SIG.replace(/x08g/g, 'xxxx');
    expect(codeOf(() => openNote(TEXT + '\n' + wrongHash, [parseVerifierKey(PETER_VKEY)]))).toBe('note_unverified');
  });

  it('TestNewVerifier: every truncation and every single-character change is refused', () => {
    const b = PETER_VKEY;
    for (let i = 0; i <= b.length; i++) {
      for (let j = i + 1; j <= b.length; j++) {
        if (i === 0 && j === b.length) continue;
        expect(codeOf(() => parseVerifierKey(b.slice(i, j))), b.slice(i, j)).toBe('note_key_invalid');
      }
    }
    for (let i = 0; i < b.length; i++) {
      const m = b.slice(0, i) + String.fromCharCode(b.charCodeAt(i) + 1) + b.slice(i + 1);
      expect(codeOf(() => parseVerifierKey(m)), m).toBe('note_key_invalid');
    }
    // wrong length key, with adjusted key hash
    expect(codeOf(() => parseVerifierKey('PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=='))).toBe(
      'note_key_invalid',
    );
    // unknown algorithm, with adjusted key hash
    expect(codeOf(() => parseVerifierKey('PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'))).toBe(
      'note_key_invalid',
    );
  });

  it('TestNewSigner: every truncation and every single-character change is refused', () => {
    const b = PETER_SKEY;
    for (let i = 0; i <= b.length; i++) {
      for (let j = i + 1; j <= b.length; j++) {
        if (i === 0 && j === b.length) continue;
        expect(codeOf(() => parseSignerKey(b.slice(i, j))), b.slice(i, j)).toBe('note_key_invalid');
      }
    }
    for (let i = 0; i < b.length; i++) {
      const m = b.slice(0, i) + String.fromCharCode(b.charCodeAt(i) + 1) + b.slice(i + 1);
      expect(codeOf(() => parseSignerKey(m)), m).toBe('note_key_invalid');
    }
  });
});

describe('C2SP signed-note spec example (C2SP/C2SP signed-note.md)', () => {
  // The text contains a blank line: the signatures start after the LAST one.
  const NOTE =
    'Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned \u00e8 subito sera.\n\n' +
    '\u2014 quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n';

  it('parses text, key name, key ID and a 64-byte signature', () => {
    const { text, sigs } = parseNote(NOTE);
    expect(text).toBe('Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned \u00e8 subito sera.\n');
    expect(sigs).toHaveLength(1);
    expect(sigs[0]!.name).toBe('quasimodo.example/salvatore');
    expect(sigs[0]!.keyHash).toBe(Buffer.from('NnugSw==', 'base64').readUInt32BE(0));
    expect(sigs[0]!.sig.length).toBe(64);
  });

  it('is unverified without its key, and a key with the same name but another ID is ignored', () => {
    expect(codeOf(() => openNote(NOTE, []))).toBe('note_unverified');
    const other = generateKeyPair('quasimodo.example/salvatore');
    expect(codeOf(() => openNote(NOTE, [parseVerifierKey(other.vkey)]))).toBe('note_unverified');
  });
});

describe('keys', () => {
  it('generateKeyPair gives key texts in the x/mod format that sign and verify', () => {
    const { skey, vkey } = generateKeyPair('example.com/sealtrail-test');
    expect(skey).toMatch(/^PRIVATE\+KEY\+example\.com\/sealtrail-test\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}$/);
    expect(vkey).toMatch(/^example\.com\/sealtrail-test\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}$/);
    expect(Buffer.from(skey.split('+').slice(4).join('+'), 'base64')[0]).toBe(0x01);
    const s = parseSignerKey(skey);
    const v = parseVerifierKey(vkey);
    expect(s.keyHash).toBe(v.keyHash);
    expect(skey.split('+')[3]).toBe(vkey.split('+')[1]);
    const note = signNote('hello\n', [s]);
    expect(openNote(note, [v]).verified).toEqual([{ name: 'example.com/sealtrail-test', keyHash: v.keyHash }]);
  });

  it('key hash is SHA-256(name || 0x0A || 0x01 || pub)[:4], as for the published PeterNeumann key', () => {
    const pub = Buffer.from('ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW', 'base64').subarray(1);
    expect(noteKeyHash('PeterNeumann', 0x01, pub)).toBe(0xc74f20a3);
  });

  it('refuses invalid key names', () => {
    const bad = ['', 'a b', 'a+b', 'a\tb', 'a\nb', 'a\u00a0b', 'a\u0085b', 'a\u3000b', 'a\u2028b', 'a\u200ab', 'a\ud800'];
    for (const name of bad) {
      expect(isValidKeyName(name), JSON.stringify(name)).toBe(false);
      expect(codeOf(() => generateKeyPair(name)), JSON.stringify(name)).toBe('note_key_invalid');
    }
    expect(isValidKeyName('sealtrail/pod-7f9c@2025-01-01T00:00:00Z')).toBe(true);
    expect(isValidKeyName('\u00e9t\u00e9\ud83d\ude00')).toBe(true);
  });

  it('refuses a signer key whose hash does not match the derived public key', () => {
    const { skey } = generateKeyPair('k');
    const parts = skey.split('+');
    parts[3] = parts[3] === '00000000' ? '00000001' : '00000000';
    expect(codeOf(() => parseSignerKey(parts.join('+')))).toBe('note_key_invalid');
  });

  it('refuses base64 with padding, spaces or newlines in keys', () => {
    expect(codeOf(() => parseVerifierKey(PETER_VKEY + '='))).toBe('note_key_invalid');
    expect(codeOf(() => parseVerifierKey(PETER_VKEY.replace('ARpc', 'AR pc')))).toBe('note_key_invalid');
    expect(codeOf(() => parseVerifierKey(PETER_VKEY.replace('ARpc', 'AR\npc')))).toBe('note_key_invalid');
  });
});

describe('hostile notes', () => {
  const peter = (): NoteVerifier => parseVerifierKey(PETER_VKEY);
  const sigBlob = Buffer.from(PETER_SIG.slice(15, -1), 'base64');

  it('bad base64 in a signature line -> note_malformed', () => {
    for (const b64 of ['!!!!', 'x08go/ZJ===', 'x08g o/ZJ', 'x08go', sigBlob.toString('base64').slice(0, -1), '']) {
      const msg = `${TEXT}\n\u2014 PeterNeumann ${b64}\n`;
      expect(codeOf(() => openNote(msg, [peter()])), b64).toBe('note_malformed');
    }
    // Non-zero padding bits: lenient decoders read "x08go/9=" as "x08go/8=".
    expect(parseNote(`${TEXT}\n\u2014 PeterNeumann x08go/8=\n`).sigs).toHaveLength(1);
    expect(codeOf(() => parseNote(`${TEXT}\n\u2014 PeterNeumann x08go/9=\n`))).toBe('note_malformed');
  });

  it('signature shorter than key ID + 1 byte -> note_malformed', () => {
    expect(codeOf(() => parseNote(`${TEXT}\n\u2014 PeterNeumann x08gow==\n`))).toBe('note_malformed');
    expect(parseNote(`${TEXT}\n\u2014 PeterNeumann x08go/Y=\n`).sigs[0]!.sig.length).toBe(1);
  });

  it('wrong key hash -> the signature is from an unknown key -> note_unverified', () => {
    const blob = Buffer.from(sigBlob);
    blob[3]! ^= 1;
    expect(codeOf(() => openNote(`${TEXT}\n\u2014 PeterNeumann ${blob.toString('base64')}\n`, [peter()]))).toBe(
      'note_unverified',
    );
  });

  it('every single-bit flip of the signature (after the key ID) -> note_invalid_signature', () => {
    for (let bit = 32; bit < sigBlob.length * 8; bit++) {
      const blob = Buffer.from(sigBlob);
      blob[bit >> 3]! ^= 1 << (bit & 7);
      const msg = `${TEXT}\n\u2014 PeterNeumann ${blob.toString('base64')}\n`;
      expect(codeOf(() => openNote(msg, [peter()]))).toBe('note_invalid_signature');
    }
  });

  it('a changed text -> note_invalid_signature', () => {
    expect(codeOf(() => openNote(TEXT.replace('answer', 'Answer') + '\n' + PETER_SIG, [peter()]))).toBe(
      'note_invalid_signature',
    );
    expect(codeOf(() => openNote('x' + SIGNED, [peter()]))).toBe('note_invalid_signature');
  });

  it('a bad repeat of a good signature from the same key is still refused', () => {
    const bad = insertAtByte(PETER_SIG, 60, 'ABCD');
    expect(codeOf(() => openNote(TEXT + '\n' + PETER_SIG + bad, [peter()]))).toBe('note_invalid_signature');
    expect(codeOf(() => openNote(TEXT + '\n' + bad + PETER_SIG, [peter()]))).toBe('note_invalid_signature');
  });

  it('a signature by one key labelled as another known key -> note_invalid_signature', () => {
    const other = generateKeyPair('PeterNeumann');
    const forged = signNote(TEXT, [{ ...parseSignerKey(other.skey), keyHash: 0xc74f20a3 }]);
    expect(codeOf(() => openNote(forged, [peter()]))).toBe('note_invalid_signature');
  });

  it('missing blank line, missing final newline, bad prefix -> note_malformed', () => {
    const cases = [
      TEXT + PETER_SIG, // no blank line
      TEXT.slice(0, -1) + '\n' + PETER_SIG.slice(0, -1), // nothing ends in newline
      TEXT + '\n' + PETER_SIG.replace('\u2014', '-'), // hyphen instead of em dash
      TEXT + '\n' + PETER_SIG.replace('\u2014 ', '\u2014'), // no space after the dash
      TEXT + '\n' + PETER_SIG.replace('\u2014 ', '\u2014  '), // empty key name
      TEXT + '\n' + PETER_SIG.replace('\u2014', '\u2013'), // en dash
      TEXT + '\n' + ' ' + PETER_SIG, // leading space
      TEXT + '\n' + PETER_SIG + '\n', // trailing blank line
      TEXT + '\n' + PETER_SIG.replace('PeterNeumann', 'Peter+Neumann'),
      TEXT + '\n' + PETER_SIG.replace('PeterNeumann ', 'PeterNeumann\u00a0'),
      TEXT + '\n' + PETER_SIG.replace(/\n$/, '\r\n'),
      '\n' + PETER_SIG, // no blank line (only a newline)
      '',
    ];
    for (const msg of cases) {
      expect(codeOf(() => openNote(msg, [peter()])), JSON.stringify(msg)).toBe('note_malformed');
    }
  });

  it('control characters other than newline, and lone surrogates -> note_malformed', () => {
    for (const c of ['\u0000', '\t', '\r', '\u000b', '\u001b', '\ud800', '\udfff']) {
      expect(codeOf(() => openNote(TEXT.replace('answer', `ans${c}wer`) + '\n' + PETER_SIG, [peter()]))).toBe(
        'note_malformed',
      );
      expect(codeOf(() => signNote(`a${c}b\n`, [parseSignerKey(PETER_SKEY)]))).toBe('note_malformed');
    }
  });

  it(`notes over ${MAX_NOTE_BYTES} bytes -> note_malformed; at the limit they open`, () => {
    const signer = parseSignerKey(PETER_SKEY);
    const sigLineBytes = Buffer.byteLength(PETER_SIG);
    const fill = MAX_NOTE_BYTES - sigLineBytes - 2; // text ends "\n", then the blank line
    const text = 'a'.repeat(fill) + '\n';
    const atLimit = signNote(text, [signer]);
    expect(Buffer.byteLength(atLimit)).toBe(MAX_NOTE_BYTES);
    expect(openNote(atLimit, [peter()]).text).toBe(text);
    const over = 'b' + atLimit;
    expect(codeOf(() => openNote(over, [peter()]))).toBe('note_malformed');
    expect(codeOf(() => openNote(Buffer.from(over), [peter()]))).toBe('note_malformed');
    expect(codeOf(() => signNote('b' + text, [signer]))).toBe('note_malformed');
    // multi-byte characters count as bytes, not UTF-16 units
    const wide = '\u20ac'.repeat(MAX_NOTE_BYTES / 3) + '\n\n' + PETER_SIG;
    expect(wide.length).toBeLessThan(MAX_NOTE_BYTES);
    expect(codeOf(() => parseNote(wide))).toBe('note_malformed');
    // a huge note full of newlines is refused before any line splitting
    expect(codeOf(() => parseNote('\n'.repeat(8 * MAX_NOTE_BYTES)))).toBe('note_malformed');
  });

  it('non-string, non-bytes input -> note_malformed', () => {
    for (const v of [null, undefined, 42, {}, ['x']]) {
      expect(codeOf(() => parseNote(v as unknown as string))).toBe('note_malformed');
    }
  });

  it('text with blank lines and non-ASCII survives sign/open', () => {
    const signer = parseSignerKey(PETER_SKEY);
    const text = 'first\n\n\u00e9t\u00e9 \ud83d\ude00\n\n\nlast\n';
    expect(openNote(signNote(text, [signer]), [peter()]).text).toBe(text);
  });

  it('signNote with several signers verifies with each key alone', () => {
    const a = generateKeyPair('a.example');
    const b = generateKeyPair('b.example');
    const note = signNote('x\n', [parseSignerKey(a.skey), parseSignerKey(b.skey), parseSignerKey(a.skey)]);
    expect(parseNote(note).sigs.map((s) => s.name)).toEqual(['a.example', 'b.example']);
    expect(openNote(note, [parseVerifierKey(a.vkey)]).verified.map((v) => v.name)).toEqual(['a.example']);
    expect(openNote(note, [parseVerifierKey(b.vkey)]).verified.map((v) => v.name)).toEqual(['b.example']);
  });

  it('a throwing verifier counts as a bad signature, not a crash', () => {
    const v: NoteVerifier = {
      name: 'PeterNeumann',
      keyHash: 0xc74f20a3,
      verify: () => {
        throw new Error('boom');
      },
    };
    expect(codeOf(() => openNote(SIGNED, [v]))).toBe('note_invalid_signature');
  });
});
