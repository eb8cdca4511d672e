/**
 * One read of a followed file into a chunk: from the splitter's position up
 * to the chunk limits, checked against truncation after the reads.
 *
 * Synchronous on purpose. At an agent's rates a wake-up reads a few lines
 * of a file the writer just wrote, from the page cache; each async call
 * (fstat, the read, the window, the head check) was a thread-pool round
 * trip, two context switches and a promise, and together they cost more
 * CPU than the reads. A synchronous read of a local file blocks the event
 * loop for microseconds, far less than the commit that follows it, whose
 * fsync already blocks it. The read loop yields to the event loop between
 * rounds (file-source.ts), so a long backlog does not hold up timers,
 * sockets or the shipper.
 *
 * What is read, and the rule that a position moves only after its commit,
 * are those of file-source.ts; only how the bytes are fetched differs.
 */
import { fstatSync, readSync } from 'node:fs';
import { FINGERPRINT_BYTES, WINDOW_BYTES, readHeadSync, readWindowSync } from './file-identity.js';
import { chunkOf, extendHead, markTruncated, noteSize, type Tail } from './file-tail.js';
import type { SourceLifecycle } from './source.js';
import type { SourceLine } from './types.js';

export interface ReadLimits {
  source: string;
  life: SourceLifecycle;
  /** the read buffer, reused for every read */
  block: Buffer;
  maxChunkLines: number;
  maxChunkBytes: number;
}

/** Reads from the splitter's position up to the chunk limits; leaves a chunk in `tail.pending`. */
export function fillTail(tail: Tail, o: ReadLimits): void {
  const fd = tail.fh.fd;
  noteSize(tail, fstatSync(fd).size);
  const from = tail.splitter.position;
  if (tail.size < from) {
    markTruncated(tail, o.life);
    return;
  }
  if (tail.size === from) {
    tail.atEof = true;
    return;
  }
  tail.atEof = false;
  const lines: SourceLine[] = [];
  let bytes = 0;
  let full = false;
  let budget = o.maxChunkBytes;
  const emit = (line: SourceLine): boolean => {
    lines.push(line);
    bytes += line.length;
    full = lines.length >= o.maxChunkLines || bytes >= o.maxChunkBytes;
    return !full;
  };
  const before = tail.splitter.snapshot();
  const headBefore = tail.head;
  /** file range the block holds after the last read that returned bytes */
  let lastAt = 0;
  let lastLength = 0;
  // The read budget bounds a turn that only skips an over-long line.
  while (!full && budget > 0) {
    const at = tail.splitter.position;
    const bytesRead = readSync(fd, o.block, 0, o.block.length, at);
    if (bytesRead === 0) {
      tail.atEof = true;
      break;
    }
    lastAt = at;
    lastLength = bytesRead;
    const data = o.block.subarray(0, bytesRead);
    extendHead(tail, data, at);
    const used = tail.splitter.feed(data, emit);
    budget -= used;
    if (bytesRead < o.block.length && used === bytesRead) {
      tail.atEof = true;
      break;
    }
  }
  const last = lines[lines.length - 1];
  const end = last ? last.offset + last.length : 0;
  // The window was read, like the lines, before the head check below, which
  // vouches for both; the last read usually holds it already.
  let window: Buffer | undefined;
  if (end > FINGERPRINT_BYTES) {
    window =
      end - WINDOW_BYTES >= lastAt && end <= lastAt + lastLength
        ? Buffer.from(o.block.subarray(end - WINDOW_BYTES - lastAt, end - lastAt))
        : readWindowSync(fd, end);
  }
  // Checked after reading: if the head still holds what it held before, the
  // file was not truncated before our reads, so what we read continues it.
  if (
    (headBefore.length > 0 && !readHeadSync(fd, headBefore.length).equals(headBefore)) ||
    (window !== undefined && window.length < WINDOW_BYTES)
  ) {
    tail.splitter.restore(before);
    tail.head = headBefore;
    markTruncated(tail, o.life);
    return;
  }
  if (tail.splitter.position > tail.size) noteSize(tail, tail.splitter.position);
  if (lines.length) tail.pending = chunkOf(o.source, tail, lines, window ?? 'gone');
}
