/**
 * Versioned schema of the sidecar's local buffer.
 *
 * Durability contract: the buffer runs in WAL mode with synchronous=FULL, so
 * a transaction that returned is on disk before the source offset or socket
 * acknowledgement that depends on it is made visible.
 *
 * Append-only contract: records, batches, quarantine and meta refuse UPDATE;
 * records and batches refuse DELETE unless the collector acknowledged the
 * batch that holds them (a row in acks). The newest batch row is never
 * deleted: it carries the stream's chain head and Merkle frontier, which must
 * survive once every record has shipped. Only positions (a cursor, not
 * history) may be updated.
 */
import type { Migration } from '../../sqlite/open.js';

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial',
    sql: `
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;

CREATE TABLE records (
  seq       INTEGER PRIMARY KEY,
  id        TEXT    NOT NULL,
  canonical TEXT    NOT NULL,
  leaf      BLOB    NOT NULL,
  mac       BLOB    NOT NULL,
  key_id    TEXT    NOT NULL,
  bytes     INTEGER NOT NULL,
  received_at TEXT  NOT NULL
) STRICT;

CREATE TABLE batches (
  batch           INTEGER PRIMARY KEY,
  first_seq       INTEGER NOT NULL,
  last_seq        INTEGER NOT NULL,
  tree_size       INTEGER NOT NULL,
  frontier        BLOB    NOT NULL,
  chain_head      BLOB    NOT NULL,
  key_id          TEXT    NOT NULL,
  checkpoint      TEXT    NOT NULL,
  prev_checkpoint TEXT,
  created_at      TEXT    NOT NULL
) STRICT;

CREATE TABLE acks (
  batch    INTEGER PRIMARY KEY,
  acked_at TEXT NOT NULL
) STRICT;

CREATE TABLE positions (
  source      TEXT    NOT NULL,
  key         TEXT    NOT NULL,
  path        TEXT    NOT NULL,
  offset      INTEGER NOT NULL,
  fingerprint TEXT    NOT NULL,
  updated_at  TEXT    NOT NULL,
  PRIMARY KEY (source, key)
) STRICT;

-- Quarantine keeps where a bad line is and why, never its bytes: the line may hold
-- unredacted PII (it could not be parsed, so it could not be redacted).
CREATE TABLE quarantine (
  id       INTEGER PRIMARY KEY,
  source   TEXT    NOT NULL,
  path     TEXT    NOT NULL,
  file_key TEXT    NOT NULL,
  offset   INTEGER NOT NULL,
  length   INTEGER NOT NULL,
  reason   TEXT    NOT NULL,
  message  TEXT    NOT NULL,
  at       TEXT    NOT NULL
) STRICT;

CREATE TRIGGER meta_no_update BEFORE UPDATE ON meta
BEGIN SELECT RAISE(ABORT, 'append-only: meta cannot be updated'); END;
CREATE TRIGGER meta_no_delete BEFORE DELETE ON meta
BEGIN SELECT RAISE(ABORT, 'append-only: meta cannot be deleted'); END;

CREATE TRIGGER records_no_update BEFORE UPDATE ON records
BEGIN SELECT RAISE(ABORT, 'append-only: records cannot be updated'); END;
CREATE TRIGGER records_delete_acked_only BEFORE DELETE ON records
WHEN NOT EXISTS (
  SELECT 1 FROM batches b JOIN acks a ON a.batch = b.batch
  WHERE OLD.seq BETWEEN b.first_seq AND b.last_seq
)
BEGIN SELECT RAISE(ABORT, 'append-only: only records of acknowledged batches can be deleted'); END;

CREATE TRIGGER batches_no_update BEFORE UPDATE ON batches
BEGIN SELECT RAISE(ABORT, 'append-only: batches cannot be updated'); END;
CREATE TRIGGER batches_delete_acked_only BEFORE DELETE ON batches
WHEN NOT EXISTS (SELECT 1 FROM acks WHERE batch = OLD.batch)
  OR OLD.batch = (SELECT MAX(batch) FROM batches)
  OR EXISTS (SELECT 1 FROM records WHERE seq BETWEEN OLD.first_seq AND OLD.last_seq)
BEGIN SELECT RAISE(ABORT, 'append-only: only acknowledged, emptied, superseded batches can be deleted'); END;

CREATE TRIGGER acks_no_update BEFORE UPDATE ON acks
BEGIN SELECT RAISE(ABORT, 'append-only: acks cannot be updated'); END;
CREATE TRIGGER acks_no_delete BEFORE DELETE ON acks
BEGIN SELECT RAISE(ABORT, 'append-only: acks cannot be deleted'); END;

CREATE TRIGGER quarantine_no_update BEFORE UPDATE ON quarantine
BEGIN SELECT RAISE(ABORT, 'append-only: quarantine cannot be updated'); END;
CREATE TRIGGER quarantine_no_delete BEFORE DELETE ON quarantine
BEGIN SELECT RAISE(ABORT, 'append-only: quarantine cannot be deleted'); END;
`,
  },
  {
    version: 2,
    name: 'record wire bytes',
    // What a record weighs in a batch body (core/wire-limits.ts), so sealing
    // keeps every body within ship.max_batch_bytes without reading record
    // text. NULL for records written before: sealing bounds those by twice
    // their canonical bytes.
    sql: 'ALTER TABLE records ADD COLUMN wire_bytes INTEGER;',
  },
  {
    version: 3,
    name: 'quarantine field',
    // The path of the member at fault (`actor.id`, `resourceSpans[0]...`),
    // never a value, so ingest_rejected reports and `sealtrail quarantine`
    // say which field to fix. NULL when no one field is at fault.
    sql: 'ALTER TABLE quarantine ADD COLUMN field TEXT;',
  },
  {
    version: 4,
    name: 'event ids',
    // The idempotency ids of recent records (event_id, keyed by HMAC so the
    // buffer holds no client text), so a client resending an event it got
    // no answer for is answered with the first send's seq instead of
    // storing it twice. Pruned by seq (AuditBuffer.ack), not append-only:
    // it proves nothing, it only prevents duplicates.
    sql: `
CREATE TABLE event_ids (
  key BLOB    PRIMARY KEY,
  seq INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX event_ids_seq ON event_ids (seq);
`,
  },
];
