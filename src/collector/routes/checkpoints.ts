import type { FastifyInstance } from 'fastify';
import type { CollectorContext } from '../context.js';
import { readInt, readQuery } from './query.js';
import { loadStream } from './stream-param.js';

const MAX_LIMIT = 10_000;

export function registerCheckpointsRoute(app: FastifyInstance, ctx: CollectorContext): void {
  app.get(
    '/v1/streams/:stream/checkpoints',
    { preHandler: async (req) => ctx.auth.check(req.headers.authorization) },
    async (req) => {
      const state = await loadStream(ctx.store, req.params);
      const q = readQuery(req.query, ['from_batch', 'limit']);
      const fromBatch = readInt(q, 'from_batch', 0, 0, Number.MAX_SAFE_INTEGER);
      const limit = readInt(q, 'limit', MAX_LIMIT, 1, MAX_LIMIT);
      const rows = await ctx.store.listCheckpoints(state.stream, fromBatch, limit);
      const last = rows[rows.length - 1];
      return {
        stream: state.stream,
        checkpoints: rows.map((c) => ({ batch: c.batch, tree_size: c.treeSize, note: c.note })),
        next_from_batch: rows.length === limit && last ? last.batch + 1 : null,
      };
    },
  );
}
