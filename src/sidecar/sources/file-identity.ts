/**
 * File identity: `dev:ino` names a file across renames, and a hash of its
 * first bytes tells a resumed file from a new one that got a recycled inode.
 */
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';

/** Bytes of the file head covered by a position fingerprint. */
export const FINGERPRINT_BYTES = 256;

export function fileKeyOf(st: { dev: number | bigint; ino: number | bigint }): string {
  return `${st.dev}:${st.ino}`;
}

/** hex SHA-256 of the first min(offset, 256) bytes of `head` (which must hold at least that many). */
export function fingerprint(head: Uint8Array, offset: number): string {
  const n = Math.min(offset, FINGERPRINT_BYTES);
  if (head.length < n) throw new RangeError(`fingerprint needs ${n} head bytes, have ${head.length}`);
  return createHash('sha256').update(head.subarray(0, n)).digest('hex');
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
