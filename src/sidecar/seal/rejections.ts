import type Database from 'better-sqlite3';
import type { PositionRow } from '../buffer/buffer.js';

/**
 * Reports quarantined lines upstream as chained `ingest_rejected` records,
 * so what the sidecar refused is visible where auditors look (the
 * collector's query API and reports), not only inside its own SQLite file.
 *
 * Contracts:
 * - Exactly once: the report carries a position (source RESERVED, key
 *   REPORT_KEY, offset = the last quarantine row id it covers) that the
 *   caller commits in the same transaction as the report record, so after
 *   any crash a quarantine row is either reported or still pending, never
 *   reported twice and never skipped.
 * - Never a line's bytes: a report holds counts by source and reason and, per
 *   row, the position (path, file key, offset, length), the reason and the
 *   message Ingest wrote, which names fields and limits only. It goes
 *   through the same redaction as any input line.
 * - Rows of the sidecar's own source are not reported: a report that was
 *   itself refused would otherwise be reported again forever (the caller
 *   logs that case).
 */

export const REPORT_KEY = 'quarantine-reported';
/** Rows whose positions are listed in one report; the counts cover all of them. */
export const MAX_LISTED = 100;
/** Rows one report covers; more wait for the next tick. */
const MAX_COVERED = 10_000;
/**
 * Characters kept of a path, file key or message: with MAX_LISTED positions
 * a report stays far below the record size limit (core/wire-limits.ts) even
 * if every character costs 4 bytes on the wire and redaction lengthens it,
 * so a report is never itself refused and its rows never marked reported
 * without one.
 */
const MAX_TEXT = 512;

function clip(text: string): string {
  return text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT - 3)}...` : text;
}

interface QuarantineRecordRow {
  id: number;
  source: string;
  path: string;
  file_key: string;
  offset: number;
  length: number;
  reason: string;
  message: string;
  at: string;
  field: string | null;
}

export interface RejectionReport {
  /** the JSON line of the `ingest_rejected` event, for Ingest */
  text: string;
  /** commit with the report record: marks the rows as reported */
  position: PositionRow;
  /** quarantine rows covered */
  rows: number;
}

export class RejectionReporter {
  private readonly since: Database.Statement;
  private readonly source: string;
  private readonly reportedThrough: () => number;

  constructor(db: Database.Database, source: string, position: (source: string, key: string) => PositionRow | undefined) {
    this.since = db.prepare(
      'SELECT id, source, path, file_key, offset, length, reason, message, at, field FROM quarantine WHERE id > ? AND source <> ? ORDER BY id LIMIT ?',
    );
    this.source = source;
    this.reportedThrough = () => position(source, REPORT_KEY)?.offset ?? 0;
  }

  /** The next report to commit, or undefined when every quarantined line was reported. */
  next(): RejectionReport | undefined {
    const rows = this.since.all(this.reportedThrough(), this.source, MAX_COVERED) as QuarantineRecordRow[];
    if (rows.length === 0) return undefined;
    const counts = new Map<string, { source: string; reason: string; count: number }>();
    for (const r of rows) {
      const k = `${r.source}\u0000${r.reason}`;
      const c = counts.get(k) ?? { source: r.source, reason: r.reason, count: 0 };
      c.count++;
      counts.set(k, c);
    }
    const last = rows[rows.length - 1]!;
    const event = {
      event_type: 'ingest_rejected',
      actor: { id: 'sealtrail-sidecar', type: 'system' },
      action: 'quarantine',
      outcome: 'failure',
      details: {
        rejected: rows.length,
        counts: [...counts.values()],
        first_at: rows[0]!.at,
        last_at: last.at,
        positions: rows.slice(0, MAX_LISTED).map((r) => ({
          source: r.source,
          path: clip(r.path),
          file_key: clip(r.file_key),
          offset: r.offset,
          length: r.length,
          reason: r.reason,
          message: clip(r.message),
          ...(r.field !== null ? { field: clip(r.field) } : {}),
        })),
        positions_omitted: Math.max(0, rows.length - MAX_LISTED),
      },
    };
    return {
      text: JSON.stringify(event),
      position: { source: this.source, key: REPORT_KEY, path: 'quarantine', offset: last.id, fingerprint: '' },
      rows: rows.length,
    };
  }
}
