import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAX_RECORD_WIRE_BYTES } from '../../src/core/wire-limits.js';
import { AuditBuffer } from '../../src/sidecar/buffer/buffer.js';
import { Ingest, type IngestLine } from '../../src/sidecar/ingest.js';
import { EMPTY_RULESET } from '../../src/sidecar/redact/index.js';
import { MAX_LISTED, REPORT_KEY, RejectionReporter } from '../../src/sidecar/seal/rejections.js';
import { HMAC_KEY, KEY_ID, tempDir, type TempDir } from '../helpers/sidecar-fixtures.js';

const OWN = 'sealtrail';
const CANARY = 'canary-7f3e@leak.example.org';

let tmp: TempDir;
let path: string;
let buffer: AuditBuffer;
let ingest: Ingest;

function open(): void {
  buffer = AuditBuffer.open(path, { newStreamId: () => 'rej' });
  ingest = new Ingest(buffer, { hmacKey: HMAC_KEY, keyId: KEY_ID, ruleset: () => EMPTY_RULESET });
}

beforeEach(() => {
  tmp = tempDir('sealtrail-rejections-');
  path = tmp.file('buffer.db');
  open();
});

afterEach(() => {
  buffer.close();
  tmp.cleanup();
});

/** Quarantines `n` bad lines of `source` (half unparsable with a canary, half not objects). */
function refuse(source: string, n: number, start = 0, path = `/logs/${source}.jsonl`): void {
  const lines: IngestLine[] = [];
  for (let i = 0; i < n; i++) {
    const text = i % 2 ? '[1,2]' : `{"event_type":"x","who":"${CANARY}"`;
    lines.push({ offset: start + i * 10, length: 10, text });
  }
  ingest.ingest({ source, path, fileKey: `k-${source}`, lines });
}

/** Commits a report as the sidecar does: the record and its position in one transaction. */
function commitReport(reporter: RejectionReporter): Record<string, any> | undefined {
  const report = reporter.next();
  if (!report) return undefined;
  const r = ingest.ingest({
    source: OWN,
    path: '(quarantine report)',
    fileKey: 'quarantine-report',
    lines: [{ offset: report.position.offset, length: report.text.length, text: report.text }],
    position: report.position,
  });
  expect(r.records).toBe(1);
  const row = buffer.db.prepare('SELECT canonical FROM records WHERE seq = ?').get(r.firstSeq) as { canonical: string };
  return JSON.parse(row.canonical);
}

describe('RejectionReporter: quarantined lines reported upstream exactly once', () => {
  it('reports counts by source and reason and every position, never the bytes, then nothing until more is refused', () => {
    refuse('traces', 4);
    refuse('api', 1);
    const reporter = new RejectionReporter(buffer.db, OWN, (s, k) => buffer.getPosition(s, k));
    const rec = commitReport(reporter)!;
    expect(rec.event_type).toBe('ingest_rejected');
    expect(rec.source).toBe(OWN);
    expect(rec.outcome).toBe('failure');
    expect(rec.details.rejected).toBe(5);
    expect(rec.details.counts).toEqual([
      { source: 'traces', reason: 'json_invalid', count: 2 },
      { source: 'traces', reason: 'record_not_object', count: 2 },
      { source: 'api', reason: 'json_invalid', count: 1 },
    ]);
    expect(rec.details.positions.map((p: { offset: number }) => p.offset)).toEqual([0, 10, 20, 30, 0]);
    expect(rec.details.positions[0]).toMatchObject({ source: 'traces', path: '/logs/traces.jsonl', file_key: 'k-traces', length: 10, reason: 'json_invalid' });
    expect(JSON.stringify(rec)).not.toContain(CANARY);
    expect(commitReport(reporter)).toBeUndefined();

    refuse('traces', 2, 100);
    const again = commitReport(reporter)!;
    expect(again.details.rejected).toBe(2);
    expect(again.details.positions.map((p: { offset: number }) => p.offset)).toEqual([100, 110]);
  });

  it('survives a restart: what was reported stays reported, what was not is reported once', () => {
    refuse('traces', 3);
    commitReport(new RejectionReporter(buffer.db, OWN, (s, k) => buffer.getPosition(s, k)));
    refuse('traces', 1, 50);
    buffer.close();
    open();
    const reporter = new RejectionReporter(buffer.db, OWN, (s, k) => buffer.getPosition(s, k));
    const rec = commitReport(reporter)!;
    expect(rec.details.rejected).toBe(1);
    expect(rec.details.positions[0].offset).toBe(50);
    expect(commitReport(reporter)).toBeUndefined();
    expect(buffer.getPosition(OWN, REPORT_KEY)?.offset).toBe(4);
  });

  it('a report of the longest, most escaped paths is still a record well within the size limit', () => {
    refuse('traces', MAX_LISTED, 0, `/logs/${'"\\'.repeat(2000)}.jsonl`);
    const reporter = new RejectionReporter(buffer.db, OWN, (s, k) => buffer.getPosition(s, k));
    const rec = commitReport(reporter)!;
    expect(rec.details.positions).toHaveLength(MAX_LISTED);
    expect(rec.details.positions[0].path.length).toBeLessThanOrEqual(512);
    const wire = buffer.db.prepare('SELECT MAX(wire_bytes) AS w FROM records').get() as { w: number };
    expect(wire.w).toBeLessThan(MAX_RECORD_WIRE_BYTES / 2);
  });

  it('lists at most MAX_LISTED positions and counts the rest; never reports its own refused lines', () => {
    refuse('traces', MAX_LISTED + 7);
    refuse(OWN, 2);
    const reporter = new RejectionReporter(buffer.db, OWN, (s, k) => buffer.getPosition(s, k));
    const rec = commitReport(reporter)!;
    expect(rec.details.rejected).toBe(MAX_LISTED + 7);
    expect(rec.details.positions).toHaveLength(MAX_LISTED);
    expect(rec.details.positions_omitted).toBe(7);
    expect(commitReport(reporter)).toBeUndefined();
  });
});
