import { describe, it, expect } from 'vitest';
import { formatCheckpoint, originForStream, parseCheckpoint, type Checkpoint } from '../../src/core/checkpoint.js';
import { generateKeyPair, openNote, parseNote, parseSignerKey, parseVerifierKey, signNote } from '../../src/core/note.js';
import { Frontier, leafHash } from '../../src/core/merkle.js';
import { NoteError } from '../../src/core/errors.js';
import { codeOf as codeOfError } from '../helpers/errors.js';

const codeOf = (fn: () => unknown): string | undefined => codeOfError(fn, NoteError);

// C2SP/C2SP tlog-checkpoint.md example.
const C2SP_EXAMPLE =
  'example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n' +
  '\u2014 example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n';

// sigsum/sigsum-go pkg/checkpoint/checkpoint_test.go TestGoSumDBCheckpoint:
// "Retrieved from https://sum.golang.org/latest, 2024-09-23", with the
// checksum database key from golang/go src/cmd/go/internal/modfetch/key.go.
const SUMDB_CHECKPOINT =
  'go.sum database tree\n30055305\nmXfgRcJ0bG0j3CPdKwgGWtUzBUbX67saZGRmFuJGGsM=\n\n' +
  '\u2014 sum.golang.org Az3grpgEild5qw7+5dtV13Kf1C2Xurm8q4fhdxvcsDHnqNTaxL2AFjBY+2TyGKevucFcAAlWFJJYle3EJlDCrQ+y3A8=\n';
const SUMDB_VKEY = 'sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8';

// sigsum/sigsum-go pkg/checkpoint/checkpoint_test.go validCheckpointASCII,
// signed with crypto.PrivateKey{17} (Ed25519 seed 0x11 followed by 31 zeros).
const SIGSUM_ORIGIN = 'sigsum.org/v1/tree/e796172b92befd62d9dc67e41c2f5bc9d3100a3023b20b1ca40288dd1c679e69';
const SIGSUM_CHECKPOINT =
  `${SIGSUM_ORIGIN}\n10\nHA5HAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n` +
  `\u2014 ${SIGSUM_ORIGIN} gJ2ho0n8F8olcerUF1FFdv235A/5as/coWrpLrtE7ovMeP5whgwouYExowG/lTznxu6OUGjjt5yJQ6bXtTcf718MqAQ=\n`;

// trillian-tessera internal/parse/parse_test.go TestCheckpointUnsafe body.
const TESSERA_ROOT = 'qINS1GRFhWHwdkUeqLEoP4yEMkTBBzxBkGwGQlVlVcs=';

describe('published checkpoints', () => {
  it('C2SP tlog-checkpoint example parses', () => {
    const { text, sigs } = parseNote(C2SP_EXAMPLE);
    const cp = parseCheckpoint(text);
    expect(cp.origin).toBe('example.com/behind-the-sofa');
    expect(cp.size).toBe(20852163);
    expect(cp.root.toString('base64')).toBe('CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=');
    expect(cp.extensions).toEqual([]);
    expect(formatCheckpoint(cp)).toBe(text);
    expect(sigs[0]!.name).toBe(cp.origin);
    // Its key is not published: the note is well-formed but unverified.
    expect(codeOf(() => openNote(C2SP_EXAMPLE, []))).toBe('note_unverified');
  });

  it('a real sum.golang.org checkpoint verifies with the published Go checksum database key', () => {
    const { text, verified } = openNote(SUMDB_CHECKPOINT, [parseVerifierKey(SUMDB_VKEY)]);
    expect(verified).toEqual([{ name: 'sum.golang.org', keyHash: 0x033de0ae }]);
    const cp = parseCheckpoint(text);
    expect(cp).toEqual({
      origin: 'go.sum database tree',
      size: 30055305,
      root: Buffer.from('mXfgRcJ0bG0j3CPdKwgGWtUzBUbX67saZGRmFuJGGsM=', 'base64'),
      extensions: [],
    });
    expect(formatCheckpoint(cp)).toBe(text);
    // any change to the checkpoint breaks the signature
    const tampered = SUMDB_CHECKPOINT.replace('30055305', '30055306');
    expect(codeOf(() => openNote(tampered, [parseVerifierKey(SUMDB_VKEY)]))).toBe('note_invalid_signature');
  });

  it('sigsum-go checkpoint: our formatCheckpoint + signNote reproduce it byte for byte', () => {
    const published = parseNote(SIGSUM_CHECKPOINT);
    const keyHash = published.sigs[0]!.keyHash;
    const seed = Buffer.alloc(32);
    seed[0] = 17;
    // The key ID comes from the published line; parseSignerKey re-derives it
    // from the seed and refuses a mismatch, so this also checks our key hash.
    const skey = `PRIVATE+KEY+${SIGSUM_ORIGIN}+${keyHash.toString(16).padStart(8, '0')}+${Buffer.concat([
      Buffer.from([1]),
      seed,
    ]).toString('base64')}`;
    const text = formatCheckpoint({
      origin: SIGSUM_ORIGIN,
      size: 10,
      root: Buffer.concat([Buffer.from([28, 14, 71]), Buffer.alloc(29)]),
      extensions: [],
    });
    expect(text).toBe(published.text);
    expect(signNote(text, [parseSignerKey(skey)])).toBe(SIGSUM_CHECKPOINT);
  });

  it('trillian-tessera parse cases', () => {
    expect(parseCheckpoint(`original.example.com\n42\n${TESSERA_ROOT}\n`)).toEqual({
      origin: 'original.example.com',
      size: 42,
      root: Buffer.from(TESSERA_ROOT, 'base64'),
      extensions: [],
    });
    expect(codeOf(() => parseCheckpoint(`original.example.com\n-42\n${TESSERA_ROOT}\n`))).toBe('checkpoint_invalid');
    expect(codeOf(() => parseCheckpoint('original.example.com\n42\nthisisnotright\n'))).toBe('checkpoint_invalid');
    expect(codeOf(() => parseCheckpoint(`42\n${TESSERA_ROOT}\n`))).toBe('checkpoint_invalid');
    // tessera's unsafe parser tolerates an empty origin; C2SP says it MUST be non-empty.
    expect(codeOf(() => parseCheckpoint(`\n42\n${TESSERA_ROOT}\n`))).toBe('checkpoint_invalid');
  });
});

