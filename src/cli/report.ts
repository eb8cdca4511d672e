import { existsSync } from 'node:fs';
import { FileError, SealtrailError } from '../core/errors.js';
import { reportFromStore } from '../collector/report-from-store.js';
import { openSqliteStore } from '../collector/store/sqlite.js';
import { getJsonObject, getText } from '../evidence/http.js';
import { checkOutputPath, writeOutputPrivate } from '../fs/private-files.js';
import { renderHtml } from '../report/html.js';
import { readReportParams, ReportParamError, type RawReportParams, type ReportParams } from '../report/params.js';
import { TLS_ARG_SPEC, useCollectorTls } from './collector-tls.js';
import { checkUrl, resolveToken } from './filters.js';
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
    ...TLS_ARG_SPEC,
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
  // A bad --out is found before the report is built (or a collector asked).
  if (values.out !== undefined) checkOutputPath(values.out, '--out');
  useCollectorTls(values, values.url);
  const text = values.url !== undefined ? await fromCollector(checkUrl(values.url, 'report'), values.token, values) : await fromDb(values.db!, params);
  if (values.out !== undefined) {
    // Reports hold tenants, actors and counts: private like the store they come from.
    writeOutputPrivate(values.out, text, '--out');
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
    // Not SQLite (db_open_failed) keeps the code this condition always had.
    if (err instanceof FileError || (err instanceof SealtrailError && err.code !== 'db_open_failed')) throw err;
    throw new SealtrailError('db_unreadable', `--db ${path}: store cannot be opened (${(err as Error).message})`, { cause: err });
  }
  try {
    const report = await reportFromStore(store, params);
    return params.format === 'html' ? renderHtml(report) : `${JSON.stringify(report, null, 2)}\n`;
  } finally {
    await store.close();
  }
}

async function fromCollector(url: string, tokenArg: string | undefined, values: RawReportParams): Promise<string> {
  const token = resolveToken(tokenArg, 'report --url');
  const q = new URLSearchParams();
  for (const k of ['from', 'to', 'format', 'bucket', 'silence', 'verify'] as const) {
    const v = values[k];
    if (v !== undefined) q.set(k, v);
  }
  const path = `/v1/report?${q.toString()}`;
  if (values.format === 'html') return getText(url, path, token);
  // pretty-printed like the --db form
  return `${JSON.stringify(await getJsonObject(url, path, token), null, 2)}\n`;
}
