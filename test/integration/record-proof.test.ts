import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCollectorFromConfig, type CollectorHandle } from '../../src/collector/from-config.js';
import { defaultCollectorConfig, defaultSidecarConfig } from '../../src/config/load.js';
import { exportBundle } from '../../src/evidence/build.js';
import { generateKeyPair, parseNote, parseSignerKey, signNote } from '../../src/core/note.js';
import {
  canonicalize,
  leafHash,
  openNote,
  parseCheckpoint,
  parseVerifierKey,
  ProofCheckError,
  verifyBundle,
  verifyConsistencyProof,
  verifyRecordProof,
  type AuditItem,
  type ConsistencyProofAnswer,
  type ProofCheckCode,
  type ProofCheckOptions,
  type RecordProofResult,
} from '../../src/index.js';
import { createHmacKeyFile, createSigningKeyFiles } from '../../src/keyfiles.js';
import { createLogger } from '../../src/log.js';
import { startSidecar, type SidecarHandle } from '../../src/sidecar/sidecar.js';
import { getJson } from '../helpers/deployment.js';
import { freePort, waitFor } from '../helpers/procs.js';

/**
 * verifyRecordProof and verifyConsistencyProof (the root export) against
 * what a real collector serves: two real sidecars tail files and ship sealed
 * batches over HTTP to a real collector (SQLite store, read audit on); every
 * item of GET /v1/audit?proof=true verifies with the sidecars' verifier key
 * and the collector's own stream with the collector's; each tampering of an
 * item or a consistency answer, and each malformed member, is refused with
 * its ProofCheckError code and the member at fault, never a TypeError.
 */

const logger = createLogger('test', 'silent');
const TOKEN = 'record-proof-token-0123456789abcdef';
const COLLECTOR_STREAM = 'collector-rp';
/** Lines written to stream A in rounds; each round is waited for, so 3, 9 and 18 are checkpoint sizes. */
const ROUNDS_A = [3, 6, 9];
const ROUNDS_B = [4];

let dir: string;
let collector: CollectorHandle | undefined;
const sidecars: SidecarHandle[] = [];
let url: string;
/** the sidecars' verifier key, as the .vkey file holds it (with its newline) */
let vkey: string;
let skey: string;
let collectorVkey: string;
let streamA: string;
let streamB: string;
let itemsA: AuditItem[];
let itemsB: AuditItem[];

async function treeSizeOf(stream: string): Promise<number> {
  const { status, body } = await getJson(`${url}/v1/streams`, TOKEN);
  if (status !== 200) throw new Error(`GET /v1/streams: ${status}`);
  return (body.streams as Array<{ stream: string; tree_size: number }>).find((s) => s.stream === stream)?.tree_size ?? 0;
}

async function audit(query: string): Promise<AuditItem[]> {
  const { status, body } = await getJson(`${url}/v1/audit?${query}`, TOKEN);
  if (status !== 200) throw new Error(`GET /v1/audit: ${status} ${JSON.stringify(body)}`);
  return body.items as AuditItem[];
}

async function consistency(stream: string, from: number, to: number): Promise<ConsistencyProofAnswer> {
  const { status, body } = await getJson(`${url}/v1/streams/${encodeURIComponent(stream)}/consistency?from=${from}&to=${to}`, TOKEN);
  if (status !== 200) throw new Error(`GET consistency: ${status} ${JSON.stringify(body)}`);
  return body as ConsistencyProofAnswer;
}

async function startStream(name: string, port: number, keys: string): Promise<{ sidecar: SidecarHandle; file: string }> {
  const traces = join(dir, name, 'traces');
  mkdirSync(traces, { recursive: true });
  const cfg = defaultSidecarConfig({
    stream: { name },
    data_dir: join(dir, name, 'data'),
    sources: [{ id: 'traces', type: 'file', include: [join(traces, '*.jsonl')] }],
    redaction: { rules: [] },
    keys: { signing_key_file: join(keys, 'rp.skey'), hmac_key_file: join(keys, 'hmac.key') },
    seal: { max_interval: '50ms' },
    ship: { url: `http://127.0.0.1:${port}`, backoff_initial: '50ms', backoff_max: '500ms' },
    telemetry: { listen: `127.0.0.1:${await freePort()}` },
  });
  // Heartbeat records would move the tree sizes the rounds are waited for.
  cfg.seal.heartbeat_interval = 0;
  const sidecar = await startSidecar(cfg, { logger });
  sidecars.push(sidecar);
  return { sidecar, file: join(traces, 'agent.jsonl') };
}

