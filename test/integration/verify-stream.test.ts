import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { canonicalize } from '../../src/core/canonical.js';
import { CHAIN_GENESIS, chainNext } from '../../src/core/chain.js';
import { formatCheckpoint, originForStream } from '../../src/core/checkpoint.js';
import { Frontier, leafHash, rootFromLeafHashes } from '../../src/core/merkle.js';
import { signNote, type NoteSigner } from '../../src/core/note.js';
import { AuditBuffer } from '../../src/sidecar/buffer/buffer.js';
import { Ingest } from '../../src/sidecar/ingest.js';
import { EMPTY_RULESET } from '../../src/sidecar/redact/index.js';
import { formatReport, verifyStream, type EvidenceRecord, type StreamBase, type VerifyKeys } from '../../src/verify/verify-stream.js';
import { HMAC_KEY, KEY_ID, makeKeys, recordObject, tempDir, type Keys } from '../helpers/sidecar-fixtures.js';

const STREAM = 'verify-stream-1';

interface Evidence {
  records: EvidenceRecord[];
  leaves: Buffer[];
  macs: Buffer[];
}

function evidence(n: number, stream = STREAM, key = HMAC_KEY): Evidence {
  const records: EvidenceRecord[] = [];
  const leaves: Buffer[] = [];
  const macs: Buffer[] = [];
  let prev = CHAIN_GENESIS;
  for (let seq = 0; seq < n; seq++) {
    const canonical = canonicalize(recordObject(stream, seq, { details: { n: seq } }));
    const leaf = leafHash(Buffer.from(canonical, 'utf8'));
    const mac = chainNext(key, prev, leaf);
    records.push({ seq, canonical, leaf, mac, keyId: KEY_ID });
    leaves.push(leaf);
    macs.push(mac);
    prev = mac;
  }
  return { records, leaves, macs };
}

function checkpoint(signer: NoteSigner, leaves: readonly Buffer[], size: number, stream = STREAM): { note: string; label: string } {
  const text = formatCheckpoint({ origin: originForStream(stream), size, root: rootFromLeafHashes(leaves.slice(0, size)), extensions: [] });
  return { note: signNote(text, [signer]), label: `checkpoint@${size}` };
}

let keys: Keys;
let vk: VerifyKeys;

beforeEach(() => {
  keys = makeKeys('verify-test');
  vk = { verifiers: [keys.verifier], hmac: new Map([[KEY_ID, HMAC_KEY]]) };
});

/** A copy of record `seq` with a changed field, still canonical and still claiming its stream and seq. */
function altered(r: EvidenceRecord): EvidenceRecord {
  const obj = JSON.parse(r.canonical) as Record<string, unknown>;
  obj.event_type = 'tool_blocked';
  return { ...r, canonical: canonicalize(obj) };
}

function withoutLeaves(recs: readonly EvidenceRecord[]): EvidenceRecord[] {
  return recs.map(({ leaf: _leaf, ...rest }) => rest);
}

function withoutMacs(recs: readonly EvidenceRecord[]): EvidenceRecord[] {
  return recs.map(({ mac: _mac, keyId: _k, ...rest }) => rest);
}

