import type { FastifyInstance } from 'fastify';
import type { Principal } from '../auth.js';
import type { CollectorContext } from '../context.js';
import { HttpError, ProofError } from '../../core/errors.js';
import { buildInclusionProof } from '../proofs.js';
import { indexable } from '../../core/record-index.js';
import type { AuditStore, CheckpointRow, RecordRow } from '../store/types.js';
import { readQuery } from './query.js';

/** Records sharing one id (ids are agent-written, so not unique by construction) returned at most. */
export const RECORD_MAX_MATCHES = 100;

/** The `proof` member of an item: RFC 9162 inclusion proof against the signed checkpoint that covers it. */
export interface ItemProof {
  tree_size: number;
  leaf_index: number;
  /** base64, deepest sibling first (RFC 9162 §2.1.3.1 order) */
  hashes: string[];
  /** signed-note text of the checkpoint whose tree size is tree_size */
  checkpoint: string;
}

/** 501 when the store keeps no records (null store). */
export function requireRecords(store: AuditStore): void {
  if (!store.keepsRecords) {
    throw new HttpError(501, 'proofs_unavailable', 'this collector keeps no records (null store): no records, proofs or verification');
  }
}

/** Reads `proof` (true or false, default false). */
export function readProofFlag(q: Map<string, string>): boolean {
  const raw = q.get('proof');
  if (raw === undefined || raw === 'false') return false;
  if (raw === 'true') return true;
  throw new HttpError(400, 'query_invalid', 'parameter "proof" must be true or false');
}

/**
 * Inclusion proofs for rows, each against its batch's checkpoint (the first
 * stored checkpoint whose tree size exceeds the seq). Reads per row: one
 * checkpoint lookup (shared by rows of the same batch) and O(log n) subtree
 * hashes, fetched in one store call per row.
 */
export async function proveRecords(store: AuditStore, rows: readonly RecordRow[]): Promise<ItemProof[]> {
  if (rows.length === 0) return [];
  requireRecords(store);
  const checkpoints = new Map<string, Promise<CheckpointRow | undefined>>();
  const out: ItemProof[] = [];
  for (const r of rows) {
    const key = `${r.batch}/${r.stream}`;
    let cp = checkpoints.get(key);
    if (!cp) {
      cp = store.getCheckpointCovering(r.stream, r.seq);
      checkpoints.set(key, cp);
    }
    const c = await cp;
    if (!c) throw new HttpError(500, 'proof_unavailable', `no stored checkpoint covers seq ${r.seq} of stream ${r.stream}`);
    const hashes = await buildInclusionProof(r.seq, c.treeSize, (refs) => store.getSubtreeHashes(r.stream, refs)).catch(
      proofFailed,
    );
    out.push({ tree_size: c.treeSize, leaf_index: r.seq, hashes: hashes.map((h) => h.toString('base64')), checkpoint: c.note });
  }
  return out;
}

/** A proof the stored hashes cannot give (records or subtrees missing, too costly to rebuild): 500 with its code. */
export function proofFailed(err: unknown): never {
  if (err instanceof ProofError) throw new HttpError(500, err.code, err.message);
  throw err;
}

/** The JSON text of an item, in the shape of GET /v1/audit's items (record spliced in verbatim). */
export function itemJson(r: RecordRow, proof?: ItemProof): string {
  return (
    `{"record":${r.canonical},"stream":${JSON.stringify(r.stream)},"seq":${r.seq},"batch":${r.batch},` +
    `"leaf_hash":"${r.leaf.toString('hex')}","mac":"${r.mac}","key_id":${JSON.stringify(r.keyId)}` +
    (proof ? `,"proof":${JSON.stringify(proof)}` : '') +
    '}'
  );
}

function tenantOf(r: RecordRow): string | null {
  try {
    return indexable((JSON.parse(r.canonical) as { tenant?: unknown }).tenant);
  } catch {
    return null;
  }
}

/** A reader sees only its own tenant's records; an admin sees all. */
function visible(principal: Principal, r: RecordRow): boolean {
  return principal.role === 'admin' || tenantOf(r) === principal.tenant;
}

/**
 * GET /v1/audit/:id: the records whose `id` is :id (normally one), as
 * `{"items":[...]}` in the /v1/audit item shape; `proof=true` adds each
 * one's inclusion proof. 404 record_not_found when none (or none visible).
 */
export function registerRecordRoute(app: FastifyInstance, ctx: CollectorContext): void {
  app.get('/v1/audit/:id', async (req, reply) => {
    const principal = ctx.auth.check(req);
    const q = readQuery(req.query, ['proof']);
    const proof = readProofFlag(q);
    requireRecords(ctx.store);
    const raw = (req.params as { id?: unknown }).id;
    // An id that could never have been indexed (too long, NUL, not UTF-8) matches nothing.
    const id = typeof raw === 'string' ? indexable(raw) : null;
    const rows = id === null ? [] : (await ctx.store.findRecordsById(id, RECORD_MAX_MATCHES)).filter((r) => visible(principal, r));
    const proofs = rows.length > 0 && proof ? await proveRecords(ctx.store, rows) : undefined;
    // A lookup that finds nothing is a read too (it tells the absence): recorded with its 404.
    await ctx.readAudit.record({
      principal,
      route: '/v1/audit/:id',
      action: 'audit.get',
      filters: { id: typeof raw === 'string' ? raw : null, proof },
      rows: rows.length,
      status: rows.length === 0 ? 404 : 200,
    });
    if (rows.length === 0) throw new HttpError(404, 'record_not_found', 'no record with this id');
    reply.type('application/json; charset=utf-8');
    return `{"items":[${rows.map((r, i) => itemJson(r, proofs?.[i])).join(',')}]}`;
  });
}