/** Appends each round's lines and waits until the collector holds them, so every round ends on a checkpoint. */
async function write(file: string, stream: string, rounds: readonly number[]): Promise<void> {
  let n = 0;
  for (const count of rounds) {
    let text = '';
    for (let i = 0; i < count; i++, n++) {
      text += `${JSON.stringify({ event_type: 'tool_invoked', tool: { name: 'lookup' }, details: { n, note: 'ünïcödé ✓' } })}\n`;
    }
    appendFileSync(file, text);
    const want = n;
    await waitFor(`${stream} at tree size ${want}`, async () => (await treeSizeOf(stream)) === want, 30_000, 20);
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sealtrail-record-proof-'));
  const keys = join(dir, 'keys');
  createSigningKeyFiles(join(keys, 'rp.skey'), join(keys, 'rp.vkey'), 'rp');
  createSigningKeyFiles(join(keys, 'collector.skey'), join(keys, 'collector.vkey'), 'collector');
  createHmacKeyFile(join(keys, 'hmac.key'));
  vkey = readFileSync(join(keys, 'rp.vkey'), 'utf8');
  skey = readFileSync(join(keys, 'rp.skey'), 'utf8').trim();
  collectorVkey = readFileSync(join(keys, 'collector.vkey'), 'utf8');
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  collector = await startCollectorFromConfig(
    defaultCollectorConfig({
      listen: `127.0.0.1:${port}`,
      store: { type: 'sqlite', path: join(dir, 'collector', 'audit.db') },
      auth: { admin_tokens: [TOKEN] },
      streams: [{ match: '*', vkey_file: join(keys, 'rp.vkey') }],
      hmac_keys: [{ id: 'k1', file: join(keys, 'hmac.key') }],
      keys: { signing_key_file: join(keys, 'collector.skey'), hmac_key_file: join(keys, 'hmac.key'), hmac_key_id: 'k1' },
      read_audit: { stream: COLLECTOR_STREAM },
    }),
    logger,
  );
  const a = await startStream('rp-a', port, keys);
  const b = await startStream('rp-b', port, keys);
  streamA = a.sidecar.stream;
  streamB = b.sidecar.stream;
  await write(a.file, streamA, ROUNDS_A);
  await write(b.file, streamB, ROUNDS_B);
  itemsA = await audit(`stream=${encodeURIComponent(streamA)}&proof=true&limit=1000`);
  itemsB = await audit(`stream=${encodeURIComponent(streamB)}&proof=true&limit=1000`);
});

afterAll(async () => {
  for (const s of sidecars) await s.shutdown(Date.now() + 2000);
  await collector?.shutdown();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function opts(): ProofCheckOptions {
  return { vkeys: vkey };
}

/** The error `fn` throws, asserted to be a ProofCheckError (so never a TypeError or another class). */
function refusal(fn: () => unknown): ProofCheckError {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof ProofCheckError)) throw new Error(`expected a ProofCheckError, got ${String(err)}`, { cause: err });
    return err;
  }
  throw new Error('expected a ProofCheckError, nothing was thrown');
}

function expectRefused(fn: () => unknown, code: ProofCheckCode, member: string): ProofCheckError {
  const err = refusal(fn);
  expect({ code: err.code, member: err.member }).toEqual({ code, member });
  expect(err.message.startsWith(`${member}: `), err.message).toBe(true);
  expect(err.name).toBe('ProofCheckError');
  return err;
}

function clone(item: AuditItem): any {
  return structuredClone(item);
}

function item(seq: number, items: AuditItem[] = itemsA): AuditItem {
  const it = items.find((i) => i.seq === seq);
  if (!it) throw new Error(`no item of seq ${seq}`);
  return it;
}

function flipBase64(h: string): string {
  const b = Buffer.from(h, 'base64');
  b[0]! ^= 0x01;
  return b.toString('base64');
}

/** The checkpoint's body signed again by `signer`: same origin, size and root, another signature. */
function resigned(note: string, signerKey: string): string {
  return signNote(parseNote(note).text, [parseSignerKey(signerKey)]);
}

