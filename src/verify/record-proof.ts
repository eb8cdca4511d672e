/**
 * Checks, in the reader's own process, the proofs the collector's query API
 * hands out (docs/proofs.md): one item of `GET /v1/audit?proof=true` or
 * `GET /v1/audit/{id}?proof=true`, and the answer of
 * `GET /v1/streams/{stream}/consistency`.
 *
 * Contract:
 * - Input is the answer as JSON.parse made it (`unknown`); nothing in it is
 *   trusted but what the caller's verifier keys signed. Tree size and root
 *   come from the signed checkpoint only; a `tree_size`, `from` or `to` in
 *   the JSON that differs from the signed one is a failure, never a hint.
 * - Success returns a result (`ok: true` and what was proved); every failure
 *   throws a ProofCheckError whose `code` says which check failed and whose
 *   `member` names the place in the input (or in the options) at fault.
 *   Malformed input never surfaces as a TypeError or RangeError.
 * - Messages name members, sizes and key names, never record content.
 * - Pure: core only (no I/O, no native addon), so it loads with the root
 *   export `import … from 'sealtrail'`.
 */
import { canonicalize } from '../core/canonical.js';
import { originForStream, parseCheckpoint, type Checkpoint } from '../core/checkpoint.js';
import type { ProofCheckCode } from '../core/error-codes.js';
import { CanonicalError, NoteError, SealtrailError } from '../core/errors.js';
import { HASH_SIZE, hashFromBase64, leafHash, verifyConsistency, verifyInclusion } from '../core/merkle.js';
import { openNote, parseVerifierKey, type NoteVerifier } from '../core/note.js';
import { isPlainObject } from '../core/plain-object.js';
import type { AuditRecord } from '../core/types.js';
import { STREAM_ID } from '../core/wire-ids.js';

/**
 * Why a proof answer does not verify:
 * - `proof_malformed`: a member is missing or not of the documented type or
 *   encoding (base64 of 32 bytes, 64 lowercase hex digits, a non-negative
 *   integer, at most 64 hashes), or the record is not canonicalisable JSON;
 * - `verifier_key_invalid`: the options' `vkeys` (the caller's, not the
 *   answer's fault);
 * - `checkpoint_malformed`: a checkpoint is not a signed note holding a
 *   C2SP checkpoint without extension lines;
 * - `checkpoint_signature_invalid`: no given key signed the checkpoint, or a
 *   signature by a given key is bad;
 * - `checkpoint_origin_mismatch`: the checkpoint is another stream's;
 * - `record_mismatch`: `leaf_hash` is not the hash of the record's canonical
 *   bytes, or the record names another stream or seq than the item;
 * - `proof_invalid`: the proof does not lead to the signed root, or the
 *   item's sizes and index are not the signed ones.
 */
export class ProofCheckError extends SealtrailError<ProofCheckCode> {
  /** path of the member at fault (`proof.hashes[2]`, `vkeys[1]`); never a value */
  readonly member: string | undefined;
  constructor(code: ProofCheckCode, message: string, member?: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.member = member;
  }
}

/** A stream's verifier key: C2SP vkey text (a `.vkey` file's content) or parsed once with parseVerifierKey. */
export type VerifierKeyInput = string | NoteVerifier;

export interface ProofCheckOptions {
  /**
   * The stream's verifier key, or several (a rotated key, keys of several
   * streams): the checkpoint must be signed by at least one of them, and
   * every signature it carries by one of them must verify.
   */
  vkeys: VerifierKeyInput | readonly VerifierKeyInput[];
}

/** `proof` of an item of `GET /v1/audit?proof=true`. */
export interface InclusionProofAnswer {
  tree_size: number;
  leaf_index: number;
  /** base64, RFC 9162 order (deepest sibling first) */
  hashes: string[];
  /** signed-note text of the checkpoint of the record's batch */
  checkpoint: string;
}

/** One item of `GET /v1/audit` (docs/proofs.md); `proof` only with `proof=true`. */
export interface AuditItem {
  record: AuditRecord;
  stream: string;
  seq: number;
  batch: number;
  /** hex SHA-256(0x00 || canonical record bytes) */
  leaf_hash: string;
  mac: string;
  key_id: string;
  proof?: InclusionProofAnswer;
}

/** The answer of `GET /v1/streams/{stream}/consistency?from=F&to=T`. */
export interface ConsistencyProofAnswer {
  stream: string;
  from: number;
  to: number;
  hashes: string[];
  from_checkpoint: string;
  to_checkpoint: string;
}

/** A checkpoint whose signature verified: what it signs. */
export interface SignedTree {
  treeSize: number;
  /** base64 Merkle root, as in the checkpoint */
  root: string;
  /** `<name>+<hash>` of each given key that signed it */
  signedBy: string[];
}

export interface RecordProofResult extends SignedTree {
  ok: true;
  stream: string;
  seq: number;
  /** hex leaf hash of the record's canonical bytes */
  leafHash: string;
}

export interface ConsistencyProofResult {
  ok: true;
  stream: string;
  from: SignedTree;
  to: SignedTree;
}

