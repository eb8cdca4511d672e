import type { FastifyInstance } from 'fastify';
import type { CollectorContext } from '../context.js';
import { registerStreamPageRoute } from './stream-param.js';

const DEFAULT_LIMIT = 1000;
const MAX_LIMIT = 10_000;

/** Records in seq order with their exact canonical text, for rebuilding the tree offline. */
export function registerStreamRecordsRoute(app: FastifyInstance, ctx: CollectorContext): void {
  registerStreamPageRoute(
    app,
    ctx,
    { path: '/v1/streams/:stream/records', fromParam: 'from_seq', defaultLimit: DEFAULT_LIMIT, maxLimit: MAX_LIMIT, action: 'streams.records' },
    async ({ state, from, limit }) => {
      const rows = await ctx.store.readStreamRecords(state.stream, from, limit);
      const last = rows[rows.length - 1];
      return {
        rows: rows.length,
        body: {
          stream: state.stream,
          tree_size: state.treeSize,
          records: rows.map((r) => ({ seq: r.seq, canonical: r.canonical, mac: r.mac, key_id: r.keyId, batch: r.batch })),
          next_from_seq: last && last.seq + 1 < state.treeSize ? last.seq + 1 : null,
        },
      };
    },
  );
}
