import { canonicalize } from '../core/canonical.js';
import { CHAIN_GENESIS, chainNext } from '../core/chain.js';
import { originForStream, parseCheckpoint, type Checkpoint } from '../core/checkpoint.js';
import { SealtrailError } from '../core/errors.js';
import { Frontier, leafHash } from '../core/merkle.js';
import { openNote, parseNote, type NoteVerifier } from '../core/note.js';

/** One stored record as evidence: the canonical text is what was hashed. */
export interface EvidenceRecord {
  seq: number;
  canonical: string;
  /** stored chain MAC, when the source keeps it */
  mac?: Buffer;
  keyId?: string;
  /** stored leaf hash, when the source keeps it: lets a changed record be named by seq */
  leaf?: Buffer;
}

export interface StreamBase {
  /** tree size before the first record given (records before it were shipped or purged) */
  size: number;
  frontier: Frontier;
  prevMac: Buffer;
}

export interface VerifyKeys {
  verifiers: NoteVerifier[];
  hmac: ReadonlyMap<string, Buffer>;
}

/**
 * Why a stream does not verify (also GET /v1/verify's first_failure.code,
 * docs/proofs.md). key_unknown is the one that says nothing about the
 * evidence: no key the verifier holds signed the checkpoint, so it could
 * not be checked at all (the CLI exits 2 for it, naming the key it needs).
 */
export type VerifyFailureCode =
  | 'record_corrupt'
  | 'record_not_canonical'
  | 'record_misplaced'
  | 'seq_gap'
  | 'seq_duplicate'
  | 'leaf_mismatch'
  | 'chain_broken'
  | 'checkpoint_signature'
  | 'checkpoint_invalid'
  | 'checkpoint_origin'
  | 'root_mismatch'
  | 'records_missing'
  | 'key_unknown'
  // the collector's own checks around verifyStream (collector/routes/verify.ts)
  | 'head_mismatch'
  | 'subtree_mismatch';

export interface VerifyFailure {
  code: VerifyFailureCode;
  seq?: number;
  reason: string;
  /**
   * key_unknown: the signed-note key ids ("<name>+<hash>", hash as 8 hex
   * digits) the checkpoint is signed with, none of them among the keys given.
   */
  needed_keys?: string[];
}

export interface StreamReport {
  stream: string;
  ok: boolean;
  records: number;
  checkpoints: number;
  treeSize: number;
  chainChecked: boolean;
  failure?: VerifyFailure;
}

class Fail extends Error {
  constructor(readonly failure: VerifyFailure) {
    super(failure.reason);
  }
}

interface VerifiedCheckpoint {
  cp: Checkpoint;
  label: string;
}

function openCheckpoints(stream: string, notes: readonly { note: string; label: string }[], keys: VerifyKeys): VerifiedCheckpoint[] {
  const out: VerifiedCheckpoint[] = [];
  for (const { note, label } of notes) {
    let text: string;
    try {
      text = openNote(note, keys.verifiers).text;
    } catch (err) {
      const code = err instanceof SealtrailError ? err.code : 'note_malformed';
      // Signed, but by no key we hold: a missing key, not evidence that fails.
      if (code === 'note_unverified') throw new Fail(keyUnknown(note, label));
      throw new Fail({ code: 'checkpoint_signature', reason: `${label}: signature does not verify with the given verifier keys (${code})` });
    }
    let cp: Checkpoint;
    try {
      cp = parseCheckpoint(text);
    } catch {
      throw new Fail({ code: 'checkpoint_invalid', reason: `${label}: not a valid checkpoint` });
    }
    if (cp.origin !== originForStream(stream)) {
      throw new Fail({ code: 'checkpoint_origin', reason: `${label}: origin ${JSON.stringify(cp.origin)} is not ${originForStream(stream)}` });
    }
    out.push({ cp, label });
  }
  return out.sort((a, b) => a.cp.size - b.cp.size);
}

