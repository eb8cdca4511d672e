import type { FastifyInstance } from 'fastify';
import type { CollectorContext } from '../context.js';
import { registerStreamPageRoute } from './stream-param.js';

const MAX_LIMIT = 10_000;

/** The stream's signed checkpoints in batch order. */
export function registerCheckpointsRoute(app: FastifyInstance, ctx: CollectorContext): void {
  registerStreamPageRoute(
    app,
    ctx,
    { path: '/v1/streams/:stream/checkpoints', fromParam: 'from_batch', defaultLimit: MAX_LIMIT, maxLimit: MAX_LIMIT, action: 'streams.checkpoints' },
    async ({ state, from, limit }) => {
      const rows = await ctx.store.listCheckpoints(state.stream, from, limit);
      const last = rows[rows.length - 1];
      return {
        rows: rows.length,
        body: {
          stream: state.stream,
          checkpoints: rows.map((c) => ({ batch: c.batch, tree_size: c.treeSize, note: c.note })),
          next_from_batch: last && last.batch + 1 < state.nextBatch ? last.batch + 1 : null,
        },
      };
    },
  );
}
