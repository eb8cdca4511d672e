import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/collector/store/sqlite.js';
import { FileError } from '../../src/core/errors.js';
import { mkdirPrivate, writeFilePrivate, writeOutputPrivate } from '../../src/fs/private-files.js';
import { readFileChecked } from '../../src/fs/read-file.js';
import { createHmacKeyFile, createSigningKeyFiles } from '../../src/keyfiles.js';
import { AuditBuffer } from '../../src/sidecar/buffer/buffer.js';
import { openDatabase } from '../../src/sqlite/open.js';
import { runCli } from '../helpers/procs.js';
import { tempDir, type TempDir } from '../helpers/sidecar-fixtures.js';

const mode = (p: string): number => statSync(p).mode & 0o777;
const octal = (m: number): string => m.toString(8).padStart(4, '0');

/** Every file and directory under dir with its mode, as "path 0600" lines (compared as a whole: a failure lists them all). */
function modes(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    out.push(`${p} ${octal(mode(p))}`);
    if (statSync(p).isDirectory()) out.push(...modes(p));
  }
  return out;
}

const savedUmask = process.umask();
afterAll(() => {
  process.umask(savedUmask);
});

let tmp: TempDir;
beforeEach(() => {
  tmp = tempDir('sealtrail-private-');
});
afterEach(() => {
  process.umask(savedUmask);
  tmp.cleanup();
});

