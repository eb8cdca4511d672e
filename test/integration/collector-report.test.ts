import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reportCommand } from '../../src/cli/report.js';
import { startCollector } from '../../src/collector/app.js';
import { NullAuditStore } from '../../src/collector/store/null.js';
import type { Report } from '../../src/report/types.js';
import { BatchBuilder, type RecordFields } from '../helpers/collector-batches.js';
import { ADMIN_TOKEN, getJson, memoryLogger, postJson, startTestCollector, type TestCollector } from '../helpers/collector-server.js';

const BASE = Date.UTC(2026, 2, 1, 12, 0, 0);
const MIN = 60_000;
const iso = (ms: number) => new Date(ms).toISOString();
const FROM = iso(BASE);
const TO = iso(BASE + 60 * MIN);
const HOSTILE = '<script>alert(1)</script>';
const ATTR = '"onload="alert(2)';
const READER_TOKEN = 'reader-token-0123456789abcdef';

/** rep-a: 12 records, 3 tenants, denials, approvals, a 15-minute silence between seq 5 and 6 */
function fieldsA(seq: number): RecordFields {
  const f: RecordFields = {
    time: iso(seq < 6 ? BASE + seq * MIN : BASE + 20 * MIN + (seq - 6) * MIN),
    tenant: seq < 4 ? 'acme' : seq < 8 ? 'globex' : 'initech',
    model: seq % 2 === 0 ? { provider: 'openai', name: 'gpt-4o' } : { provider: 'anthropic', name: 'claude' },
    tool: { name: seq % 3 === 0 ? 'shell' : 'search' },
    event_type: 'tool_invoked',
    action: `act-${seq}`,
  };
  if (seq === 2 || seq === 7) Object.assign(f, { event_type: 'tool_blocked', outcome: 'denied', policy: { decision: 'deny', rule: 'no-shell' } });
  if (seq === 3) Object.assign(f, { event_type: 'approval_requested', approval: { status: 'pending' } });
  if (seq === 4) Object.assign(f, { event_type: 'approval_granted', approval: { status: 'approved', approver: 'cfo' } });
  if (seq === 10) f.outcome = 'failure';
  return f;
}

/** rep-b: a heartbeat, a hostile record and two ordinary ones, a minute apart */
function fieldsB(seq: number): RecordFields {
  const f: RecordFields = { time: iso(BASE + (seq + 1) * MIN + 30_000) };
  if (seq === 0) Object.assign(f, { event_type: 'heartbeat', source: 'sealtrail' });
  if (seq === 1) Object.assign(f, { tenant: HOSTILE, event_type: ATTR, tool: { name: `${ATTR}${HOSTILE}` }, outcome: 'error', action: HOSTILE });
  if (seq >= 2) f.tenant = 'globex';
  return f;
}

