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

  /** A batch of `bytes` canonical bytes was sealed: acknowledging it may cost that much. */
  sealed(bytes: number): void {
    if (bytes > this.largestBatch) this.largestBatch = bytes;
  }

  /** After an ack: short of space, give the WAL's bytes back now. */
  acked(): void {
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
   * bytes of the filesystem. Cheap: one statfs, two stats, two header reads.
   * `records`: how many the buffer holds (none: no ack can make more room).
   */
  ensureRoom(cost: number, records: number): void {
    if (this.dir === undefined) return;
    const check = (): { room: number; need: number } | undefined => {
      const space = this.space();
      if (!space) return undefined; // cannot tell: SQLite itself reports a full disk
      const commitGrowth = Math.max(0, cost - space.freePages);
      // Once refused, resume with some more room, so commits do not flap per ack;
      // not when nothing is left to acknowledge: then no ack can make more room.
      const slack = this.lowSpace && records > 0 ? ROOM_TO_RESUME : 0;
      return { room: space.fsFree, need: cost + space.pendingGrowth + commitGrowth + 2 * this.largestBatch + ROOM_FOR_ACKS + slack };
    };
    let r = check();
    // A WAL that was checkpointed still holds its bytes: give them back and look again.
    if (r && r.room < r.need && this.truncateWal()) r = check();
    if (!r || r.room >= r.need) {
      this.lowSpace = false;
      return;
    }
    this.lowSpace = true;
    throw new BufferError(
      'buffer_disk_low',
      `the disk under ${this.path} has ${r.room} bytes free and the buffer keeps ${r.need} free to commit, checkpoint and record acknowledgements; new records wait until acknowledged batches or the operator free space`,
    );
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
