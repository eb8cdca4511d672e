import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CHAIN_GENESIS } from '../../src/core/chain.js';
import { originForStream, parseCheckpoint } from '../../src/core/checkpoint.js';
import { BufferError } from '../../src/core/errors.js';
import { leafHash, rootFromLeafHashes } from '../../src/core/merkle.js';
import { openNote, parseVerifierKey } from '../../src/core/note.js';
import { BATCH_ENVELOPE_BYTES, MAX_RECORD_WIRE_BYTES, RECORD_ENVELOPE_BYTES } from '../../src/core/wire-limits.js';
import { AuditBuffer, type BatchRow, type PositionRow, type QuarantineRow } from '../../src/sidecar/buffer/buffer.js';
import { MIGRATIONS } from '../../src/sidecar/buffer/migrations.js';
import { migrate } from '../../src/sqlite/open.js';
import { chainOk, makeKeys, nextRecords, prepareRecords, tempDir, type Keys, type TempDir } from '../helpers/sidecar-fixtures.js';

const STREAM = 'pod-a_1.test';

let tmp: TempDir;
let keys: Keys;
const open: AuditBuffer[] = [];
const raws: Database.Database[] = [];

beforeEach(() => {
  tmp = tempDir('sealtrail-buffer-');
  keys = makeKeys('buffer-test');
});

afterEach(() => {
  for (const b of open.splice(0)) b.close();
  for (const d of raws.splice(0)) if (d.open) d.close();
  tmp.cleanup();
});

function openBuffer(path = tmp.file('buffer.db'), stream = STREAM): AuditBuffer {
  const b = AuditBuffer.open(path, { newStreamId: () => stream });
  open.push(b);
  return b;
}

/** A second, independent connection to the same file, as an attacker or operator would use. */
function rawDb(path = tmp.file('buffer.db')): Database.Database {
  const d = new Database(path);
  d.pragma('busy_timeout = 5000');
  raws.push(d);
  return d;
}

function count(db: Database.Database, sql: string, ...args: unknown[]): number {
  return (db.prepare(sql).get(...args) as { n: number }).n;
}

function pos(offset: number, key = 'f1'): PositionRow {
  return { source: 'src', key, path: '/var/log/agent.jsonl', offset, fingerprint: `fp-${key}` };
}

function qrow(offset: number, reason = 'json_invalid'): QuarantineRow {
  return { source: 'src', path: '/var/log/agent.jsonl', fileKey: 'f1', offset, length: 10, reason, message: 'line is not valid JSON' };
}

/** Every leaf hash the stream ever had, in seq order (kept by the test, since acks delete rows). */
class LeafLog {
  readonly leaves: Buffer[] = [];
  add(b: AuditBuffer, n: number, extra?: (seq: number) => Record<string, unknown>): void {
    const recs = nextRecords(b, n, extra);
    b.commit(recs);
    for (const r of recs) this.leaves.push(r.leaf);
  }
}

function checkpointOf(row: BatchRow, vkey = keys.vkey): ReturnType<typeof parseCheckpoint> {
  const { text } = openNote(row.checkpoint, [parseVerifierKey(vkey)]);
  return parseCheckpoint(text);
}

