import type { FastifyInstance } from 'fastify';
import { Frontier, leafHash } from '../../core/merkle.js';
import { parseVerifierKey, type NoteVerifier } from '../../core/note.js';
import { verifyStreamAsync, type EvidenceRecord, type VerifyFailure } from '../../verify/verify-stream.js';
import type { CollectorContext } from '../context.js';
import { HttpError } from '../../core/errors.js';
import { completedSubtrees, subtreeKey, type SubtreeHash } from '../proofs.js';
import type { AuditStore, StreamState } from '../store/types.js';
import { readQuery } from './query.js';
import { requireRecords } from './record.js';
import { adminOnly, principalOf } from '../read-audit.js';
import { loadStream } from './stream-param.js';

/** Checkpoints read per store call (their notes are held for the whole run: one per batch). */
const CHECKPOINT_PAGE = 10_000;
/** Records between two checks of the stored subtree hashes. */
const SUBTREE_CHECK_EVERY = 1024;

export interface VerifyResponse {
  stream: string;
  ok: boolean;
  tree_size: number;
  checked_records: number;
  checked_checkpoints: number;
  /** false when the collector holds no HMAC key for the records' key ids */
  chain_checked: boolean;
  first_failure?: VerifyFailure;
}

class SubtreeMismatch extends Error {
  constructor(readonly failure: VerifyFailure) {
    super(failure.reason);
  }
}

/**
 * The stream's records as evidence, in seq order, page by page; on the way,
 * the complete-subtree hashes the store keeps for proofs are recomputed from
 * the records and compared with the stored ones (those stored at all: data
 * from before they were kept has none), so a tampered proof table is found
 * too. Throws SubtreeMismatch at the first difference.
 */
async function* evidence(store: AuditStore, stream: string): AsyncGenerator<EvidenceRecord> {
  let frontier = Frontier.empty();
  let pending: SubtreeHash[] = [];
  const check = async (): Promise<void> => {
    if (pending.length === 0) return;
    const stored = new Map((await store.getSubtreeHashes(stream, pending)).map((h) => [subtreeKey(h), h.hash]));
    for (const p of pending) {
      const s = stored.get(subtreeKey(p));
      if (s && !s.equals(p.hash)) {
        throw new SubtreeMismatch({
          code: 'subtree_mismatch',
          seq: p.index * 2 ** p.level,
          reason: `stored hash of subtree ${subtreeKey(p)} (level/index) does not match the records (proof table altered)`,
        });
      }
    }
    pending = [];
  };
  let n = 0;
  for await (const r of store.iterateStreamRecords(stream)) {
    const leaf = leafHash(Buffer.from(r.canonical, 'utf8'));
    if (r.seq === frontier.size) {
      pending.push(...completedSubtrees(frontier, [leaf]));
      frontier.append(leaf);
    } else {
      // verifyStream reports the gap or repeat; stop tracking subtrees.
      frontier = Frontier.empty();
      pending = [];
    }
    yield { seq: r.seq, canonical: r.canonical, mac: Buffer.from(r.mac, 'hex'), keyId: r.keyId, leaf: r.leaf };
    if (++n % SUBTREE_CHECK_EVERY === 0) await check();
  }
  await check();
}

interface StoredCheckpoint {
  note: string;
  label: string;
  batch: number;
  receivedAt: string;
}

async function allCheckpoints(store: AuditStore, stream: string): Promise<StoredCheckpoint[]> {
  const out: StoredCheckpoint[] = [];
  for (let from = 0; ; ) {
    const page = await store.listCheckpoints(stream, from, CHECKPOINT_PAGE);
    for (const c of page) out.push({ note: c.note, label: `checkpoint of batch ${c.batch}`, batch: c.batch, receivedAt: c.receivedAt });
    if (page.length < CHECKPOINT_PAGE) return out;
    from = page[page.length - 1]!.batch + 1;
  }
}

/**
 * The keys that may have signed the stream's stored checkpoints: for a
 * configured stream, the keys valid when each checkpoint was received
 * (rotation), de-duplicated; else the key pinned on first use.
 */