describe('format/parse', () => {
  const root = Buffer.alloc(32, 7);

  it('originForStream', () => {
    expect(originForStream('pod-7f9c')).toBe('sealtrail/pod-7f9c');
  });

  it('roundtrips with extension lines', () => {
    const cp: Checkpoint = { origin: 'sealtrail/s1', size: 5, root, extensions: ['ext one', 'ext\u00e9two'] };
    const text = formatCheckpoint(cp);
    expect(text).toBe(`sealtrail/s1\n5\n${root.toString('base64')}\next one\next\u00e9two\n`);
    expect(parseCheckpoint(text)).toEqual(cp);
  });

  it('sizes: 0, 2^53-1 accepted; leading zeros, signs, spaces, 2^53 refused', () => {
    const line = (s: string): string => `o\n${s}\n${root.toString('base64')}\n`;
    expect(parseCheckpoint(line('0')).size).toBe(0);
    expect(parseCheckpoint(line('9007199254740991')).size).toBe(Number.MAX_SAFE_INTEGER);
    for (const s of ['00', '01', '+1', '-0', ' 1', '1 ', '1.0', '1e3', '0x10', '9007199254740992', '99999999999999999999', '', '\u0661']) {
      expect(codeOf(() => parseCheckpoint(line(s))), JSON.stringify(s)).toBe('checkpoint_invalid');
    }
    for (const size of [-1, 1.5, NaN, Infinity, 2 ** 53]) {
      expect(codeOf(() => formatCheckpoint({ origin: 'o', size, root, extensions: [] }))).toBe('checkpoint_invalid');
    }
  });

  it('root must be standard, canonical base64 of exactly 32 bytes', () => {
    const b64 = root.toString('base64');
    const line = (r: string): string => `o\n1\n${r}\n`;
    for (const r of [
      Buffer.alloc(31).toString('base64'),
      Buffer.alloc(33).toString('base64'),
      b64.slice(0, -1),
      b64.replace('=', ''),
      b64.replace(/\+/g, '-').replace(/\//g, '_').replace('Bw', '-_'), // URL alphabet
      'BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwd=', // non-zero padding bits
      ` ${b64}`,
      '',
    ]) {
      expect(codeOf(() => parseCheckpoint(line(r))), r).toBe('checkpoint_invalid');
    }
    for (const bad of [Buffer.alloc(31), Buffer.alloc(33), 'x' as unknown as Buffer]) {
      expect(codeOf(() => formatCheckpoint({ origin: 'o', size: 1, root: bad, extensions: [] }))).toBe(
        'checkpoint_invalid',
      );
    }
  });

  it('refuses missing lines, empty lines, no final newline, control characters', () => {
    const b64 = root.toString('base64');
    const bad = [
      '',
      '\n',
      'o\n1\n',
      `o\n1\n${b64}`,
      `o\n1\n${b64}\n\n`,
      `o\n1\n${b64}\n\next\n`,
      `o\n1\n${b64}\r\n`,
      `o\r\n1\n${b64}\n`,
      `o\u0000\n1\n${b64}\n`,
      `o\ud800\n1\n${b64}\n`,
      `o\n1\n${b64}\nex\tt\n`,
    ];
    for (const t of bad) expect(codeOf(() => parseCheckpoint(t)), JSON.stringify(t)).toBe('checkpoint_invalid');
    expect(codeOf(() => parseCheckpoint(42 as unknown as string))).toBe('checkpoint_invalid');
  });

  it('formatCheckpoint refuses origins/extensions that would break the note', () => {
    for (const origin of ['', 'a\nb', 'a\rb', 'a\u0000', '\udc00']) {
      expect(codeOf(() => formatCheckpoint({ origin, size: 1, root, extensions: [] }))).toBe('checkpoint_invalid');
    }
    for (const ext of ['', 'a\nb', '\t']) {
      expect(codeOf(() => formatCheckpoint({ origin: 'o', size: 1, root, extensions: [ext] }))).toBe(
        'checkpoint_invalid',
      );
    }
  });
});

describe('end to end: frontier root -> checkpoint -> signed note -> verify', () => {
  it('signs and re-opens a sealtrail checkpoint', () => {
    const f = Frontier.empty();
    for (let i = 0; i < 10; i++) f.append(leafHash(Buffer.from(`{"seq":${i}}`)));
    const origin = originForStream('pod-a');
    const { skey, vkey } = generateKeyPair(origin);
    const text = formatCheckpoint({ origin, size: f.size, root: f.root(), extensions: [] });
    const note = signNote(text, [parseSignerKey(skey)]);
    const opened = openNote(note, [parseVerifierKey(vkey)]);
    const cp = parseCheckpoint(opened.text);
    expect(cp.origin).toBe(origin);
    expect(cp.size).toBe(10);
    expect(cp.root.equals(f.root())).toBe(true);
    expect(opened.verified[0]!.name).toBe(origin);
  });
});