/** The key_unknown failure of a well-formed note that no given key signed: the key ids it names. */
function keyUnknown(note: string, label: string): VerifyFailure {
  const needed = [...new Set(parseNote(note).sigs.map((s) => `${s.name}+${s.keyHash.toString(16).padStart(8, '0')}`))];
  return {
    code: 'key_unknown',
    reason: `${label}: signed by ${needed.join(', ')}, and no verifier key given is ${needed.length === 1 ? 'that key' : 'one of them'}`,
    needed_keys: needed,
  };
}

/**
 * The verification state of one stream, fed record by record, so the same
 * checks run over a synchronous source (a SQLite file) and an asynchronous
 * one (a live collector, page by page) without holding the records.
 */
class StreamCheck {
  readonly report: StreamReport;
  private readonly checkpoints: VerifiedCheckpoint[];
  private readonly frontier: Frontier;
  private prevMac: Buffer;
  private expected: number;
  private ci = 0;
  private prevCheckpointSize: number;
  private chainChecked = false;

  constructor(
    private readonly stream: string,
    checkpointNotes: readonly { note: string; label: string }[],
    private readonly keys: VerifyKeys,
    base?: StreamBase,
  ) {
    this.report = { stream, ok: false, records: 0, checkpoints: checkpointNotes.length, treeSize: 0, chainChecked: false };
    this.checkpoints = openCheckpoints(stream, checkpointNotes, keys);
    this.frontier = base ? base.frontier.clone() : Frontier.empty();
    this.prevMac = base ? base.prevMac : CHAIN_GENESIS;
    this.expected = base ? base.size : 0;
    this.prevCheckpointSize = this.expected;
    while (this.ci < this.checkpoints.length && this.checkpoints[this.ci]!.cp.size < this.frontier.size) this.ci++;
    this.checkRoot();
  }

  private checkRoot(): void {
    const { checkpoints, frontier } = this;
    while (this.ci < checkpoints.length && checkpoints[this.ci]!.cp.size === frontier.size) {
      const { cp, label } = checkpoints[this.ci]!;
      if (!frontier.root().equals(cp.root)) {
        throw new Fail({
          code: 'root_mismatch',
          seq: this.prevCheckpointSize,
          reason: `records seq ${this.prevCheckpointSize}..${cp.size - 1} do not hash to the root signed in ${label}`,
        });
      }
      this.prevCheckpointSize = cp.size;
      this.ci++;
    }
  }

  add(r: EvidenceRecord): void {
    const { stream, keys } = this;
    if (r.seq !== this.expected) {
      if (typeof r.seq === 'number' && r.seq > this.expected) {
        throw new Fail({ code: 'seq_gap', seq: this.expected, reason: `record missing (next present is seq ${r.seq})` });
      }
      throw new Fail({ code: 'seq_duplicate', seq: typeof r.seq === 'number' ? r.seq : this.expected, reason: 'record repeated or out of order' });
    }
    if (typeof r.canonical !== 'string') throw new Fail({ code: 'record_corrupt', seq: r.seq, reason: 'stored record is not text' });
    let parsed: unknown;
    try {
      parsed = JSON.parse(r.canonical);
    } catch {
      throw new Fail({ code: 'record_corrupt', seq: r.seq, reason: 'stored record is not valid JSON' });
    }
    let again: string;
    try {
      again = canonicalize(parsed);
    } catch {
      throw new Fail({ code: 'record_corrupt', seq: r.seq, reason: 'stored record cannot be canonicalised' });
    }
    if (again !== r.canonical) throw new Fail({ code: 'record_not_canonical', seq: r.seq, reason: 'stored record is not in RFC 8785 canonical form' });
    const rec = parsed as { stream?: unknown; seq?: unknown } | null;
    if (rec === null || typeof rec !== 'object' || rec.stream !== stream || rec.seq !== r.seq) {
      throw new Fail({ code: 'record_misplaced', seq: r.seq, reason: 'record names another stream or seq than where it is stored' });
    }
    const leaf = leafHash(Buffer.from(r.canonical, 'utf8'));
    if (r.leaf && !r.leaf.equals(leaf)) throw new Fail({ code: 'leaf_mismatch', seq: r.seq, reason: 'record bytes do not match their stored leaf hash (record altered)' });
    if (r.mac) {
      const key = r.keyId === undefined ? undefined : keys.hmac.get(r.keyId);
      if (key) {
        this.chainChecked = true;
        if (!chainNext(key, this.prevMac, leaf).equals(r.mac)) {
          throw new Fail({ code: 'chain_broken', seq: r.seq, reason: `HMAC chain does not continue here (key id ${r.keyId})` });
        }
      }
      this.prevMac = r.mac;
    }
    this.frontier.append(leaf);
    this.expected++;
    this.report.records++;
    this.checkRoot();
  }

