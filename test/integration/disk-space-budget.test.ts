/**
 * The buffer's free-space guard measures on a budget (disk-space.ts): not
 * per commit while there is plenty of room, on every commit once the room
 * left nears what must stay free, and again within RECHECK_MS when another
 * writer took the room in between. Real SQLite (WAL, synchronous=FULL, as the
 * buffer opens it) on a real tmpfs, so the kernel's ENOSPC is the real one;
 * commits go through the guard exactly as AuditBuffer.commit does
 * (ensureRoom, then write).
 *
 * Mounting needs root or CAP_SYS_ADMIN; without it these tests fail saying
 * so (test/helpers/tmpfs.ts), never pass without having filled a disk.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { DiskSpaceGuard, RECHECK_BYTES, RECHECK_MS } from '../../src/sidecar/buffer/disk-space.js';
import { openDatabase } from '../../src/sqlite/open.js';
import { sleep } from '../harness/wait.js';
import { mountTmpfs, type Tmpfs } from '../helpers/tmpfs.js';

const MiB = 1024 * 1024;
const ROW = 1024;

interface Rig {
  fs: Tmpfs;
  db: Database.Database;
  guard: DiskSpaceGuard;
  records: number;
}

let cleanups: Array<() => void> = [];

afterEach(() => {
  for (const c of cleanups.reverse()) {
    try {
      c();
    } catch {
      // best effort; the tmpfs unmount is lazy as a last resort
    }
  }
  cleanups = [];
});

function rig(size: number): Rig {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'sealtrail-space-'));
  cleanups.push(() => fs.rmSync(base, { recursive: true, force: true }));
  const tmp = mountTmpfs(path.join(base, 'disk'), size);
  cleanups.push(() => tmp.unmount());
  const file = path.join(tmp.dir, 'buffer.db');
  const db = openDatabase(file);
  cleanups.push(() => db.close());
  db.exec('CREATE TABLE r (seq INTEGER PRIMARY KEY, body BLOB NOT NULL)');
  return { fs: tmp, db, guard: new DiskSpaceGuard(db, file, 0), records: 0 };
}

/** One commit of `n` rows of ROW bytes, the way AuditBuffer.commit does it. Throws what it throws. */
function commit(r: Rig, n = 5): void {
  const cost = r.guard.commitCost(Array<number>(n).fill(ROW), 0);
  r.guard.ensureRoom(cost, r.records);
  const insert = r.db.prepare('INSERT INTO r (seq, body) VALUES (?, ?)');
  const body = Buffer.alloc(ROW, 7);
  r.guard.write(() => r.db.transaction(() => {
    for (let i = 0; i < n; i++) insert.run(r.records + i, body);
  })(), false);
  r.records += n;
}

function codeOf(err: unknown): string | undefined {
  return (err as { code?: string }).code;
}

describe('free space measured on a budget', () => {
  it('with room to spare, measures once per budget, not once per commit', () => {
    const r = rig(64 * MiB);
    const t0 = Date.now();
    for (let i = 0; i < 300; i++) commit(r);
    const elapsed = Date.now() - t0;
    const spent = 300 * r.guard.commitCost(Array<number>(5).fill(ROW), 0);
    // one to start, one per RECHECK_MS and one per RECHECK_BYTES at most; per commit it was 300
    expect(r.guard.measurements).toBeLessThanOrEqual(1 + Math.ceil(elapsed / RECHECK_MS) + Math.ceil(spent / RECHECK_BYTES));
    expect(r.guard.measurements).toBeLessThan(30);
  });

  it('measures again after an ack: the deletions it wrote are not counted', () => {
    const r = rig(64 * MiB);
    commit(r);
    commit(r);
    const before = r.guard.measurements;
    r.guard.acked();
    commit(r);
    expect(r.guard.measurements).toBe(before + 1);
  });

  it('near full, measures every commit and refuses with buffer_disk_low before the disk is full', () => {
    const r = rig(32 * MiB);
    // Little more than the guard must keep free (a few hundred commits from refusal), from
    // before the first measurement: the buffer itself then takes the rest.
    r.fs.fill(path.join(r.fs.dir, 'filler'), 3 * MiB);
    const measuredAt = r.guard.measurements;
    let commits = 0;
    let refused: unknown;
    for (let i = 0; i < 5_000 && refused === undefined; i++) {
      try {
        commit(r);
        commits++;
      } catch (err) {
        refused = err;
      }
    }
    expect(codeOf(refused)).toBe('buffer_disk_low');
    expect(commits).toBeGreaterThan(0);
    // every commit past the fill was measured (the last one too, the refusal)
    expect(r.guard.measurements - measuredAt).toBeGreaterThanOrEqual(commits + 1);
    // refused with room left: checkpoints and acks can still be written
    expect(r.fs.free()).toBeGreaterThan(512 * 1024);
    expect(r.db.pragma('integrity_check', { simple: true })).toBe('ok');
  });

  it('another writer taking the room between measurements is caught within RECHECK_MS', async () => {
    const r = rig(64 * MiB);
    commit(r);
    // Measured with tens of MiB free; now someone else leaves 1 MiB, less than the guard keeps.
    r.fs.fill(path.join(r.fs.dir, 'filler'), MiB);
    const filledAt = Date.now();
    let refusedAt: number | undefined;
    const errors: unknown[] = [];
    while (refusedAt === undefined && Date.now() - filledAt < 3 * RECHECK_MS) {
      try {
        commit(r, 1);
      } catch (err) {
        errors.push(err);
        refusedAt = Date.now();
      }
      await sleep(50);
    }
    expect(refusedAt).toBeDefined();
    // The bound the guard documents: the next measurement, at most RECHECK_MS after the last.
    expect(refusedAt! - filledAt).toBeLessThanOrEqual(RECHECK_MS + 250);
    expect(errors.map(codeOf)).toEqual(['buffer_disk_low']);
    expect(r.fs.free()).toBeGreaterThan(0);
  });
});
