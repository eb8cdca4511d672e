import type { FastifyInstance } from 'fastify';
import type { CollectorContext } from '../context.js';
import { HttpError } from '../../core/errors.js';
import type { AuditStore, StreamState } from '../store/types.js';
import { STREAM_ID } from '../../core/wire-ids.js';
import { readInt, readQuery } from './query.js';
import { adminOnly, principalOf } from '../read-audit.js';

/** Validates the :stream path parameter and loads its head; 404 when never seen. */
export async function loadStream(store: AuditStore, params: unknown): Promise<StreamState> {
  const stream = (params as { stream?: unknown } | undefined)?.stream;
  if (typeof stream !== 'string' || !STREAM_ID.test(stream)) {
    throw new HttpError(400, 'stream_invalid', 'path parameter "stream" is not a valid stream id');
  }
  const state = await store.getStreamState(stream);
  if (!state) throw new HttpError(404, 'stream_not_found', `stream ${stream} not found`);
  return state;
}

export interface StreamPage {
  /** the stream's head as loaded before the page was read */
  state: StreamState;
  /** the value of the `from` parameter (inclusive), 0 when absent */
  from: number;
  limit: number;
}

/**
 * GET /v1/streams/:stream/<what>: admin auth (reader tokens get 403), a known stream, and a strict
 * query of exactly `fromParam` and `limit`. `page` reads and shapes the rows.
 */
export function registerStreamPageRoute(
  app: FastifyInstance,
  ctx: CollectorContext,
  route: { path: string; fromParam: string; defaultLimit: number; maxLimit: number; action: string },
  /** the answer body and how many rows it holds (for the read-audit record) */
  page: (p: StreamPage) => Promise<{ body: unknown; rows: number }>,
): void {
  const allowed = [route.fromParam, 'limit'];
  app.get(
    route.path,
    // A stream interleaves several tenants' records: admin only.
    { preHandler: adminOnly(ctx.auth) },
    async (req) => {
      const state = await loadStream(ctx.store, req.params);
      const q = readQuery(req.query, allowed);
      const from = readInt(q, route.fromParam, 0, 0, Number.MAX_SAFE_INTEGER);
      const limit = readInt(q, 'limit', route.defaultLimit, 1, route.maxLimit);
      const { body, rows } = await page({ state, from, limit });
      await ctx.readAudit.record({
        principal: principalOf(req),
        route: route.path,
        action: route.action,
        filters: { stream: state.stream, [route.fromParam]: from, limit },
        rows,
      });
      return body;
    },
  );
}