/** RFC 9162 proofs need one hash per tree level: 2^53 leaves need at most 53 (core/merkle.ts refuses beyond 64). */
const MAX_PROOF_HASHES = 64;
const HEX_HASH = /^[0-9a-f]{64}$/;

function fail(code: ProofCheckCode, member: string | undefined, what: string, cause?: unknown): never {
  throw new ProofCheckError(code, member === undefined ? what : `${member}: ${what}`, member, cause === undefined ? undefined : { cause });
}

function malformed(member: string, what: string): never {
  return fail('proof_malformed', member, what);
}

/** Own members only: an inherited `__proto__` or Object.prototype member is not part of the answer. */
function get(o: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(o, key) ? o[key] : undefined;
}

function object(v: unknown, member: string): Record<string, unknown> {
  if (!isPlainObject(v)) malformed(member, v === undefined ? 'is missing' : 'is not a JSON object');
  return v;
}

function count(v: unknown, member: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    malformed(member, v === undefined ? 'is missing' : 'is not a non-negative integer');
  }
  return v;
}

function text(v: unknown, member: string): string {
  if (typeof v !== 'string') malformed(member, v === undefined ? 'is missing' : 'is not a string');
  return v;
}

function streamId(v: unknown, member: string): string {
  if (!STREAM_ID.test(text(v, member))) malformed(member, 'is not a stream id');
  return v as string;
}

function hashList(v: unknown, member: string): Buffer[] {
  if (!Array.isArray(v)) malformed(member, v === undefined ? 'is missing' : 'is not a list');
  // Checked before any element is decoded, so a huge list costs nothing.
  if (v.length > MAX_PROOF_HASHES) malformed(member, `has ${v.length} hashes, more than the ${MAX_PROOF_HASHES} any proof needs`);
  return v.map((h, i) => hashFromBase64(h) ?? malformed(`${member}[${i}]`, `is not the strict base64 of ${HASH_SIZE} bytes`));
}

function isVerifier(v: unknown): v is NoteVerifier {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Partial<NoteVerifier>;
  return typeof o.name === 'string' && typeof o.keyHash === 'number' && Number.isInteger(o.keyHash) && typeof o.verify === 'function';
}

function verifiersOf(opts: unknown): NoteVerifier[] {
  if (!isPlainObject(opts)) fail('verifier_key_invalid', 'options', 'must be an object with vkeys');
  const raw = get(opts, 'vkeys');
  const list: readonly unknown[] = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
  if (list.length === 0) fail('verifier_key_invalid', 'vkeys', "is missing or empty: give the stream's verifier key");
  const out: NoteVerifier[] = [];
  // The same key given twice (text or object) would make openNote refuse it as ambiguous.
  const seen = new Set<unknown>();
  list.forEach((k, i) => {
    const member = Array.isArray(raw) ? `vkeys[${i}]` : 'vkeys';
    if (typeof k === 'string') {
      // A .vkey file ends with a newline; a key's name and parts hold no whitespace, so trimming is unambiguous.
      const t = k.trim();
      if (seen.has(t)) return;
      seen.add(t);
      try {
        out.push(parseVerifierKey(t));
      } catch (err) {
        if (!(err instanceof NoteError)) throw err;
        fail('verifier_key_invalid', member, `is not a verifier key (${err.message})`, err);
      }
    } else if (isVerifier(k)) {
      if (seen.has(k)) return;
      seen.add(k);
      out.push(k);
    } else {
      fail('verifier_key_invalid', member, 'is neither verifier key text nor a key from parseVerifierKey');
    }
  });
  return out;
}

function keyName(v: { name: string; keyHash: number }): string {
  return `${v.name}+${v.keyHash.toString(16).padStart(8, '0')}`;
}

/** Opens a signed checkpoint of `stream`: signature by a given key, C2SP body, the stream's origin. */
function openCheckpoint(note: unknown, member: string, stream: string, verifiers: NoteVerifier[]): Checkpoint & { signedBy: string[] } {
  const noteText = text(note, member);
  let opened: ReturnType<typeof openNote>;
  try {
    opened = openNote(noteText, verifiers);
  } catch (err) {
    if (!(err instanceof NoteError)) throw err;
    if (err.code === 'note_malformed') fail('checkpoint_malformed', member, `is not a signed note (${err.message})`, err);
    // Two different keys under one name and key hash: the caller's key list, not the answer, is at fault.
    if (err.code === 'note_ambiguous_key') fail('verifier_key_invalid', 'vkeys', err.message, err);
    fail('checkpoint_signature_invalid', member, `does not verify with the given keys (${err.message})`, err);
  }
  let cp: Checkpoint;
  try {
    cp = parseCheckpoint(opened.text);
  } catch (err) {
    if (!(err instanceof NoteError)) throw err;
    fail('checkpoint_malformed', member, `is not a checkpoint (${err.message})`, err);
  }
  // Sealtrail signs none: refusing them keeps one reading of what was signed.
  if (cp.extensions.length !== 0) fail('checkpoint_malformed', member, 'has extension lines');
  if (cp.origin !== originForStream(stream)) {
    fail('checkpoint_origin_mismatch', member, `is signed for another stream, not ${originForStream(stream)}`);
  }
  return { ...cp, signedBy: opened.verified.map(keyName) };
}

