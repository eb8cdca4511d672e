/**
 * The buffer's disk-space guard: the buffer never fills its disk by itself.
 *
 * Contracts:
 * - A commit is refused (error code `buffer_disk_low`, a disk-full error for
 *   the sidecar) while the free space would not let a WAL checkpoint and the
 *   acknowledgement of the batches finish after it. Otherwise a buffer that
 *   filled its disk could never record an ack (an ack writes WAL frames too)
 *   nor checkpoint, so it could never free space, even with the collector
 *   back. See ensureRoom().
 * - Once refused, commits resume only with ROOM_TO_RESUME more, so they do
 *   not flap per ack.
 * - Short of space, a WAL that was checkpointed gives its bytes back
 *   (wal_checkpoint(TRUNCATE)) after an ack, and before a seal or an ack
 *   that failed for space is tried once more.
 * - Free space is measured on a budget, not per commit: again after
 *   RECHECK_BYTES of commits (by the guard's own upper-bound estimate of
 *   their WAL bytes) or RECHECK_MS, whichever comes first, after every ack,
 *   and on every commit while the last measurement left less than twice
 *   what the buffer wrote since (plus this commit) plus OTHERS_MARGIN above
 *   what must stay free. The bound: a skipped measurement would have
 *   refused only if something other than this buffer wrote more than
 *   OTHERS_MARGIN to the same filesystem within RECHECK_MS; even then the
 *   commit cannot corrupt anything (SQLite rolls a commit that finds no
 *   space back whole, a disk-full error like this guard's), it only eats
 *   into the room kept for acks until the next measurement refuses.
 */
