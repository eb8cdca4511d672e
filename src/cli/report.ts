import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'undici';
import { SealtrailError } from '../core/errors.js';
import { openSqliteStore } from '../collector/store/sqlite.js';
import { renderHtml } from '../report/html.js';
import { readReportParams, ReportParamError, type ReportParams } from '../report/params.js';
import { reportFromStore } from '../report/store.js';
import { EXIT_OK, parse, UsageError } from './usage.js';

/**
 * sealtrail report --from T --to T [--format json|html] [--out FILE] [--bucket S] [--silence S] [--verify ingest|full]
 *   (--url URL [--token TOKEN] | --db collector.db)
 *
 * With --url the collector builds the report (GET /v1/report); with --db it
 * is built here from a collector's SQLite store (a copy is fine).
 */
export async function reportCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    url: { type: 'string' },
    token: { type: 'string' },
    db: { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
    format: { type: 'string' },
    bucket: { type: 'string' },
    silence: { type: 'string' },
    verify: { type: 'string' },
    out: { type: 'string' },
  });
  if ((values.db === undefined) === (values.url === undefined)) throw new UsageError('report needs exactly one of --url URL or --db FILE');
  let params: ReportParams;
  try {
    params = readReportParams(values);
  } catch (err) {
    if (err instanceof ReportParamError) throw new UsageError(err.message.replace(/"(\w+)"/, '--$1'));
    throw err;
  }
  if (params.verify === 'full' && values.db !== undefined) {
    throw new UsageError('--verify full needs --url (offline, run `sealtrail verify --db FILE --keys DIR`)');
  }
  const text = values.url !== undefined ? await fromCollector(values.url, values.token, values) : await fromDb(values.db!, params);
  if (values.out !== undefined) {
    writeFileSync(values.out, text);
    process.stderr.write(`report written to ${values.out}\n`);
  } else {
    process.stdout.write(text);
  }
  return EXIT_OK;
}

async function fromDb(path: string, params: ReportParams): Promise<string> {
  if (!existsSync(path)) throw new UsageError(`--db ${path}: no such file`);
  let store;
  try {
    store = openSqliteStore(path);
  } catch (err) {
    if (err instanceof SealtrailError) throw err;
    throw new SealtrailError('db_unreadable', `--db ${path}: store cannot be opened (${(err as Error).message})`, { cause: err });
  }
  try {
    const report = await reportFromStore(store, params);
    return params.format === 'html' ? renderHtml(report) : `${JSON.stringify(report, null, 2)}\n`;
  } finally {
    await store.close();
  }
}

async function fromCollector(
  url: string,
  tokenArg: string | undefined,
  values: { from?: string; to?: string; format?: string; bucket?: string; silence?: string; verify?: string },
): Promise<string> {
  const token = tokenArg ?? process.env.SEALTRAIL_ADMIN_TOKEN ?? readDevToken();
  if (!token) throw new UsageError('report --url needs an admin token: --token, SEALTRAIL_ADMIN_TOKEN or ./.sealtrail/admin.token');
  let base: URL;
  try {
    base = new URL('/v1/report', url);
  } catch {
    throw new UsageError(`--url ${url}: not a URL`);
  }
  for (const k of ['from', 'to', 'format', 'bucket', 'silence', 'verify'] as const) {
    const v = values[k];
    if (v !== undefined) base.searchParams.set(k, v);
  }
  let res;
  try {
    res = await request(base, { method: 'GET', headers: { authorization: `Bearer ${token}` } });
  } catch (err) {
    throw new SealtrailError('collector_unreachable', `${base.origin}: ${(err as Error).message}`, { cause: err });
  }
  const text = await res.body.text();
  if (res.statusCode !== 200) {
    let detail = `HTTP ${res.statusCode}`;
    try {
      const e = (JSON.parse(text) as { error?: { code?: string; message?: string } }).error;
      if (e?.code) detail += ` ${e.code}: ${e.message ?? ''}`;
    } catch {
      /* not JSON: status alone */
    }
    throw new SealtrailError('report_failed', `collector refused the report (${detail})`);
  }
  if ((values.format ?? 'json') === 'json') {
    // pretty-printed like the --db form
    return `${JSON.stringify(JSON.parse(text), null, 2)}\n`;
  }
  return text;
}

function readDevToken(): string | undefined {
  try {
    return readFileSync('./.sealtrail/admin.token', 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}
