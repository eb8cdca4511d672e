import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { CollectorContext } from '../context.js';
import { HttpError } from '../../core/errors.js';
import type { RecordFilters, RecordKey, RecordOrder, RecordRow } from '../store/types.js';
import { auditedParams } from '../read-audit.js';
import { FILTER_PARAMS, readRecordFilters } from './audit-filters.js';
import { readQuery } from './query.js';

/** Rows read from the store per page; one page is all the route holds at a time. */
export const EXPORT_PAGE_ROWS = 1000;

export type ExportFormat = 'jsonl' | 'cloudevents';
const FORMATS: readonly ExportFormat[] = ['jsonl', 'cloudevents'];

/** CloudEvents `type` suffix: the record's event_type when it is a plain token, else "record". */
const TYPE_TOKEN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/**
 * One record as a CloudEvents 1.0 structured-mode JSON event (one line).
 * `data` is the stored canonical record spliced in verbatim, so its bytes
 * still hash to the record's leaf.
 */
export function cloudEventJson(r: RecordRow): string {
  let rec: { id?: unknown; time?: unknown; event_type?: unknown } = {};
  try {
    rec = JSON.parse(r.canonical) as typeof rec;
  } catch {
    // stored records are canonical JSON; a broken one still gets an envelope
  }
  const id = typeof rec.id === 'string' && rec.id.length > 0 ? rec.id : `${r.stream}/${r.seq}`;
  const type = `io.sealtrail.audit.${typeof rec.event_type === 'string' && TYPE_TOKEN.test(rec.event_type) ? rec.event_type : 'record'}`;
  return (
    `{"specversion":"1.0","id":${JSON.stringify(id)},"source":${JSON.stringify(`sealtrail/${r.stream}`)},` +
    `"type":${JSON.stringify(type)},` +
    (typeof rec.time === 'string' ? `"time":${JSON.stringify(rec.time)},` : '') +
    `"datacontenttype":"application/json","sealtrailseq":${r.seq},"sealtrailleaf":"${r.leaf.toString('hex')}",` +
    `"data":${r.canonical}}`
  );
}

async function* exportLines(
  ctx: CollectorContext,
  filters: RecordFilters,
  order: RecordOrder,
  format: ExportFormat,
): AsyncGenerator<{ text: string; rows: number }> {
  let after: RecordKey | undefined;
  for (;;) {
    const rows = await ctx.store.queryRecords({ filters, order, limit: EXPORT_PAGE_ROWS, ...(after ? { after } : {}) });
    if (rows.length === 0) return;
    let chunk = '';
    for (const r of rows) chunk += `${format === 'jsonl' ? r.canonical : cloudEventJson(r)}\n`;
    yield { text: chunk, rows: rows.length };
    if (rows.length < EXPORT_PAGE_ROWS) return;
    const last = rows[rows.length - 1]!;
    after = { timeKey: last.timeKey, stream: last.stream, seq: last.seq };
  }
}

/**
 * GET /v1/export?format=jsonl|cloudevents&<the filters of /v1/audit>: every
 * matching record, one per line, streamed page by page (the response is
 * pulled by the client, so memory stays at one page whatever the size).
 * Admin or reader; a reader's tenant is forced as on /v1/audit. No limit or
 * cursor: the whole selection is sent (a two-sided from..to is still bounded
 * by max_query_range). See docs/evidence.md.
 */
export function registerExportRoute(app: FastifyInstance, ctx: CollectorContext): void {
  app.get('/v1/export', async (req, reply) => {
    const principal = ctx.auth.check(req);
    const q = readQuery(req.query, ['format', ...FILTER_PARAMS]);
    const format = (q.get('format') ?? 'jsonl') as ExportFormat;
    if (!FORMATS.includes(format)) throw new HttpError(400, 'query_invalid', 'parameter "format" must be jsonl or cloudevents');
    const { filters, order } = readRecordFilters(q, ctx, principal);
    // The first page is read before the status is sent, so a store that
    // cannot answer gets a proper error instead of a truncated 200.
    const lines = exportLines(ctx, filters, order, format);
    const first = await lines.next();
    const audited = {
      principal,
      route: '/v1/export',
      filters: auditedParams(q, principal.role === 'reader' ? { tenant: principal.tenant } : {}),
    };
    // Recorded before any data leaves, as every read is; a stream's total is
    // only known at its end, so the first record counts the first page and a
    // second one (audit.export.completed) the whole export. That second write
    // cannot fail a read already sent: a failure is logged as an error.
    await ctx.readAudit.record({ ...audited, action: 'audit.export', rows: first.done ? 0 : first.value.rows });
    async function* all(): AsyncGenerator<string> {
      let total = 0;
      if (!first.done) {
        total += first.value.rows;
        yield first.value.text;
        for await (const page of lines) {
          total += page.rows;
          yield page.text;
        }
      }
      await ctx.readAudit.record({ ...audited, action: 'audit.export.completed', rows: total }).catch((err: unknown) => {
        ctx.logger.error({ route: '/v1/export', err: (err as Error).message }, 'recording the end of an export failed');
      });
    }
    // One JSON value per line in both formats (CloudEvents structured mode, one event per line).
    reply.type('application/x-ndjson; charset=utf-8');
    reply.header('cache-control', 'no-store');
    return reply.send(Readable.from(all(), { objectMode: false }));
  });
}
