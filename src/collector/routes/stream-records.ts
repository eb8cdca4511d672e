import type { FastifyInstance } from 'fastify';
import type { CollectorContext } from '../context.js';
import { readInt, readQuery } from './query.js';
import { loadStream } from './stream-param.js';

const DEFAULT_LIMIT = 1000;
const MAX_LIMIT = 10_000;

/** Records in seq order with their exact canonical text, for rebuilding the tree offline. */
export function registerStreamRecordsRoute(app: FastifyInstance, ctx: CollectorContext): void {
  app.get(
    '/v1/streams/:stream/records',
    { preHandler: async (req) => ctx.auth.check(req.headers.authorization) },
    async (req) => {
      const state = await loadStream(ctx.store, req.params);
      const q = readQuery(req.query, ['from_seq', 'limit']);
      const fromSeq = readInt(q, 'from_seq', 0, 0, Number.MAX_SAFE_INTEGER);
      const limit = readInt(q, 'limit', DEFAULT_LIMIT, 1, MAX_LIMIT);
      const rows = await ctx.store.readStreamRecords(state.stream, fromSeq, limit);
      const last = rows[rows.length - 1];
      return {
        stream: state.stream,
        tree_size: state.treeSize,
        records: rows.map((r) => ({ seq: r.seq, canonical: r.canonical, mac: r.mac, key_id: r.keyId, batch: r.batch })),
        next_from_seq: last && last.seq + 1 < state.treeSize ? last.seq + 1 : null,
      };
    },
  );
}
