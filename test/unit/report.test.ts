import { describe, expect, it } from 'vitest';
import { buildReport } from '../../src/report/build.js';
import { esc, renderHtml } from '../../src/report/html.js';
import { readReportParams, ReportParamError } from '../../src/report/params.js';
import type { ReportRecord, ReportStreamInfo } from '../../src/report/types.js';

const T0 = Date.UTC(2026, 2, 1, 0, 0, 0);
const iso = (ms: number) => new Date(ms).toISOString();

function rec(stream: string, seq: number, batch: number, ms: number, fields: Record<string, unknown>): ReportRecord {
  return { stream, seq, batch, timeKey: ms * 1000, record: { stream, seq, time: iso(ms), ...fields } };
}

const HOSTILE = '<script>alert(1)</script>';
const ATTR = '"onload="alert(2)';

function fixture(): { records: ReportRecord[]; streams: ReportStreamInfo[] } {
  const records: ReportRecord[] = [];
  // stream a: one record a minute for 10 minutes, then silent 20 minutes, then 5 more
  const a = (seq: number, ms: number, f: Record<string, unknown>) => records.push(rec('a', seq, Math.floor(seq / 5), ms, f));
  for (let i = 0; i < 10; i++) {
    a(i, T0 + i * 60_000, {
      tenant: 'acme',
      event_type: i % 2 === 0 ? 'tool_invoked' : 'agent_response_generated',
      outcome: i === 3 ? 'denied' : 'success',
      tool: { name: 'search' },
      model: { provider: 'openai', name: 'gpt-x' },
      actor: { id: 'u1', type: 'user' },
    });
  }
  for (let i = 10; i < 15; i++) {
    a(i, T0 + 30 * 60_000 + (i - 10) * 60_000, {
      tenant: 'globex',
      event_type: i === 12 ? 'approval_requested' : 'tool_invoked',
      outcome: i === 14 ? 'error' : 'success',
      tool: { name: 'shell' },
      model: { provider: 'anthropic', name: 'claude' },
      ...(i === 12 ? { approval: { status: 'pending', approver: 'boss' } } : {}),
    });
  }
  // stream b: heartbeats plus one hostile record
  records.push(rec('b', 0, 0, T0 + 5 * 60_000, { event_type: 'heartbeat', source: 'sealtrail' }));
  records.push(
    rec('b', 1, 0, T0 + 6 * 60_000, {
      tenant: HOSTILE,
      event_type: ATTR,
      tool: { name: `${HOSTILE}${ATTR}` },
      outcome: 'failure',
      action: HOSTILE,
    }),
  );
  records.push(rec('b', 2, 1, T0 + 7 * 60_000, { event_type: 'approval_granted', tenant: 'initech', approval: { status: 'approved', approver: { id: 'cfo' } } }));
  records.sort((x, y) => x.timeKey - y.timeKey || (x.stream < y.stream ? -1 : 1));
  const streams: ReportStreamInfo[] = [
    { stream: 'a', treeSize: 15, lastCheckpointSize: 15, lastCheckpointAt: iso(T0 + 3_600_000) },
    // b's last record is not yet covered by a checkpoint
    { stream: 'b', treeSize: 3, lastCheckpointSize: 2, lastCheckpointAt: iso(T0 + 3_600_000) },
    { stream: 'c', treeSize: 7, lastCheckpointSize: 7, lastCheckpointAt: null },
  ];
  return { records, streams };
}

const opts = { from: iso(T0), to: iso(T0 + 3_600_000), bucketSeconds: 600, silenceSeconds: 300, generatedAt: iso(T0) };

