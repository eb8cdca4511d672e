/**
 * Versioned schema of the Postgres audit store (docs/postgres.md explains
 * the design to operators). Like the SQLite list, entries are append-only:
 * never edit a released version, add the next one, because deployed
 * databases have already recorded the old one as applied.
 *
 * Everything lives in the schema `sealtrail`, owned by the role that runs the
 * migrations (the owner). The collector's everyday role (the app role) gets
 * SELECT and INSERT, EXECUTE on one partition function and nothing else, by
 * appOwnerGrants() below, which every migration run re-applies.
 */

export interface PgMigration {
  version: number;
  name: string;
  sql: string;
}

/** Keys of pg_advisory_xact_lock(hashtextextended(key, 0)); see postgres.ts for the stream lock. */
export const MIGRATION_LOCK = 'sealtrail/migrate';
const PARTITION_LOCK = 'sealtrail/partition';

/** Tables whose rows, once inserted, are never changed or removed by any role. */
export const APPEND_ONLY_TABLES = ['streams', 'stream_heads', 'batches', 'checkpoints', 'records', 'subtrees'] as const;

/** SQLSTATE of the head trigger's refusal; postgres.ts maps it to StoreConflictError. */
export const HEAD_CONFLICT_SQLSTATE = 'ST409';

function appendOnly(table: string): string {
  return `
CREATE TRIGGER ${table}_append_only BEFORE UPDATE OR DELETE ON sealtrail.${table}
  FOR EACH ROW EXECUTE FUNCTION sealtrail.refuse_change();
CREATE TRIGGER ${table}_no_truncate BEFORE TRUNCATE ON sealtrail.${table}
  FOR EACH STATEMENT EXECUTE FUNCTION sealtrail.refuse_change();`;
}

// Same shape as the SQLite indexes: partial (most records leave most fields
// empty) and keyed (column, time_key), so each stays small; a filtered page
// walks one in time order and sorts only rows sharing a time_key by
// (stream, seq) (incremental sort). Declared on the partitioned table, so
// every partition gets them. Descending pages walk the same indexes backwards.
// Literal, not INDEXED_FILTER_COLUMNS: released versions never change.
// Version 3 drops exactly these indexes by name and builds its GIN index over
// these columns; a filter added later needs a version of its own.
const V1_FILTER_COLUMNS = [
  'tenant',
  'actor_id',
  'agent_id',
  'event_type',
  'tool',
  'outcome',
  'model',
  'trace_id',
  'session_id',
  'resource_id',
  'resource_type',
  'approval',
  'data_classification',
] as const;

const filterIndexes = V1_FILTER_COLUMNS.map(
  (c) => `CREATE INDEX records_${c}_time ON sealtrail.records (${c}, time_key) WHERE ${c} IS NOT NULL;`,
).join('\n');

// Every text column a query compares or orders is COLLATE "C": byte order,
// which for UTF-8 is code point order, the same as SQLite's BINARY. Under a
// locale collation (en_US) the keyset order would depend on the server's
// libc and differ between backends and cursors.
const filterColumns = V1_FILTER_COLUMNS.map((c) => `  ${c} text COLLATE "C",`).join('\n');

