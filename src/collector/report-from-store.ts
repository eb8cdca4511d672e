import { parseCheckpoint } from '../core/checkpoint.js';
import { parseNote } from '../core/note.js';
import { buildReport } from '../report/build.js';
import type { ReportParams } from '../report/params.js';
import type { Report, ReportRecord, ReportStreamInfo } from '../report/types.js';
import type { AuditStore, RecordKey } from './store/types.js';

/**
 * A compliance report read from an AuditStore, for GET /v1/report and for
 * `sealtrail report --db`. The report itself (src/report/) only takes records
 * and stream heads and knows nothing of stores; reading them, page by page,
 * is the store contract's side, so it lives here.
 */

export const REPORT_PAGE_SIZE = 1000;

/** The period's records in (time, stream, seq) order, page by page (keyset paging: bounded memory). */
export async function* periodRecords(
  store: Pick<AuditStore, 'queryRecords'>,
  fromKey: number,
  toKey: number,
  pageSize = REPORT_PAGE_SIZE,
): AsyncGenerator<ReportRecord> {
  let after: RecordKey | undefined;
  for (;;) {
    const page = await store.queryRecords({
      filters: { fromTimeKey: fromKey, toTimeKey: toKey },
      order: 'asc',
      limit: pageSize,
      ...(after ? { after } : {}),
    });
    for (const row of page) {
      yield {
        stream: row.stream,
        seq: row.seq,
        batch: row.batch,
        timeKey: row.timeKey,
        record: JSON.parse(row.canonical) as Record<string, unknown>,
      };
    }
    const last = page[page.length - 1];
    if (!last || page.length < pageSize) return;
    after = { timeKey: last.timeKey, stream: last.stream, seq: last.seq };
  }
}

function checkpointSize(note: string | null): number | null {
  if (note === null) return null;
  try {
    return parseCheckpoint(parseNote(note).text).size;
  } catch {
    return null;
  }
}

/** Stream heads with their latest checkpoint's size and storage time. */
export async function streamInfos(store: Pick<AuditStore, 'listStreams' | 'listCheckpoints'>): Promise<ReportStreamInfo[]> {
  const out: ReportStreamInfo[] = [];
  for (const s of await store.listStreams()) {
    let at: string | null = null;
    let size = checkpointSize(s.lastCheckpoint);
    if (s.nextBatch > 0) {
      const [cp] = await store.listCheckpoints(s.stream, s.nextBatch - 1, 1);
      if (cp) {
        at = cp.receivedAt;
        size = cp.treeSize;
      }
    }
    out.push({ stream: s.stream, treeSize: s.treeSize, lastCheckpointSize: size, lastCheckpointAt: at });
  }
  return out;
}

/** The report of one period, read from any AuditStore. */
export async function reportFromStore(store: AuditStore, params: ReportParams, generatedAt?: string): Promise<Report> {
  const streams = await streamInfos(store);
  return buildReport(periodRecords(store, params.fromKey, params.toKey), streams, {
    from: params.from,
    to: params.to,
    bucketSeconds: params.bucketSeconds,
    silenceSeconds: params.silenceSeconds,
    ...(generatedAt ? { generatedAt } : {}),
  });
}
