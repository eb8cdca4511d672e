import { canonicalize } from '../../src/core/canonical.js';
import { CHAIN_GENESIS, chainNext } from '../../src/core/chain.js';
import { formatCheckpoint, originForStream } from '../../src/core/checkpoint.js';
import { Frontier, leafHash } from '../../src/core/merkle.js';
import { generateKeyPair, parseSignerKey, signNote, type NoteSigner } from '../../src/core/note.js';
import type { SealedBatch, WireRecord } from '../../src/core/types.js';

/**
 * Builds valid sealed batches the way a sidecar would (real core crypto), and
 * lets tests derive broken variants from them. State advances only through
 * next(); fork()/clone() let a test build an alternative batch N.
 */

export type RecordFields = Record<string, unknown>;

export interface BuilderOptions {
  stream: string;
  /** signer key text; a fresh one is generated when absent */
  skey?: string;
  hmacKey?: Buffer;
  keyId?: string;
  /** base time of record 0; record n is base + n seconds */
  baseTime?: number;
}

export interface NextOptions {
  /** extra or overriding record fields by seq */
  fields?: (seq: number) => RecordFields;
  /** a different signer for the checkpoint (keeps the builder's state otherwise) */
  signer?: NoteSigner;
}

export class BatchBuilder {
  readonly stream: string;
  readonly skey: string;
  readonly vkey: string;
  readonly signer: NoteSigner;
  readonly hmacKey: Buffer;
  readonly keyId: string;
  readonly baseTime: number;
  frontier: Frontier = Frontier.empty();
  batch = 0;
  prevCheckpoint: string | null = null;
  chainHead: Buffer = CHAIN_GENESIS;

  constructor(opts: BuilderOptions) {
    this.stream = opts.stream;
    if (opts.skey) {
      this.skey = opts.skey;
      this.vkey = '';
    } else {
      const kp = generateKeyPair(`test-${opts.stream.slice(0, 40)}`);
      this.skey = kp.skey;
      this.vkey = kp.vkey;
    }
    this.signer = parseSignerKey(this.skey);
    this.hmacKey = opts.hmacKey ?? Buffer.alloc(32, 7);
    this.keyId = opts.keyId ?? 'k1';
    this.baseTime = opts.baseTime ?? Date.UTC(2026, 0, 1, 0, 0, 0);
  }

  get seq(): number {
    return this.frontier.size;
  }

  clone(): BatchBuilder {
    const c = Object.create(BatchBuilder.prototype) as BatchBuilder;
    Object.assign(c, this);
    c.frontier = this.frontier.clone();
    return c;
  }

  record(seq: number, extra: RecordFields = {}): RecordFields {
    return {
      id: `0190f0f0-0000-7000-8000-${seq.toString(16).padStart(12, '0')}`,
      stream: this.stream,
      seq,
      received_at: new Date(this.baseTime + seq * 1000 + 5).toISOString(),
      source: 'test',
      redaction: { ruleset: '0'.repeat(64), hits: {} },
      time: new Date(this.baseTime + seq * 1000).toISOString(),
      event_type: 'tool_invoked',
      tenant: 'acme',
      actor: { id: 'user-1', type: 'user' },
      tool: { name: 'search', arguments: { q: `query ${seq}` } },
      outcome: 'success',
      model: { provider: 'openai', name: 'gpt-x' },
      trace_id: 'trace-1',
      session_id: 'session-1',
      ...extra,
    };
  }

  /** Seals the next `count` records into a batch and advances the builder. */
  next(count: number, opts: NextOptions = {}): SealedBatch {
    const records: WireRecord[] = [];
    const first = this.seq;
    for (let i = 0; i < count; i++) {
      const seq = first + i;
      const canonical = canonicalize(this.record(seq, opts.fields?.(seq)));
      records.push(this.seal(seq, canonical));
    }
    return this.finish(records, opts.signer);
  }

  /** Appends one record whose canonical text is given verbatim (may be invalid on purpose). */
  seal(seq: number, canonical: string): WireRecord {
    const leaf = leafHash(Buffer.from(canonical, 'utf8'));
    this.frontier.append(leaf);
    this.chainHead = chainNext(this.hmacKey, this.chainHead, leaf);
    return { seq, canonical, mac: this.chainHead.toString('hex'), key_id: this.keyId };
  }

  /** Signs a checkpoint over the current frontier and closes the batch. */
  finish(records: WireRecord[], signer: NoteSigner = this.signer): SealedBatch {
    const checkpoint = this.sign(this.frontier.size, this.frontier.root(), signer);
    const b: SealedBatch = {
      v: 1,
      stream: this.stream,
      batch: this.batch,
      first_seq: records[0]!.seq,
      last_seq: records[records.length - 1]!.seq,
      records,
      chain_head: this.chainHead.toString('hex'),
      prev_checkpoint: this.prevCheckpoint,
      checkpoint,
    };
    this.batch += 1;
    this.prevCheckpoint = checkpoint;
    return b;
  }

  sign(size: number, root: Buffer, signer: NoteSigner = this.signer, origin = originForStream(this.stream)): string {
    return signNote(formatCheckpoint({ origin, size, root, extensions: [] }), [signer]);
  }
}

export function otherSigner(name = 'intruder'): { signer: NoteSigner; vkey: string } {
  const kp = generateKeyPair(name);
  return { signer: parseSignerKey(kp.skey), vkey: kp.vkey };
}
