/**
 * Files and directories sealtrail creates are private to the user it runs
 * as: files 0600, directories 0700, whatever the process umask. The umask
 * only removes bits, so every creation here passes the private mode AND sets
 * it again explicitly (chmod) once the file or directory is ours; a mode
 * wider than 0600 never exists, not even for an instant, because creation
 * asks for 0600 at most. Directories that already exist are left as they
 * are: an operator may share a parent (a volume mount, /run) on purpose.
 *
 * Audit records, keys and tokens live in these files; a world-readable
 * buffer or store would let any local user read every record and bypass the
 * collector's admin-only API and its read auditing.
 */
import { accessSync, chmodSync, closeSync, constants, fchmodSync, fstatSync, mkdirSync, openSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { FileError } from '../core/errors.js';
import { errnoOf, fileError, fileProblem } from './file-errors.js';

export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIR_MODE = 0o700;

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function notADirectory(given: string, found: string, what: string): FileError {
  const where = resolve(given) === found ? '' : ` (${found} is not a directory)`;
  return new FileError('file_not_directory', given, `${what} ${given}: exists and is not a directory${where}; name a directory`);
}

/**
 * Creates the directory `path` and any missing parents, each 0700. `what`
 * names the path in errors ("--out", "data_dir").
 */
export function mkdirPrivate(path: string, what: string): void {
  const missing: string[] = [];
  let p = resolve(path);
  for (;;) {
    let st;
    try {
      st = statSync(p);
    } catch (err) {
      const parent = dirname(p);
      if (errnoOf(err) !== 'ENOENT' || parent === p) throw fileError(err, missing.length === 0 ? path : p, what, 'create directory');
      missing.push(p);
      p = parent;
      continue;
    }
    if (!st.isDirectory()) throw notADirectory(path, p, what);
    break;
  }
  for (const d of missing.reverse()) {
    try {
      mkdirSync(d, { mode: PRIVATE_DIR_MODE });
    } catch (err) {
      // Made by someone else meanwhile: theirs, not ours to chmod.
      if (errnoOf(err) === 'EEXIST' && isDirectory(d)) continue;
      throw fileError(err, d === resolve(path) ? path : d, what, 'create directory');
    }
    try {
      chmodSync(d, PRIVATE_DIR_MODE);
    } catch (err) {
      throw fileError(err, d, what, 'create directory');
    }
  }
}

/**
 * Creates a new file (O_CREAT|O_EXCL: never an existing file, never through
 * a symlink) with mode 0600 and returns its descriptor, open for writing.
 */
export function openPrivate(path: string, what: string): number {
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, PRIVATE_FILE_MODE);
  } catch (err) {
    if (errnoOf(err) === 'EEXIST' && isDirectory(path)) throw fileProblem('is_directory', path, what, 'create');
    throw fileError(err, path, what, 'create');
  }
  try {
    fchmodSync(fd, PRIVATE_FILE_MODE);
  } catch (err) {
    closeSync(fd);
    removeQuietly(path);
    throw fileError(err, path, what, 'create');
  }
  return fd;
}

/** Writes all of `data` at the descriptor's position (writeSync may write less than asked). */
export function writeAll(fd: number, data: string | Uint8Array): void {
  const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
}

/**
 * Creates a new 0600 file holding `data`; refuses an existing path. A write
 * that fails removes the partial file, so a retry is not refused by it.
 */
export function writeFilePrivate(path: string, data: string | Uint8Array, what: string): void {
  const fd = openPrivate(path, what);
  try {
    writeAll(fd, data);
  } catch (err) {
    closeSync(fd);
    removeQuietly(path);
    throw fileError(err, path, what, 'write');
  }
  closeSync(fd);
}

/**
 * Checks, before any work is done, that `path` can name an output file: not
 * a directory, its directory exists, and (as far as access(2) can tell) it
 * may be written. Writing still reports anything this could not foresee.
 */
export function checkOutputPath(path: string, what: string): void {
  let target = path;
  try {
    if (statSync(path).isDirectory()) throw fileProblem('is_directory', path, what, 'write');
  } catch (err) {
    if (err instanceof FileError) throw err;
    if (errnoOf(err) !== 'ENOENT') throw fileError(err, path, what, 'write');
    target = dirname(path);
    try {
      if (!statSync(target).isDirectory()) throw fileProblem('not_directory', path, what, 'create');
    } catch (e) {
      if (e instanceof FileError) throw e;
      throw fileError(e, path, what, 'create');
    }
  }
  try {
    accessSync(target, constants.W_OK);
  } catch (err) {
    throw fileError(err, path, what, target === path ? 'write' : 'create');
  }
}

/**
 * Writes an output file (a report) the user named: created 0600, or an
 * existing regular file truncated and set to 0600 before anything is
 * written into it. Something that is not a regular file (/dev/stdout, a
 * FIFO) is written as it is and its mode left alone.
 */
export function writeOutputPrivate(path: string, data: string | Uint8Array, what: string): void {
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, PRIVATE_FILE_MODE);
  } catch (err) {
    throw fileError(err, path, what, errnoOf(err) === 'ENOENT' ? 'create' : 'write');
  }
  try {
    if (fstatSync(fd).isFile()) fchmodSync(fd, PRIVATE_FILE_MODE);
    writeAll(fd, data);
  } catch (err) {
    throw fileError(err, path, what, 'write');
  } finally {
    closeSync(fd);
  }
}

/**
 * Makes an existing file private (0600) if its mode lets anyone but the
 * owner in: the upgrade path for files created by older versions under a
 * permissive umask. A missing file is fine (nothing to tighten), and so is
 * one another user owns (left as its owner set it). Returns whether the mode
 * was changed.
 */
export function tightenToPrivate(path: string, what: string): boolean {
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return false;
    throw fileError(err, path, what, 'read');
  }
  if (st.isDirectory()) throw fileProblem('is_directory', path, what, 'write');
  if (!st.isFile() || (st.mode & 0o777 & ~PRIVATE_FILE_MODE) === 0) return false;
  // Only what this user owns, i.e. what sealtrail running as this user
  // created: another owner's mode is that owner's choice (a store shared
  // read-only with a group of auditors), and tightening it could lock them out.
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) return false;
  try {
    chmodSync(path, PRIVATE_FILE_MODE);
  } catch (err) {
    throw new FileError(
      'file_not_private',
      path,
      `${what} ${path}: mode ${(st.mode & 0o777).toString(8).padStart(4, '0')} lets other users read it and it cannot be made 0600 ` +
        `(${errnoOf(err) ?? 'error'}); run \`chmod 600 ${path}\` as its owner`,
      { cause: err },
    );
  }
  return true;
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // best effort: the original error is the one worth reporting
  }
}
