import type { FastifyInstance } from 'fastify';
import type { CollectorContext } from '../context.js';
import { CursorCodec } from '../cursor.js';
import { ApiError } from '../http-error.js';
import { EQUALITY_FILTERS } from '../store/record-fields.js';
import type { RecordFilters, RecordKey, RecordOrder } from '../store/types.js';
import { timeKey } from '../time-key.js';
import { scopeFilters } from '../auth.js';
import { DEFAULT_MAX_QUERY_RANGE } from '../options.js';
import { checkTimeRange, readInt, readQuery } from './query.js';
import { proveRecords, readProofFlag } from './record.js';

export const AUDIT_DEFAULT_LIMIT = 100;
export const AUDIT_MAX_LIMIT = 1000;

const ORDERS: readonly RecordOrder[] = ['asc', 'desc'];
const ALLOWED = ['from', 'to', 'limit', 'cursor', 'order', 'proof', ...EQUALITY_FILTERS.map((f) => f.param)];

function instant(q: Map<string, string>, name: string): number | undefined {
  const raw = q.get(name);
  if (raw === undefined) return undefined;
  const key = timeKey(raw);
  if (key === undefined) {
    throw new ApiError(400, 'query_invalid', `parameter "${name}" must be an RFC 3339 timestamp with offset`);
  }
  return key;
}

export function registerAuditRoute(app: FastifyInstance, ctx: CollectorContext): void {
  app.get(
    '/v1/audit',
    async (req, reply) => {
      const principal = ctx.auth.check(req);
      const q = readQuery(req.query, ALLOWED);
      const limit = readInt(q, 'limit', AUDIT_DEFAULT_LIMIT, 1, AUDIT_MAX_LIMIT);
      const filters: RecordFilters = {};
      for (const { param, field } of EQUALITY_FILTERS) {
        const v = q.get(param);
        if (v !== undefined) filters[field] = v;
      }
      const rawOrder = q.get('order') ?? 'asc';
      if (!ORDERS.includes(rawOrder as RecordOrder)) {
        throw new ApiError(400, 'query_invalid', 'parameter "order" must be asc or desc');
      }
      const order = rawOrder as RecordOrder;
      const from = instant(q, 'from');
      const to = instant(q, 'to');
      if (from !== undefined) filters.fromTimeKey = from;
      if (to !== undefined) filters.toTimeKey = to;
      checkTimeRange(from, to, ctx.opts.max_query_range ?? DEFAULT_MAX_QUERY_RANGE);
      // A reader's tenant is forced here, before the cursor hash, so cursors bind to it too.
      scopeFilters(principal, filters);

      const fh = CursorCodec.queryHash(filters, order);
      const rawCursor = q.get('cursor');
      const after: RecordKey | undefined =
        rawCursor === undefined ? undefined : ctx.cursors.decode(rawCursor, fh);

      // One extra row tells whether another page exists without a count query.
      const rows = await ctx.store.queryRecords({ filters, order, limit: limit + 1, ...(after ? { after } : {}) });
      const more = rows.length > limit;
      const page = more ? rows.slice(0, limit) : rows;
      const last = page[page.length - 1];
      const next = more && last ? ctx.cursors.encode({ timeKey: last.timeKey, stream: last.stream, seq: last.seq }, fh) : null;

      // The record is spliced in as its stored canonical text: re-serialising a
      // parsed object could reorder integer-like keys and change the bytes
      // whose hash is the leaf.
      const items = page.map(
        (r) =>
          `{"record":${r.canonical},"stream":${JSON.stringify(r.stream)},"seq":${r.seq},"batch":${r.batch},` +
          `"leaf_hash":"${r.leaf.toString('hex')}","mac":"${r.mac}","key_id":${JSON.stringify(r.keyId)}}`,
      );
      // proof=true: each item gets its inclusion proof and covering checkpoint (routes/record.ts).
      if (readProofFlag(q)) {
        const proofs = await proveRecords(ctx.store, page);
        for (let i = 0; i < items.length; i++) items[i] = `${items[i]!.slice(0, -1)},"proof":${JSON.stringify(proofs[i])}}`;
      }
      reply.type('application/json; charset=utf-8');
      return `{"items":[${items.join(',')}],"next_cursor":${next === null ? 'null' : JSON.stringify(next)}}`;
    },
  );
}