describe('verifyRecordProof on what a real collector serves', () => {
  it('verifies every item of stream A, each against the checkpoint of its own batch', () => {
    expect(itemsA.map((i) => i.seq)).toEqual([...Array(18).keys()]);
    const results = itemsA.map((i) => verifyRecordProof(i, opts()));
    for (const [k, r] of results.entries()) {
      expect(r).toMatchObject({ ok: true, stream: streamA, seq: k, leafHash: itemsA[k]!.leaf_hash });
      expect(r.treeSize).toBeGreaterThan(k);
      expect(r.treeSize).toBe(itemsA[k]!.proof!.tree_size);
      expect(r.signedBy).toEqual([vkey.trim().split('+').slice(0, 2).join('+')]);
    }
    // The last record of each round is covered by the round's final checkpoint.
    expect([2, 8, 17].map((s) => results[s]!.treeSize)).toEqual([3, 9, 18]);
    // The root is the signed one, read here independently of the verifier.
    const cp = parseCheckpoint(openNote(itemsA[17]!.proof!.checkpoint, [parseVerifierKey(vkey.trim())]).text);
    expect(results[17]!.root).toBe(cp.root.toString('base64'));
  });

  it('verifies stream B with the same key, an item fetched by id, and several keys at once (a rotation)', () => {
    expect(itemsB.map((i) => verifyRecordProof(i, opts()).seq)).toEqual([0, 1, 2, 3]);
    const other = generateKeyPair('rp-next').vkey;
    expect(verifyRecordProof(item(5), { vkeys: [other, vkey, parseVerifierKey(collectorVkey.trim())] }).ok).toBe(true);
    // The same key twice, as text and again as text, is one key, not an ambiguity.
    expect(verifyRecordProof(item(5), { vkeys: [vkey, vkey.trim()] }).ok).toBe(true);
  });

  it('GET /v1/audit/{id}?proof=true gives an item that verifies', async () => {
    const { status, body } = await getJson(`${url}/v1/audit/${encodeURIComponent(item(7).record.id)}?proof=true`, TOKEN);
    expect(status).toBe(200);
    expect(body.items).toHaveLength(1);
    expect(verifyRecordProof(body.items[0], opts())).toMatchObject({ ok: true, stream: streamA, seq: 7, treeSize: 9 });
  });

  it("verifies the collector's own read-audit stream with the collector's key, and refuses it with the sidecars'", async () => {
    const items = await audit(`stream=${COLLECTOR_STREAM}&proof=true&limit=1000`);
    expect(items.length).toBeGreaterThan(0);
    for (const i of items) expect(verifyRecordProof(i, { vkeys: collectorVkey }).stream).toBe(COLLECTOR_STREAM);
    expectRefused(() => verifyRecordProof(items[0], opts()), 'checkpoint_signature_invalid', 'proof.checkpoint');
  });

  describe('refuses a tampered item with the code of the check that failed', () => {
    it('a record member changed: record_mismatch', () => {
      const t = clone(item(4));
      t.record.details.n = 999;
      expectRefused(() => verifyRecordProof(t, opts()), 'record_mismatch', 'leaf_hash');
      const u = clone(item(4));
      u.record.extra = true;
      expectRefused(() => verifyRecordProof(u, opts()), 'record_mismatch', 'leaf_hash');
    });

    it('a record changed and leaf_hash recomputed to match: the proof no longer leads to the signed root', () => {
      const t = clone(item(4));
      t.record.outcome = 'success';
      t.leaf_hash = leafHash(Buffer.from(canonicalize(t.record), 'utf8')).toString('hex');
      expectRefused(() => verifyRecordProof(t, opts()), 'proof_invalid', 'proof.hashes');
    });

    it('a proof hash flipped, dropped or added: proof_invalid', () => {
      const original = item(4);
      expect(original.proof!.hashes.length).toBeGreaterThan(1);
      for (let k = 0; k < original.proof!.hashes.length; k++) {
        const t = clone(original);
        t.proof.hashes[k] = flipBase64(t.proof.hashes[k]);
        expectRefused(() => verifyRecordProof(t, opts()), 'proof_invalid', 'proof.hashes');
      }
      const dropped = clone(original);
      dropped.proof.hashes.pop();
      expectRefused(() => verifyRecordProof(dropped, opts()), 'proof_invalid', 'proof.hashes');
      const added = clone(original);
      added.proof.hashes.push(original.proof!.hashes[0]);
      expectRefused(() => verifyRecordProof(added, opts()), 'proof_invalid', 'proof.hashes');
    });

    it('a checkpoint signed by another key, or with its signature altered: checkpoint_signature_invalid', () => {
      const t = clone(item(4));
      t.proof.checkpoint = resigned(t.proof.checkpoint, generateKeyPair('rp').skey);
      const err = expectRefused(() => verifyRecordProof(t, opts()), 'checkpoint_signature_invalid', 'proof.checkpoint');
      expect(err.message).toMatch(/no signature from a known key/);
      // Both signatures present, the forger's and the real one: accepted, since a known key signed and unknown ones are ignored.
      const both = clone(item(4));
      const forged = resigned(both.proof.checkpoint, generateKeyPair('other').skey);
      both.proof.checkpoint = `${both.proof.checkpoint}${forged.slice(forged.lastIndexOf('\n\n') + 2)}`;
      expect(verifyRecordProof(both, opts()).ok).toBe(true);
      // The real key's name and hash over a signature that is not its own.
      const bad = clone(item(4));
      const sigLine = bad.proof.checkpoint.slice(bad.proof.checkpoint.lastIndexOf('\n\n') + 2, -1) as string;
      const space = sigLine.lastIndexOf(' ');
      const blob = Buffer.from(sigLine.slice(space + 1), 'base64');
      blob[blob.length - 1]! ^= 0x01;
      bad.proof.checkpoint = bad.proof.checkpoint.replace(sigLine, `${sigLine.slice(0, space + 1)}${blob.toString('base64')}`);
      const e2 = expectRefused(() => verifyRecordProof(bad, opts()), 'checkpoint_signature_invalid', 'proof.checkpoint');
      expect(e2.message).toMatch(/invalid signature/);
    });

    it("another stream's checkpoint (same key): checkpoint_origin_mismatch; relabelled as that stream: record_mismatch", () => {
      const t = clone(item(4));
      t.proof.checkpoint = item(3, itemsB).proof!.checkpoint;
      expectRefused(() => verifyRecordProof(t, opts()), 'checkpoint_origin_mismatch', 'proof.checkpoint');
      t.stream = streamB;
      expectRefused(() => verifyRecordProof(t, opts()), 'record_mismatch', 'record.stream');
    });

    it('tree_size lied about, or a later checkpoint of the same stream: proof_invalid', () => {
      const own = item(4);
      const bigger = clone(own);
      bigger.proof.tree_size = own.proof!.tree_size + 1;
      expectRefused(() => verifyRecordProof(bigger, opts()), 'proof_invalid', 'proof.tree_size');
      // A genuine, signed, later checkpoint: tree_size told consistently, but the path is for the smaller tree.
      const later = clone(own);
      later.proof.checkpoint = item(17).proof!.checkpoint;
      later.proof.tree_size = 18;
      expectRefused(() => verifyRecordProof(later, opts()), 'proof_invalid', 'proof.hashes');
      // A record proved against a checkpoint too small to hold it.
      const early = clone(item(10));
      early.proof.checkpoint = item(2).proof!.checkpoint;
      early.proof.tree_size = 3;
      expectRefused(() => verifyRecordProof(early, opts()), 'proof_invalid', 'seq');
    });

    it('leaf_index or seq changed: proof_invalid or record_mismatch', () => {
      const t = clone(item(4));
      t.proof.leaf_index = 5;
      expectRefused(() => verifyRecordProof(t, opts()), 'proof_invalid', 'proof.leaf_index');
      const s = clone(item(4));
      s.seq = 5;
      s.proof.leaf_index = 5;
      expectRefused(() => verifyRecordProof(s, opts()), 'record_mismatch', 'record.seq');
    });

    it('a note the real key signed that is no C2SP checkpoint, or has extension lines: checkpoint_malformed', () => {
      const t = clone(item(4));
      t.proof.checkpoint = signNote('hello\n', [parseSignerKey(skey)]);
      expectRefused(() => verifyRecordProof(t, opts()), 'checkpoint_malformed', 'proof.checkpoint');
      const ext = clone(item(4));
      ext.proof.checkpoint = signNote(`${parseNote(ext.proof.checkpoint).text}extra line\n`, [parseSignerKey(skey)]);
      expectRefused(() => verifyRecordProof(ext, opts()), 'checkpoint_malformed', 'proof.checkpoint');
    });
  });

  describe('refuses malformed input with proof_malformed naming the member', () => {
    const hash = Buffer.alloc(32, 7).toString('base64');
    const cases: Array<[string, (t: any) => unknown, string]> = [
      ['null item', () => null, 'item'],
      ['array item', () => [], 'item'],
      ['string item', () => 'item', 'item'],
      ['stream a number', (t) => ((t.stream = 7), t), 'stream'],
      ['stream with a slash', (t) => ((t.stream = 'a/b'), t), 'stream'],
      ['stream missing', (t) => (delete t.stream, t), 'stream'],
      ['seq a string', (t) => ((t.seq = '4'), t), 'seq'],
      ['seq negative', (t) => ((t.seq = -1), t), 'seq'],
      ['seq fractional', (t) => ((t.seq = 1.5), t), 'seq'],
      ['seq beyond 2^53', (t) => ((t.seq = 2 ** 53), t), 'seq'],
      ['record missing', (t) => (delete t.record, t), 'record'],
      ['record an array', (t) => ((t.record = [1]), t), 'record'],
      ['record holding a lone surrogate', (t) => ((t.record.details.note = '\ud800'), t), 'record'],
      ['leaf_hash uppercase', (t) => ((t.leaf_hash = t.leaf_hash.toUpperCase()), t), 'leaf_hash'],
      ['leaf_hash short', (t) => ((t.leaf_hash = t.leaf_hash.slice(2)), t), 'leaf_hash'],
      ['leaf_hash a number', (t) => ((t.leaf_hash = 0), t), 'leaf_hash'],
      ['proof missing', (t) => (delete t.proof, t), 'proof'],
      ['proof a string', (t) => ((t.proof = 'x'), t), 'proof'],
      ['tree_size a string', (t) => ((t.proof.tree_size = String(t.proof.tree_size)), t), 'proof.tree_size'],
      ['leaf_index null', (t) => ((t.proof.leaf_index = null), t), 'proof.leaf_index'],
      ['hashes a string', (t) => ((t.proof.hashes = hash), t), 'proof.hashes'],
      ['hashes missing', (t) => (delete t.proof.hashes, t), 'proof.hashes'],
      ['a hash a number', (t) => ((t.proof.hashes = [hash, 1]), t), 'proof.hashes[1]'],
      ['a hash not base64', (t) => ((t.proof.hashes = ['!'.repeat(43) + '=']), t), 'proof.hashes[0]'],
      ['a hash of 31 bytes', (t) => ((t.proof.hashes = [Buffer.alloc(31).toString('base64')]), t), 'proof.hashes[0]'],
      ['a hash of 33 bytes', (t) => ((t.proof.hashes = [Buffer.alloc(33).toString('base64')]), t), 'proof.hashes[0]'],
      ['a hash in base64url', (t) => ((t.proof.hashes = [Buffer.alloc(32, 0xfb).toString('base64url')]), t), 'proof.hashes[0]'],
      ['a hash with non-zero padding bits', (t) => ((t.proof.hashes = [`${hash.slice(0, 42)}B=`]), t), 'proof.hashes[0]'],
      ['65 hashes', (t) => ((t.proof.hashes = Array(65).fill(hash)), t), 'proof.hashes'],
      ['a million hashes', (t) => ((t.proof.hashes = Array(1_000_000).fill(hash)), t), 'proof.hashes'],
      ['checkpoint a number', (t) => ((t.proof.checkpoint = 42), t), 'proof.checkpoint'],
      ['inherited members only', (t) => Object.create(t), 'stream'],
    ];
    it.each(cases)('%s', (_name, mutate, member) => {
      expectRefused(() => verifyRecordProof(mutate(clone(item(4))), opts()), 'proof_malformed', member);
    });

    it('a checkpoint that is not a signed note: checkpoint_malformed', () => {
      for (const note of ['garbage', '', 'a\n\n', 'sealtrail/x\n1\nAAAA\n\n\u2014 rp AAAA\n', 'x'.repeat(2 * 1024 * 1024)]) {
        const t = clone(item(4));
        t.proof.checkpoint = note;
        expectRefused(() => verifyRecordProof(t, opts()), 'checkpoint_malformed', 'proof.checkpoint');
      }
    });

    it('bad options: verifier_key_invalid naming the option', () => {
      const it4 = item(4);
      expectRefused(() => verifyRecordProof(it4, null as unknown as ProofCheckOptions), 'verifier_key_invalid', 'options');
      expectRefused(() => verifyRecordProof(it4, {} as ProofCheckOptions), 'verifier_key_invalid', 'vkeys');
      expectRefused(() => verifyRecordProof(it4, { vkeys: [] }), 'verifier_key_invalid', 'vkeys');
      expectRefused(() => verifyRecordProof(it4, { vkeys: 'garbage' }), 'verifier_key_invalid', 'vkeys');
      expectRefused(() => verifyRecordProof(it4, { vkeys: [vkey, 'x+00000000+AAAA'] }), 'verifier_key_invalid', 'vkeys[1]');
      expectRefused(() => verifyRecordProof(it4, { vkeys: [vkey, 42 as unknown as string] }), 'verifier_key_invalid', 'vkeys[1]');
      // A signer key where the verifier key belongs.
      expectRefused(() => verifyRecordProof(it4, { vkeys: skey }), 'verifier_key_invalid', 'vkeys');
    });
  });
});