describe('verifyStream: intact evidence', () => {
  it('verifies records, chain and every checkpoint', () => {
    const ev = evidence(10);
    const cps = [checkpoint(keys.signer, ev.leaves, 4), checkpoint(keys.signer, ev.leaves, 10), checkpoint(keys.signer, ev.leaves, 7)];
    const r = verifyStream(STREAM, ev.records, cps, vk);
    expect(r).toEqual({ stream: STREAM, ok: true, records: 10, checkpoints: 3, treeSize: 10, chainChecked: true });
    expect(formatReport(r)).toMatch(/^ok {4}stream verify-stream-1: 10 records, 3 signed checkpoints, tree size 10, HMAC chain checked$/);
  });

  it('reports the chain as unchecked without the HMAC key', () => {
    const ev = evidence(5);
    const r = verifyStream(STREAM, ev.records, [checkpoint(keys.signer, ev.leaves, 5)], { verifiers: [keys.verifier], hmac: new Map() });
    expect(r.ok).toBe(true);
    expect(r.chainChecked).toBe(false);
    expect(formatReport(r)).toContain('HMAC chain not checked');
  });

  it('accepts evidence without stored leaves or macs', () => {
    const ev = evidence(6);
    const r = verifyStream(STREAM, withoutMacs(withoutLeaves(ev.records)), [checkpoint(keys.signer, ev.leaves, 6)], vk);
    expect(r.ok).toBe(true);
    expect(r.chainChecked).toBe(false);
  });

  it('accepts an empty stream, and records without any checkpoint', () => {
    expect(verifyStream(STREAM, [], [], vk).ok).toBe(true);
    const ev = evidence(3);
    expect(verifyStream(STREAM, ev.records, [], vk)).toMatchObject({ ok: true, records: 3, treeSize: 3 });
  });

  it('accepts a checkpoint with other signatures beside a known one', () => {
    const ev = evidence(3);
    const other = makeKeys('witness');
    const text = formatCheckpoint({ origin: originForStream(STREAM), size: 3, root: rootFromLeafHashes(ev.leaves), extensions: [] });
    const note = signNote(text, [other.signer, keys.signer]);
    expect(verifyStream(STREAM, ev.records, [{ note, label: 'cosigned' }], vk).ok).toBe(true);
  });

  it('takes records from any iterable (a generator)', () => {
    const ev = evidence(4);
    function* gen(): Generator<EvidenceRecord> {
      yield* ev.records;
    }
    expect(verifyStream(STREAM, gen(), [checkpoint(keys.signer, ev.leaves, 4)], vk).ok).toBe(true);
  });
});

