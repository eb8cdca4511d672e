import type { FastifyInstance } from 'fastify';
import type { CollectorContext } from '../context.js';
import { readQuery } from './query.js';
import { adminOnly, principalOf } from '../read-audit.js';

export function registerStreamsRoute(app: FastifyInstance, ctx: CollectorContext): void {
  app.get(
    '/v1/streams',
    // Stream heads span tenants (and name every pod): admin only.
    { preHandler: adminOnly(ctx.auth) },
    async (req) => {
      readQuery(req.query, []);
      const streams = await ctx.store.listStreams();
      await ctx.readAudit.record({ principal: principalOf(req), route: '/v1/streams', action: 'streams.list', filters: {}, rows: streams.length });
      return {
        streams: streams.map((s) => ({
          stream: s.stream,
          tree_size: s.treeSize,
          next_batch: s.nextBatch,
          last_checkpoint: s.lastCheckpoint,
          chain_key_id: s.chainKeyId,
          trusted_on_first_use: s.pinned,
        })),
      };
    },
  );
}
