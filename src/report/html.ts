import type { ActionEntry, ApprovalEntry, ChartBucket, CountTable, Report, SilentPeriod, StreamReport } from './types.js';

/**
 * Renders a report as one standalone HTML page: inline CSS, an inline SVG
 * chart, no script, no external asset. Record values are agent-supplied, so
 * every dynamic string (and number) goes through esc(); the page also carries
 * a Content-Security-Policy that forbids scripts should anything slip.
 */

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for HTML element content and quoted attribute values alike. */
export function esc(v: unknown): string {
  return String(v).replace(/[&<>"']/g, (c) => ESC[c]!);
}

const VERIFIED = new Set<string>(['verified_on_ingest', 'verified']);

const CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; base-uri 'none'; form-action 'none'";
export const REPORT_HTML_CSP = CSP;

const CSS = `
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1f24;margin:0;background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:24px 32px 48px;background:#fff}
h1{font-size:1.6em;margin:0 0 4px}h2{font-size:1.2em;margin:32px 0 8px;border-bottom:2px solid #dde1e6;padding-bottom:4px}
h3{font-size:1em;margin:16px 0 6px}
.meta{color:#555;margin:0 0 16px}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{border:1px solid #dde1e6;border-radius:6px;padding:10px 14px;min-width:120px}
.card .n{font-size:1.5em;font-weight:600}.card .l{color:#555;font-size:.85em}
.card.warn{border-color:#d97706;background:#fffbeb}.card.bad{border-color:#b91c1c;background:#fef2f2}
table{border-collapse:collapse;width:100%;font-size:.9em;margin:4px 0 8px}
th,td{border:1px solid #dde1e6;padding:4px 8px;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:#f0f2f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:8px 24px}
.ok{color:#166534;font-weight:600}.fail{color:#b91c1c;font-weight:600}
.none{color:#777;font-style:italic}.note{color:#555;font-size:.9em}
svg{max-width:100%;height:auto}
@media print{body{background:#fff}main{padding:0}}
`;

function num(n: number): string {
  return esc(n.toLocaleString('en-US'));
}

function val(v: string | null): string {
  return v === null ? '<span class="none">(none)</span>' : esc(v);
}

export function duration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const parts: string[] = [];
  const d = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  if (d) parts.push(`${d} d`);
  if (h) parts.push(`${h} h`);
  if (m) parts.push(`${m} min`);
  if (rest && !d) parts.push(`${rest} s`);
  return parts.join(' ');
}

function card(label: string, n: number, cls = ''): string {
  return `<div class="card${cls ? ` ${cls}` : ''}"><div class="n">${num(n)}</div><div class="l">${esc(label)}</div></div>`;
}

function countTable(title: string, t: CountTable, unit = 'records'): string {
  const rows = t.top.map((e) => `<tr><td>${val(e.value)}</td><td class="num">${num(e.count)}</td></tr>`).join('');
  const other =
    t.other_count > 0
      ? `<tr><td class="none">other values</td><td class="num">${num(t.other_count)}</td></tr>`
      : '';
  const body = rows || other ? rows + other : '<tr><td colspan="2" class="none">no records</td></tr>';
  return `<div><h3>${esc(title)} <span class="note">(${num(t.distinct)} distinct)</span></h3><table><thead><tr><th>${esc(title)}</th><th>${esc(unit)}</th></tr></thead><tbody>${body}</tbody></table></div>`;
}

function more(n: number): string {
  return n > 0 ? `<p class="note">… and ${num(n)} more not listed (use GET /v1/audit to list them all).</p>` : '';
}

function actionsTable(items: ActionEntry[]): string {
  if (items.length === 0) return '<p class="none">No denied or failed actions in the period.</p>';
  const rows = items
    .map(
      (a) =>
        `<tr><td>${esc(a.time)}</td><td>${esc(a.outcome ?? '')}</td><td>${val(a.event_type)}</td><td>${val(a.tenant)}</td><td>${val(a.actor)}</td><td>${val(a.agent)}</td><td>${val(a.action)}</td><td>${val(a.tool)}</td><td>${val(a.policy_rule)}</td><td>${esc(a.stream)} #${esc(a.seq)}</td></tr>`,
    )
    .join('');
  return `<table><thead><tr><th>time</th><th>outcome</th><th>event type</th><th>tenant</th><th>actor</th><th>agent</th><th>action</th><th>tool</th><th>policy rule</th><th>stream #seq</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function approvalsTable(items: ApprovalEntry[]): string {
  if (items.length === 0) return '<p class="none">No approval events in the period.</p>';
  const rows = items
    .map(
      (a) =>
        `<tr><td>${esc(a.time)}</td><td>${val(a.event_type)}</td><td>${val(a.status)}</td><td>${val(a.approver)}</td><td>${val(a.tenant)}</td><td>${val(a.actor)}</td><td>${val(a.action)}</td><td>${val(a.tool)}</td><td>${esc(a.stream)} #${esc(a.seq)}</td></tr>`,
    )
    .join('');
  return `<table><thead><tr><th>time</th><th>event type</th><th>status</th><th>approver</th><th>tenant</th><th>actor</th><th>action</th><th>tool</th><th>stream #seq</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function streamsTable(streams: StreamReport[]): string {
  if (streams.length === 0) return '<p class="none">No stream wrote records in the period.</p>';
  const rows = streams
    .map((s) => {
      const c = s.checkpoint_coverage;
      const ok = VERIFIED.has(s.verification.status);
      return (
        `<tr><td>${esc(s.stream)}</td><td class="num">${s.tree_size === null ? '?' : num(s.tree_size)}</td>` +
        `<td class="num">${num(s.records_in_period)}</td><td class="num">${num(s.heartbeats_in_period)}</td>` +
        `<td>${esc(s.first_record_time ?? '')}<br>${esc(s.last_record_time ?? '')}</td>` +
        `<td class="num">${num(s.checkpoints_in_period)}</td>` +
        `<td>${c.complete ? '<span class="ok">complete</span>' : `<span class="fail">${num(c.uncovered_records)} uncovered</span>`}` +
        `<br><span class="note">latest checkpoint: tree size ${c.last_checkpoint_tree_size === null ? 'none' : num(c.last_checkpoint_tree_size)}` +
        `${c.last_checkpoint_at ? `, stored ${esc(c.last_checkpoint_at)}` : ''}; covers records up to ${esc(c.covered_until ?? '—')}</span></td>` +
        `<td class="num">${num(s.silent_periods)}${s.silent_periods ? `<br><span class="note">longest ${esc(duration(s.longest_silence_seconds))}</span>` : ''}</td>` +
        `<td><span class="${ok ? 'ok' : 'fail'}">${esc(s.verification.status.replaceAll('_', ' '))}</span><br><span class="note">${esc(s.verification.detail)}</span></td></tr>`
      );
    })
    .join('');
  return `<table><thead><tr><th>stream</th><th>tree size</th><th>records</th><th>heartbeats</th><th>first / last record</th><th>checkpoints</th><th>checkpoint coverage</th><th>silent periods</th><th>verification</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function silentTable(items: SilentPeriod[], threshold: number): string {
  if (items.length === 0) {
    return `<p class="none">No stream was silent for longer than ${esc(duration(threshold))} between two of its records.</p>`;
  }
  const rows = items
    .map(
      (p) =>
        `<tr><td>${esc(p.stream)}</td><td>${esc(p.from)}</td><td>${esc(p.to)}</td><td class="num">${esc(duration(p.seconds))}</td></tr>`,
    )
    .join('');
  return `<table><thead><tr><th>stream</th><th>last record before</th><th>first record after</th><th>silent for</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function label(iso: string, bucketSeconds: number): string {
  // "2026-03-01T12:00:00.000Z" → "2026-03-01 12:00" (date only for day-wide bars)
  return bucketSeconds >= 86_400 ? iso.slice(0, 10) : `${iso.slice(0, 10)} ${iso.slice(11, 16)}`;
}

/** Inline SVG bar chart of records per bucket: agent events dark, heartbeats light, stacked. */
export function renderChart(buckets: ChartBucket[], bucketSeconds: number): string {
  const W = 960;
  const H = 280;
  const left = 56;
  const right = 12;
  const top = 16;
  const bottom = 48;
  const pw = W - left - right;
  const ph = H - top - bottom;
  const max = Math.max(1, ...buckets.map((b) => b.count));
  const n = Math.max(1, buckets.length);
  const bw = pw / n;
  const gap = bw > 4 ? Math.min(2, bw * 0.15) : 0;
  const y = (v: number): number => top + ph - (v / max) * ph;
  const f = (v: number): string => (Math.round(v * 100) / 100).toString();
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-labelledby="chart-title">`,
    `<title id="chart-title">Records over time, ${esc(duration(bucketSeconds))} per bar</title>`,
    `<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`,
  );
  for (const v of max >= 2 ? [0, Math.round(max / 2), max] : [0, max]) {
    const yy = f(y(v));
    parts.push(
      `<line x1="${left}" y1="${yy}" x2="${W - right}" y2="${yy}" stroke="#dde1e6" stroke-width="1"/>`,
      `<text x="${left - 6}" y="${yy}" font-size="11" text-anchor="end" dominant-baseline="middle" fill="#555">${esc(Math.round(v).toLocaleString('en-US'))}</text>`,
    );
  }
  buckets.forEach((b, i) => {
    const x = left + i * bw + gap / 2;
    const w = Math.max(0.5, bw - gap);
    const events = b.count - b.heartbeats;
    const tip = `${label(b.start, bucketSeconds)}: ${b.count} record(s), ${events} event(s), ${b.heartbeats} heartbeat(s)`;
    if (b.count === 0) return;
    parts.push(`<g class="bar"><title>${esc(tip)}</title>`);
    if (events > 0) {
      parts.push(`<rect x="${f(x)}" y="${f(y(events))}" width="${f(w)}" height="${f(y(0) - y(events))}" fill="#1d4ed8"/>`);
    }
    if (b.heartbeats > 0) {
      parts.push(`<rect x="${f(x)}" y="${f(y(b.count))}" width="${f(w)}" height="${f(y(events) - y(b.count))}" fill="#9ca3af"/>`);
    }
    parts.push('</g>');
  });
  parts.push(`<line x1="${left}" y1="${f(y(0))}" x2="${W - right}" y2="${f(y(0))}" stroke="#1b1f24" stroke-width="1"/>`);
  const ticks = Math.min(6, buckets.length);
  for (let t = 0; t < ticks; t++) {
    const i = ticks === 1 ? 0 : Math.round((t * (buckets.length - 1)) / (ticks - 1));
    const b = buckets[i]!;
    const x = left + i * bw + bw / 2;
    // the outermost labels align to the plot's edges so they are not cut off
    const anchor = ticks > 1 && t === 0 ? 'start' : ticks > 1 && t === ticks - 1 ? 'end' : 'middle';
    const tx = anchor === 'start' ? left + i * bw : anchor === 'end' ? left + (i + 1) * bw : x;
    parts.push(
      `<text x="${f(tx)}" y="${H - bottom + 16}" font-size="11" text-anchor="${anchor}" fill="#555">${esc(label(b.start, bucketSeconds))}</text>`,
    );
  }
  parts.push(
    `<rect x="${left}" y="${H - 18}" width="10" height="10" fill="#1d4ed8"/><text x="${left + 14}" y="${H - 9}" font-size="11" fill="#1b1f24">agent events</text>`,
    `<rect x="${left + 110}" y="${H - 18}" width="10" height="10" fill="#9ca3af"/><text x="${left + 124}" y="${H - 9}" font-size="11" fill="#1b1f24">sidecar heartbeats</text>`,
    '</svg>',
  );
  return parts.join('');
}

