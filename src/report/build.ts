import { timeKey } from '../core/time-key.js';
import {
  REPORT_VERSION,
  type ActionEntry,
  type ApprovalEntry,
  type ChartBucket,
  type CountTable,
  type FullVerification,
  type Report,
  type ReportOptions,
  type ReportRecord,
  type ReportStreamInfo,
  type SilentPeriod,
  type StreamReport,
} from './types.js';

/** Caps that keep memory and output bounded whatever the agents wrote. */
export const REPORT_LIMITS = {
  /** distinct values tracked per counted field; later new values go to other_count */
  trackedValues: 10_000,
  /** values listed per count table */
  topValues: 100,
  /** characters kept of a record-supplied string */
  valueChars: 256,
  deniedItems: 200,
  approvalItems: 200,
  silentItems: 500,
} as const;

export const HEARTBEAT_EVENT = 'heartbeat';
/** A sidecar's report of the lines it refused (src/sidecar/seal/rejections.ts). */
export const INGEST_REJECTED_EVENT = 'ingest_rejected';

/** `details.counts` of an ingest_rejected record; anything malformed counts for nothing rather than failing the report. */
function refusalCounts(details: unknown): { source: string; reason: string; count: number }[] {
  const counts = (details as { counts?: unknown } | null)?.counts;
  if (!Array.isArray(counts)) return [];
  return counts.flatMap((c: unknown) => {
    const { source, reason, count } = (c ?? {}) as Record<string, unknown>;
    return typeof source === 'string' && typeof reason === 'string' && Number.isSafeInteger(count) && (count as number) > 0
      ? [{ source, reason, count: count as number }]
      : [];
  });
}
const DENIED = new Set(['denied']);
const FAILED = new Set(['failure', 'error']);
const APPROVAL_EVENTS = new Set(['approval_requested', 'approval_granted', 'approval_denied']);

function truncate(v: string): string {
  if (v.length <= REPORT_LIMITS.valueChars) return v;
  // by code point, so no lone surrogate is left at the cut
  const cps = Array.from(v.slice(0, REPORT_LIMITS.valueChars * 2));
  return cps.length <= REPORT_LIMITS.valueChars ? cps.join('') : `${cps.slice(0, REPORT_LIMITS.valueChars).join('')}…`;
}

function str(v: unknown): string | null {
  return typeof v === 'string' ? truncate(v) : null;
}

function member(v: unknown, key: string): unknown {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>)[key] : undefined;
}

function modelKey(model: unknown): string | null {
  const provider = str(member(model, 'provider'));
  const name = str(member(model, 'name'));
  if (name === null) return provider === null ? null : `${provider}/?`;
  return provider === null ? name : `${provider}/${name}`;
}

function approverOf(approval: unknown): string | null {
  const a = member(approval, 'approver');
  if (typeof a === 'string') return truncate(a);
  return str(member(a, 'id')) ?? str(member(a, 'name'));
}

class Counter {
  private readonly counts = new Map<string, number>();
  private nulls = 0;
  private overflow = 0;

  add(value: string | null, by = 1): void {
    if (value === null) {
      this.nulls += by;
      return;
    }
    const n = this.counts.get(value);
    if (n !== undefined) this.counts.set(value, n + by);
    else if (this.counts.size < REPORT_LIMITS.trackedValues) this.counts.set(value, by);
    else this.overflow += by;
  }

  get distinct(): number {
    return this.counts.size + (this.nulls > 0 ? 1 : 0);
  }

  table(): CountTable {
    const all: { value: string | null; count: number }[] = [...this.counts].map(([value, count]) => ({ value, count }));
    if (this.nulls > 0) all.push({ value: null, count: this.nulls });
    all.sort((a, b) => b.count - a.count || cmp(a.value, b.value));
    const top = all.slice(0, REPORT_LIMITS.topValues);
    const rest = all.slice(REPORT_LIMITS.topValues).reduce((n, e) => n + e.count, 0);
    return { top, distinct: this.distinct, other_count: rest + this.overflow };
  }
}

