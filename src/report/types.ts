/**
 * The compliance report: a JSON value built from the records of one period.
 * Every string that came from a record is agent-supplied and untrusted; the
 * HTML renderer escapes all of them.
 */

export const REPORT_VERSION = 1;

/** One record as the report reads it: the parsed canonical record plus where it is stored. */
export interface ReportRecord {
  stream: string;
  seq: number;
  /** the batch (signed checkpoint) that holds the record */
  batch: number;
  /** record time as epoch microseconds (see core/time-key.ts) */
  timeKey: number;
  record: Record<string, unknown>;
}

/** What the store knows about a stream, independent of the period. */
export interface ReportStreamInfo {
  stream: string;
  /** records ever accepted (== next seq) */
  treeSize: number;
  /** tree size of the latest stored signed checkpoint, null before the first batch */
  lastCheckpointSize: number | null;
  /** collector time the latest checkpoint was stored, null when unknown */
  lastCheckpointAt: string | null;
}

export interface ReportOptions {
  /** inclusive, RFC 3339 */
  from: string;
  /** exclusive, RFC 3339 */
  to: string;
  /** width of a chart bucket in seconds */
  bucketSeconds: number;
  /** a stream silent for longer than this (seconds) between two records is reported */
  silenceSeconds: number;
  /** optional: when the report was made (RFC 3339); defaults to now */
  generatedAt?: string;
}

export interface CountEntry {
  /** null when the record has no such field (or it is not a string) */
  value: string | null;
  count: number;
}

export interface CountTable {
  /** the most frequent values, most frequent first (ties by value) */
  top: CountEntry[];
  /** distinct values counted (values beyond the tracking cap are folded into other_count) */
  distinct: number;
  /** how many records fall under values not listed in `top` */
  other_count: number;
}

export interface ActionEntry {
  time: string;
  stream: string;
  seq: number;
  event_type: string | null;
  outcome: string | null;
  tenant: string | null;
  actor: string | null;
  agent: string | null;
  action: string | null;
  tool: string | null;
  policy_rule: string | null;
}

export interface ApprovalEntry {
  time: string;
  stream: string;
  seq: number;
  event_type: string | null;
  status: string | null;
  approver: string | null;
  tenant: string | null;
  actor: string | null;
  action: string | null;
  tool: string | null;
}

export interface SilentPeriod {
  stream: string;
  /** time of the last record before the silence */
  from: string;
  /** time of the first record after it */
  to: string;
  seconds: number;
}

export interface StreamReport {
  stream: string;
  /** false when the store no longer lists the stream (should not happen) */
  known: boolean;
  tree_size: number | null;
  records_in_period: number;
  heartbeats_in_period: number;
  first_record_time: string | null;
  last_record_time: string | null;
  first_seq: number | null;
  last_seq: number | null;
  /** distinct batches, i.e. signed checkpoints, holding the period's records */
  checkpoints_in_period: number;
  checkpoint_coverage: {
    last_checkpoint_tree_size: number | null;
    last_checkpoint_at: string | null;
    /** records of the period with seq < last_checkpoint_tree_size */
    covered_records: number;
    uncovered_records: number;
    /** latest record time of the period covered by a stored checkpoint */
    covered_until: string | null;
    complete: boolean;
  };
  silent_periods: number;
  longest_silence_seconds: number;
  verification: {
    /**
     * verified_on_ingest: batches were verified when stored (the cheap check);
     * verified / verification_failed: re-verified in full for this report (verify=full)
     */
    status: 'verified_on_ingest' | 'unanchored_records' | 'unknown_stream' | 'verified' | 'verification_failed';
    detail: string;
    /** present after a full re-verification */
    full?: FullVerification;
  };
}

/** Result of re-verifying a whole stream (collector GET /v1/verify logic). */
export interface FullVerification {
  ok: boolean;
  tree_size: number;
  checked_records: number;
  checked_checkpoints: number;
  chain_checked: boolean;
  first_failure?: { code: string; seq?: number; reason: string };
}

export interface ChartBucket {
  /** bucket start, RFC 3339 UTC */
  start: string;
  count: number;
  heartbeats: number;
}

export interface Report {
  report_version: number;
  generated_at: string;
  period: { from: string; to: string; bucket_seconds: number; silence_threshold_seconds: number };
  totals: {
    records: number;
    /** records that are not heartbeats */
    events: number;
    heartbeats: number;
    streams_with_records: number;
    streams_total: number;
    tenants: number;
    denied: number;
    failed: number;
    approvals: number;
    silent_periods: number;
  };
  counts: {
    event_type: CountTable;
    outcome: CountTable;
    tenant: CountTable;
    /** "provider/name" (or just the name) */
    model: CountTable;
    tool: CountTable;
  };
  denied_and_failed: { total: number; items: ActionEntry[]; more: number };
  /** lines sidecars refused at ingest, from their ingest_rejected records; key "stream · source · reason", counts are lines */
  ingest_rejected: { reports: number; lines: number; by_source_reason: CountTable };
  approvals: {
    total: number;
    by_event_type: CountTable;
    by_status: CountTable;
    items: ApprovalEntry[];
    more: number;
  };
  streams: StreamReport[];
  silent_periods: { total: number; items: SilentPeriod[]; more: number };
  chart: { bucket_seconds: number; buckets: ChartBucket[] };
  verification: { method: 'ingest' | 'full'; note: string };
}
