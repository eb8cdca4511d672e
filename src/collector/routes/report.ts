import type { FastifyInstance } from 'fastify';
import { applyFullVerification } from '../../report/build.js';
import { readReportParams, ReportParamError } from '../../report/params.js';
import type { FullVerification } from '../../report/types.js';
import { renderHtml, REPORT_HTML_CSP } from '../../report/html.js';
import type { CollectorContext } from '../context.js';
import { reportFromStore } from '../report-from-store.js';
import { HttpError } from '../../core/errors.js';
import { readQuery } from './query.js';
import { verifyStoredStream } from './verify.js';
import { adminOnly, principalOf } from '../read-audit.js';

const ALLOWED = ['from', 'to', 'format', 'bucket', 'silence', 'verify'];

/**
 * GET /v1/report?from=&to=[&format=json|html][&bucket=S][&silence=S][&verify=ingest|full]: the
 * compliance report of one period (see docs/report.md). It spans tenants, so
 * it needs an admin token. Records are read page by page (keyset), so memory
 * does not grow with the period's record count.
 */
export function registerReportRoute(app: FastifyInstance, ctx: CollectorContext): void {
  app.get(
    '/v1/report',
    { preHandler: adminOnly(ctx.auth) },
    async (req, reply) => {
      const q = readQuery(req.query, ALLOWED);
      let params;
      try {
        params = readReportParams({
          from: q.get('from'),
          to: q.get('to'),
          format: q.get('format'),
          bucket: q.get('bucket'),
          silence: q.get('silence'),
          verify: q.get('verify'),
        });
      } catch (err) {
        if (err instanceof ReportParamError) throw new HttpError(400, 'query_invalid', err.message);
        throw err;
      }
      if (!ctx.store.keepsRecords) {
        // a report of zero records would read as "nothing happened"
        throw new HttpError(501, 'report_unavailable', 'this collector keeps no records (null store): no report');
      }
      const report = await reportFromStore(ctx.store, params);
      if (params.verify === 'full') {
        // GET /v1/verify's logic, once per stream with records in the period
        // (whole streams: a checkpoint commits to every record before it).
        const results = new Map<string, FullVerification>();
        for (const s of report.streams) {
          const state = await ctx.store.getStreamState(s.stream);
          if (state) results.set(s.stream, await verifyStoredStream(ctx, state));
        }
        applyFullVerification(report, results);
      }
      await ctx.readAudit.record({
        principal: principalOf(req),
        route: '/v1/report',
        action: 'report.generate',
        filters: { from: params.from, to: params.to, format: params.format, verify: params.verify },
        rows: report.totals.records,
      });
      reply.header('cache-control', 'no-store');
      if (params.format === 'html') {
        reply.header('content-security-policy', REPORT_HTML_CSP);
        reply.header('x-content-type-options', 'nosniff');
        reply.type('text/html; charset=utf-8');
        return renderHtml(report);
      }
      return report;
    },
  );
}