export function renderHtml(report: Report): string {
  const t = report.totals;
  const p = report.period;
  const unanchored = report.streams.filter((s) => !s.checkpoint_coverage.complete).length;
  const notVerified = report.streams.filter((s) => !VERIFIED.has(s.verification.status)).length;
  const body = [
    `<h1>Audit trail report</h1>`,
    `<p class="meta">Period <strong>${esc(p.from)}</strong> to <strong>${esc(p.to)}</strong> (end exclusive) · generated ${esc(report.generated_at)} by sealtrail</p>`,
    `<h2>Summary</h2><div class="cards">`,
    card('records', t.records),
    card('agent events', t.events),
    card('sidecar heartbeats', t.heartbeats),
    card('tenants', t.tenants),
    card('streams with records', t.streams_with_records),
    card('denied actions', t.denied, t.denied ? 'warn' : ''),
    card('failed actions', t.failed, t.failed ? 'warn' : ''),
    card('approval events', t.approvals),
    card('lines refused at ingest', report.ingest_rejected.lines, report.ingest_rejected.lines ? 'warn' : ''),
    card('silent periods', t.silent_periods, t.silent_periods ? 'warn' : ''),
    card('streams not fully anchored', unanchored, unanchored ? 'bad' : ''),
    `</div>`,
    `<p>${
      notVerified === 0
        ? report.verification.method === 'full'
          ? `<span class="ok">Integrity:</span> every stream with records in the period was re-verified in full for this report, and every record is covered by a stored signed checkpoint.`
          : `<span class="ok">Integrity:</span> every stream with records in the period consists of batches that were verified when the collector stored them, and every record is covered by a stored signed checkpoint.`
        : `<span class="fail">Integrity:</span> ${num(notVerified)} stream(s) need attention; see the streams table.`
    } <span class="note">${esc(report.verification.note)}</span></p>`,
    `<h2>Events over time</h2>`,
    renderChart(report.chart.buckets, report.chart.bucket_seconds),
    `<p class="note">One bar per ${esc(duration(report.chart.bucket_seconds))}. Heartbeats are records a sidecar writes while its agent is idle.</p>`,
    `<h2>Activity</h2><div class="grid">`,
    countTable('event type', report.counts.event_type),
    countTable('outcome', report.counts.outcome),
    countTable('tenant', report.counts.tenant),
    countTable('model', report.counts.model),
    countTable('tool', report.counts.tool),
    `</div>`,
    `<h2>Denied and failed actions (${num(report.denied_and_failed.total)})</h2>`,
    actionsTable(report.denied_and_failed.items),
    more(report.denied_and_failed.more),
    `<h2>Refused at ingest (${num(report.ingest_rejected.lines)} line(s))</h2>`,
    `<p class="note">Lines a sidecar could not turn into records, from its ${num(report.ingest_rejected.reports)} ingest_rejected record(s); the lines stay where the agent wrote them (see the runbook, "Records refused at ingest").</p>`,
    countTable('stream · source · reason', report.ingest_rejected.by_source_reason, 'lines'),
    `<h2>Approvals (${num(report.approvals.total)})</h2><div class="grid">`,
    countTable('approval event', report.approvals.by_event_type),
    countTable('approval status', report.approvals.by_status),
    `</div>`,
    approvalsTable(report.approvals.items),
    more(report.approvals.more),
    `<h2>Streams, checkpoints and verification</h2>`,
    `<p class="note">${num(t.streams_with_records)} of ${num(t.streams_total)} stream(s) in the store wrote records in the period. A record is covered when its sequence number is below the tree size of the stream's latest stored signed checkpoint.</p>`,
    streamsTable(report.streams),
    `<h2>Gaps and silent periods (${num(report.silent_periods.total)})</h2>`,
    `<p class="note">An idle sidecar still writes a heartbeat record regularly, so a stream silent for longer than ${esc(duration(p.silence_threshold_seconds))} means its sidecar (or the agent pod) was not running. Sequence gaps cannot occur in a verified store.</p>`,
    silentTable(report.silent_periods.items, p.silence_threshold_seconds),
    more(report.silent_periods.more),
  ].join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${esc(CSP)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>sealtrail audit report ${esc(p.from)} to ${esc(p.to)}</title>
<style>${CSS}</style>
</head>
<body><main>
${body}
</main></body>
</html>
`;
}