describe('buildReport', () => {
  it('counts by every dimension, lists denials and approvals, finds the silent period', async () => {
    const { records, streams } = fixture();
    const r = await buildReport(records, streams, opts);
    expect(r.totals).toEqual({
      records: 18,
      events: 17,
      heartbeats: 1,
      streams_with_records: 2,
      streams_total: 3,
      tenants: 5, // acme, globex, hostile, initech, (none)
      denied: 1,
      failed: 2,
      approvals: 2,
      silent_periods: 1,
    });
    const tbl = (t: { top: { value: string | null; count: number }[] }) => Object.fromEntries(t.top.map((e) => [String(e.value), e.count]));
    expect(tbl(r.counts.tenant)).toEqual({ acme: 10, globex: 5, [HOSTILE]: 1, initech: 1, null: 1 });
    expect(tbl(r.counts.event_type)).toEqual({
      tool_invoked: 9,
      agent_response_generated: 5,
      approval_requested: 1,
      approval_granted: 1,
      heartbeat: 1,
      [ATTR]: 1,
    });
    expect(tbl(r.counts.outcome)).toEqual({ success: 13, denied: 1, error: 1, failure: 1, null: 2 });
    expect(tbl(r.counts.model)).toEqual({ 'openai/gpt-x': 10, 'anthropic/claude': 5, null: 3 });
    expect(tbl(r.counts.tool)).toEqual({ search: 10, shell: 5, [`${HOSTILE}${ATTR}`]: 1, null: 2 });
    expect(r.denied_and_failed.items.map((d) => [d.stream, d.seq, d.outcome])).toEqual([
      ['a', 3, 'denied'],
      ['b', 1, 'failure'],
      ['a', 14, 'error'],
    ]);
    expect(r.denied_and_failed.more).toBe(0);
    expect(r.approvals.items.map((x) => [x.stream, x.seq, x.status, x.approver])).toEqual([
      ['b', 2, 'approved', 'cfo'],
      ['a', 12, 'pending', 'boss'],
    ]);
    expect(r.silent_periods.items).toEqual([{ stream: 'a', from: iso(T0 + 9 * 60_000), to: iso(T0 + 30 * 60_000), seconds: 1260 }]);
    const [sa, sb] = r.streams;
    expect(sa).toMatchObject({
      stream: 'a',
      tree_size: 15,
      records_in_period: 15,
      first_seq: 0,
      last_seq: 14,
      checkpoints_in_period: 3,
      silent_periods: 1,
      longest_silence_seconds: 1260,
      checkpoint_coverage: { covered_records: 15, uncovered_records: 0, complete: true, covered_until: iso(T0 + 34 * 60_000) },
      verification: { status: 'verified_on_ingest' },
    });
    expect(sb).toMatchObject({
      stream: 'b',
      records_in_period: 3,
      heartbeats_in_period: 1,
      checkpoints_in_period: 2,
      checkpoint_coverage: { covered_records: 2, uncovered_records: 1, complete: false, covered_until: iso(T0 + 6 * 60_000) },
      verification: { status: 'unanchored_records' },
    });
    expect(r.chart.buckets.map((b) => b.count)).toEqual([13, 0, 0, 5, 0, 0]);
    expect(r.chart.buckets.map((b) => b.heartbeats)).toEqual([1, 0, 0, 0, 0, 0]);
    expect(r.chart.buckets[3]!.start).toBe(iso(T0 + 1_800_000));
  });

  it('sums the lines sidecars refused at ingest by stream, source and reason, and shows them in the page', async () => {
    const refusal = (counts: unknown) => ({ event_type: 'ingest_rejected', source: 'sealtrail', outcome: 'failure', details: { rejected: 3, counts } });
    const records = [
      rec('a', 0, 0, T0 + 60_000, refusal([{ source: 'traces', reason: 'record_invalid', count: 2 }, { source: 'otlp', reason: 'format_mismatch', count: 1 }])),
      rec('a', 1, 0, T0 + 120_000, refusal([{ source: 'traces', reason: 'record_invalid', count: 5 }])),
      // forged by an agent (its source is not the sidecar's) or malformed: counted for nothing
      rec('a', 2, 0, T0 + 180_000, { ...refusal([{ source: 'traces', reason: 'x', count: 1000 }]), source: 'traces' }),
      rec('a', 3, 0, T0 + 240_000, refusal([{ source: 'traces', reason: 'y', count: -4 }, 'junk', null, { source: 1, reason: 'z', count: 1 }])),
      rec('a', 4, 0, T0 + 300_000, refusal('not an array')),
    ];
    const r = await buildReport(records, [{ stream: 'a', treeSize: 5, lastCheckpointSize: 5, lastCheckpointAt: iso(T0) }], opts);
    expect(r.ingest_rejected.reports).toBe(4);
    expect(r.ingest_rejected.lines).toBe(8);
    expect(r.ingest_rejected.by_source_reason.top).toEqual([
      { value: 'a · traces · record_invalid', count: 7 },
      { value: 'a · otlp · format_mismatch', count: 1 },
    ]);
    const html = renderHtml(r);
    expect(html).toContain('Refused at ingest (8 line(s))');
    expect(html).toContain('a · traces · record_invalid');
  });

  it('ignores records outside the period and accepts an async source', async () => {
    const { records, streams } = fixture();
    async function* gen() {
      yield* records;
    }
    const r = await buildReport(gen(), streams, { ...opts, from: iso(T0 + 30 * 60_000) });
    expect(r.totals.records).toBe(5);
    expect(r.totals.silent_periods).toBe(0);
  });

  it('caps listed items and says how many more', async () => {
    const many: ReportRecord[] = [];
    for (let i = 0; i < 450; i++) many.push(rec('x', i, 0, T0 + i * 1000, { outcome: 'denied', tenant: `t${i}` }));
    const r = await buildReport(many, [{ stream: 'x', treeSize: 450, lastCheckpointSize: 450, lastCheckpointAt: null }], opts);
    expect(r.denied_and_failed.total).toBe(450);
    expect(r.denied_and_failed.items.length).toBe(200);
    expect(r.denied_and_failed.more).toBe(250);
    expect(r.counts.tenant.top.length).toBe(100);
    expect(r.counts.tenant.distinct).toBe(450);
    expect(r.counts.tenant.other_count).toBe(350);
  });
});

