/**
 * Copytruncate recognition for the file source: logrotate's copytruncate
 * copies app.jsonl to app.jsonl.1 and truncates app.jsonl, and with both
 * names in the globs the copy must not be read again. The copy is a new
 * inode, so it is recognised by content: it must hold one of the original's
 * committed positions (head and the 256 bytes before the offset hash the
 * same), and its name must extend the original's (app.jsonl.1,
 * app.jsonl-20260101, app-1.jsonl). It is then read from that position on:
 * what the original's reader had not reached when it was truncated is read
 * from the copy, once.
 *
 * A copy usually turns up before the truncation is noticed; such a file
 * (its first bytes equal a followed file's) is held unread until the
 * original's identity ends (truncation, deletion: then as above), or until
 * it stops being a byte-for-byte prefix of the original (then it is read
 * from the original's last committed position it still holds, or from 0 if
 * none). Files under 2 x 256 bytes, and positions within the first line,
 * never make a copy: an identical short file or header line is read. A
 * file that turns up under 2 x 256 bytes with a name related to an identity
 * whose reading just ended is held until it grows past that or stays
 * unchanged for rotate_wait: a copy seen half-written is decided whole.
 * Not covered: a copy older than every position the original's reader
 * committed since the last restart is read from 0 (duplicates, never loss).
 *
 * State: the identities whose reading ended recently (a copy of one may
 * still turn up), bounded in number and age.
 */
import type { FileHandle } from 'node:fs/promises';
import {
  FINGERPRINT_BYTES,
  WINDOW_BYTES,
  fingerprint,
  firstLineEnd,
  holdsPosition,
  isStrongPosition,
  readHead,
  relatedName,
} from './file-identity.js';
import { noteSize, positionOnly, type Ended, type Hold, type Tail, type Tails } from './file-tail.js';
import type { SourceLifecycle } from './source.js';
import type { StoredPosition } from './types.js';

const MAX_ENDED = 256;
const ENDED_KEEP_MS = 60_000;

/** Where a file with no usable position of its own starts, when it is (or may be) a copy. */
export type CopyStart = { offset: number; of: Ended } | { hold: Hold; like: string } | undefined;

export interface FileCopiesOptions {
  /** source id, for the position-only chunk a copy starts with */
  source: string;
  life: SourceLifecycle;
  /** how long a held file must stay unchanged before it is decided */
  rotateWaitMs: number;
  /** lets a held copy go once its original is gone again (the read loop's release) */
  release: (tail: Tail) => Promise<void>;
}

export class FileCopies {
  private readonly opts: FileCopiesOptions;
  /** recently ended identities, oldest first */
  private ended: Ended[] = [];

  constructor(opts: FileCopiesOptions) {
    this.opts = opts;
  }

  /** Remembers an identity whose reading ended: a copy of it may still turn up. */
  end(e: Ended): void {
    this.prune();
    this.ended.push(e);
    if (this.ended.length > MAX_ENDED) this.ended.splice(0, this.ended.length - MAX_ENDED);
  }

  /**
   * Where a file with no usable position of its own starts, if it is a copy
   * of a file we read (see the module comment): at a position of an ended
   * identity it holds, or held while it starts like a followed file.
   */
  async startOf(p: string, fh: FileHandle, size: number, tails: Tails): Promise<CopyStart> {
    if (size === 0) return undefined;
    this.prune();
    for (let i = this.ended.length - 1; i >= 0; i--) {
      const e = this.ended[i]!;
      if (!relatedName(p, e.path)) continue;
      const at = await copyOffset(fh, size, e.marks);
      if (at !== undefined) return { offset: at, of: e };
      // Too short to hold a position: maybe a copy still being written
      // (logrotate copies, then truncates, and a reader can see the copy
      // half-written after the truncation). Held until it is quiet or long
      // enough to tell: read at once, its first lines would be read twice.
      if (size <= FINGERPRINT_BYTES + WINDOW_BYTES) {
        return { hold: { of: e.key, gen: e.gen, verified: 0, size, quietSince: Date.now() }, like: `${e.path} (${e.key})` };
      }
    }
    const head = await readHead(fh, Math.min(size, FINGERPRINT_BYTES));
    for (const g of tails.values()) {
      if (g.hold || g.head.length < head.length || !relatedName(p, g.path)) continue;
      if (!g.head.subarray(0, head.length).equals(head)) continue;
      const now = Date.now();
      return { hold: { of: g.key, gen: g.gen, verified: 0, size, quietSince: now }, like: `${g.path} (${g.key})` };
    }
    return undefined;
  }

  /** Starts a copy at `offset`, committing that position on its own (an empty chunk). */
  async startAt(tail: Tail, offset: number, of: Ended | undefined): Promise<void> {
    tail.hold = undefined;
    tail.splitter.reset(offset);
    tail.committed = offset;
    tail.head = await readHead(tail.fh, Math.min(offset, FINGERPRINT_BYTES));
    tail.atEof = false;
    if (offset === 0) return;
    tail.pending = await positionOnly(this.opts.source, tail, offset);
    const what = of ? `${of.path} (${of.key})` : 'the file it started like';
    this.opts.life.notice(`${tail.path} (${tail.key}): a copy of ${what}, which was read up to ${offset}; reading the copy from there`);
  }