export const POSTGRES_MIGRATIONS: readonly PgMigration[] = [
  {
    version: 1,
    name: 'initial',
    sql: `
CREATE FUNCTION sealtrail.refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'sealtrail: % on %.% refused: the audit store is append-only', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END $$;

-- One row per stream, written with its batch 0: lets listStreams find each
-- stream's head without scanning the head history.
CREATE TABLE sealtrail.streams (
  stream     text COLLATE "C" PRIMARY KEY,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- The head history: one row per accepted batch, the current head is the row
-- with the highest next_batch. Inserting instead of updating keeps this table
-- append-only like the others (the app role never needs UPDATE), leaves every
-- earlier head behind for forensics, and turns "two writers advanced the same
-- head" into a primary key violation. The trigger below makes a head that
-- does not extend the previous one impossible even for a buggy writer.
CREATE TABLE sealtrail.stream_heads (
  stream          text COLLATE "C" NOT NULL,
  next_batch      bigint NOT NULL CHECK (next_batch >= 1),
  tree_size       bigint NOT NULL CHECK (tree_size >= 1),
  frontier        bytea  NOT NULL,
  last_checkpoint text,
  chain_head      text,
  chain_key_id    text,
  pinned_vkey     text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (stream, next_batch)
);

CREATE TABLE sealtrail.batches (
  stream      text COLLATE "C" NOT NULL,
  batch       bigint NOT NULL CHECK (batch >= 0),
  first_seq   bigint NOT NULL CHECK (first_seq >= 0),
  last_seq    bigint NOT NULL,
  checkpoint  text   NOT NULL,
  digest      text   NOT NULL,
  received_at timestamptz NOT NULL,
  stored_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (stream, batch),
  CHECK (last_seq >= first_seq)
);

-- Apart from batches so that a retention purge of old batches can leave the
-- checkpoints behind and the remaining tree still verifies.
CREATE TABLE sealtrail.checkpoints (
  stream      text COLLATE "C" NOT NULL,
  batch       bigint NOT NULL,
  tree_size   bigint NOT NULL,
  note        text   NOT NULL,
  received_at timestamptz NOT NULL,
  PRIMARY KEY (stream, batch)
);

-- Partitioned by month of stored_at, the database's clock when the batch was
-- stored (the same for every record of a batch), not by the record's own
-- time: that is agent-supplied and may lie anywhere in the past or future,
-- and a batch would straddle partitions. By storage month a partition holds
-- whole batches, so retention can drop whole months without splitting a
-- batch, and only the current and next month ever need creating.
-- (stream, seq) is unique per partition (see create_records_partition); a
-- partitioned table cannot have a unique key without the partition column,
-- so uniqueness across months comes from check_records_in_batch below.
CREATE TABLE sealtrail.records (
  stored_at   timestamptz NOT NULL,
  stream      text COLLATE "C" NOT NULL,
  seq         bigint NOT NULL,
  batch       bigint NOT NULL,
  id          text,
  time        text   NOT NULL,
  time_key    bigint NOT NULL, -- epoch microseconds, see time-key.ts
  received_at text,
${filterColumns}
  canonical   text   NOT NULL, -- exact RFC 8785 text as received
  leaf        bytea  NOT NULL,
  mac         text   NOT NULL,
  key_id      text   NOT NULL
) PARTITION BY RANGE (stored_at);

-- The full sort key, so an unfiltered page walks it without sorting.
CREATE INDEX records_time ON sealtrail.records (time_key, stream, seq);
CREATE INDEX records_stream_time ON sealtrail.records (stream, time_key, seq);
${filterIndexes}

${appendOnly('streams')}
${appendOnly('stream_heads')}
${appendOnly('batches')}
${appendOnly('checkpoints')}
${appendOnly('records')}
${appendOnly('schema_migrations')}

-- A head may only extend the previous one by exactly one stored batch that
-- starts where the previous tree ended: no gap, no rollback, no fork, no
-- change of a pinned key. Runs with the inserting role's rights (SELECT).
CREATE FUNCTION sealtrail.check_head_extends() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  prev_next bigint := 0;
  prev_size bigint := 0;
  prev_vkey text;
  had_prev  boolean;
  b         record;
BEGIN
  SELECT next_batch, tree_size, pinned_vkey INTO prev_next, prev_size, prev_vkey
    FROM sealtrail.stream_heads WHERE stream = NEW.stream ORDER BY next_batch DESC LIMIT 1;
  had_prev := FOUND;
  IF NOT had_prev THEN
    prev_next := 0;
    prev_size := 0;
  END IF;
  IF NEW.next_batch <> prev_next + 1 OR NEW.tree_size <= prev_size
     OR (had_prev AND NEW.pinned_vkey IS DISTINCT FROM prev_vkey) THEN
    RAISE EXCEPTION 'sealtrail: head of stream % does not extend the stored head (next batch %, tree size %)',
      NEW.stream, prev_next, prev_size USING ERRCODE = '${HEAD_CONFLICT_SQLSTATE}';
  END IF;
  SELECT first_seq, last_seq INTO b FROM sealtrail.batches WHERE stream = NEW.stream AND batch = NEW.next_batch - 1;
  IF NOT FOUND OR b.first_seq <> prev_size OR b.last_seq + 1 <> NEW.tree_size THEN
    RAISE EXCEPTION 'sealtrail: head of stream % has no stored batch % continuing tree size %',
      NEW.stream, NEW.next_batch - 1, prev_size USING ERRCODE = '${HEAD_CONFLICT_SQLSTATE}';
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER stream_heads_extend BEFORE INSERT ON sealtrail.stream_heads
  FOR EACH ROW EXECUTE FUNCTION sealtrail.check_head_extends();

-- A batch (and its checkpoint) may only be the stream's next one, starting
-- where the stored tree ends: batch ranges never overlap or leave a gap.
CREATE FUNCTION sealtrail.check_batch_next() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  prev_next bigint;
  prev_size bigint;
BEGIN
  SELECT next_batch, tree_size INTO prev_next, prev_size
    FROM sealtrail.stream_heads WHERE stream = NEW.stream ORDER BY next_batch DESC LIMIT 1;
  IF NOT FOUND THEN
    prev_next := 0;
    prev_size := 0;
  END IF;
  IF NEW.batch <> prev_next THEN
    RAISE EXCEPTION 'sealtrail: % % of stream % is not the next one (next batch %)',
      TG_TABLE_NAME, NEW.batch, NEW.stream, prev_next USING ERRCODE = '${HEAD_CONFLICT_SQLSTATE}';
  END IF;
  -- Nested, not ANDed: checkpoints rows have no first_seq to evaluate.
  IF TG_TABLE_NAME = 'batches' THEN
    IF NEW.first_seq <> prev_size THEN
      RAISE EXCEPTION 'sealtrail: batch % of stream % starts at seq % but the stored tree has size %',
        NEW.batch, NEW.stream, NEW.first_seq, prev_size USING ERRCODE = '${HEAD_CONFLICT_SQLSTATE}';
    END IF;
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER batches_next BEFORE INSERT ON sealtrail.batches
  FOR EACH ROW EXECUTE FUNCTION sealtrail.check_batch_next();
CREATE TRIGGER checkpoints_next BEFORE INSERT ON sealtrail.checkpoints
  FOR EACH ROW EXECUTE FUNCTION sealtrail.check_batch_next();

-- Every record belongs to a stored batch: its seq inside the batch's range
-- and stored in the batch's month. Since batch ranges are disjoint, a seq
-- has one batch and so one partition, where the unique (stream, seq) index
-- holds: (stream, seq) is unique across all months. One check per INSERT
-- statement over its new rows (a transition table), not one per row.
CREATE FUNCTION sealtrail.check_records_in_batch() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  bad record;
BEGIN
  SELECT n.stream, n.seq, n.batch INTO bad
    FROM new_records n
    LEFT JOIN sealtrail.batches b ON b.stream = n.stream AND b.batch = n.batch
   WHERE b.stream IS NULL OR n.seq < b.first_seq OR n.seq > b.last_seq
      OR date_trunc('month', n.stored_at AT TIME ZONE 'UTC') <> date_trunc('month', b.stored_at AT TIME ZONE 'UTC')
   LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'sealtrail: record % of stream % does not belong to a stored batch % of its month',
      bad.seq, bad.stream, bad.batch USING ERRCODE = '${HEAD_CONFLICT_SQLSTATE}';
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER records_in_batch AFTER INSERT ON sealtrail.records
  REFERENCING NEW TABLE AS new_records FOR EACH STATEMENT EXECUTE FUNCTION sealtrail.check_records_in_batch();

-- Creates the partition of one storage month, with what a partition does not
-- inherit: its unique (stream, seq) index and its own statement triggers
-- (they are not cloned to partitions, and TRUNCATE of or INSERT into a
-- partition by name does not fire the parent's). Owner only; the app role reaches it
-- through ensure_records_partitions().
CREATE FUNCTION sealtrail.create_records_partition(month date) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  m    date := date_trunc('month', month)::date;
  part text := format('records_%s', to_char(m, 'YYYY_MM'));
BEGIN
  IF to_regclass(format('sealtrail.%I', part)) IS NULL THEN
    -- Two collectors starting at once must not both try to create it.
    PERFORM pg_advisory_xact_lock(hashtextextended('${PARTITION_LOCK}', 0));
    IF to_regclass(format('sealtrail.%I', part)) IS NULL THEN
      EXECUTE format('CREATE TABLE sealtrail.%I PARTITION OF sealtrail.records FOR VALUES FROM (%L) TO (%L)',
        part, m::timestamp AT TIME ZONE 'UTC', (m + interval '1 month')::timestamp AT TIME ZONE 'UTC');
      EXECUTE format('CREATE UNIQUE INDEX %I ON sealtrail.%I (stream, seq)', part || '_stream_seq', part);
      EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON sealtrail.%I FOR EACH STATEMENT '
        'EXECUTE FUNCTION sealtrail.refuse_change()', part || '_no_truncate', part);
      -- Statement triggers of the parent do not see inserts that name the partition.
      EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON sealtrail.%I REFERENCING NEW TABLE AS new_records '
        'FOR EACH STATEMENT EXECUTE FUNCTION sealtrail.check_records_in_batch()', part || '_in_batch', part);
      -- Reached only through the parent, whose privileges apply.
      EXECUTE format('REVOKE ALL ON sealtrail.%I FROM PUBLIC', part);
    END IF;
  END IF;
  RETURN part;
END $$;

-- The app role's only way to create partitions: the current and the next
-- month by the database's clock, nothing it can choose, so even a
-- compromised collector cannot litter the schema with partitions.
CREATE FUNCTION sealtrail.ensure_records_partitions() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM sealtrail.create_records_partition((now() AT TIME ZONE 'UTC')::date);
  PERFORM sealtrail.create_records_partition(((now() AT TIME ZONE 'UTC') + interval '1 month')::date);
END $$;

REVOKE ALL ON FUNCTION sealtrail.create_records_partition(date) FROM PUBLIC;
REVOKE ALL ON FUNCTION sealtrail.ensure_records_partitions() FROM PUBLIC;
`,
  },
  {
    version: 2,
    name: 'proofs: complete subtree hashes, record id and checkpoint size indexes',
    // Roots of the complete subtrees of level >= 1 (level 0 is records.leaf),
    // written with each batch (proofs.ts completedSubtrees), so an inclusion
    // or consistency proof reads O(log n) rows. Append-only like the other
    // tables (the app role gets SELECT and INSERT through APPEND_ONLY_TABLES).
    // Streams stored before this version have none for their older part;
    // proofs.ts rebuilds those from their halves (bounded).
    sql: `
CREATE TABLE sealtrail.subtrees (
  stream text COLLATE "C" NOT NULL,
  level  smallint NOT NULL CHECK (level BETWEEN 1 AND 63),
  idx    bigint   NOT NULL CHECK (idx >= 0),
  hash   bytea    NOT NULL CHECK (octet_length(hash) = 32),
  PRIMARY KEY (stream, level, idx)
);
${appendOnly('subtrees')}
CREATE INDEX records_id ON sealtrail.records (id) WHERE id IS NOT NULL;
CREATE INDEX checkpoints_size ON sealtrail.checkpoints (stream, tree_size);
`,
  },
  {
    version: 3,
    name: 'ingest speed: one GIN index over every filter column, stored_at default, COPY-friendly',
    // Fourteen btree indexes cost most of an insert: each row went into every
    // one of them, at a place scattered by the column's value. One
    // multi-column GIN index (btree_gin) serves every equality filter: its
    // fast-update pending list takes a row's entries in one append and merges
    // them in sorted bulk, and a posting list per value grows at its end.
    // Measured on 400,000 record-shaped rows on a 2-vCPU machine
    // (npm run bench:postgres-ceiling): COPY into the v2 indexes 22.3 s,
    // into these 10.0 s, into no index 3.2 s.
    // Filtered pages are answered either from the time index, filtering as
    // they walk (common values), or by a bitmap of the GIN matches sorted to
    // the page (rare values); the planner picks by the column's statistics.
    // btree_gin ships with Postgres (contrib) and is a trusted extension: the
    // database's owner may create it; where the migrating role does not own
    // the database, a superuser runs CREATE EXTENSION btree_gin once before.
    sql: `
CREATE EXTENSION IF NOT EXISTS btree_gin SCHEMA sealtrail;
${V1_FILTER_COLUMNS.map((c) => `DROP INDEX sealtrail.records_${c}_time;`).join('\n')}
DROP INDEX sealtrail.records_stream_time;
CREATE INDEX records_filters ON sealtrail.records USING gin (stream, ${V1_FILTER_COLUMNS.join(', ')});
-- COPY names no expression: the batch's storage time is the transaction's.
ALTER TABLE sealtrail.records ALTER COLUMN stored_at SET DEFAULT now();
`,
  },
];