function verifiersFor(ctx: CollectorContext, state: StreamState, checkpoints: readonly StoredCheckpoint[]): NoteVerifier[] {
  const stream = state.stream;
  if (ctx.streamKeys.covers(stream)) {
    const byId = new Map<string, NoteVerifier>();
    const add = (vs: NoteVerifier[] | undefined): void => {
      for (const v of vs ?? []) byId.set(`${v.name}+${v.keyHash}`, v);
    };
    for (const c of checkpoints) {
      const at = Date.parse(c.receivedAt);
      try {
        add(ctx.streamKeys.resolve({ stream, batch: c.batch, checkpoint: c.note }, Number.isNaN(at) ? Date.now() : at));
      } catch {
        // Signed only by a key outside its window at that time: the signature check reports it.
      }
    }
    if (byId.size === 0) add(ctx.streamKeys.resolve({ stream, batch: 0, checkpoint: '' }));
    return [...byId.values()];
  }
  return state.pinnedVkey ? [parseVerifierKey(state.pinnedVkey)] : [];
}

/**
 * Full server-side verification of one stream (src/verify/verify-stream.ts,
 * the same checks as `sealtrail verify`): every record canonical, in place
 * and matching its stored leaf hash; the HMAC chain where the collector holds
 * the key; every stored checkpoint's signature (with the stream's configured
 * or pinned key) and its root against the tree recomputed from the records;
 * and the stored subtree hashes that proofs are built from. Records are read
 * in pages and never held together.
 */
export async function verifyStoredStream(ctx: CollectorContext, state: StreamState): Promise<VerifyResponse> {
  const stream = state.stream;
  const checkpoints = await allCheckpoints(ctx.store, stream);
  const base = { stream, tree_size: 0, checked_records: 0, checked_checkpoints: 0, chain_checked: false };
  const verifiers = verifiersFor(ctx, state, checkpoints);
  if (verifiers.length === 0) {
    return {
      ...base,
      ok: false,
      first_failure: { code: 'key_unknown', reason: 'no checkpoint key is configured or pinned for this stream' },
    };
  }
  const records = evidence(ctx.store, stream);
  let counted = 0;
  const counting = (async function* () {
    for await (const r of records) {
      counted++;
      yield r;
    }
  })();
  try {
    const report = await verifyStreamAsync(stream, counting, checkpoints, { verifiers, hmac: ctx.hmacKeys });
    const out: VerifyResponse = {
      stream,
      ok: report.ok,
      tree_size: report.treeSize,
      checked_records: report.records,
      checked_checkpoints: report.checkpoints,
      chain_checked: report.chainChecked,
      ...(report.failure ? { first_failure: report.failure } : {}),
    };
    if (out.ok && report.treeSize !== state.treeSize) {
      out.ok = false;
      out.first_failure = {
        code: 'head_mismatch',
        seq: Math.min(report.treeSize, state.treeSize),
        reason: `the stream head says tree size ${state.treeSize} but ${report.treeSize} records are stored`,
      };
    }
    return out;
  } catch (err) {
    if (!(err instanceof SubtreeMismatch)) throw err;
    return { ...base, ok: false, tree_size: state.treeSize, checked_records: counted, checked_checkpoints: 0, first_failure: err.failure };
  }
}

/** GET /v1/verify?stream=S: see verifyStoredStream. Admin only; long-running for big streams. */
export function registerVerifyRoute(app: FastifyInstance, ctx: CollectorContext): void {
  app.get(
    '/v1/verify',
    { preHandler: adminOnly(ctx.auth) },
    async (req) => {
      requireRecords(ctx.store);
      const q = readQuery(req.query, ['stream']);
      const stream = q.get('stream');
      if (stream === undefined) throw new HttpError(400, 'query_invalid', 'parameter "stream" is required');
      const state = await loadStream(ctx.store, { stream });
      const result = await verifyStoredStream(ctx, state);
      await ctx.readAudit.record({
        principal: principalOf(req),
        route: '/v1/verify',
        action: 'streams.verify',
        filters: { stream },
        rows: result.checked_records,
      });
      return result;
    },
  );
}
