/**
 * The state of one followed file, shared by the file source's parts: the
 * read loop (file-source.ts), discovery (file-discovery.ts) and copy
 * recognition (file-copies.ts). Only the file source's single loop touches
 * a Tail, so none of this needs locking.
 */
import type { FileHandle } from 'node:fs/promises';
import { FINGERPRINT_BYTES, positionFingerprint, readWindow } from './file-identity.js';
import type { LineSplitter } from './file-lines.js';
import type { SourceLifecycle } from './source.js';
import type { LineChunk, SourceLine, StoredPosition } from './types.js';

export interface Tail {
  key: string;
  path: string;
  fh: FileHandle;
  splitter: LineSplitter;
  /** the file's first min(read position, 256) bytes as we read them */
  head: Buffer;
  /** offset after the last line the sink accepted */
  committed: number;
  /** last size seen by fstat */
  size: number;
  /** built chunk awaiting (re)delivery; never rebuilt, so a retry offers the same lines */
  pending: LineChunk | undefined;
  /** the path no longer names this file (renamed away or deleted) */
  detached: boolean;
  /** last time the size changed, or the detach time */
  quietSince: number;
  /** bytes we already read changed: finish what we hold, then restart at 0 */
  truncated: boolean;
  /** close once `pending` is delivered */
  release: boolean;
  /** the last read attempt found no bytes beyond what was consumed */
  atEof: boolean;
  /** identity generation on this inode: a truncation starts a new one */
  gen: number;
  /** committed positions with strong fingerprints, oldest first: what a copy of this file is recognised by */
  marks: StoredPosition[];
  /** not read for now: it starts like a file we follow and may be a copy of it */
  hold: Hold | undefined;
}

/** A new file held back because it may be a copy of the file `of` (generation `gen`). */
export interface Hold {
  of: string;
  gen: number;
  /** bytes of this file compared equal to the original's so far */
  verified: number;
  /** size at the last look, and since when it has not changed */
  size: number;
  quietSince: number;
}

/** A file identity whose reading ended (truncated, released, or changed while we were stopped). */
export interface Ended {
  key: string;
  gen: number;
  path: string;
  marks: StoredPosition[];
  at: number;
}

/** The files a source follows, by `dev:ino`. */
export type Tails = Map<string, Tail>;

export function noteSize(tail: Tail, size: number): void {
  if (size !== tail.size) {
    tail.size = size;
    tail.quietSince = Date.now();
  }
  // A stale "at EOF" would let a drain skip bytes written since the last read.
  if (size > tail.splitter.position) tail.atEof = false;
}

/** Bytes we read changed under us: the read loop finishes what it holds, then reads the file again from 0. */
export function markTruncated(tail: Tail, life: SourceLifecycle): void {
  tail.truncated = true;
  life.notice(`${tail.path}: truncated or rewritten, reading it again from 0`);
}

/** Keeps the first 256 bytes of the file as they are read: what positions are fingerprinted over. */
export function extendHead(tail: Tail, data: Buffer, at: number): void {
  const have = tail.head.length;
  if (have >= FINGERPRINT_BYTES || have < at || have >= at + data.length) return;
  const add = data.subarray(have - at, Math.min(data.length, FINGERPRINT_BYTES - at));
  tail.head = Buffer.concat([tail.head, add]);
}

export function detach(tail: Tail): void {
  if (tail.detached) return;
  tail.detached = true;
  tail.quietSince = Date.now();
}

/** `window`: the WINDOW_BYTES before the end of the last line (unused when that end is within the head). */
export function chunkOf(source: string, tail: Tail, lines: SourceLine[], window: Buffer | 'gone'): LineChunk {
  const last = lines[lines.length - 1]!;
  const end = last.offset + last.length;
  return {
    source,
    file: { key: tail.key, path: tail.path },
    lines,
    position: { key: tail.key, path: tail.path, offset: end, fingerprint: positionFingerprint(tail.head, end, window) },
  };
}

/** A chunk that commits `offset` (a line start the tail's head is read up to) and no lines. */
export async function positionOnly(source: string, tail: Tail, offset: number): Promise<LineChunk> {
  const window = offset > FINGERPRINT_BYTES ? await readWindow(tail.fh, offset) : 'gone';
  return {
    source,
    file: { key: tail.key, path: tail.path },
    lines: [],
    position: { key: tail.key, path: tail.path, offset, fingerprint: positionFingerprint(tail.head, offset, window) },
  };
}