describe('private files under any umask', () => {
  for (const umask of [0o000, 0o022, 0o277]) {
    it(`mkdirPrivate and writeFilePrivate give 0700 and 0600 under umask ${octal(umask)}`, () => {
      process.umask(umask);
      mkdirPrivate(tmp.file('a/b/c'), 'test dir');
      writeFilePrivate(tmp.file('a/b/c/f'), 'x', 'test file');
      writeOutputPrivate(tmp.file('a/out'), 'report', '--out');
      expect(modes(tmp.file('a'))).toEqual([
        `${tmp.file('a/b')} 0700`,
        `${tmp.file('a/b/c')} 0700`,
        `${tmp.file('a/b/c/f')} 0600`,
        `${tmp.file('a/out')} 0600`,
      ]);
      expect(mode(tmp.file('a'))).toBe(0o700);
    });
  }

  it('leaves directories that already exist as they are, and refuses to overwrite a file', () => {
    process.umask(0);
    mkdirSync(tmp.file('shared'), { mode: 0o755 });
    chmodSync(tmp.file('shared'), 0o755);
    mkdirPrivate(tmp.file('shared/own'), 'test dir');
    expect(mode(tmp.file('shared'))).toBe(0o755);
    expect(mode(tmp.file('shared/own'))).toBe(0o700);
    writeFilePrivate(tmp.file('shared/own/k'), 'first', 'key file');
    const err = (() => {
      try {
        writeFilePrivate(tmp.file('shared/own/k'), 'second', 'key file');
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(FileError);
    expect((err as FileError).code).toBe('file_exists');
    expect(readFileSync(tmp.file('shared/own/k'), 'utf8')).toBe('first');
  });

  it('writeOutputPrivate makes an existing world-readable output file 0600 before writing', () => {
    writeFileSync(tmp.file('report.json'), 'old', { mode: 0o644 });
    chmodSync(tmp.file('report.json'), 0o644);
    writeOutputPrivate(tmp.file('report.json'), 'new', '--out');
    expect(mode(tmp.file('report.json'))).toBe(0o600);
    expect(readFileSync(tmp.file('report.json'), 'utf8')).toBe('new');
  });

  it('key files (signer, verifier, HMAC) are 0600 in a new 0700 directory under umask 000', () => {
    process.umask(0);
    createSigningKeyFiles(tmp.file('k/new/s.skey'), tmp.file('k/new/s.vkey'), 's');
    createHmacKeyFile(tmp.file('k/new/hmac.key'));
    expect(modes(tmp.file('k'))).toEqual([
      `${tmp.file('k/new')} 0700`,
      `${tmp.file('k/new/hmac.key')} 0600`,
      `${tmp.file('k/new/s.skey')} 0600`,
      `${tmp.file('k/new/s.vkey')} 0600`,
    ]);
  });
});

describe('SQLite databases are private, with their -wal and -shm', () => {
  it('SQLite gives -wal and -shm the database file\'s own mode (what openDatabase relies on)', () => {
    process.umask(0);
    // created by SQLite itself: its default 0644 spreads to the side files
    const plain = new Database(tmp.file('plain.db'));
    plain.pragma('journal_mode = WAL');
    plain.exec('CREATE TABLE t (x); INSERT INTO t VALUES (1)');
    expect([mode(tmp.file('plain.db')), mode(tmp.file('plain.db-wal')), mode(tmp.file('plain.db-shm'))]).toEqual([0o644, 0o644, 0o644]);
    plain.close();
    // created 0600 first, as openDatabase does: so are they
    const db = openDatabase(tmp.file('d/private.db'));
    db.exec('CREATE TABLE t (x); INSERT INTO t VALUES (1)');
    expect(modes(tmp.file('d'))).toEqual([
      `${tmp.file('d/private.db')} 0600`,
      `${tmp.file('d/private.db-shm')} 0600`,
      `${tmp.file('d/private.db-wal')} 0600`,
    ]);
    expect(mode(tmp.file('d'))).toBe(0o700);
    db.close();
  });

  it('a sidecar buffer and a collector store created under umask 000 are 0600, -wal and -shm too', async () => {
    process.umask(0);
    const buffer = AuditBuffer.open(tmp.file('sidecar/buffer.db'), { newStreamId: () => 'private-test' });
    const store = openSqliteStore(tmp.file('collector/audit.db'));
    expect(modes(tmp.dir)).toEqual([
      `${tmp.file('collector')} 0700`,
      `${tmp.file('collector/audit.db')} 0600`,
      `${tmp.file('collector/audit.db-shm')} 0600`,
      `${tmp.file('collector/audit.db-wal')} 0600`,
      `${tmp.file('sidecar')} 0700`,
      `${tmp.file('sidecar/buffer.db')} 0600`,
      `${tmp.file('sidecar/buffer.db-shm')} 0600`,
      `${tmp.file('sidecar/buffer.db-wal')} 0600`,
    ]);
    buffer.close();
    await store.close();
  });

  it('tightens a 0644 database, -wal and -shm left by an older version when opened for writing; a read-only open changes nothing', async () => {
    process.umask(0o022);
    // An older sealtrail: SQLite created the files 0644. The old process still has them open
    // (or crashed), so -wal and -shm exist too.
    for (const [dir, file] of [
      ['sidecar', 'buffer.db'],
      ['collector', 'audit.db'],
    ] as const) {
      mkdirSync(tmp.file(dir), { mode: 0o755 });
      if (dir === 'sidecar') AuditBuffer.open(tmp.file(`${dir}/${file}`), { newStreamId: () => 'old-stream' }).close();
      else await openSqliteStore(tmp.file(`${dir}/${file}`)).close();
      for (const f of readdirSync(tmp.file(dir))) chmodSync(tmp.file(`${dir}/${f}`), 0o644);
    }
    const old = new Database(tmp.file('sidecar/buffer.db'));
    old.pragma('journal_mode = WAL');
    old.prepare("SELECT value FROM meta WHERE key = 'stream'").get();
    const oldStore = new Database(tmp.file('collector/audit.db'));
    oldStore.prepare('SELECT COUNT(*) FROM schema_migrations').get();
    for (const f of ['sidecar/buffer.db', 'sidecar/buffer.db-wal', 'sidecar/buffer.db-shm', 'collector/audit.db', 'collector/audit.db-wal', 'collector/audit.db-shm']) {
      chmodSync(tmp.file(f), 0o644);
    }

    // the auditor's read-only look (verify --db) leaves the modes alone
    const ro = await runCli(['verify', '--db', tmp.file('collector/audit.db'), '--vkey', writeVkey(tmp)]);
    expect(ro.stderr).not.toMatch(/internal error/);
    expect(mode(tmp.file('collector/audit.db'))).toBe(0o644);

    const buffer = AuditBuffer.open(tmp.file('sidecar/buffer.db'), { newStreamId: () => 'never' });
    expect(buffer.stream).toBe('old-stream');
    const store = openSqliteStore(tmp.file('collector/audit.db'));
    const files = modes(tmp.dir).filter((l) => !l.includes('/keys'));
    expect(files).toEqual([
      `${tmp.file('collector')} 0755`,
      `${tmp.file('collector/audit.db')} 0600`,
      `${tmp.file('collector/audit.db-shm')} 0600`,
      `${tmp.file('collector/audit.db-wal')} 0600`,
      `${tmp.file('sidecar')} 0755`,
      `${tmp.file('sidecar/buffer.db')} 0600`,
      `${tmp.file('sidecar/buffer.db-shm')} 0600`,
      `${tmp.file('sidecar/buffer.db-wal')} 0600`,
    ]);
    buffer.close();
    await store.close();
    old.close();
    oldStore.close();
  });

  it.runIf(process.getuid?.() === 0)('leaves the mode of a database another user owns as that user set it (a store shared with auditors)', async () => {
    mkdirSync(tmp.file('shared'), { mode: 0o755 });
    await openSqliteStore(tmp.file('shared/audit.db')).close();
    for (const f of readdirSync(tmp.file('shared'))) {
      chmodSync(tmp.file(`shared/${f}`), 0o644);
      chownSync(tmp.file(`shared/${f}`), 65534, 65534);
    }
    const store = openSqliteStore(tmp.file('shared/audit.db'));
    expect(mode(tmp.file('shared/audit.db'))).toBe(0o644);
    await store.close();
  });

  it('a database path that is a directory, or under a file, is a FileError naming it', () => {
    mkdirSync(tmp.file('dir.db'));
    writeFileSync(tmp.file('file'), 'x');
    for (const [p, code] of [
      [tmp.file('dir.db'), 'file_is_directory'],
      [tmp.file('file/sub/x.db'), 'file_not_directory'],
    ] as const) {
      let err: unknown;
      try {
        openDatabase(p);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(FileError);
      expect((err as FileError).code).toBe(code);
      expect((err as FileError).message).toContain(p);
    }
    expect(existsSync(tmp.file('file/sub'))).toBe(false);
  });
});

describe('readFileChecked', () => {
  it('names the path and the problem: missing, a directory, too large, and reads a FIFO-like bounded file', () => {
    const fail = (p: string, max = 100): FileError => {
      try {
        readFileChecked(p, { what: '--thing', maxBytes: max });
      } catch (e) {
        return e as FileError;
      }
      throw new Error('no error');
    };
    expect(fail(tmp.file('nope'))).toMatchObject({ code: 'file_missing', path: tmp.file('nope') });
    expect(fail(tmp.file('nope')).message).toMatch(/^--thing .*nope: no such file/);
    expect(fail(tmp.dir).code).toBe('file_is_directory');
    writeFileSync(tmp.file('big'), 'x'.repeat(101));
    expect(fail(tmp.file('big')).code).toBe('file_too_large');
    expect(fail('/proc').code).toBe('file_is_directory');
    // /proc files report size 0: the bounded loop still stops them
    expect(fail('/proc/self/status', 10).code).toBe('file_too_large');
    writeFileSync(tmp.file('ok'), 'fine');
    expect(readFileChecked(tmp.file('ok'), { what: '--thing', maxBytes: 4 }).toString()).toBe('fine');
  });
});

function writeVkey(t: TempDir): string {
  createSigningKeyFiles(t.file('keys/v.skey'), t.file('keys/v.vkey'), 'v');
  return t.file('keys/v.vkey');
}
