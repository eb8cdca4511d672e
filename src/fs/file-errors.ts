/**
 * Node's errno errors (EACCES, EISDIR, ...) turned into FileErrors whose
 * message names the path, what it was for ("--out", "HMAC key file") and
 * what to do about it. Every file sealtrail reads or creates on a user's
 * behalf goes through here, so a bad path is a one-line answer, never a
 * stack trace.
 */
import { statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { FileCode, FileProblem } from '../core/error-codes.js';
import { FileError } from '../core/errors.js';

/** What went wrong with a path, independent of the errno that said so (declared in core/error-codes.ts, beside the codes it makes). */
export type { FileProblem };

export type FileAction = 'read' | 'create' | 'write' | 'create directory' | 'list';

/** Picks the stable error code of a problem; the default is `file_<problem>`. */
export type FileCodes = (problem: FileProblem) => FileCode;

export const defaultFileCodes: FileCodes = (p) => `file_${p}`;

export function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
}

export function problemOf(errno: string | undefined): FileProblem {
  switch (errno) {
    case 'ENOENT':
      return 'missing';
    case 'ENOTDIR':
      return 'not_directory';
    case 'EISDIR':
      return 'is_directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission_denied';
    case 'EEXIST':
      return 'exists';
    case 'ELOOP':
      return 'loop';
    case 'EROFS':
      return 'read_only';
    case 'ENOSPC':
    case 'EDQUOT':
      return 'no_space';
    case 'ENAMETOOLONG':
      return 'name_too_long';
    default:
      return 'io';
  }
}

function whoAmI(): string {
  const uid = process.getuid?.();
  return uid === undefined ? 'the user sealtrail runs as' : `the user sealtrail runs as (uid ${uid})`;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

const VERB: Record<FileAction, string> = {
  read: 'read',
  create: 'create',
  write: 'write',
  'create directory': 'create',
  list: 'list',
};

/** The sentence after "<what> <path>: " for a problem met while doing `action`. */
function explain(problem: FileProblem, action: FileAction, path: string, errno: string | undefined): string {
  const tag = errno ? ` (${errno})` : '';
  const creating = action === 'create' || action === 'create directory';
  switch (problem) {
    case 'missing':
      if (!creating) return `no such file or directory${tag}; check the path`;
      // ENOENT on create: either the parent is missing or the file system (e.g. /proc) takes no new files.
      return isDirectory(dirname(path))
        ? `cannot be created there${tag}; choose a path on a writable file system`
        : `its directory ${dirname(path)} does not exist${tag}; create it first or choose another path`;
    case 'not_directory':
      return `a component of the path is not a directory${tag}; check the path`;
    case 'is_directory':
      return `is a directory${tag}; name a file`;
    case 'not_regular':
      return 'is not a regular file; name a file';
    case 'permission_denied':
      return `permission denied${tag}; ${whoAmI()} must be allowed to ${VERB[action]} it (check its mode, owner and parent directories)`;
    case 'exists':
      return `already exists${tag}; choose another path or remove it first`;
    case 'loop':
      return `too many levels of symbolic links${tag}; check the path`;
    case 'read_only':
      return `is on a read-only file system${tag}; choose a writable path`;
    case 'no_space':
      return `no space left on the device${tag}; free some space`;
    case 'name_too_long':
      return `the path is too long${tag}`;
    case 'too_large':
      return 'is too large';
    case 'io':
      return `cannot ${action} it${tag}`;
  }
}

/**
 * A FileError for `err` (an errno error, or a problem found by a check)
 * met while doing `action` on `path`. `what` names the path's role: a
 * flag ("--out") or a kind of file ("HMAC key file").
 */
export function fileError(
  err: unknown,
  path: string,
  what: string,
  action: FileAction,
  codes: FileCodes = defaultFileCodes,
  problem?: FileProblem,
): FileError {
  const errno = errnoOf(err);
  const p = problem ?? problemOf(errno);
  return new FileError(codes(p), path, `${what} ${path}: ${explain(p, action, path, errno)}`, err === undefined ? undefined : { cause: err });
}

/** A FileError for a problem found without an errno (a directory where a file belongs, a file too large). */
export function fileProblem(problem: FileProblem, path: string, what: string, action: FileAction, codes?: FileCodes, detail?: string): FileError {
  const e = fileError(undefined, path, what, action, codes, problem);
  if (detail === undefined) return e;
  return new FileError(e.code, path, `${e.message} ${detail}`);
}