describe('AuditBuffer.open', () => {
  it('creates a stream id once: newStreamId is called only for a new file', () => {
    let calls = 0;
    const newStreamId = (): string => {
      calls++;
      return `stream-${calls}`;
    };
    const path = tmp.file('nested/dir/buffer.db');
    const a = AuditBuffer.open(path, { newStreamId });
    expect(a.stream).toBe('stream-1');
    expect(a.created).toBe(true);
    expect(calls).toBe(1);
    a.close();
    for (let i = 0; i < 3; i++) {
      const b = AuditBuffer.open(path, { newStreamId });
      expect(b.stream).toBe('stream-1');
      expect(b.created).toBe(false);
      b.close();
    }
    expect(calls).toBe(1);
    const d = rawDb(path);
    expect(d.prepare("SELECT value FROM meta WHERE key = 'stream'").get()).toEqual({ value: 'stream-1' });
    expect(count(d, "SELECT COUNT(*) AS n FROM meta WHERE key = 'created_at'")).toBe(1);
  });

  it('accepts a matching expectStream and refuses a different one with buffer_stream_mismatch', () => {
    const path = tmp.file('buffer.db');
    AuditBuffer.open(path, { newStreamId: () => 'one' }).close();
    const ok = AuditBuffer.open(path, { newStreamId: () => 'two', expectStream: 'one' });
    expect(ok.stream).toBe('one');
    ok.close();
    let caught: unknown;
    try {
      AuditBuffer.open(path, { newStreamId: () => 'two', expectStream: 'two' });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(BufferError);
    expect((caught as BufferError).code).toBe('buffer_stream_mismatch');
    // the refused open closed its connection and changed nothing
    const again = openBuffer(path);
    expect(again.stream).toBe('one');
  });

  it('refuses an invalid new stream id', () => {
    for (const bad of ['', 'has space', 'slash/x', 'x'.repeat(129), 'ü']) {
      let caught: unknown;
      try {
        AuditBuffer.open(tmp.file(`bad-${Buffer.from(bad).toString('hex').slice(0, 20)}.db`), { newStreamId: () => bad });
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(BufferError);
      expect((caught as BufferError).code).toBe('stream_id_invalid');
    }
  });

  it('runs in WAL mode and records schema versions 1 to 4 in schema_migrations', () => {
    const b = openBuffer();
    expect(b.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(b.db.pragma('synchronous', { simple: true })).toBe(2); // FULL
    const rows = b.db.prepare('SELECT version, name FROM schema_migrations ORDER BY version').all();
    expect(rows).toEqual([
      { version: 1, name: 'initial' },
      { version: 2, name: 'record wire bytes' },
      { version: 3, name: 'quarantine field' },
      { version: 4, name: 'event ids' },
    ]);
    expect(Math.max(...MIGRATIONS.map((m) => m.version))).toBe(4);
    b.close();
    const b2 = openBuffer();
    expect(b2.db.prepare('SELECT COUNT(*) AS n FROM schema_migrations').get()).toEqual({ n: 4 });
  });

  it('upgrades a version 1 buffer: its records seal within the body limit by their canonical size bound', () => {
    const path = tmp.file('v1.db');
    const d = new Database(path);
    migrate(d, MIGRATIONS.slice(0, 1));
    d.prepare("INSERT INTO meta (key, value) VALUES ('stream', 'old'), ('created_at', '2026-01-01T00:00:00Z')").run();
    const recs = prepareRecords({ stream: 'old', startSeq: 0, prevMac: CHAIN_GENESIS, count: 5, extra: () => ({ details: { q: '"'.repeat(3000) } }) }).records;
    const ins = d.prepare('INSERT INTO records (seq, id, canonical, leaf, mac, key_id, bytes, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    for (const r of recs) ins.run(r.seq, r.id, r.canonical, r.leaf, r.mac, r.keyId, Buffer.byteLength(r.canonical), r.receivedAt);
    d.close();
    const b = AuditBuffer.open(path, { newStreamId: () => 'new' });
    expect(b.stream).toBe('old');
    const wire = (b.db.prepare('SELECT wire_bytes FROM records').all() as Array<{ wire_bytes: number | null }>).map((r) => r.wire_bytes);
    expect(wire).toEqual([null, null, null, null, null]);
    const limit = BATCH_ENVELOPE_BYTES + 3 * (2 * 6500 + RECORD_ENVELOPE_BYTES);
    for (let row = b.seal(keys.signer, 100, limit); row; row = b.seal(keys.signer, 100, limit)) {
      expect(Buffer.byteLength(JSON.stringify(b.wireBatch(row)))).toBeLessThanOrEqual(limit);
    }
    expect(b.stats().unsealed).toBe(0);
    b.close();
  });

  it('refuses a file whose schema is newer (schema_too_new) and leaves it unchanged', () => {
    const path = tmp.file('buffer.db');
    AuditBuffer.open(path, { newStreamId: () => 'old' }).close();
    const d = rawDb(path);
    d.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (5, 'future', '2030-01-01T00:00:00Z')").run();
    d.close();
    let caught: unknown;
    try {
      AuditBuffer.open(path, { newStreamId: () => 'new' });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(BufferError);
    expect((caught as BufferError).code).toBe('schema_too_new');
    const d2 = rawDb(path);
    expect(d2.prepare('SELECT MAX(version) AS v FROM schema_migrations').get()).toEqual({ v: 5 });
  });

  it('starts an empty buffer at seq 0 with the genesis MAC', () => {
    const b = openBuffer();
    expect(b.chainCursor()).toEqual({ nextSeq: 0, prevMac: CHAIN_GENESIS });
    expect(b.stats()).toEqual({ records: 0, bytes: 0, unsealed: 0, nextSeq: 0, nextBatch: 0 });
    expect(b.nextToShip()).toBeUndefined();
    expect(b.seal(keys.signer, 100, 1e9)).toBeNull();
    expect(b.oldestUnacked()).toBeUndefined();
  });
});

describe('AuditBuffer.commit', () => {
  it('writes records, quarantine rows and the position together', () => {
    const b = openBuffer();
    const recs = nextRecords(b, 3);
    b.commit(recs, pos(300), [qrow(100), qrow(200, 'line_too_long')]);
    expect(b.chainCursor()).toEqual({ nextSeq: 3, prevMac: recs[2]!.mac });
    expect(b.getPosition('src', 'f1')).toEqual(pos(300));
    expect(b.getPosition('src', 'other')).toBeUndefined();
    expect(b.quarantineCount()).toBe(2);
    const bytes = recs.reduce((s, r) => s + Buffer.byteLength(r.canonical), 0);
    expect(b.stats()).toEqual({ records: 3, bytes, unsealed: 3, nextSeq: 3, nextBatch: 0 });
    const rows = b.db.prepare('SELECT seq, id, canonical, leaf, mac, key_id, bytes, received_at FROM records ORDER BY seq').all() as Array<Record<string, unknown>>;
    expect(rows.map((r) => r.seq)).toEqual([0, 1, 2]);
    rows.forEach((r, i) => {
      expect(r.canonical).toBe(recs[i]!.canonical);
      expect((r.leaf as Buffer).equals(recs[i]!.leaf)).toBe(true);
      expect((r.mac as Buffer).equals(recs[i]!.mac)).toBe(true);
      expect(r.key_id).toBe('k1');
      expect(r.id).toBe(recs[i]!.id);
      expect(r.received_at).toBe(recs[i]!.receivedAt);
    });
    expect(b.oldestUnacked()).toBe(recs[0]!.receivedAt);
  });

  it('moves a position forward with a later commit, even with no records', () => {
    const b = openBuffer();
    b.commit(nextRecords(b, 1), pos(10));
    b.commit([], pos(25), [qrow(10)]);
    expect(b.getPosition('src', 'f1')?.offset).toBe(25);
    expect(b.chainCursor().nextSeq).toBe(1);
    b.commit([], { ...pos(5), path: '/rotated.jsonl', fingerprint: 'new' });
    expect(b.getPosition('src', 'f1')).toEqual({ ...pos(5), path: '/rotated.jsonl', fingerprint: 'new' });
  });

  it('refuses a seq gap or a repeated seq, writing nothing', () => {
    const b = openBuffer();
    b.commit(nextRecords(b, 2), pos(20));
    const good = nextRecords(b, 3); // seq 2, 3, 4
    const cursor = b.chainCursor();
    const attempts = [
      [good[1]!, good[2]!], // starts at 3: gap
      [good[0]!, good[2]!], // 2, 4: gap inside
      [good[0]!, good[0]!], // 2, 2: duplicate
      nextRecords(b, 1).map((r) => ({ ...r, seq: 1 })), // rewrites seq 1
    ];
    for (const recs of attempts) {
      let caught: unknown;
      try {
        b.commit(recs, pos(999), [qrow(500)]);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(BufferError);
      expect((caught as BufferError).code).toBe('seq_gap');
      expect(b.chainCursor()).toEqual(cursor);
      expect(count(b.db, 'SELECT COUNT(*) AS n FROM records')).toBe(2);
      expect(b.getPosition('src', 'f1')?.offset).toBe(20);
      expect(b.quarantineCount()).toBe(0);
    }
    b.commit(good, pos(50));
    expect(b.chainCursor().nextSeq).toBe(5);
  });

  it('is atomic: a statement failing after some records were inserted rolls everything back', () => {
    const b = openBuffer();
    b.commit(nextRecords(b, 2), pos(20), [qrow(5)]);
    const cursor = b.chainCursor();
    const stats = b.stats();
    const recs = nextRecords(b, 4); // seq 2..5
    // The records go in first; the NOT NULL quarantine column fails after them.
    const broken = { ...qrow(60), reason: null as unknown as string };
    expect(() => b.commit(recs, pos(80), [qrow(40), broken])).toThrow(/NOT NULL/);
    expect(count(b.db, 'SELECT COUNT(*) AS n FROM records')).toBe(2);
    expect(count(b.db, 'SELECT COUNT(*) AS n FROM records WHERE seq >= 2')).toBe(0);
    expect(b.quarantineCount()).toBe(1);
    expect(b.getPosition('src', 'f1')?.offset).toBe(20);
    expect(b.chainCursor()).toEqual(cursor);
    expect(b.stats()).toEqual(stats);
    expect(b.db.inTransaction).toBe(false);
    // the same records commit cleanly afterwards: no gap, no duplicate
    b.commit(recs, pos(80), [qrow(40)]);
    expect(b.chainCursor()).toEqual({ nextSeq: 6, prevMac: recs[3]!.mac });
    const rows = b.db.prepare('SELECT leaf, mac FROM records ORDER BY seq').all() as Array<{ leaf: Buffer; mac: Buffer }>;
    expect(rows).toHaveLength(6);
    expect(chainOk(rows)).toBe(true);
  });

  it('is atomic: a duplicate seq already in the file (written behind its back) fails mid-way and writes nothing', () => {
    const b = openBuffer();
    b.commit(nextRecords(b, 1), pos(10));
    const recs = nextRecords(b, 4); // seq 1..4
    // Someone else wrote seq 3 into the file; the buffer's cursor does not know.
    const d = rawDb();
    d.prepare('INSERT INTO records (seq, id, canonical, leaf, mac, key_id, bytes, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(
      3,
      'x',
      '{}',
      Buffer.alloc(32),
      Buffer.alloc(32),
      'k1',
      2,
      't',
    );
    const cursor = b.chainCursor();
    expect(() => b.commit(recs, pos(99), [qrow(50)])).toThrow(/UNIQUE|PRIMARY KEY/i);
    expect(b.db.prepare('SELECT seq FROM records ORDER BY seq').all()).toEqual([{ seq: 0 }, { seq: 3 }]);
    expect(b.getPosition('src', 'f1')?.offset).toBe(10);
    expect(b.quarantineCount()).toBe(0);
    expect(b.chainCursor()).toEqual(cursor);
    expect(b.stats().records).toBe(1);
  });
});

describe('append-only triggers (raw SQL on the same file)', () => {
  function setup(): { b: AuditBuffer; d: Database.Database; batches: BatchRow[] } {
    const b = openBuffer();
    b.commit(nextRecords(b, 6), pos(60), [qrow(1)]);
    const batches = [b.seal(keys.signer, 2, 1e9)!, b.seal(keys.signer, 2, 1e9)!, b.seal(keys.signer, 2, 1e9)!];
    return { b, d: rawDb(), batches };
  }

  it('refuses UPDATE on records, batches, quarantine, meta and acks', () => {
    const { b, d, batches } = setup();
    b.ack(batches[0]!);
    const updates = [
      "UPDATE records SET canonical = '{}' WHERE seq = 3",
      'UPDATE records SET seq = seq + 100',
      "UPDATE batches SET checkpoint = 'x' WHERE batch = 2",
      'UPDATE batches SET last_seq = 99 WHERE batch = 0',
      "UPDATE quarantine SET reason = 'ok'",
      "UPDATE meta SET value = 'other' WHERE key = 'stream'",
      "UPDATE acks SET acked_at = 'never'",
    ];
    for (const sql of updates) {
      expect(() => d.prepare(sql).run(), sql).toThrow(/append-only/);
    }
    // nothing changed
    expect(b.db.prepare("SELECT value FROM meta WHERE key = 'stream'").get()).toEqual({ value: STREAM });
    expect(count(d, 'SELECT COUNT(*) AS n FROM records WHERE seq >= 100')).toBe(0);
  });

  it('allows UPDATE on positions (a cursor, not history)', () => {
    const { d } = setup();
    d.prepare("UPDATE positions SET offset = 7 WHERE key = 'f1'").run();
    expect(d.prepare("SELECT offset FROM positions WHERE key = 'f1'").get()).toEqual({ offset: 7 });
  });

  it('refuses DELETE of unacknowledged records and batches, and of quarantine, meta and acks', () => {
    const { b, d, batches } = setup();
    b.ack(batches[0]!);
    const deletes = [
      'DELETE FROM records WHERE seq = 2',
      'DELETE FROM records',
      'DELETE FROM batches WHERE batch = 1',
      'DELETE FROM batches WHERE batch = 2',
      'DELETE FROM quarantine',
      'DELETE FROM meta',
      'DELETE FROM acks',
    ];
    for (const sql of deletes) {
      expect(() => d.prepare(sql).run(), sql).toThrow(/append-only/);
    }
    expect(count(d, 'SELECT COUNT(*) AS n FROM records')).toBe(4);
    expect(count(d, 'SELECT COUNT(*) AS n FROM batches')).toBe(3);
    expect(count(d, 'SELECT COUNT(*) AS n FROM quarantine')).toBe(1);
    expect(count(d, 'SELECT COUNT(*) AS n FROM acks')).toBe(1);
  });

  it('refuses DELETE of a batch that still holds records, even when acknowledged', () => {
    const { d, batches } = setup();
    // an ack row inserted behind the buffer's back does not free the records' batch row
    d.prepare("INSERT INTO acks (batch, acked_at) VALUES (1, 'now')").run();
    expect(() => d.prepare('DELETE FROM batches WHERE batch = 1').run()).toThrow(/append-only/);
    // ... but it does let its records go (they are acknowledged), after which the row is superseded
    d.prepare('DELETE FROM records WHERE seq BETWEEN ? AND ?').run(batches[1]!.firstSeq, batches[1]!.lastSeq);
    d.prepare('DELETE FROM batches WHERE batch = 1').run();
    expect(count(d, 'SELECT COUNT(*) AS n FROM batches')).toBe(2);
  });

  it('never lets the newest batch row be deleted, even when acknowledged and empty', () => {
    const { b, d, batches } = setup();
    for (const row of batches) b.ack(row);
    expect(count(d, 'SELECT COUNT(*) AS n FROM records')).toBe(0);
    expect(d.prepare('SELECT batch FROM batches').all()).toEqual([{ batch: 2 }]);
    expect(() => d.prepare('DELETE FROM batches').run()).toThrow(/append-only/);
    expect(() => d.prepare('DELETE FROM batches WHERE batch = 2').run()).toThrow(/append-only/);
    expect(d.prepare('SELECT batch FROM batches').all()).toEqual([{ batch: 2 }]);
  });

  it('the buffer connection is bound by the same triggers', () => {
    const { b } = setup();
    expect(() => b.db.prepare('DELETE FROM records').run()).toThrow(/append-only/);
    expect(() => b.db.prepare("UPDATE meta SET value = 'x'").run()).toThrow(/append-only/);
  });

  it('quarantine has no column that could hold line content (field holds a member path, never a value)', () => {
    const b = openBuffer();
    const cols = (b.db.prepare('PRAGMA table_info(quarantine)').all() as Array<{ name: string }>).map((c) => c.name);
    expect(cols.sort()).toEqual(['at', 'field', 'file_key', 'id', 'length', 'message', 'offset', 'path', 'reason', 'source'].sort());
  });
});

describe('AuditBuffer.seal', () => {
  it('produces a signed checkpoint over all leaves so far', () => {
    const b = openBuffer();
    const log = new LeafLog();
    log.add(b, 5);
    const row = b.seal(keys.signer, 100, 1e9)!;
    expect(row).toMatchObject({ batch: 0, firstSeq: 0, lastSeq: 4, treeSize: 5, keyId: 'k1', prevCheckpoint: null });
    expect(row.chainHead.equals(b.chainCursor().prevMac)).toBe(true);
    const cp = checkpointOf(row);
    expect(cp.origin).toBe(originForStream(STREAM));
    expect(cp.origin).toBe(`sealtrail/${STREAM}`);
    expect(cp.size).toBe(5);
    expect(cp.root.equals(rootFromLeafHashes(log.leaves))).toBe(true);
    expect(b.seal(keys.signer, 100, 1e9)).toBeNull();
    expect(b.stats()).toMatchObject({ unsealed: 0, nextBatch: 1 });

    log.add(b, 3);
    const row2 = b.seal(keys.signer, 100, 1e9)!;
    expect(row2).toMatchObject({ batch: 1, firstSeq: 5, lastSeq: 7, treeSize: 8 });
    expect(row2.prevCheckpoint).toBe(row.checkpoint);
    const cp2 = checkpointOf(row2);
    expect(cp2.size).toBe(8);
    expect(cp2.root.equals(rootFromLeafHashes(log.leaves))).toBe(true);
  });

  it('a checkpoint does not verify with another key', () => {
    const b = openBuffer();
    b.commit(nextRecords(b, 1));
    const row = b.seal(keys.signer, 10, 1e9)!;
    const other = makeKeys('buffer-test');
    expect(() => openNote(row.checkpoint, [parseVerifierKey(other.vkey)])).toThrow();
  });

  it('respects maxRecords', () => {
    const b = openBuffer();
    const log = new LeafLog();
    log.add(b, 10);
    const rows: BatchRow[] = [];
    for (let r = b.seal(keys.signer, 4, 1e9); r; r = b.seal(keys.signer, 4, 1e9)) rows.push(r);
    expect(rows.map((r) => [r.batch, r.firstSeq, r.lastSeq])).toEqual([
      [0, 0, 3],
      [1, 4, 7],
      [2, 8, 9],
    ]);
    rows.forEach((r) => {
      const cp = checkpointOf(r);
      expect(cp.size).toBe(r.lastSeq + 1);
      expect(cp.root.equals(rootFromLeafHashes(log.leaves.slice(0, r.lastSeq + 1)))).toBe(true);
    });
  });

  it('keeps a batch body within maxBodyBytes, always taking at least one record', () => {
    const b = openBuffer();
    const log = new LeafLog();
    log.add(b, 6, () => ({ details: { pad: 'p"'.repeat(500) } }));
    const rows = b.db.prepare('SELECT bytes, wire_bytes FROM records ORDER BY seq').all() as Array<{ bytes: number; wire_bytes: number }>;
    // every quote is escaped once more on the wire
    for (const r of rows) expect(r.wire_bytes).toBeGreaterThan(r.bytes + 500);
    const sizes = rows.map((r) => r.wire_bytes + RECORD_ENVELOPE_BYTES);
    const one = Math.max(...sizes);
    // room for two records but not three
    const r1 = b.seal(keys.signer, 100, BATCH_ENVELOPE_BYTES + sizes[0]! + sizes[1]! + Math.floor(one / 2))!;
    expect([r1.firstSeq, r1.lastSeq]).toEqual([0, 1]);
    expect(Buffer.byteLength(JSON.stringify(b.wireBatch(r1)))).toBeLessThanOrEqual(BATCH_ENVELOPE_BYTES + sizes[0]! + sizes[1]!);
    // smaller than a single record: still one per batch
    const r2 = b.seal(keys.signer, 100, 1)!;
    expect([r2.firstSeq, r2.lastSeq]).toEqual([2, 2]);
    const r3 = b.seal(keys.signer, 100, 0)!;
    expect([r3.firstSeq, r3.lastSeq]).toEqual([3, 3]);
    const r4 = b.seal(keys.signer, 100, 1e9)!;
    expect([r4.firstSeq, r4.lastSeq]).toEqual([4, 5]);
    expect(checkpointOf(r4).root.equals(rootFromLeafHashes(log.leaves))).toBe(true);
  });

  it('seals a record over the wire limit (as an older version could have stored) alone, never with good records', () => {
    const b = openBuffer();
    const log = new LeafLog();
    log.add(b, 3);
    log.add(b, 1, () => ({ details: { pad: 'x'.repeat(MAX_RECORD_WIRE_BYTES) } }));
    log.add(b, 3);
    const rows: BatchRow[] = [];
    for (let r = b.seal(keys.signer, 100, 1e9); r; r = b.seal(keys.signer, 100, 1e9)) rows.push(r);
    expect(rows.map((r) => [r.firstSeq, r.lastSeq])).toEqual([
      [0, 2],
      [3, 3],
      [4, 6],
    ]);
    expect(checkpointOf(rows[2]!).root.equals(rootFromLeafHashes(log.leaves))).toBe(true);
  });

  it('batch rows in the database match what seal returned', () => {
    const b = openBuffer();
    b.commit(nextRecords(b, 3));
    const row = b.seal(keys.signer, 10, 1e9)!;
    expect(b.nextToShip()).toEqual(row);
  });
});

describe('wireBatch and ack', () => {
  it('wireBatch carries the batch records, chain head and checkpoints', () => {
    const b = openBuffer();
    const recs = nextRecords(b, 4);
    b.commit(recs);
    const row0 = b.seal(keys.signer, 2, 1e9)!;
    const row1 = b.seal(keys.signer, 2, 1e9)!;
    const w0 = b.wireBatch(row0, keys.vkey);
    expect(w0).toEqual({
      v: 1,
      stream: STREAM,
      batch: 0,
      first_seq: 0,
      last_seq: 1,
      records: recs.slice(0, 2).map((r) => ({ seq: r.seq, canonical: r.canonical, mac: r.mac.toString('hex'), key_id: 'k1' })),
      chain_head: recs[1]!.mac.toString('hex'),
      prev_checkpoint: null,
      checkpoint: row0.checkpoint,
      vkey: keys.vkey,
    });
    const w1 = b.wireBatch(row1);
    expect('vkey' in w1).toBe(false);
    expect(w1.prev_checkpoint).toBe(row0.checkpoint);
    expect(w1.records.map((r) => r.seq)).toEqual([2, 3]);
    for (const r of w1.records) {
      expect(leafHash(Buffer.from(r.canonical, 'utf8')).equals(recs[r.seq]!.leaf)).toBe(true);
    }
  });

  it('ack deletes exactly that batch\'s records and superseded batch rows', () => {
    const b = openBuffer();
    const recs = nextRecords(b, 7);
    b.commit(recs);
    const rows = [b.seal(keys.signer, 3, 1e9)!, b.seal(keys.signer, 3, 1e9)!, b.seal(keys.signer, 3, 1e9)!];
    expect(rows.map((r) => [r.firstSeq, r.lastSeq])).toEqual([
      [0, 2],
      [3, 5],
      [6, 6],
    ]);
    const seqs = (): number[] => (b.db.prepare('SELECT seq FROM records ORDER BY seq').all() as Array<{ seq: number }>).map((r) => r.seq);
    const batchNos = (): number[] => (b.db.prepare('SELECT batch FROM batches ORDER BY batch').all() as Array<{ batch: number }>).map((r) => r.batch);

    expect(b.nextToShip()?.batch).toBe(0);
    b.ack(rows[0]!);
    expect(seqs()).toEqual([3, 4, 5, 6]);
    expect(batchNos()).toEqual([0, 1, 2]); // batch 0 is not superseded until a later ack
    expect(b.nextToShip()?.batch).toBe(1);
    expect(b.stats().records).toBe(4);
    expect(b.stats().bytes).toBe(recs.slice(3).reduce((s, r) => s + Buffer.byteLength(r.canonical), 0));
    expect(b.oldestUnacked()).toBe(recs[3]!.receivedAt);
    expect(() => b.wireBatch(rows[0]!)).toThrow(BufferError);

    b.ack(rows[1]!);
    expect(seqs()).toEqual([6]);
    expect(batchNos()).toEqual([1, 2]);
    expect(b.nextToShip()?.batch).toBe(2);

    b.ack(rows[2]!);
    expect(seqs()).toEqual([]);
    expect(batchNos()).toEqual([2]);
    expect(b.nextToShip()).toBeUndefined();
    expect(b.stats()).toMatchObject({ records: 0, bytes: 0, unsealed: 0, nextSeq: 7, nextBatch: 3 });
    expect(b.oldestUnacked()).toBeUndefined();
    expect(count(b.db, 'SELECT COUNT(*) AS n FROM acks')).toBe(3);
  });

  it('a repeated ack is harmless', () => {
    const b = openBuffer();
    b.commit(nextRecords(b, 2));
    const row = b.seal(keys.signer, 1, 1e9)!;
    b.seal(keys.signer, 1, 1e9);
    b.ack(row);
    b.ack(row);
    expect(b.stats().records).toBe(1);
    expect(count(b.db, 'SELECT COUNT(*) AS n FROM acks')).toBe(1);
  });

  it('wireBatch refuses a batch whose records are incomplete', () => {
    const b = openBuffer();
    b.commit(nextRecords(b, 2));
    const row = b.seal(keys.signer, 10, 1e9)!;
    let caught: unknown;
    try {
      b.wireBatch({ ...row, lastSeq: row.lastSeq + 1 });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(BufferError);
    expect((caught as BufferError).code).toBe('batch_incomplete');
  });
});

describe('reopen restores the chain cursor, batch number, frontier and counters', () => {
  it('with unshipped and unsealed records left', () => {
    const path = tmp.file('buffer.db');
    let b = openBuffer(path);
    const log = new LeafLog();
    log.add(b, 5);
    const r0 = b.seal(keys.signer, 3, 1e9)!; // 0..2
    b.ack(r0);
    const r1 = b.seal(keys.signer, 3, 1e9)!; // 3..4
    log.add(b, 4); // 5..8 unsealed
    b.commit([], pos(123), [qrow(7)]);
    const before = { cursor: b.chainCursor(), stats: b.stats(), next: b.nextToShip(), oldest: b.oldestUnacked() };
    b.close();

    b = openBuffer(path, 'ignored-new-id');
    expect(b.stream).toBe(STREAM);
    expect(b.chainCursor()).toEqual(before.cursor);
    expect(b.stats()).toEqual(before.stats);
    expect(b.stats()).toMatchObject({ records: 6, unsealed: 4, nextSeq: 9, nextBatch: 2 });
    expect(b.nextToShip()).toEqual(before.next);
    expect(b.nextToShip()?.batch).toBe(1);
    expect(b.oldestUnacked()).toBe(before.oldest);
    expect(b.getPosition('src', 'f1')?.offset).toBe(123);
    expect(b.quarantineCount()).toBe(1);

    // the chain continues without a gap and the frontier is the old tree
    log.add(b, 1);
    const r2 = b.seal(keys.signer, 100, 1e9)!;
    expect(r2).toMatchObject({ batch: 2, firstSeq: 5, lastSeq: 9, treeSize: 10 });
    expect(r2.prevCheckpoint).toBe(r1.checkpoint);
    expect(checkpointOf(r2).root.equals(rootFromLeafHashes(log.leaves))).toBe(true);
    const rows = b.db.prepare('SELECT leaf, mac FROM records WHERE seq >= 3 ORDER BY seq').all() as Array<{ leaf: Buffer; mac: Buffer }>;
    expect(chainOk(rows, undefined, r0.chainHead)).toBe(true);
  });

  it('after everything was acknowledged (only the newest batch row is left)', () => {
    const path = tmp.file('buffer.db');
    let b = openBuffer(path);
    const log = new LeafLog();
    log.add(b, 7);
    const rows: BatchRow[] = [];
    for (let r = b.seal(keys.signer, 3, 1e9); r; r = b.seal(keys.signer, 3, 1e9)) rows.push(r);
    for (const r of rows) b.ack(r);
    const before = { cursor: b.chainCursor(), stats: b.stats() };
    expect(before.stats).toEqual({ records: 0, bytes: 0, unsealed: 0, nextSeq: 7, nextBatch: 3 });
    b.close();

    b = openBuffer(path);
    expect(b.chainCursor()).toEqual(before.cursor);
    expect(b.chainCursor().prevMac.equals(rows[2]!.chainHead)).toBe(true);
    expect(b.stats()).toEqual(before.stats);
    expect(b.nextToShip()).toBeUndefined();
    expect(b.seal(keys.signer, 10, 1e9)).toBeNull();

    log.add(b, 2);
    const next = b.seal(keys.signer, 10, 1e9)!;
    expect(next).toMatchObject({ batch: 3, firstSeq: 7, lastSeq: 8, treeSize: 9 });
    expect(next.prevCheckpoint).toBe(rows[2]!.checkpoint);
    const cp = checkpointOf(next);
    expect(cp.size).toBe(9);
    expect(cp.root.equals(rootFromLeafHashes(log.leaves))).toBe(true);
    const recs = b.db.prepare('SELECT leaf, mac FROM records ORDER BY seq').all() as Array<{ leaf: Buffer; mac: Buffer }>;
    expect(chainOk(recs, undefined, rows[2]!.chainHead)).toBe(true);
  });

  it('with records committed but nothing sealed yet', () => {
    const path = tmp.file('buffer.db');
    let b = openBuffer(path);
    const log = new LeafLog();
    log.add(b, 3);
    const cursor = b.chainCursor();
    b.close();
    b = openBuffer(path);
    expect(b.chainCursor()).toEqual(cursor);
    expect(b.stats()).toMatchObject({ records: 3, unsealed: 3, nextSeq: 3, nextBatch: 0 });
    const row = b.seal(keys.signer, 10, 1e9)!;
    expect(checkpointOf(row).root.equals(rootFromLeafHashes(log.leaves))).toBe(true);
  });

  it('survives many reopen cycles interleaved with commits, seals and acks', () => {
    const path = tmp.file('buffer.db');
    const log = new LeafLog();
    let lastRow: BatchRow | undefined;
    for (let round = 0; round < 8; round++) {
      const b = AuditBuffer.open(path, { newStreamId: () => STREAM });
      log.add(b, 1 + (round % 3));
      const row = b.seal(keys.signer, 2, 1e9);
      if (row) {
        if (lastRow) expect(row.prevCheckpoint).toBe(lastRow.checkpoint);
        expect(checkpointOf(row).root.equals(rootFromLeafHashes(log.leaves.slice(0, row.lastSeq + 1)))).toBe(true);
        lastRow = row;
      }
      if (round % 2 === 1) {
        for (let s = b.nextToShip(); s; s = b.nextToShip()) b.ack(s);
      }
      b.close();
    }
    const b = openBuffer(path);
    expect(b.chainCursor().nextSeq).toBe(log.leaves.length);
  });
});