/** null sorts last; strings by code unit, so the order is the same everywhere */
function cmp(a: string | null, b: string | null): number {
  if (a === b) return 0;
  if (a === null) return 1;
  if (b === null) return -1;
  return a < b ? -1 : 1;
}

interface StreamAcc {
  records: number;
  heartbeats: number;
  firstKey: number;
  firstTime: string;
  lastKey: number;
  lastTime: string;
  minSeq: number;
  maxSeq: number;
  batches: Set<number>;
  covered: number;
  coveredUntilKey: number;
  coveredUntil: string | null;
  silent: number;
  longestSilence: number;
}

const isoOf = (key: number): string => new Date(Math.floor(key / 1000)).toISOString();

/**
 * Builds the report from the period's records, which must come in ascending
 * (time, stream, seq) order (as AuditStore.queryRecords returns them).
 * Memory is bounded by the caps in REPORT_LIMITS, the number of streams and
 * the number of batches in the period, never by the number of records.
 */
export async function buildReport(
  records: AsyncIterable<ReportRecord> | Iterable<ReportRecord>,
  streams: readonly ReportStreamInfo[],
  opts: ReportOptions,
): Promise<Report> {
  const fromKey = timeKey(opts.from);
  const toKey = timeKey(opts.to);
  if (fromKey === undefined || toKey === undefined || toKey <= fromKey) {
    throw new RangeError('buildReport: from and to must be RFC 3339 timestamps with from < to');
  }
  if (!Number.isSafeInteger(opts.bucketSeconds) || opts.bucketSeconds <= 0) throw new RangeError('buildReport: bad bucketSeconds');
  if (!(opts.silenceSeconds > 0)) throw new RangeError('buildReport: bad silenceSeconds');
  const bucketMicros = opts.bucketSeconds * 1e6;
  const silenceMicros = opts.silenceSeconds * 1e6;
  const nBuckets = Math.ceil((toKey - fromKey) / bucketMicros);
  const buckets: ChartBucket[] = [];
  for (let i = 0; i < nBuckets; i++) buckets.push({ start: isoOf(fromKey + i * bucketMicros), count: 0, heartbeats: 0 });

  const info = new Map(streams.map((s) => [s.stream, s]));
  const acc = new Map<string, StreamAcc>();
  const counts = {
    event_type: new Counter(),
    outcome: new Counter(),
    tenant: new Counter(),
    model: new Counter(),
    tool: new Counter(),
  };
  // What sidecars refused at ingest, from their ingest_rejected records: lines by source and reason.
  const refusedBy = new Counter();
  let refusedLines = 0;
  let refusalReports = 0;
  const approvalEvents = new Counter();
  const approvalStatus = new Counter();
  const denied: ActionEntry[] = [];
  const approvals: ApprovalEntry[] = [];
  const silent: SilentPeriod[] = [];
  let total = 0;
  let heartbeats = 0;
  let nDenied = 0;
  let nFailed = 0;
  let nApprovals = 0;
  let nSilent = 0;

  for await (const r of records) {
    if (r.timeKey < fromKey || r.timeKey >= toKey) continue;
    const rec = r.record;
    const time = typeof rec.time === 'string' ? truncate(rec.time) : isoOf(r.timeKey);
    const eventType = str(rec.event_type);
    const outcome = str(rec.outcome);
    const tenant = str(rec.tenant);
    const tool = str(member(rec.tool, 'name'));
    const isHeartbeat = eventType === HEARTBEAT_EVENT;
    total += 1;
    if (isHeartbeat) heartbeats += 1;
    counts.event_type.add(eventType);
    counts.outcome.add(outcome);
    counts.tenant.add(tenant);
    counts.model.add(modelKey(rec.model));
    counts.tool.add(tool);

    if (eventType === INGEST_REJECTED_EVENT && rec.source === 'sealtrail') {
      refusalReports += 1;
      for (const c of refusalCounts(rec.details)) {
        refusedLines += c.count;
        refusedBy.add(`${r.stream} · ${c.source} · ${c.reason}`, c.count);
      }
    }

    const b = buckets[Math.floor((r.timeKey - fromKey) / bucketMicros)];
    if (b) {
      b.count += 1;
      if (isHeartbeat) b.heartbeats += 1;
    }

    const actor = str(member(rec.actor, 'id'));
    const action = str(rec.action);
    if (outcome !== null && (DENIED.has(outcome) || FAILED.has(outcome))) {
      if (DENIED.has(outcome)) nDenied += 1;
      else nFailed += 1;
      if (denied.length < REPORT_LIMITS.deniedItems) {
        denied.push({
          time,
          stream: r.stream,
          seq: r.seq,
          event_type: eventType,
          outcome,
          tenant,
          actor,
          agent: str(member(rec.agent, 'id')) ?? str(member(rec.agent, 'name')),
          action,
          tool,
          policy_rule: str(member(rec.policy, 'rule')),
        });
      }
    }
    const status = str(member(rec.approval, 'status'));
    if ((eventType !== null && APPROVAL_EVENTS.has(eventType)) || status !== null) {
      nApprovals += 1;
      approvalEvents.add(eventType);
      approvalStatus.add(status);
      if (approvals.length < REPORT_LIMITS.approvalItems) {
        approvals.push({
          time,
          stream: r.stream,
          seq: r.seq,
          event_type: eventType,
          status,
          approver: approverOf(rec.approval),
          tenant,
          actor,
          action,
          tool,
        });
      }
    }

    const si = info.get(r.stream);
    const cpSize = si?.lastCheckpointSize ?? null;
    const covered = cpSize !== null && r.seq < cpSize;
    let s = acc.get(r.stream);
    if (s === undefined) {
      s = {
        records: 0,
        heartbeats: 0,
        firstKey: r.timeKey,
        firstTime: time,
        lastKey: r.timeKey,
        lastTime: time,
        minSeq: r.seq,
        maxSeq: r.seq,
        batches: new Set(),
        covered: 0,
        coveredUntilKey: -Infinity,
        coveredUntil: null,
        silent: 0,
        longestSilence: 0,
      };
      acc.set(r.stream, s);
    } else {
      const gap = r.timeKey - s.lastKey;
      if (gap > silenceMicros) {
        const secs = gap / 1e6;
        s.silent += 1;
        s.longestSilence = Math.max(s.longestSilence, secs);
        nSilent += 1;
        if (silent.length < REPORT_LIMITS.silentItems) silent.push({ stream: r.stream, from: s.lastTime, to: time, seconds: secs });
      }
      s.lastKey = r.timeKey;
      s.lastTime = time;
    }
    s.records += 1;
    if (isHeartbeat) s.heartbeats += 1;
    s.minSeq = Math.min(s.minSeq, r.seq);
    s.maxSeq = Math.max(s.maxSeq, r.seq);
    s.batches.add(r.batch);
    if (covered) {
      s.covered += 1;
      if (r.timeKey >= s.coveredUntilKey) {
        s.coveredUntilKey = r.timeKey;
        s.coveredUntil = time;
      }
    }
  }

  const streamReports: StreamReport[] = [...acc.keys()].sort(cmp).map((id) => {
    const s = acc.get(id)!;
    const si = info.get(id);
    const cpSize = si?.lastCheckpointSize ?? null;
    const uncovered = s.records - s.covered;
    let verification: StreamReport['verification'];
    if (!si) {
      verification = { status: 'unknown_stream', detail: 'the store does not list this stream' };
    } else if (uncovered > 0) {
      verification = {
        status: 'unanchored_records',
        detail: `${uncovered} record(s) of the period are not covered by a stored signed checkpoint (latest checkpoint tree size ${cpSize ?? 'none'}, ${si.treeSize} stored)`,
      };
    } else {
      verification = {
        status: 'verified_on_ingest',
        detail:
          `every stored batch was verified on ingest (signature, Merkle root, HMAC chain, no seq gap); ` +
          `latest signed checkpoint covers ${cpSize ?? 0} of ${si.treeSize} stored records` +
          (cpSize === si.treeSize ? '' : ' (MISMATCH)'),
      };
    }
    return {
      stream: id,
      known: si !== undefined,
      tree_size: si?.treeSize ?? null,
      records_in_period: s.records,
      heartbeats_in_period: s.heartbeats,
      first_record_time: s.firstTime,
      last_record_time: s.lastTime,
      first_seq: s.minSeq,
      last_seq: s.maxSeq,
      checkpoints_in_period: s.batches.size,
      checkpoint_coverage: {
        last_checkpoint_tree_size: cpSize,
        last_checkpoint_at: si?.lastCheckpointAt ?? null,
        covered_records: s.covered,
        uncovered_records: uncovered,
        covered_until: s.coveredUntil,
        complete: uncovered === 0,
      },
      silent_periods: s.silent,
      longest_silence_seconds: s.longestSilence,
      verification,
    };
  });

  return {
    report_version: REPORT_VERSION,
    generated_at: opts.generatedAt ?? new Date().toISOString(),
    period: {
      from: isoOf(fromKey),
      to: isoOf(toKey),
      bucket_seconds: opts.bucketSeconds,
      silence_threshold_seconds: opts.silenceSeconds,
    },
    totals: {
      records: total,
      events: total - heartbeats,
      heartbeats,
      streams_with_records: acc.size,
      streams_total: streams.length,
      tenants: counts.tenant.distinct,
      denied: nDenied,
      failed: nFailed,
      approvals: nApprovals,
      silent_periods: nSilent,
    },
    counts: {
      event_type: counts.event_type.table(),
      outcome: counts.outcome.table(),
      tenant: counts.tenant.table(),
      model: counts.model.table(),
      tool: counts.tool.table(),
    },
    denied_and_failed: { total: nDenied + nFailed, items: denied, more: nDenied + nFailed - denied.length },
    ingest_rejected: { reports: refusalReports, lines: refusedLines, by_source_reason: refusedBy.table() },
    approvals: {
      total: nApprovals,
      by_event_type: approvalEvents.table(),
      by_status: approvalStatus.table(),
      items: approvals,
      more: nApprovals - approvals.length,
    },
    streams: streamReports,
    silent_periods: { total: nSilent, items: silent, more: nSilent - silent.length },
    chart: { bucket_seconds: opts.bucketSeconds, buckets },
    verification: {
      method: 'ingest',
      note:
        'The collector stores a batch only after verifying its signed checkpoint, Merkle root, HMAC chain and ' +
        'sequence numbers, so stored records were verified on ingest. This report does not re-verify them: ' +
        'run `sealtrail verify` (or the collector\'s verify API) for an independent check.',
    },
  };
}

