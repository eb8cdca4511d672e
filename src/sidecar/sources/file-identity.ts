/**
 * File identity: `dev:ino` names a file across renames, and a position
 * fingerprint (a hash of the file's first bytes and of the bytes just before
 * the position) tells a resumed file from a new one that got a recycled inode,
 * even when both start with the same header.
 */
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';

/** Bytes of the file head covered by a position fingerprint. */
export const FINGERPRINT_BYTES = 256;

/** Bytes just before a position that its fingerprint covers too (when the position is past the head). */
export const WINDOW_BYTES = 256;

/** Window part of a fingerprint whose window bytes were no longer there to hash (file truncated). */
const GONE = 'gone';

function sha256hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function fileKeyOf(st: { dev: number | bigint; ino: number | bigint }): string {
  return `${st.dev}:${st.ino}`;
}

/** hex SHA-256 of the first min(offset, 256) bytes of `head` (which must hold at least that many). */
export function fingerprint(head: Uint8Array, offset: number): string {
  const n = Math.min(offset, FINGERPRINT_BYTES);
  if (head.length < n) throw new RangeError(`fingerprint needs ${n} head bytes, have ${head.length}`);
  return sha256hex(head.subarray(0, n));
}

/**
 * Fingerprint of a read position: `fingerprint(head, offset)`, and when the
 * offset is past the head, ":" and the hex SHA-256 of the WINDOW_BYTES just
 * before the offset ("gone" if they could not be read). A position stored
 * with the head hash alone (older buffers) is still accepted by holdsPosition.
 */
export function positionFingerprint(head: Uint8Array, offset: number, window: Uint8Array | 'gone'): string {
  const h = fingerprint(head, offset);
  if (offset <= FINGERPRINT_BYTES) return h;
  if (window === GONE || window.length !== WINDOW_BYTES) return `${h}:${GONE}`;
  return `${h}:${sha256hex(window)}`;
}

/**
 * Whether a position pins a file's content down well enough to recognise a
 * copy of it by: head and window are both hashed and do not overlap, so at
 * least 2 x 256 bytes in two places must agree.
 */
export function isStrongPosition(pos: { offset: number; fingerprint: string }): boolean {
  const w = pos.fingerprint.split(':')[1];
  return pos.offset > FINGERPRINT_BYTES + WINDOW_BYTES && w !== undefined && w !== GONE;
}

/** The WINDOW_BYTES before `offset` (fewer if the file is shorter there). */
export async function readWindow(fh: FileHandle, offset: number): Promise<Buffer> {
  const start = Math.max(0, offset - WINDOW_BYTES);
  const buf = Buffer.alloc(offset - start);
  let got = 0;
  while (got < buf.length) {
    const { bytesRead } = await fh.read(buf, got, buf.length - got, start + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buf.subarray(0, got);
}

/**
 * Whether the file still holds the bytes a position's fingerprint was computed
 * over (the caller checks that the file is not shorter than the offset).
 * `headFp`, the file's `fingerprint(head, 256)`, may be passed to save a read
 * when many positions are checked against one file.
 */
export async function holdsPosition(fh: FileHandle, pos: { offset: number; fingerprint: string }, headFp?: string): Promise<boolean> {
  const [wantHead, wantWindow] = pos.fingerprint.split(':');
  if (headFp !== undefined && pos.offset >= FINGERPRINT_BYTES) {
    if (headFp !== wantHead) return false;
  } else {
    const n = Math.min(pos.offset, FINGERPRINT_BYTES);
    const head = await readHead(fh, n);
    if (head.length !== n || fingerprint(head, pos.offset) !== wantHead) return false;
  }
  if (wantWindow === undefined) return true; // head-only fingerprint of an older buffer
  if (wantWindow === GONE) return false;
  const window = await readWindow(fh, pos.offset);
  return window.length === WINDOW_BYTES && sha256hex(window) === wantWindow;
}

/** Reads exactly `n` bytes from offset 0, or fewer if the file is shorter. */
export async function readHead(fh: FileHandle, n: number): Promise<Buffer> {
  const buf = Buffer.alloc(n);
  let got = 0;
  while (got < n) {
    const { bytesRead } = await fh.read(buf, got, n - got, got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buf.subarray(0, got);
}

/** Offset just after the first "\n" (scanning at most `limit` bytes), or `limit` if there is none. */
export async function firstLineEnd(fh: FileHandle, limit: number, blockSize = 4096): Promise<number> {
  const buf = Buffer.alloc(blockSize);
  for (let at = 0; at < limit; ) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, limit - at), at);
    if (bytesRead === 0) break;
    const nl = buf.subarray(0, bytesRead).indexOf(0x0a);
    if (nl !== -1) return at + nl + 1;
    at += bytesRead;
  }
  return limit;
}

/**
 * Offset just after the last "\n" before `size` (0 if none), scanning
 * backwards in blocks so a huge file is not read whole.
 */
export async function lastLineEnd(fh: FileHandle, size: number, blockSize = 64 * 1024): Promise<number> {
  const buf = Buffer.alloc(Math.min(blockSize, Math.max(size, 1)));
  let end = size;
  while (end > 0) {
    const start = Math.max(0, end - buf.length);
    const { bytesRead } = await fh.read(buf, 0, end - start, start);
    const nl = buf.subarray(0, bytesRead).lastIndexOf(0x0a);
    if (nl !== -1) return start + nl + 1;
    end = start;
  }
  return 0;
}

/**
 * Whether `copy` is named like a rotated copy of `original`: its name extends
 * the original's name, or the original's name up to its first dot, with ".",
 * "-" or "_" (app.jsonl -> app.jsonl.1, app.jsonl-20260101,
 * app-20260101.jsonl; in any directory, for logrotate's olddir), or it is a
 * new file at the original's very path. The same name in another directory
 * is not related: that is how unrelated files (pods/a/0.log, pods/b/0.log)
 * are often named.
 */
export function relatedName(copy: string, original: string): boolean {
  const c = path.basename(copy);
  const o = path.basename(original);
  if (c === o) return path.resolve(copy) === path.resolve(original);
  const dot = o.indexOf('.');
  const stems = dot > 0 ? [o, o.slice(0, dot)] : [o];
  return stems.some((stem) => c.length > stem.length && c.startsWith(stem) && '.-_'.includes(c[stem.length]!));
}
