import type { FastifyInstance } from 'fastify';
import type { CollectorContext } from '../context.js';
import { HttpError } from '../../core/errors.js';
import { buildConsistencyProof } from '../proofs.js';
import { readInt, readQuery } from './query.js';
import { proofFailed, requireRecords } from './record.js';
import { loadStream } from './stream-param.js';
import { adminOnly, principalOf } from '../read-audit.js';

function required(q: Map<string, string>, name: string): number {
  if (!q.has(name)) throw new HttpError(400, 'query_invalid', `parameter "${name}" is required`);
  return readInt(q, name, 0, 1, Number.MAX_SAFE_INTEGER);
}

/**
 * GET /v1/streams/:stream/consistency?from=&to=: the RFC 9162 consistency
 * proof between two tree sizes that both have a stored signed checkpoint,
 * with both checkpoints, so a client holding the older one can check that
 * the newer one extends it. Admin only (a stream spans tenants).
 */
export function registerConsistencyRoute(app: FastifyInstance, ctx: CollectorContext): void {
  app.get(
    '/v1/streams/:stream/consistency',
    { preHandler: adminOnly(ctx.auth) },
    async (req) => {
      requireRecords(ctx.store);
      const state = await loadStream(ctx.store, req.params);
      const q = readQuery(req.query, ['from', 'to']);
      const from = required(q, 'from');
      const to = required(q, 'to');
      if (from > to) throw new HttpError(400, 'query_invalid', 'parameter "from" must not be greater than "to"');
      if (to > state.treeSize) {
        throw new HttpError(400, 'checkpoint_unknown', `tree size ${to} is beyond the stream's tree size ${state.treeSize}`);
      }
      const [fromCp, toCp] = await Promise.all([
        ctx.store.getCheckpointBySize(state.stream, from),
        ctx.store.getCheckpointBySize(state.stream, to),
      ]);
      if (!fromCp) throw new HttpError(400, 'checkpoint_unknown', `no stored checkpoint has tree size ${from}`);
      if (!toCp) throw new HttpError(400, 'checkpoint_unknown', `no stored checkpoint has tree size ${to}`);
      const hashes = await buildConsistencyProof(from, to, (refs) => ctx.store.getSubtreeHashes(state.stream, refs)).catch(
        proofFailed,
      );
      await ctx.readAudit.record({
        principal: principalOf(req),
        route: '/v1/streams/:stream/consistency',
        action: 'streams.consistency',
        filters: { stream: state.stream, from, to },
        rows: hashes.length,
      });
      return {
        stream: state.stream,
        from,
        to,
        hashes: hashes.map((h) => h.toString('base64')),
        from_checkpoint: fromCp.note,
        to_checkpoint: toCp.note,
      };
    },
  );
}