/**
 * Replaces the cheap per-stream status with the result of a full
 * re-verification (the caller runs it, e.g. the collector's verify logic).
 */
export function applyFullVerification(report: Report, results: ReadonlyMap<string, FullVerification>): void {
  for (const s of report.streams) {
    const v = results.get(s.stream);
    if (!v) continue;
    if (v.ok) {
      s.verification = {
        status: s.checkpoint_coverage.complete ? 'verified' : 'unanchored_records',
        detail:
          `re-verified in full for this report: ${v.checked_records} record(s), ${v.checked_checkpoints} signed checkpoint(s), ` +
          `HMAC chain ${v.chain_checked ? 'checked' : 'not checked (no key held)'}` +
          (s.checkpoint_coverage.complete ? '' : `; ${s.checkpoint_coverage.uncovered_records} record(s) of the period not yet covered by a checkpoint`),
        full: v,
      };
    } else {
      const f = v.first_failure;
      s.verification = {
        status: 'verification_failed',
        detail: f ? `${f.code}${f.seq === undefined ? '' : ` at seq ${f.seq}`}: ${f.reason}` : 'verification failed',
        full: v,
      };
    }
  }
  report.verification = {
    method: 'full',
    note:
      'Every stream with records in the period was re-verified in full from the stored records when this report ' +
      'was made: signatures of all stored checkpoints, Merkle roots, the HMAC chain where the collector holds the key, ' +
      'and sequence numbers.',
  };
}