describe('collector GET /v1/report', () => {
  let c: TestCollector;
  let streamOpts: { match: string; vkey: string }[];
  const dir = mkdtempSync(join(tmpdir(), 'sealtrail-report-'));

  beforeAll(async () => {
    const a = new BatchBuilder({ stream: 'rep-a', baseTime: BASE });
    const b = new BatchBuilder({ stream: 'rep-b', baseTime: BASE });
    const cc = new BatchBuilder({ stream: 'rep-c', baseTime: BASE + 120 * MIN });
    streamOpts = [
      { match: 'rep-a', vkey: a.vkey },
      { match: 'rep-b', vkey: b.vkey },
      { match: 'rep-c', vkey: cc.vkey },
    ];
    c = await startTestCollector({
      streams: streamOpts,
      tokens: [
        { id: 'reader-1', sha256: createHash('sha256').update(READER_TOKEN).digest('hex'), role: 'reader', tenant: 'acme' },
      ],
    });
    for (const batch of [a.next(6, { fields: fieldsA }), a.next(6, { fields: fieldsA }), b.next(4, { fields: fieldsB }), cc.next(1)]) {
      const res = await postJson(c.url, batch);
      expect(res.status, res.text).toBe(200);
    }
  });
  afterAll(async () => {
    await c.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const tbl = (t: { top: { value: string | null; count: number }[] }) => Object.fromEntries(t.top.map((e) => [String(e.value), e.count]));

  function checkReport(r: Report): void {
    expect(r.period).toEqual({ from: FROM, to: TO, bucket_seconds: 600, silence_threshold_seconds: 300 });
    expect(r.totals).toEqual({
      records: 16,
      events: 15,
      heartbeats: 1,
      streams_with_records: 2,
      streams_total: 3,
      tenants: 4,
      denied: 2,
      failed: 2,
      approvals: 2,
      silent_periods: 1,
    });
    expect(tbl(r.counts.tenant)).toEqual({ globex: 6, acme: 5, initech: 4, [HOSTILE]: 1 });
    expect(tbl(r.counts.event_type)).toEqual({ tool_invoked: 10, tool_blocked: 2, approval_granted: 1, approval_requested: 1, heartbeat: 1, [ATTR]: 1 });
    expect(tbl(r.counts.outcome)).toEqual({ success: 12, denied: 2, error: 1, failure: 1 });
    expect(tbl(r.counts.model)).toEqual({ 'openai/gpt-4o': 6, 'anthropic/claude': 6, 'openai/gpt-x': 4 });
    expect(tbl(r.counts.tool)).toEqual({ search: 11, shell: 4, [`${ATTR}${HOSTILE}`]: 1 });
    expect(r.denied_and_failed.items.map((d) => `${d.stream}/${d.seq}/${d.outcome}`)).toEqual([
      'rep-a/2/denied',
      'rep-b/1/error',
      'rep-a/7/denied',
      'rep-a/10/failure',
    ]);
    expect(r.denied_and_failed.items[0]).toMatchObject({ actor: 'user-1', action: 'act-2', tool: 'search', policy_rule: 'no-shell', tenant: 'acme' });
    expect(r.approvals.items.map((x) => [x.seq, x.event_type, x.status, x.approver])).toEqual([
      [3, 'approval_requested', 'pending', null],
      [4, 'approval_granted', 'approved', 'cfo'],
    ]);
    expect(r.silent_periods.items).toEqual([{ stream: 'rep-a', from: iso(BASE + 5 * MIN), to: iso(BASE + 20 * MIN), seconds: 900 }]);
    expect(r.streams.map((s) => s.stream)).toEqual(['rep-a', 'rep-b']);
    expect(r.streams[0]).toMatchObject({
      tree_size: 12,
      records_in_period: 12,
      first_record_time: iso(BASE),
      last_record_time: iso(BASE + 25 * MIN),
      checkpoints_in_period: 2,
      checkpoint_coverage: { last_checkpoint_tree_size: 12, covered_records: 12, uncovered_records: 0, complete: true, covered_until: iso(BASE + 25 * MIN) },
      silent_periods: 1,
      verification: { status: 'verified_on_ingest' },
    });
    expect(typeof r.streams[0]!.checkpoint_coverage.last_checkpoint_at).toBe('string');
    expect(r.streams[1]).toMatchObject({ tree_size: 4, records_in_period: 4, heartbeats_in_period: 1, checkpoints_in_period: 1, silent_periods: 0 });
    expect(r.chart.buckets.map((x) => x.count)).toEqual([10, 0, 6, 0, 0, 0]);
    expect(r.chart.buckets.map((x) => x.heartbeats)).toEqual([1, 0, 0, 0, 0, 0]);
  }

  it('reports exact counts as JSON', async () => {
    const res = await getJson(c.url, `/v1/report?from=${FROM}&to=${TO}&bucket=600`);
    expect(res.status, res.text).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    checkReport(res.body as Report);
  });

  it('honours the period, silence threshold and automatic bucket', async () => {
    const res = await getJson(c.url, `/v1/report?from=${iso(BASE + 20 * MIN)}&to=${iso(BASE + 180 * MIN)}&silence=30`);
    expect(res.status, res.text).toBe(200);
    const r = res.body as Report;
    expect(r.totals.records).toBe(7); // rep-a 6..11 and rep-c 0
    expect(r.streams.map((s) => s.stream)).toEqual(['rep-a', 'rep-c']);
    expect(r.totals.silent_periods).toBe(5); // rep-a: a minute between records > 30 s
    expect(r.period.bucket_seconds).toBe(60);
    expect(r.chart.buckets.length).toBe(160);
  });

  it('renders HTML with the counts and a chart, hostile values escaped, scripts forbidden', async () => {
    const res = await getJson(c.url, `/v1/report?from=${FROM}&to=${TO}&bucket=600&format=html`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html; charset=utf-8/);
    expect(String(res.headers['content-security-policy'])).toContain("default-src 'none'");
    const html = res.text;
    expect(html).toContain('<svg');
    expect(html).toMatch(/<td>globex<\/td><td class="num">6<\/td>/);
    expect(html).toMatch(/<td>tool_blocked<\/td><td class="num">2<\/td>/);
    expect(html).toContain('rep-a');
    expect(html).toContain('15 min');
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toContain(ATTR);
    expect(html).not.toMatch(/\son[a-z]+\s*=\s*"/i);
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('&quot;onload=&quot;alert(2)');
  });

  it('verify=full re-verifies the streams of the period and finds a tampered record', async () => {
    const q = `/v1/report?from=${FROM}&to=${TO}&bucket=600&verify=full`;
    const ok = await getJson(c.url, q);
    expect(ok.status, ok.text).toBe(200);
    const r = ok.body as Report;
    expect(r.verification.method).toBe('full');
    expect(r.streams.map((s) => [s.stream, s.verification.status, s.verification.full?.checked_records])).toEqual([
      ['rep-a', 'verified', 12],
      ['rep-b', 'verified', 4],
    ]);

    // a copy of the store with one record's text changed behind the collector's back
    const copy = join(dir, 'tampered.db');
    const src = new Database(c.dbPath, { readonly: true });
    src.exec(`VACUUM INTO '${copy}'`);
    src.close();
    const db = new Database(copy);
    db.exec(`DROP TRIGGER records_no_update; UPDATE records SET canonical = replace(canonical, 'act-3', 'act-X') WHERE stream = 'rep-a' AND seq = 3`);
    expect(db.prepare(`SELECT canonical FROM records WHERE stream = 'rep-a' AND seq = 3`).pluck().get()).toContain('act-X');
    db.close();
    const t = await startTestCollector({ streams: streamOpts }, copy);
    try {
      const bad = await getJson(t.url, q);
      expect(bad.status, bad.text).toBe(200);
      const br = bad.body as Report;
      expect(br.streams.map((s) => [s.stream, s.verification.status])).toEqual([
        ['rep-a', 'verification_failed'],
        ['rep-b', 'verified'],
      ]);
      expect(br.streams[0]!.verification.full?.first_failure?.seq).toBe(3);
      const html = await getJson(t.url, `${q}&format=html`);
      expect(html.text).toContain('verification failed');
      expect(html.text).toContain('need attention');
    } finally {
      await t.close();
    }
  });

  it.each([
    ['', /from/],
    [`from=${FROM}`, /to/],
    [`to=${TO}`, /from/],
    [`from=2026-03-01&to=${TO}`, /from/],
    [`from=${TO}&to=${FROM}`, /later/],
    [`from=${FROM}&to=${FROM}`, /later/],
    [`from=2025-01-01T00:00:00Z&to=${TO}`, /366 days/],
    [`from=${FROM}&to=${TO}&format=pdf`, /format/],
    [`from=${FROM}&to=${TO}&bucket=0`, /bucket/],
    [`from=${FROM}&to=${TO}&bucket=1`, /bucket/],
    [`from=${FROM}&to=${TO}&silence=abc`, /silence/],
    [`from=${FROM}&to=${TO}&verify=yes`, /verify/],
    [`from=${FROM}&to=${TO}&tenant=acme`, /unknown query parameter/],
    [`from=${FROM}&from=${FROM}&to=${TO}`, /more than once/],
  ])('refuses %s with 400', async (query, message) => {
    const res = await getJson(c.url, `/v1/report?${query}`);
    expect(res.status, res.text).toBe(400);
    expect(res.body.error.code).toBe('query_invalid');
    expect(res.body.error.message).toMatch(message);
  });

  it('needs an admin token: 401 without, 403 wrong or reader', async () => {
    const q = `/v1/report?from=${FROM}&to=${TO}`;
    const none = await getJson(c.url, q, null);
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer');
    expect((await getJson(c.url, q, 'not-the-admin-token-0000000')).status).toBe(403);
    const reader = await getJson(c.url, q, READER_TOKEN);
    expect(reader.status).toBe(403);
    expect(reader.text).not.toContain('globex');
  });

  it('sealtrail report gives the same report from --url and from --db', async () => {
    const viaUrl = join(dir, 'url.json');
    const viaDb = join(dir, 'db.json');
    const html = join(dir, 'r.html');
    const common = ['--from', FROM, '--to', TO, '--bucket', '600'];
    expect(await reportCommand(['--url', c.url, '--token', ADMIN_TOKEN, ...common, '--out', viaUrl])).toBe(0);
    expect(await reportCommand(['--db', c.dbPath, ...common, '--out', viaDb])).toBe(0);
    expect(await reportCommand(['--db', c.dbPath, ...common, '--format', 'html', '--out', html])).toBe(0);
    const u = JSON.parse(readFileSync(viaUrl, 'utf8')) as Report;
    const d = JSON.parse(readFileSync(viaDb, 'utf8')) as Report;
    checkReport(u);
    checkReport(d);
    expect({ ...d, generated_at: '' }).toEqual({ ...u, generated_at: '' });
    expect(readFileSync(html, 'utf8')).toContain('<svg');
  });

  it('sealtrail report refuses bad arguments and reports collector errors', async () => {
    await expect(reportCommand(['--from', FROM, '--to', TO])).rejects.toThrow(/--url URL or --db FILE/);
    await expect(reportCommand(['--db', c.dbPath, '--from', FROM])).rejects.toThrow(/--to/);
    await expect(reportCommand(['--db', c.dbPath, '--from', FROM, '--to', TO, '--verify', 'full'])).rejects.toThrow(/needs --url/);
    await expect(reportCommand(['--db', join(dir, 'missing.db'), '--from', FROM, '--to', TO])).rejects.toThrow(/no such file/);
    await expect(
      reportCommand(['--url', c.url, '--token', 'wrong-token-0123456789abc', '--from', FROM, '--to', TO, '--out', join(dir, 'x')]),
    ).rejects.toThrow(/HTTP 403 forbidden/);
    await expect(reportCommand(['--url', 'not a url', '--token', ADMIN_TOKEN, '--from', FROM, '--to', TO])).rejects.toThrow(/not a URL/);
    // A 200 answer that is not JSON (a proxy's page, say) is named, not a SyntaxError.
    const proxy = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>login</html>'));
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
      await expect(reportCommand(['--url', url, '--token', ADMIN_TOKEN, '--from', FROM, '--to', TO])).rejects.toThrow(
        /GET \/v1\/report: answer is not JSON/,
      );
    } finally {
      proxy.close();
    }
  });
});

describe('GET /v1/report on a null store', () => {
  it('answers 501 rather than an empty report', async () => {
    const store = new NullAuditStore();
    const running = await startCollector(
      { listen: { host: '127.0.0.1', port: 0 }, max_body_bytes: 1 << 20, admin_tokens: [ADMIN_TOKEN], streams: [], trust_on_first_use: false, hmac_keys: [] },
      store,
      memoryLogger().logger,
    );
    try {
      const res = await getJson(running.url, `/v1/report?from=${FROM}&to=${TO}`);
      expect(res.status).toBe(501);
      expect(res.body.error.code).toBe('report_unavailable');
    } finally {
      await running.close();
      await store.close();
    }
  });
});
