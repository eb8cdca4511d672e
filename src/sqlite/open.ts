import { accessSync, closeSync, constants, existsSync, fstatSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { BufferError, FileError, SealtrailError } from '../core/errors.js';
import { errnoOf, fileError, fileProblem } from '../fs/file-errors.js';
import { mkdirPrivate, openPrivate, tightenToPrivate } from '../fs/private-files.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** Files SQLite keeps beside a database; each holds record data. */
const SIDE_FILES = ['-wal', '-shm', '-journal'];

/**
 * Makes the database file private before SQLite opens it: created here with
 * 0600 when missing (SQLite would create it 0644, its default, less the
 * umask), and an existing one, with its side files, tightened to 0600 if an
 * older version left it readable by others. SQLite creates -wal and -shm
 * with the database file's own permissions (os_unix.c findCreateFileMode;
 * checked by test/integration/private-files.test.ts), so they follow.
 */
function preparePrivateDatabase(path: string): void {
  try {
    mkdirPrivate(dirname(path), 'its directory');
  } catch (err) {
    if (err instanceof FileError) throw new FileError(err.code, path, `database ${path}: ${err.message}`, { cause: err });
    throw err;
  }
  try {
    closeSync(openPrivate(path, 'database'));
  } catch (err) {
    if (!(err instanceof SealtrailError && err.code === 'file_exists')) throw err;
  }
  for (const p of [path, ...SIDE_FILES.map((s) => `${path}${s}`)]) tightenToPrivate(p, 'database file');
  // Said here in words; SQLite would only say SQLITE_CANTOPEN.
  try {
    closeSync(openSync(path, 'r+'));
  } catch (err) {
    throw fileError(err, path, 'database', 'write');
  }
  try {
    if (!existsSync(`${path}-wal`)) accessSync(dirname(path), constants.W_OK);
  } catch (err) {
    throw new FileError(
      'file_permission_denied',
      path,
      `database ${path}: its directory ${dirname(path)} is not writable (${errnoOf(err) ?? 'error'}); SQLite creates the -wal and -shm files beside the database`,
      { cause: err },
    );
  }
}

/** A read-only open names a missing or unreadable file itself rather than SQLite's "unable to open database file". */
function checkReadable(path: string): void {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw fileError(err, path, 'database', 'read');
  }
  try {
    if (fstatSync(fd).isDirectory()) throw fileProblem('is_directory', path, 'database', 'read');
  } finally {
    closeSync(fd);
  }
}

/**
 * Opens a SQLite file for sealtrail: WAL journal and synchronous=FULL, so a
 * committed transaction survives power loss, not just a process crash.
 * Opened for writing, the file and its -wal and -shm are private (0600);
 * a read-only open (an auditor's copy) changes nothing on disk.
 */
export function openDatabase(path: string, opts: { readonly?: boolean } = {}): Database.Database {
  const readonly = opts.readonly ?? false;
  if (path !== ':memory:') {
    if (readonly) checkReadable(path);
    else preparePrivateDatabase(path);
  }
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { readonly, fileMustExist: readonly });
    db.pragma('busy_timeout = 5000');
    if (!readonly) {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
    }
    db.pragma('foreign_keys = ON');
    return db;
  } catch (err) {
    db?.close();
    // e.g. SQLITE_NOTADB, or SQLITE_CANTOPEN when -wal/-shm cannot be created beside it
    const code = (err as { code?: unknown }).code;
    throw new BufferError(
      'db_open_failed',
      `database ${path} cannot be opened (${typeof code === 'string' ? `${code}: ` : ''}${(err as Error).message}); ` +
        'check that it is a sealtrail SQLite database and that its directory is writable',
      { cause: err },
    );
  }
}

/** Applies pending migrations in order, each in its own transaction, and records them. */
export function migrate(db: Database.Database, migrations: readonly Migration[]): number {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL) STRICT`);
  const row = db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null };
  const current = row.v ?? 0;
  const latest = migrations.reduce((m, x) => Math.max(m, x.version), 0);
  if (current > latest) {
    throw new BufferError(
      'schema_too_new',
      `database schema version ${current} is newer than this sealtrail understands (${latest}); upgrade sealtrail`,
    );
  }
  for (const m of migrations) {
    if (m.version <= current) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(
        m.version,
        m.name,
        new Date().toISOString(),
      );
    })();
  }
  return latest;
}
