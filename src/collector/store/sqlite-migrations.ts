/**
 * Versioned schema for the SQLite audit store. Migrations are append-only
 * like the data: never edit a released entry, add a new version instead,
 * because existing files have already recorded the old version as applied.
 */
import type { Migration } from '../../sqlite/open.js';
import { MAX_INDEXED_BYTES } from '../../core/record-index.js';

// The filter columns of version 1; later versions add their own below.
const V1_FILTER_COLUMNS = [
  'tenant',
  'actor_id',
  'event_type',
  'tool',
  'outcome',
  'model',
  'trace_id',
  'session_id',
] as const;

function appendOnly(table: string): string {
  return `
CREATE TRIGGER ${table}_no_update BEFORE UPDATE ON ${table}
BEGIN SELECT RAISE(ABORT, 'append-only'); END;
CREATE TRIGGER ${table}_no_delete BEFORE DELETE ON ${table}
BEGIN SELECT RAISE(ABORT, 'append-only'); END;`;
}

// Index maintenance is most of the ingest cost, so the indexes are as small
// as the queries allow: partial (most records leave most filter fields
// empty, and "col = ?" implies "col IS NOT NULL", which lets SQLite use
// them), and keyed on (col, time_key) only. A filtered query walks one in
// time order and sorts just the rows that share a time_key by (stream, seq)
// before it stops at LIMIT.
function filterIndexes(columns: readonly string[]): string {
  return columns
    .map((c) => `CREATE INDEX records_${c}_time ON records(${c}, time_key) WHERE ${c} IS NOT NULL;`)
    .join('\n');
}

// Version 2's columns and the JSON path each is read from (as core/record-index.ts
// extractIndexFields does at ingest).
const V2_FILTER_COLUMNS: ReadonlyArray<[string, string]> = [
  ['agent_id', '$.agent.id'],
  ['resource_id', '$.resource.id'],
  ['resource_type', '$.resource.type'],
  ['approval', '$.approval.status'],
  ['data_classification', '$.data_classification'],
];

// SQL twin of indexable(): a string of at most MAX_INDEXED_BYTES UTF-8 bytes
// without NUL, else NULL. Lone surrogates cannot occur: canonical text refuses them.
function indexableFromJson(path: string): string {
  const v = `json_extract(canonical, '${path}')`;
  return `CASE WHEN json_type(canonical, '${path}') = 'text' AND length(CAST(${v} AS BLOB)) <= ${MAX_INDEXED_BYTES}
    AND instr(${v}, char(0)) = 0 THEN ${v} END`;
}

export const SQLITE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial',
    sql: `
-- One row per accepted batch: the head is the row with the highest
-- next_batch. Inserting instead of updating keeps every table append-only
-- and leaves the history of heads behind for forensics.
CREATE TABLE stream_heads (
  stream          TEXT    NOT NULL,
  next_batch      INTEGER NOT NULL,
  tree_size       INTEGER NOT NULL,
  frontier        BLOB    NOT NULL,
  last_checkpoint TEXT,
  chain_head      TEXT,
  chain_key_id    TEXT,
  pinned_vkey     TEXT,
  created_at      TEXT    NOT NULL,
  PRIMARY KEY (stream, next_batch)
) STRICT;

CREATE TABLE batches (
  stream      TEXT    NOT NULL,
  batch       INTEGER NOT NULL,
  first_seq   INTEGER NOT NULL,
  last_seq    INTEGER NOT NULL,
  checkpoint  TEXT    NOT NULL,
  digest      TEXT    NOT NULL,
  received_at TEXT    NOT NULL,
  PRIMARY KEY (stream, batch)
) STRICT;

-- Kept apart from batches so a retention purge of old batches can leave the
-- checkpoints behind and the remaining tree still verifies.
CREATE TABLE checkpoints (
  stream      TEXT    NOT NULL,
  batch       INTEGER NOT NULL,
  tree_size   INTEGER NOT NULL,
  note        TEXT    NOT NULL,
  received_at TEXT    NOT NULL,
  PRIMARY KEY (stream, batch)
) STRICT;

CREATE TABLE records (
  stream      TEXT    NOT NULL,
  seq         INTEGER NOT NULL,
  batch       INTEGER NOT NULL,
  id          TEXT,
  time        TEXT    NOT NULL,
  time_key    INTEGER NOT NULL, -- epoch microseconds, see time-key.ts
  received_at TEXT,
  tenant      TEXT,
  actor_id    TEXT,
  event_type  TEXT,
  tool        TEXT,
  outcome     TEXT,
  model       TEXT,
  trace_id    TEXT,
  session_id  TEXT,
  canonical   TEXT    NOT NULL,
  leaf        BLOB    NOT NULL,
  mac         TEXT    NOT NULL,
  key_id      TEXT    NOT NULL
) STRICT;

CREATE UNIQUE INDEX records_stream_seq ON records(stream, seq);
-- The full sort key here, so an unfiltered page walks it without sorting.
CREATE INDEX records_time ON records(time_key, stream, seq);
CREATE INDEX records_stream_time ON records(stream, time_key);
${filterIndexes(V1_FILTER_COLUMNS)}

${appendOnly('stream_heads')}
${appendOnly('batches')}
${appendOnly('checkpoints')}
${appendOnly('records')}
`,
  },
  {
    version: 2,
    name: 'filters: agent, resource, resource_type, approval, data_classification',
    // Records stored before this version are backfilled from their canonical
    // text: without it a filter on a new column would silently skip older
    // records, and an audit query that quietly returns less looks like an
    // answer. The append-only trigger is lifted only inside this migration's
    // transaction (nothing else can write meanwhile) and the backfill only
    // fills columns that were just added, derived from the hashed record.
    sql: `
${V2_FILTER_COLUMNS.map(([c]) => `ALTER TABLE records ADD COLUMN ${c} TEXT;`).join('\n')}
DROP TRIGGER records_no_update;
UPDATE records SET
  ${V2_FILTER_COLUMNS.map(([c, path]) => `${c} = ${indexableFromJson(path)}`).join(',\n  ')};
CREATE TRIGGER records_no_update BEFORE UPDATE ON records
BEGIN SELECT RAISE(ABORT, 'append-only'); END;
${filterIndexes(V2_FILTER_COLUMNS.map(([c]) => c))}
`,
  },
  {
    version: 3,
    name: 'proofs: complete subtree hashes, record id and checkpoint size indexes',
    // Roots of the complete subtrees of level >= 1 (level 0 is records.leaf),
    // written with each batch (proofs.ts completedSubtrees), so an inclusion
    // or consistency proof reads O(log n) rows. Streams stored before this
    // version have none for their older part; proofs.ts rebuilds those from
    // their halves (bounded), and every batch from now on adds its own.
    sql: `
CREATE TABLE subtrees (
  stream TEXT    NOT NULL,
  level  INTEGER NOT NULL CHECK (level BETWEEN 1 AND 63),
  idx    INTEGER NOT NULL CHECK (idx >= 0),
  hash   BLOB    NOT NULL CHECK (length(hash) = 32),
  PRIMARY KEY (stream, level, idx)
) STRICT, WITHOUT ROWID;
${appendOnly('subtrees')}
CREATE INDEX records_id ON records(id) WHERE id IS NOT NULL;
CREATE INDEX checkpoints_size ON checkpoints(stream, tree_size);
`,
  },
];