describe('verifyConsistencyProof on what a real collector serves', () => {
  it('proves the tree of a record grew into the head: roots chain with the record proofs', async () => {
    const r2: RecordProofResult = verifyRecordProof(item(2), opts());
    const r17 = verifyRecordProof(item(17), opts());
    const answer = await consistency(streamA, 3, 18);
    const res = verifyConsistencyProof(answer, opts());
    expect(res).toMatchObject({ ok: true, stream: streamA, from: { treeSize: 3, root: r2.root }, to: { treeSize: 18, root: r17.root } });
    for (const [from, to] of [[9, 18], [3, 9], [18, 18]] as const) {
      expect(verifyConsistencyProof(await consistency(streamA, from, to), opts()).to.treeSize).toBe(to);
    }
  });

  it('refuses a tampered answer with the code of the check that failed', async () => {
    const answer = await consistency(streamA, 3, 18);
    const other = await consistency(streamB, 4, 4);
    const t = (f: (a: any) => void): any => {
      const c = structuredClone(answer) as any;
      f(c);
      return c;
    };
    expect(answer.hashes.length).toBeGreaterThan(0);
    expectRefused(() => verifyConsistencyProof(t((a) => (a.hashes[0] = flipBase64(a.hashes[0]))), opts()), 'proof_invalid', 'hashes');
    expectRefused(() => verifyConsistencyProof(t((a) => a.hashes.pop()), opts()), 'proof_invalid', 'hashes');
    expectRefused(() => verifyConsistencyProof(t((a) => (a.from = 4)), opts()), 'proof_invalid', 'from');
    expectRefused(() => verifyConsistencyProof(t((a) => (a.to = 17)), opts()), 'proof_invalid', 'to');
    // Older and newer swapped, sizes told consistently.
    expectRefused(
      () => verifyConsistencyProof(t((a) => ([a.from, a.to, a.from_checkpoint, a.to_checkpoint] = [a.to, a.from, a.to_checkpoint, a.from_checkpoint])), opts()),
      'proof_invalid',
      'from',
    );
    expectRefused(() => verifyConsistencyProof(t((a) => (a.from_checkpoint = other.to_checkpoint)), opts()), 'checkpoint_origin_mismatch', 'from_checkpoint');
    expectRefused(
      () => verifyConsistencyProof(t((a) => (a.to_checkpoint = resigned(a.to_checkpoint, generateKeyPair('rp').skey))), opts()),
      'checkpoint_signature_invalid',
      'to_checkpoint',
    );
    expectRefused(() => verifyConsistencyProof(t((a) => (a.hashes = [1])), opts()), 'proof_malformed', 'hashes[0]');
    expectRefused(() => verifyConsistencyProof(t((a) => (a.stream = null)), opts()), 'proof_malformed', 'stream');
    expectRefused(() => verifyConsistencyProof(t((a) => delete a.to_checkpoint), opts()), 'proof_malformed', 'to_checkpoint');
    expectRefused(() => verifyConsistencyProof([], opts()), 'proof_malformed', 'answer');
  });
});

describe('verifyBundle (root export) on a bundle exported from the same collector', () => {
  it('verifies with the stream key trusted, and names the failure with another key', async () => {
    const bundle = join(dir, 'bundle');
    const key = vkey.trim();
    await exportBundle({ url, token: TOKEN, query: { stream: streamA }, keys: [{ vkey: key, verifier: parseVerifierKey(key) }], dir: bundle });
    const ok = verifyBundle(bundle, { trusted: [parseVerifierKey(key)] });
    expect(ok).toMatchObject({ ok: true, records: 18, streams: [streamA], keySource: 'trusted' });
    const bad = verifyBundle(bundle, { trusted: [parseVerifierKey(generateKeyPair('rp').vkey)] });
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.failure.reason).toMatch(/checkpoint does not verify/);
  });
});