describe('verifyStream: tampering is detected and located', () => {
  it('a changed record is leaf_mismatch at its seq when leaves are stored', () => {
    const ev = evidence(10);
    const recs = ev.records.slice();
    recs[5] = altered(recs[5]!);
    const r = verifyStream(STREAM, recs, [checkpoint(keys.signer, ev.leaves, 4), checkpoint(keys.signer, ev.leaves, 10)], vk);
    expect(r.ok).toBe(false);
    expect(r.failure).toMatchObject({ code: 'leaf_mismatch', seq: 5 });
    expect(formatReport(r)).toMatch(/^FAIL {2}stream verify-stream-1 seq 5: leaf_mismatch: /);
  });

  it('a changed record without stored leaves (and no HMAC key) is root_mismatch for its checkpoint range', () => {
    const ev = evidence(10);
    const recs = withoutLeaves(ev.records);
    recs[5] = altered(recs[5]!);
    const noKey: VerifyKeys = { verifiers: [keys.verifier], hmac: new Map() };
    const r = verifyStream(STREAM, recs, [checkpoint(keys.signer, ev.leaves, 4), checkpoint(keys.signer, ev.leaves, 10)], noKey);
    expect(r.failure).toMatchObject({ code: 'root_mismatch', seq: 4 });
    expect(r.failure!.reason).toContain('4..9');
  });

  it('a changed record without stored leaves but with the HMAC key breaks the chain at its seq', () => {
    const ev = evidence(10);
    const recs = withoutLeaves(ev.records);
    recs[5] = altered(recs[5]!);
    const r = verifyStream(STREAM, recs, [checkpoint(keys.signer, ev.leaves, 10)], vk);
    expect(r.failure).toMatchObject({ code: 'chain_broken', seq: 5 });
  });

  it('a record changed together with its stored leaf (but not its mac) breaks the chain', () => {
    const ev = evidence(6);
    const recs = ev.records.slice();
    const a = altered(recs[2]!);
    recs[2] = { ...a, leaf: leafHash(Buffer.from(a.canonical, 'utf8')) };
    expect(verifyStream(STREAM, recs, [], vk).failure).toMatchObject({ code: 'chain_broken', seq: 2 });
  });

  it('a rewrite with recomputed leaves and macs (attacker holds the HMAC key) still fails the signed root', () => {
    const ev = evidence(6);
    const recs: EvidenceRecord[] = [];
    let prev = CHAIN_GENESIS;
    for (const r0 of ev.records) {
      const r = r0.seq === 3 ? altered(r0) : r0;
      const leaf = leafHash(Buffer.from(r.canonical, 'utf8'));
      const mac = chainNext(HMAC_KEY, prev, leaf);
      recs.push({ ...r, leaf, mac });
      prev = mac;
    }
    const r = verifyStream(STREAM, recs, [checkpoint(keys.signer, ev.leaves, 2), checkpoint(keys.signer, ev.leaves, 6)], vk);
    expect(r.failure).toMatchObject({ code: 'root_mismatch', seq: 2 });
  });

  it('a missing seq is seq_gap naming the missing seq', () => {
    const ev = evidence(8);
    const recs = ev.records.filter((r) => r.seq !== 3);
    expect(verifyStream(STREAM, recs, [], vk).failure).toMatchObject({ code: 'seq_gap', seq: 3 });
    const first = ev.records.slice(1);
    expect(verifyStream(STREAM, first, [], vk).failure).toMatchObject({ code: 'seq_gap', seq: 0 });
  });

  it('a duplicate or out-of-order seq is seq_duplicate', () => {
    const ev = evidence(5);
    const dup = [...ev.records.slice(0, 3), ev.records[2]!, ...ev.records.slice(3)];
    expect(verifyStream(STREAM, dup, [], vk).failure).toMatchObject({ code: 'seq_duplicate', seq: 2 });
    const swapped = [ev.records[0]!, ev.records[1]!, ev.records[3]!, ev.records[2]!, ev.records[4]!];
    expect(verifyStream(STREAM, swapped, [], vk).failure?.code).toBe('seq_gap');
    const back = [ev.records[0]!, ev.records[1]!, ev.records[0]!];
    expect(verifyStream(STREAM, back, [], vk).failure).toMatchObject({ code: 'seq_duplicate', seq: 0 });
  });

  it('a wrong HMAC is chain_broken at its seq', () => {
    const ev = evidence(6);
    const recs = ev.records.slice();
    recs[3] = { ...recs[3]!, mac: randomBytes(32) };
    const r = verifyStream(STREAM, recs, [checkpoint(keys.signer, ev.leaves, 6)], vk);
    expect(r.failure).toMatchObject({ code: 'chain_broken', seq: 3 });
    expect(r.failure!.reason).toContain(KEY_ID);
  });

  it('the wrong HMAC key is chain_broken at seq 0', () => {
    const ev = evidence(3);
    const wrong: VerifyKeys = { verifiers: [keys.verifier], hmac: new Map([[KEY_ID, Buffer.alloc(32, 1)]]) };
    expect(verifyStream(STREAM, ev.records, [], wrong).failure).toMatchObject({ code: 'chain_broken', seq: 0 });
  });

  it('a checkpoint signed only by a key not given is key_unknown, naming that key (name and hash)', () => {
    const ev = evidence(4);
    const stranger = makeKeys('verify-test');
    const r = verifyStream(STREAM, ev.records, [checkpoint(keys.signer, ev.leaves, 2), checkpoint(stranger.signer, ev.leaves, 4)], vk);
    expect(r.ok).toBe(false);
    const id = `verify-test+${stranger.signer.keyHash.toString(16).padStart(8, '0')}`;
    expect(stranger.vkey.startsWith(`${id}+`)).toBe(true);
    expect(r.failure).toEqual({ code: 'key_unknown', needed_keys: [id], reason: `checkpoint@4: signed by ${id}, and no verifier key given is that key` });
  });

  it('a bad signature by a key that is given stays checkpoint_signature, even beside an unknown one', () => {
    const ev = evidence(4);
    const stranger = makeKeys('witness');
    const text = checkpoint(keys.signer, ev.leaves, 4).note.split('\n\n')[0]! + '\n';
    const both = signNote(text, [keys.signer, stranger.signer]);
    // flip one byte of the known key's signature (the first signature line)
    const lines = both.split('\n');
    const i = lines.findIndex((l) => l.startsWith('\u2014 '));
    const [dash, name, b64] = lines[i]!.split(' ');
    const blob = Buffer.from(b64!, 'base64');
    blob.writeUInt8(blob.readUInt8(10) ^ 1, 10);
    lines[i] = `${dash} ${name} ${blob.toString('base64')}`;
    const r = verifyStream(STREAM, ev.records, [{ note: lines.join('\n'), label: 'cp' }], vk);
    expect(r.failure?.code).toBe('checkpoint_signature');
    expect(r.failure?.needed_keys).toBeUndefined();
  });

  it('a checkpoint whose text was changed after signing is checkpoint_signature', () => {
    const ev = evidence(4);
    const cp = checkpoint(keys.signer, ev.leaves, 4);
    const forged = { note: cp.note.replace(`\n4\n`, `\n3\n`), label: 'forged' };
    expect(verifyStream(STREAM, ev.records, [forged], vk).failure?.code).toBe('checkpoint_signature');
    expect(verifyStream(STREAM, ev.records, [{ note: 'not a note', label: 'junk' }], vk).failure?.code).toBe('checkpoint_signature');
  });

  it('a checkpoint of another stream is checkpoint_origin', () => {
    const ev = evidence(3);
    const r = verifyStream(STREAM, ev.records, [checkpoint(keys.signer, ev.leaves, 3, 'other-stream')], vk);
    expect(r.failure?.code).toBe('checkpoint_origin');
  });

  it('a signed note that is not a checkpoint is checkpoint_invalid', () => {
    const ev = evidence(1);
    const note = signNote('just some text\n', [keys.signer]);
    expect(verifyStream(STREAM, ev.records, [{ note, label: 'x' }], vk).failure?.code).toBe('checkpoint_invalid');
  });

  it('a checkpoint larger than the records is records_missing (a dropped tail)', () => {
    const ev = evidence(10);
    const cps = [checkpoint(keys.signer, ev.leaves, 5), checkpoint(keys.signer, ev.leaves, 10)];
    const r = verifyStream(STREAM, ev.records.slice(0, 7), cps, vk);
    expect(r.failure).toMatchObject({ code: 'records_missing', seq: 7 });
    expect(r.treeSize).toBe(7);
    expect(verifyStream(STREAM, [], cps, vk).failure).toMatchObject({ code: 'records_missing', seq: 0 });
  });

  it('two signed checkpoints of the same size with different roots (a fork) fail', () => {
    const ev = evidence(4);
    const forkLeaves = ev.leaves.slice();
    forkLeaves[3] = leafHash(Buffer.from('{"fork":true}'));
    const r = verifyStream(STREAM, ev.records, [checkpoint(keys.signer, ev.leaves, 4), checkpoint(keys.signer, forkLeaves, 4)], vk);
    expect(r.failure).toMatchObject({ code: 'root_mismatch' });
  });

  it('a non-canonical, corrupt or misplaced record is named by seq', () => {
    const ev = evidence(4);
    const spaced = ev.records.slice();
    spaced[1] = { ...spaced[1]!, canonical: JSON.stringify(JSON.parse(spaced[1]!.canonical), null, 1) };
    expect(verifyStream(STREAM, spaced, [], vk).failure).toMatchObject({ code: 'record_not_canonical', seq: 1 });
    const corrupt = ev.records.slice();
    corrupt[2] = { ...corrupt[2]!, canonical: corrupt[2]!.canonical.slice(0, -1) };
    expect(verifyStream(STREAM, corrupt, [], vk).failure).toMatchObject({ code: 'record_corrupt', seq: 2 });
    const moved = ev.records.slice();
    const obj = JSON.parse(moved[3]!.canonical) as Record<string, unknown>;
    moved[3] = { ...moved[3]!, canonical: canonicalize({ ...obj, seq: 30 }) };
    expect(verifyStream(STREAM, moved, [], vk).failure).toMatchObject({ code: 'record_misplaced', seq: 3 });
    const otherStream = evidence(1, 'someone-else');
    expect(verifyStream(STREAM, otherStream.records, [], vk).failure).toMatchObject({ code: 'record_misplaced', seq: 0 });
  });
});