  /** One turn of a held file: decides whether it is a copy once that can be told. Returns whether anything moved. */
  async resolveHold(tail: Tail, tails: Tails): Promise<boolean> {
    const hold = tail.hold!;
    const st = await tail.fh.stat();
    noteSize(tail, st.size);
    const now = Date.now();
    if (st.size !== hold.size) {
      hold.size = st.size;
      hold.quietSince = now;
    }
    // shrunk: what was compared is gone, compare again from the start
    if (st.size < hold.verified) hold.verified = 0;
    const g = tails.get(hold.of);
    if (!g || g.gen !== hold.gen) {
      // The original's identity ended: resume where its reading ended, if this is its copy,
      // once that can be told (the copy may still be being written).
      if (st.size <= FINGERPRINT_BYTES + WINDOW_BYTES && now - hold.quietSince < this.opts.rotateWaitMs) return false;
      const e = this.ended.find((x) => x.key === hold.of && x.gen === hold.gen);
      const at = e ? await copyOffset(tail.fh, st.size, e.marks) : undefined;
      if (at === undefined) this.opts.life.notice(`${tail.path} (${tail.key}): not a copy of the file it started like, reading from 0`);
      await this.startAt(tail, at ?? 0, e);
      return true;
    }
    // About to end (its truncation was seen): decide once it has.
    if (g.truncated) return false;
    if (hold.verified < st.size) {
      const same = await samePrefix(tail, g, hold.verified, st.size);
      if (same === 'wait') return false;
      if (same !== true) {
        // It differs from `same` on: a copy that gained lines of its own (read
        // from the original's last committed position it holds), or no copy.
        const at = await copyOffset(tail.fh, same, g.marks);
        if (at === undefined) this.opts.life.notice(`${tail.path} (${tail.key}): differs from ${g.path} (${g.key}), not a copy: reading from 0`);
        await this.startAt(tail, at ?? 0, { key: g.key, gen: g.gen, path: g.path, marks: g.marks, at: now });
        return true;
      }
      hold.verified = st.size;
    }
    if (now - hold.quietSince < this.opts.rotateWaitMs) return false;
    if (hold.verified <= FINGERPRINT_BYTES + WINDOW_BYTES) {
      // Too short to tell a copy from a file that merely starts alike: read it.
      await this.startAt(tail, 0, undefined);
      return true;
    }
    if (tail.detached) {
      // A copy of a file we are reading, gone again: nothing of its own to read.
      await this.opts.release(tail);
      return true;
    }
    return false;
  }

  private prune(): void {
    const keep = Date.now() - Math.max(ENDED_KEEP_MS, 10 * this.opts.rotateWaitMs);
    let drop = 0;
    while (drop < this.ended.length && this.ended[drop]!.at < keep) drop++;
    if (drop) this.ended.splice(0, drop);
  }
}

/**
 * The offset a copy of a file with these committed positions resumes at,
 * or undefined if the file is not such a copy.
 */
async function copyOffset(fh: FileHandle, size: number, marks: readonly StoredPosition[]): Promise<number | undefined> {
  if (!marks.length || size <= FINGERPRINT_BYTES + WINDOW_BYTES) return undefined;
  const headFp = fingerprint(await readHead(fh, FINGERPRINT_BYTES), FINGERPRINT_BYTES);
  // A position must cover more than the first line: one long header line
  // that two files share must never make one a copy of the other.
  const firstLine = await firstLineEnd(fh, size);
  // The copy holds everything the original's reader committed up to the
  // latest position it holds; what follows is read from the copy. Nothing is
  // presumed about bytes past that position: when the reader had gone past
  // the copy's end, the lines between that position and the copy's end are
  // read again (at most one chunk, and only if lines were written between
  // the copy and the truncation), which beats skipping lines the copy may
  // have gained since.
  for (let i = marks.length - 1; i >= 0; i--) {
    const m = marks[i]!;
    if (m.offset > size || m.offset <= firstLine || !isStrongPosition(m)) continue;
    if (await holdsPosition(fh, m, headFp)) return m.offset;
  }
  return undefined;
}

/**
 * Whether bytes [from, to) of `copy` equal those of `orig`: true, or the
 * offset of the first byte that differs (or that `orig` lacks); 'wait' when
 * `orig` looks rewritten (its truncation is about to be handled).
 */
async function samePrefix(copy: Tail, orig: Tail, from: number, to: number): Promise<true | number | 'wait'> {
  const differs = async (at: number): Promise<number | 'wait'> => {
    const st = await orig.fh.stat();
    const intact = st.size >= orig.splitter.position && (await readHead(orig.fh, orig.head.length)).equals(orig.head);
    return intact ? at : 'wait';
  };
  const end = Math.min(to, (await orig.fh.stat()).size);
  const a = Buffer.alloc(Math.max(1, Math.min(64 * 1024, end - from)));
  const b = Buffer.alloc(a.length);
  for (let at = from; at < end; ) {
    const n = Math.min(a.length, end - at);
    const ra = await copy.fh.read(a, 0, n, at);
    const rb = await orig.fh.read(b, 0, n, at);
    const got = Math.min(ra.bytesRead, rb.bytesRead);
    let i = 0;
    while (i < got && a[i] === b[i]) i++;
    if (i < n) return differs(at + i);
    at += n;
  }
  return end < to ? differs(end) : true;
}
