import type { ReportParamCode } from '../core/error-codes.js';
import { SealtrailError } from '../core/errors.js';
import { timeKey } from '../core/time-key.js';

/** Limits of a report request; shared by GET /v1/report and `sealtrail report --db`. */
export const REPORT_MAX_RANGE_DAYS = 366;
export const REPORT_DEFAULT_SILENCE_SECONDS = 300;
export const REPORT_MAX_SILENCE_SECONDS = 30 * 86_400;
export const REPORT_MAX_BUCKETS = 2000;
export const REPORT_FORMATS = ['json', 'html'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];
export const REPORT_VERIFY_MODES = ['ingest', 'full'] as const;
export type ReportVerifyMode = (typeof REPORT_VERIFY_MODES)[number];

/** Bucket widths chosen automatically: the smallest giving at most AUTO_BUCKETS bars. */
const AUTO_WIDTHS = [60, 300, 900, 3600, 6 * 3600, 86_400, 7 * 86_400];
const AUTO_BUCKETS = 200;

/** A report parameter that cannot be used, named by `param`; GET /v1/report answers it 400 query_invalid, the CLI as a usage error. */
export class ReportParamError extends SealtrailError<ReportParamCode> {
  readonly param: string;
  constructor(param: string, message: string) {
    super('query_invalid', message);
    this.param = param;
  }
}

export interface ReportParams {
  from: string;
  to: string;
  /** epoch microseconds */
  fromKey: number;
  toKey: number;
  bucketSeconds: number;
  silenceSeconds: number;
  format: ReportFormat;
  /** ingest: trust the checks made when batches were stored; full: re-verify the period's streams */
  verify: ReportVerifyMode;
}

export interface RawReportParams {
  from?: string | undefined;
  to?: string | undefined;
  format?: string | undefined;
  bucket?: string | undefined;
  silence?: string | undefined;
  verify?: string | undefined;
}

function seconds(raw: string | undefined, name: string, min: number, max: number): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^\d{1,10}$/.test(raw)) throw new ReportParamError(name, `"${name}" must be a whole number of seconds`);
  const n = Number(raw);
  if (n < min || n > max) throw new ReportParamError(name, `"${name}" must be between ${min} and ${max} seconds`);
  return n;
}

/** Validates the period and options; throws ReportParamError naming the parameter. */
export function readReportParams(raw: RawReportParams): ReportParams {
  const bound = (name: 'from' | 'to'): { text: string; key: number } => {
    const v = raw[name];
    if (v === undefined) throw new ReportParamError(name, `"${name}" is required (RFC 3339 timestamp with offset)`);
    const key = timeKey(v);
    if (key === undefined) throw new ReportParamError(name, `"${name}" must be an RFC 3339 timestamp with offset`);
    return { text: v, key };
  };
  const from = bound('from');
  const to = bound('to');
  if (to.key <= from.key) throw new ReportParamError('to', '"to" must be later than "from"');
  const rangeSeconds = (to.key - from.key) / 1e6;
  if (rangeSeconds > REPORT_MAX_RANGE_DAYS * 86_400) {
    throw new ReportParamError('to', `the period must not be longer than ${REPORT_MAX_RANGE_DAYS} days`);
  }
  const format = raw.format ?? 'json';
  if (!(REPORT_FORMATS as readonly string[]).includes(format)) {
    throw new ReportParamError('format', '"format" must be json or html');
  }
  let bucketSeconds = seconds(raw.bucket, 'bucket', 1, REPORT_MAX_RANGE_DAYS * 86_400);
  if (bucketSeconds === undefined) {
    bucketSeconds = AUTO_WIDTHS.find((w) => rangeSeconds / w <= AUTO_BUCKETS) ?? AUTO_WIDTHS[AUTO_WIDTHS.length - 1]!;
  } else if (Math.ceil(rangeSeconds / bucketSeconds) > REPORT_MAX_BUCKETS) {
    throw new ReportParamError('bucket', `"bucket" too small: the period would need more than ${REPORT_MAX_BUCKETS} bars`);
  }
  const silenceSeconds =
    seconds(raw.silence, 'silence', 1, REPORT_MAX_SILENCE_SECONDS) ?? REPORT_DEFAULT_SILENCE_SECONDS;
  const verify = raw.verify ?? 'ingest';
  if (!(REPORT_VERIFY_MODES as readonly string[]).includes(verify)) {
    throw new ReportParamError('verify', '"verify" must be ingest or full');
  }
  return {
    verify: verify as ReportVerifyMode,
    from: from.text,
    to: to.text,
    fromKey: from.key,
    toKey: to.key,
    bucketSeconds,
    silenceSeconds,
    format: format as ReportFormat,
  };
}