describe('verifyStream: continuing from a base (earlier records shipped or purged)', () => {
  function baseAt(ev: Evidence, k: number): StreamBase {
    const f = Frontier.empty();
    for (const l of ev.leaves.slice(0, k)) f.append(l);
    return { size: k, frontier: f, prevMac: k === 0 ? CHAIN_GENESIS : ev.macs[k - 1]! };
  }

  it('verifies the rest against old and new checkpoints', () => {
    const ev = evidence(13);
    const cps = [3, 6, 9, 13].map((n) => checkpoint(keys.signer, ev.leaves, n));
    for (const k of [0, 1, 3, 6, 7, 12, 13]) {
      const r = verifyStream(STREAM, ev.records.slice(k), cps, vk, baseAt(ev, k));
      expect(r.failure, `base ${k}`).toBeUndefined();
      expect(r).toMatchObject({ ok: true, records: 13 - k, treeSize: 13, chainChecked: k < 13 });
    }
  });

  it('a base frontier that is not the signed tree fails at the checkpoint', () => {
    const ev = evidence(8);
    const cps = [checkpoint(keys.signer, ev.leaves, 4), checkpoint(keys.signer, ev.leaves, 8)];
    const bad = baseAt(ev, 4);
    const f = Frontier.empty();
    for (let i = 0; i < 4; i++) f.append(randomBytes(32));
    const r = verifyStream(STREAM, ev.records.slice(4), cps, vk, { ...bad, frontier: f });
    expect(r.failure?.code).toBe('root_mismatch');
  });

  it('a base with the wrong chain MAC breaks the chain at the first record', () => {
    const ev = evidence(6);
    const r = verifyStream(STREAM, ev.records.slice(3), [], vk, { ...baseAt(ev, 3), prevMac: randomBytes(32) });
    expect(r.failure).toMatchObject({ code: 'chain_broken', seq: 3 });
  });

  it('records that do not start at the base size are a gap or duplicate', () => {
    const ev = evidence(6);
    expect(verifyStream(STREAM, ev.records.slice(4), [], vk, baseAt(ev, 3)).failure).toMatchObject({ code: 'seq_gap', seq: 3 });
    expect(verifyStream(STREAM, ev.records.slice(2), [], vk, baseAt(ev, 3)).failure).toMatchObject({ code: 'seq_duplicate', seq: 2 });
  });
});