describe('renderHtml', () => {
  it('is standalone, holds the counts and an SVG chart, and escapes agent-supplied strings', async () => {
    const { records, streams } = fixture();
    const html = renderHtml(await buildReport(records, streams, opts));
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).toContain('<svg');
    expect((html.match(/<rect [^>]*fill="#1d4ed8"\/>/g) ?? []).length).toBe(2 + 1); // 2 non-empty bars + legend
    expect(html).toContain('Content-Security-Policy');
    // no script, no external asset, no event handler attribute
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/\son[a-z]+\s*=\s*"/i);
    expect(html).not.toMatch(/(src|href)\s*=/i);
    expect(html).not.toContain(HOSTILE);
    expect(html).not.toContain(ATTR);
    expect(html).toContain(esc(HOSTILE));
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('&quot;onload=&quot;alert(2)');
    // counts appear
    expect(html).toMatch(/<td>acme<\/td><td class="num">10<\/td>/);
    expect(html).toMatch(/<td>openai\/gpt-x<\/td><td class="num">10<\/td>/);
    expect(html).toContain('unanchored records');
    expect(html).toContain('21 min');
  });

  it('esc escapes the five HTML metacharacters', () => {
    expect(esc(`<a href="x" title='y'>&</a>`)).toBe('&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;');
  });
});

describe('readReportParams', () => {
  it('requires from and to, bounds the range and picks a bucket', () => {
    const p = readReportParams({ from: '2026-03-01T00:00:00Z', to: '2026-03-02T00:00:00+00:00' });
    expect(p.format).toBe('json');
    expect(p.bucketSeconds).toBe(900);
    expect(p.silenceSeconds).toBe(300);
    const bad: [Record<string, string>, string][] = [
      [{ to: '2026-03-02T00:00:00Z' }, 'from'],
      [{ from: '2026-03-01T00:00:00Z' }, 'to'],
      [{ from: '2026-03-01', to: '2026-03-02T00:00:00Z' }, 'from'],
      [{ from: '2026-03-02T00:00:00Z', to: '2026-03-01T00:00:00Z' }, 'to'],
      [{ from: '2025-01-01T00:00:00Z', to: '2026-03-01T00:00:00Z' }, 'to'],
      [{ from: '2026-03-01T00:00:00Z', to: '2026-03-02T00:00:00Z', format: 'pdf' }, 'format'],
      [{ from: '2026-03-01T00:00:00Z', to: '2026-03-02T00:00:00Z', bucket: '1' }, 'bucket'],
      [{ from: '2026-03-01T00:00:00Z', to: '2026-03-02T00:00:00Z', silence: '0' }, 'silence'],
      [{ from: '2026-03-01T00:00:00Z', to: '2026-03-02T00:00:00Z', silence: '5m' }, 'silence'],
    ];
    for (const [raw, param] of bad) {
      let caught: unknown;
      try {
        readReportParams(raw);
      } catch (err) {
        caught = err;
      }
      expect(caught, JSON.stringify(raw)).toBeInstanceOf(ReportParamError);
      expect((caught as ReportParamError).param).toBe(param);
    }
  });
});