import { statSync, statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import type Database from 'better-sqlite3';
import { BufferError } from '../../core/errors.js';
import { isDiskFull } from '../disk-full.js';

const MiB = 1024 * 1024;
/** Kept free beyond the WAL and the batches (see ensureRoom): seals, small acks, positions. */
const ROOM_FOR_ACKS = MiB;
/** Once commits were refused for room, they resume only with this much more, so they do not flap per ack. */
const ROOM_TO_RESUME = MiB;
/** Rough upper bound of the WAL bytes a record of `n` canonical bytes costs (page slack, frame headers, leaf, mac, id). */
const walCost = (n: number): number => 2 * n + 256;
/** Free space is measured again after commits of this many estimated WAL bytes... */
export const RECHECK_BYTES = 4 * MiB;
/** ...or this long after the last measurement, whichever comes first. */
export const RECHECK_MS = 1000;
/** What other writers on the buffer's filesystem may take within RECHECK_MS without the guard noticing in time. */
export const OTHERS_MARGIN = 16 * MiB;
/** Rough upper bound of the WAL bytes sealing a batch writes (its row: checkpoint, frontier, chain head). */
const SEAL_COST = 16 * 1024;

/** The last measurement that let a commit through, and what the buffer wrote since. */
interface Measured {
  at: number;
  /** free bytes beyond what must stay free for checkpoints and acks, when measured */
  headroom: number;
  /** estimated WAL bytes written since (commits and seals) */
  spent: number;
}

export class DiskSpaceGuard {
  private readonly db: Database.Database;
  private readonly path: string;
  /** the directory whose filesystem holds the buffer; undefined for ':memory:' */
  private readonly dir: string | undefined;
  private readonly pageSize: number;
  private readonly freePages: Database.Statement;
  private readonly pageCount: Database.Statement;
  /** commits were refused for room, or a write failed for lack of space, and no commit has passed since */
  private lowSpace = false;
  /** canonical bytes of the largest batch sealed or waiting for its ack: what acknowledging one may write */
  private largestBatch: number;
  /** undefined: measure on the next commit */
  private measured: Measured | undefined;
  private measurementCount = 0;

  constructor(db: Database.Database, path: string, largestBatch: number) {
    this.db = db;
    this.path = path;
    this.dir = path === ':memory:' || path === '' ? undefined : dirname(path);
    this.pageSize = db.pragma('page_size', { simple: true }) as number;
    this.freePages = db.prepare('PRAGMA freelist_count').pluck();
    this.pageCount = db.prepare('PRAGMA page_count').pluck();
    this.largestBatch = largestBatch;
  }

  /** Rough WAL bytes of a commit of records of these canonical sizes and `quarantine` rows. */
  commitCost(sizes: readonly number[], quarantine: number): number {
    let cost = 4096 * (2 + quarantine);
    for (const size of sizes) cost += walCost(size);
    return cost;
  }

  /** How many times free space was measured (statfs): what the budget saves is visible in tests. */
  get measurements(): number {
    return this.measurementCount;
  }

  /** A batch of `bytes` canonical bytes was sealed: acknowledging it may cost that much. */
  sealed(bytes: number): void {
    if (bytes > this.largestBatch) {
      this.largestBatch = bytes;
      // the room kept for acks grew: what was measured no longer says enough
      this.measured = undefined;
    }
    if (this.measured) this.measured.spent += SEAL_COST;
  }

  /** After an ack: short of space, give the WAL's bytes back now. */
  acked(): void {
    // An ack's deletions write WAL frames the budget does not count: measure again.
    this.measured = undefined;
    // the freed pages are reused from the database file, and the WAL, checkpointed, no longer holds its size
    if (this.lowSpace) this.truncateWal();
  }

  /**
   * Refuses a commit of about `cost` WAL bytes unless the filesystem keeps,
   * after it, room for what frees space later. The commit's frames need
   * `cost` bytes in the WAL. The next checkpoint grows the database file to
   * the database's size (pending growth), plus whatever of this commit the
   * free pages inside the file cannot take. Acknowledging a batch writes its
   * pages to the WAL again (twice the largest batch, plus ROOM_FOR_ACKS for
   * seals and positions). Free pages do not count for the WAL, which needs
   * bytes of the filesystem. A measurement is one statfs, two stats, two
   * header reads, taken on the budget the module header describes.
   * `records`: how many the buffer holds (none: no ack can make more room).
   */
  ensureRoom(cost: number, records: number): void {
    if (this.dir === undefined) return;
    if (this.withinBudget(cost)) return;
    const check = (): { room: number; need: number; reserve: number } | undefined => {
      const space = this.space();
      if (!space) return undefined; // cannot tell: SQLite itself reports a full disk
      const commitGrowth = Math.max(0, cost - space.freePages);
      // Once refused, resume with some more room, so commits do not flap per ack;
      // not when nothing is left to acknowledge: then no ack can make more room.
      const slack = this.lowSpace && records > 0 ? ROOM_TO_RESUME : 0;
      const reserve = space.pendingGrowth + 2 * this.largestBatch + ROOM_FOR_ACKS + slack;
      return { room: space.fsFree, need: cost + commitGrowth + reserve, reserve };
    };
    this.measured = undefined;
    let r = check();
    // A WAL that was checkpointed still holds its bytes: give them back and look again.
    if (r && r.room < r.need && this.truncateWal()) r = check();
    if (!r || r.room >= r.need) {
      this.lowSpace = false;
      if (r) this.measured = { at: Date.now(), headroom: r.room - r.reserve, spent: cost };
      return;
    }
    this.lowSpace = true;
    throw new BufferError(
      'buffer_disk_low',
      `the disk under ${this.path} has ${r.room} bytes free and the buffer keeps ${r.need} free to commit, checkpoint and record acknowledgements; new records wait until acknowledged batches or the operator free space`,
    );
  }

  /**
   * Whether a commit of `cost` may go without measuring: the last
   * measurement is recent, the buffer wrote little since, and it left room
   * for all of that twice over (the WAL grows by what a commit writes, and
   * the database file by as much at the next checkpoint) plus OTHERS_MARGIN.
   */
  private withinBudget(cost: number): boolean {
    const m = this.measured;
    if (!m || this.lowSpace) return false;
    const spent = m.spent + cost;
    if (Date.now() - m.at >= RECHECK_MS || spent > RECHECK_BYTES || m.headroom - 2 * spent < OTHERS_MARGIN) return false;
    m.spent = spent;
    return true;
  }

  /**
   * Runs a write transaction; when it fails for lack of space, notes it and,
   * if `retry`, checkpoints and truncates the WAL (a WAL already checkpointed
   * holds disk space it no longer needs) and tries once more.
   */
  write(fn: () => void, retry: boolean): void {
    try {
      fn();
    } catch (err) {
      if (!isDiskFull(err)) throw err;
      this.lowSpace = true;
      this.measured = undefined;
      if (!retry || !this.truncateWal()) throw err;
      fn();
    }
  }

  /**
   * Free bytes of the filesystem; bytes of free pages inside the database;
   * bytes the database file grows by at the next checkpoint (its size in
   * pages, WAL included, minus the file's length). Undefined if unknown.
   */
  private space(): { fsFree: number; freePages: number; pendingGrowth: number } | undefined {
    if (this.dir === undefined) return undefined;
    this.measurementCount++;
    try {
      const s = statfsSync(this.dir);
      const fileBytes = statSync(this.path).size;
      const pages = this.pageCount.get() as number;
      return {
        fsFree: Number(s.bavail) * Number(s.bsize),
        freePages: (this.freePages.get() as number) * this.pageSize,
        pendingGrowth: Math.max(0, pages * this.pageSize - fileBytes),
      };
    } catch {
      return undefined;
    }
  }

  private walBytes(): number {
    try {
      return statSync(`${this.path}-wal`).size;
    } catch {
      return 0; // no WAL file (yet)
    }
  }

  /**
   * wal_checkpoint(TRUNCATE), only when there is a WAL and the database file
   * can grow by what the checkpoint adds (a checkpoint that fails half-way
   * would take the room acks need). True when the WAL was fully checkpointed
   * and truncated. Never throws.
   */
  private truncateWal(): boolean {
    if (this.walBytes() === 0) return false;
    const space = this.space();
    if (space && space.fsFree < space.pendingGrowth) return false;
    try {
      const r = this.db.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number; log: number; checkpointed: number }>;
      return r[0] !== undefined && r[0].busy === 0 && r[0].log === r[0].checkpointed;
    } catch {
      return false; // e.g. SQLITE_FULL: the database file could not grow; nothing is lost
    }
  }
}