describe('verifyStream over a real sidecar buffer', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => {
    tmp = tempDir('sealtrail-verify-');
  });
  afterEach(() => tmp.cleanup());

  it('verifies what Ingest wrote and AuditBuffer sealed, and catches a tampered copy', () => {
    const buffer = AuditBuffer.open(tmp.file('buffer.db'), { newStreamId: () => STREAM });
    try {
      const ingest = new Ingest(buffer, { hmacKey: HMAC_KEY, keyId: KEY_ID, ruleset: () => EMPTY_RULESET });
      let offset = 0;
      for (let c = 0; c < 5; c++) {
        const lines = Array.from({ length: 7 }, (_, i) => {
          const text = JSON.stringify({ event_type: 'agent_invocation', details: { c, i } });
          const line = { offset, length: text.length + 1, text };
          offset += line.length;
          return line;
        });
        ingest.ingest({ source: 's', path: '/p', fileKey: 'k', lines });
        while (buffer.seal(keys.signer, 4, 1e9)) {
          /* seal everything in batches of 4 */
        }
      }
      const rows = buffer.db.prepare('SELECT seq, canonical, leaf, mac, key_id FROM records ORDER BY seq').all() as Array<{
        seq: number;
        canonical: string;
        leaf: Buffer;
        mac: Buffer;
        key_id: string;
      }>;
      const recs: EvidenceRecord[] = rows.map((r) => ({ seq: r.seq, canonical: r.canonical, leaf: r.leaf, mac: r.mac, keyId: r.key_id }));
      const notes = (buffer.db.prepare('SELECT batch, checkpoint FROM batches ORDER BY batch').all() as Array<{ batch: number; checkpoint: string }>).map(
        (b) => ({ note: b.checkpoint, label: `batch ${b.batch}` }),
      );
      expect(recs).toHaveLength(35);
      expect(notes).toHaveLength(10); // 7 records per chunk sealed as 4 + 3
      const ok = verifyStream(buffer.stream, recs, notes, vk);
      expect(ok).toMatchObject({ ok: true, records: 35, checkpoints: 10, treeSize: 35, chainChecked: true });

      const tampered = recs.slice();
      tampered[17] = altered(tampered[17]!);
      expect(verifyStream(buffer.stream, tampered, notes, vk).failure).toMatchObject({ code: 'leaf_mismatch', seq: 17 });
      expect(verifyStream(buffer.stream, recs.slice(0, 30), notes, vk).failure).toMatchObject({ code: 'records_missing', seq: 30 });
    } finally {
      buffer.close();
    }
  });
});