function signedTree(cp: Checkpoint & { signedBy: string[] }): SignedTree {
  return { treeSize: cp.size, root: cp.root.toString('base64'), signedBy: cp.signedBy };
}

/**
 * Verifies one item of `GET /v1/audit?proof=true` (or `/v1/audit/{id}?proof=true`):
 * the checkpoint's signature by one of `opts.vkeys`, its origin (the item's
 * stream), the leaf hash of `canonicalize(record)`, that the record names the
 * item's stream and seq, and the RFC 9162 inclusion proof of that leaf at
 * index seq in the tree of the checkpoint's signed size and root.
 * Throws ProofCheckError when any of that fails.
 */
export function verifyRecordProof(item: unknown, opts: ProofCheckOptions): RecordProofResult {
  const verifiers = verifiersOf(opts);
  const it = object(item, 'item');
  const stream = streamId(get(it, 'stream'), 'stream');
  const seq = count(get(it, 'seq'), 'seq');
  const record = object(get(it, 'record'), 'record');
  const leafHex = text(get(it, 'leaf_hash'), 'leaf_hash');
  if (!HEX_HASH.test(leafHex)) malformed('leaf_hash', `is not ${HASH_SIZE * 2} lowercase hex digits`);
  const rawProof = get(it, 'proof');
  if (rawProof === undefined) malformed('proof', 'is missing (ask with proof=true)');
  const proof = object(rawProof, 'proof');
  const treeSize = count(get(proof, 'tree_size'), 'proof.tree_size');
  const leafIndex = count(get(proof, 'leaf_index'), 'proof.leaf_index');
  const hashes = hashList(get(proof, 'hashes'), 'proof.hashes');

  const cp = openCheckpoint(get(proof, 'checkpoint'), 'proof.checkpoint', stream, verifiers);

  let canonical: string;
  try {
    canonical = canonicalize(record);
  } catch (err) {
    if (!(err instanceof CanonicalError)) throw err;
    fail('proof_malformed', 'record', `cannot be canonicalised (${err.message})`, err);
  }
  const leaf = leafHash(Buffer.from(canonical, 'utf8'));
  if (leaf.toString('hex') !== leafHex) fail('record_mismatch', 'leaf_hash', "is not the hash of the record's canonical bytes");
  // The leaf binds the record's own stream and seq; the item's copies are only labels until they agree.
  if (get(record, 'stream') !== stream) fail('record_mismatch', 'record.stream', "is not the item's stream");
  if (get(record, 'seq') !== seq) fail('record_mismatch', 'record.seq', "is not the item's seq");

  if (leafIndex !== seq) fail('proof_invalid', 'proof.leaf_index', `${leafIndex} is not the record's seq ${seq}`);
  if (treeSize !== cp.size) {
    fail('proof_invalid', 'proof.tree_size', `${treeSize} is not the signed checkpoint's tree size ${cp.size}`);
  }
  if (seq >= cp.size) fail('proof_invalid', 'seq', `${seq} is not inside the signed tree of size ${cp.size}`);
  if (!verifyInclusion(leaf, seq, cp.size, hashes, cp.root)) {
    fail('proof_invalid', 'proof.hashes', `do not lead from the record's leaf to the signed root of tree size ${cp.size}`);
  }
  return { ok: true, stream, seq, leafHash: leafHex, ...signedTree(cp) };
}

/**
 * Verifies the answer of `GET /v1/streams/{stream}/consistency`: both
 * checkpoints signed by one of `opts.vkeys` for that stream, `from` and `to`
 * their signed tree sizes, and the RFC 9162 consistency proof between their
 * signed roots (the newer tree extends the older one).
 * Throws ProofCheckError when any of that fails.
 */
export function verifyConsistencyProof(answer: unknown, opts: ProofCheckOptions): ConsistencyProofResult {
  const verifiers = verifiersOf(opts);
  const a = object(answer, 'answer');
  const stream = streamId(get(a, 'stream'), 'stream');
  const from = count(get(a, 'from'), 'from');
  const to = count(get(a, 'to'), 'to');
  const hashes = hashList(get(a, 'hashes'), 'hashes');
  const older = openCheckpoint(get(a, 'from_checkpoint'), 'from_checkpoint', stream, verifiers);
  const newer = openCheckpoint(get(a, 'to_checkpoint'), 'to_checkpoint', stream, verifiers);
  if (from !== older.size) fail('proof_invalid', 'from', `${from} is not from_checkpoint's signed tree size ${older.size}`);
  if (to !== newer.size) fail('proof_invalid', 'to', `${to} is not to_checkpoint's signed tree size ${newer.size}`);
  if (older.size > newer.size) fail('proof_invalid', 'from', `tree size ${older.size} is larger than to's ${newer.size}`);
  if (!verifyConsistency(older.size, newer.size, older.root, newer.root, hashes)) {
    fail('proof_invalid', 'hashes', `do not prove the tree of size ${newer.size} extends the tree of size ${older.size}`);
  }
  return { ok: true, stream, from: signedTree(older), to: signedTree(newer) };
}
