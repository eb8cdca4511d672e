import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { FileError } from '../core/errors.js';
import { defaultFileCodes, fileError, fileProblem, type FileCodes } from './file-errors.js';

export interface ReadFileOptions {
  /** the path's role in messages: a flag ("--hmac-key") or a kind of file ("HMAC key file") */
  what: string;
  /** refuse anything larger (a key file is small; this bounds what a wrong path can cost) */
  maxBytes: number;
  codes?: FileCodes;
}

/**
 * Reads a whole file of at most `maxBytes` bytes. Opens first and then asks
 * the descriptor what it is, so there is no window between a check and the
 * read; reads in a loop rather than trusting the size, so a FIFO (`<(cmd)`)
 * works and /dev/zero or a growing file cannot make us allocate more. Every
 * failure is a FileError naming the path and `what`.
 */
export function readFileChecked(path: string, opts: ReadFileOptions): Buffer {
  const codes = opts.codes ?? defaultFileCodes;
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw fileError(err, path, opts.what, 'read', codes);
  }
  try {
    let st;
    try {
      st = fstatSync(fd);
    } catch (err) {
      throw fileError(err, path, opts.what, 'read', codes);
    }
    if (st.isDirectory()) throw fileProblem('is_directory', path, opts.what, 'read', codes);
    const tooLarge = () => fileProblem('too_large', path, opts.what, 'read', codes, `(at most ${opts.maxBytes} bytes)`);
    if (st.isFile() && st.size > opts.maxBytes) throw tooLarge();
    const chunks: Buffer[] = [];
    let total = 0;
    const chunk = Buffer.allocUnsafe(Math.min(64 * 1024, opts.maxBytes + 1));
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, chunk, 0, chunk.length, null);
      } catch (err) {
        throw fileError(err, path, opts.what, 'read', codes);
      }
      if (n === 0) break;
      total += n;
      if (total > opts.maxBytes) throw tooLarge();
      chunks.push(Buffer.from(chunk.subarray(0, n)));
    }
    return Buffer.concat(chunks, total);
  } finally {
    closeSync(fd);
  }
}

/**
 * Opens a file for reading (e.g. to stream it) with the same checks and
 * messages as readFileChecked, minus the size limit. The caller owns the fd.
 */
export function openForReading(path: string, what: string, codes: FileCodes = defaultFileCodes): number {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw fileError(err, path, what, 'read', codes);
  }
  try {
    if (fstatSync(fd).isDirectory()) throw fileProblem('is_directory', path, what, 'read', codes);
  } catch (err) {
    closeSync(fd);
    throw err instanceof FileError ? err : fileError(err, path, what, 'read', codes);
  }
  return fd;
}