  finish(): StreamReport {
    const { checkpoints, frontier, report } = this;
    report.treeSize = frontier.size;
    report.chainChecked = this.chainChecked;
    const last = checkpoints[checkpoints.length - 1];
    if (last && last.cp.size > frontier.size) {
      throw new Fail({
        code: 'records_missing',
        seq: frontier.size,
        reason: `${last.label} signs a tree of ${last.cp.size} records but only ${frontier.size} are present`,
      });
    }
    if (this.ci < checkpoints.length) {
      const cp = checkpoints[this.ci]!;
      throw new Fail({ code: 'root_mismatch', seq: this.prevCheckpointSize, reason: `no record boundary matches ${cp.label}` });
    }
    report.ok = true;
    return report;
  }
}

function failedReport(stream: string, checkpoints: number, check: StreamCheck | undefined, err: unknown): StreamReport {
  if (!(err instanceof Fail)) throw err;
  const report = check?.report ?? { stream, ok: false, records: 0, checkpoints, treeSize: 0, chainChecked: false };
  report.failure = err.failure;
  return report;
}

/**
 * Verifies one stream from evidence alone: every record is canonical and
 * belongs at its seq; seqs have no gap; stored leaves and chain MACs (when the
 * HMAC key is held) match; the Merkle root at every signed checkpoint equals
 * the checkpoint's root; and no signed checkpoint covers more records than the
 * evidence holds (a dropped tail is detected against the signature).
 */
export function verifyStream(
  stream: string,
  records: Iterable<EvidenceRecord>,
  checkpointNotes: readonly { note: string; label: string }[],
  keys: VerifyKeys,
  base?: StreamBase,
): StreamReport {
  let check: StreamCheck | undefined;
  try {
    check = new StreamCheck(stream, checkpointNotes, keys, base);
    for (const r of records) check.add(r);
    return check.finish();
  } catch (err) {
    return failedReport(stream, checkpointNotes.length, check, err);
  }
}

/**
 * verifyStream over records that arrive asynchronously (a live collector, page
 * by page); the records are checked as they come and never held together.
 * Errors of the source itself (unreachable, malformed answer) are thrown.
 */
export async function verifyStreamAsync(
  stream: string,
  records: AsyncIterable<EvidenceRecord> | Iterable<EvidenceRecord>,
  checkpointNotes: readonly { note: string; label: string }[],
  keys: VerifyKeys,
  base?: StreamBase,
): Promise<StreamReport> {
  let check: StreamCheck | undefined;
  try {
    check = new StreamCheck(stream, checkpointNotes, keys, base);
    for await (const r of records) check.add(r);
    return check.finish();
  } catch (err) {
    return failedReport(stream, checkpointNotes.length, check, err);
  }
}

export function formatReport(r: StreamReport): string {
  if (r.ok) {
    return `ok    stream ${r.stream}: ${r.records} records, ${r.checkpoints} signed checkpoints, tree size ${r.treeSize}${r.chainChecked ? ', HMAC chain checked' : ', HMAC chain not checked (no key)'}`;
  }
  const f = r.failure!;
  return `FAIL  stream ${r.stream}${f.seq === undefined ? '' : ` seq ${f.seq}`}: ${f.code}: ${f.reason}`;
}
