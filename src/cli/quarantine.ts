/**
 * `sealtrail quarantine --db FILE [--source ID] [--reason R] [--limit N] [--json]`:
 * what a sidecar refused at ingest, read from its buffer (read-only, safe
 * beside a running sidecar): when, which source, where (file and byte offset,
 * socket connection and line, HTTP or OTLP request and index), why, and the
 * field at fault. Never the line's bytes: the buffer does not hold them.
 * Whether each was already reported upstream in an `ingest_rejected` record
 * is shown too.
 */
import { existsSync, statSync } from 'node:fs';
import type Database from 'better-sqlite3';
import { BufferError } from '../core/errors.js';
import { REPORT_KEY } from '../sidecar/seal/rejections.js';
import { RESERVED_SOURCE_ID } from '../config/defaults.js';
import { openDatabase } from '../sqlite/open.js';
import { EXIT_OK, parse, UsageError } from './usage.js';

interface Row {
  id: number;
  at: string;
  source: string;
  reason: string;
  field: string | null;
  path: string;
  file_key: string;
  offset: number;
  length: number;
  message: string;
}

const MAX_LIMIT = 1_000_000;

export async function quarantineCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    db: { type: 'string' },
    source: { type: 'string' },
    reason: { type: 'string' },
    limit: { type: 'string' },
    json: { type: 'boolean' },
  });
  const file = values.db;
  if (file === undefined) throw new UsageError('quarantine needs --db FILE (the sidecar buffer, <data_dir>/buffer.db)');
  if (!existsSync(file)) throw new UsageError(`--db ${file}: no such file`);
  if (statSync(file).isDirectory()) throw new UsageError(`--db ${file}: is a directory; give the buffer file, <data_dir>/buffer.db`);
  let limit = 1000;
  if (values.limit !== undefined) {
    if (!/^[1-9][0-9]{0,6}$/.test(values.limit) || Number(values.limit) > MAX_LIMIT) {
      throw new UsageError(`--limit ${values.limit}: expected a whole number from 1 to ${MAX_LIMIT}`);
    }
    limit = Number(values.limit);
  }
  const db = openDatabase(file, { readonly: true });
  try {
    let rows: Row[];
    let reportedThrough: number;
    try {
      rows = read(db, file, values.source, values.reason, limit);
      reportedThrough = reported(db);
    } catch (err) {
      // SQLite reads the header lazily: a file that is not a database fails at the first query.
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'string' && code.startsWith('SQLITE_')) {
        throw new BufferError('db_unknown', `${file} cannot be read as a sealtrail sidecar buffer (${code}); give <data_dir>/buffer.db`, { cause: err });
      }
      throw err;
    }
    if (values.json) {
      for (const r of rows) process.stdout.write(`${JSON.stringify(toJson(r, reportedThrough))}\n`);
    } else {
      process.stdout.write(table(rows, reportedThrough));
    }
  } finally {
    db.close();
  }
  return EXIT_OK;
}

function read(db: Database.Database, file: string, source: string | undefined, reason: string | undefined, limit: number): Row[] {
  const table = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'quarantine'").get();
  if (!table) throw new BufferError('db_unknown', `${file} is not a sealtrail sidecar buffer (no quarantine table)`);
  // A buffer written before the field column (migration 3) lists NULL fields.
  const hasField = (db.prepare('PRAGMA table_info(quarantine)').all() as { name: string }[]).some((c) => c.name === 'field');
  const where: string[] = [];
  const args: (string | number)[] = [];
  if (source !== undefined) {
    where.push('source = ?');
    args.push(source);
  }
  if (reason !== undefined) {
    where.push('reason = ?');
    args.push(reason);
  }
  const sql =
    `SELECT id, at, source, reason, ${hasField ? 'field' : 'NULL AS field'}, path, file_key, offset, length, message FROM quarantine` +
    (where.length ? ` WHERE ${where.join(' AND ')}` : '') +
    ' ORDER BY id LIMIT ?';
  return db.prepare(sql).all(...args, limit) as Row[];
}

/** The last quarantine row id an ingest_rejected record covers (0: none yet). */
function reported(db: Database.Database): number {
  const row = db.prepare('SELECT offset FROM positions WHERE source = ? AND key = ?').get(RESERVED_SOURCE_ID, REPORT_KEY) as { offset: number } | undefined;
  return row?.offset ?? 0;
}

function toJson(r: Row, reportedThrough: number): Record<string, unknown> {
  const out: Record<string, unknown> = { at: r.at, source: r.source, reason: r.reason };
  if (r.field !== null) out.field = r.field;
  Object.assign(out, { path: r.path, file_key: r.file_key, offset: r.offset, length: r.length, message: r.message });
  // The sidecar's own rows are never reported upstream (a report of a report could loop).
  if (r.source !== RESERVED_SOURCE_ID) out.reported = r.id <= reportedThrough;
  return out;
}

function table(rows: Row[], reportedThrough: number): string {
  if (rows.length === 0) return 'no quarantined lines\n';
  const head = ['AT', 'SOURCE', 'REASON', 'FIELD', 'WHERE', 'REPORTED', 'MESSAGE'];
  const body = rows.map((r) =>
    [r.at, r.source, r.reason, r.field ?? '-', `${r.path} @${r.offset}+${r.length}`, reportedText(r, reportedThrough), r.message].map(printable),
  );
  // Every column but the last is padded; the message runs to the end of the line.
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i < cells.length - 1 ? c.padEnd(widths[i]!) : c)).join('  ');
  return `${[line(head), ...body.map(line)].join('\n')}\n`;
}

/**
 * A file name may hold control characters, line separators or bidi
 * overrides (U+202E turns the rest of a line around): a terminal must not
 * act on them, so they are shown as escapes.
 */
function printable(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]/g, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

function reportedText(r: Row, reportedThrough: number): string {
  if (r.source === RESERVED_SOURCE_ID) return '-';
  return r.id <= reportedThrough ? 'yes' : 'no';
}