export const LATEST_PG_VERSION = POSTGRES_MIGRATIONS.reduce((m, x) => Math.max(m, x.version), 0);

/** Runs first, inside the migration transaction, before any version is read. */
export const BOOTSTRAP_SQL = `
CREATE SCHEMA IF NOT EXISTS sealtrail;
CREATE TABLE IF NOT EXISTS sealtrail.schema_migrations (
  version    integer PRIMARY KEY,
  name       text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now(),
  applied_by text NOT NULL DEFAULT current_user
);`;

/**
 * sealtrail's own functions. Named one by one rather than ALL FUNCTIONS IN
 * SCHEMA: the btree_gin extension's functions live in the schema too, are
 * owned by the bootstrap superuser, and a REVOKE on them by the owner only
 * fills the server log with "no privileges could be revoked" warnings.
 */
export const OWN_FUNCTIONS = [
  'sealtrail.refuse_change()',
  'sealtrail.check_head_extends()',
  'sealtrail.check_batch_next()',
  'sealtrail.check_records_in_batch()',
  'sealtrail.create_records_partition(date)',
  'sealtrail.ensure_records_partitions()',
];

/**
 * The app role's privileges, re-applied on every migration run (idempotent):
 * read and append, never change. Revoking what was never granted is a no-op,
 * and doing it anyway undoes a hand-made GRANT. `role` must already be a
 * quoted identifier (quote_ident on the server).
 */
export function appRoleGrants(role: string): string {
  const tables = APPEND_ONLY_TABLES.map((t) => `sealtrail.${t}`).join(', ');
  return `
REVOKE ALL ON SCHEMA sealtrail FROM PUBLIC;
GRANT USAGE ON SCHEMA sealtrail TO ${role};
REVOKE CREATE ON SCHEMA sealtrail FROM ${role};
REVOKE ALL ON ALL TABLES IN SCHEMA sealtrail FROM ${role};
GRANT SELECT, INSERT ON ${tables} TO ${role};
GRANT SELECT ON sealtrail.schema_migrations TO ${role};
REVOKE ALL ON FUNCTION ${OWN_FUNCTIONS.join(', ')} FROM ${role};
GRANT EXECUTE ON FUNCTION sealtrail.ensure_records_partitions() TO ${role};`;
}
