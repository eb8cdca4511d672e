import type { FastifyInstance } from 'fastify';
import type { CollectorContext } from '../context.js';
import { CursorCodec } from '../cursor.js';
import type { RecordKey } from '../store/types.js';
import { FILTER_PARAMS, readRecordFilters } from './audit-filters.js';
import { readInt, readQuery } from './query.js';
import { proveRecords, readProofFlag } from './record.js';
import { auditedParams } from '../read-audit.js';

export const AUDIT_DEFAULT_LIMIT = 100;
export const AUDIT_MAX_LIMIT = 1000;

const ALLOWED = ['limit', 'cursor', 'proof', ...FILTER_PARAMS];

export function registerAuditRoute(app: FastifyInstance, ctx: CollectorContext): void {
  app.get(
    '/v1/audit',
    async (req, reply) => {
      const principal = ctx.auth.check(req);
      const q = readQuery(req.query, ALLOWED);
      const limit = readInt(q, 'limit', AUDIT_DEFAULT_LIMIT, 1, AUDIT_MAX_LIMIT);
      // A reader's tenant is forced here, before the cursor hash, so cursors bind to it too.
      const { filters, order } = readRecordFilters(q, ctx, principal);

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
      // Recorded (who, which filter, how many rows) before any data leaves; a failed write fails the read.
      await ctx.readAudit.record({
        principal,
        route: '/v1/audit',
        action: 'audit.query',
        filters: auditedParams(q, principal.role === 'reader' ? { tenant: principal.tenant } : {}),
        rows: page.length,
      });
      reply.type('application/json; charset=utf-8');
      return `{"items":[${items.join(',')}],"next_cursor":${next === null ? 'null' : JSON.stringify(next)}}`;
    },
  );
}
