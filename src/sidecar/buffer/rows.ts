/** The rows the buffer takes and gives, in the shapes its callers use (camelCase), and the one it stores batches as. */

/** A record ready to persist: already redacted, canonicalised, hashed and chained. */
export interface PreparedRecord {
  seq: number;
  id: string;
  canonical: string;
  leaf: Buffer;
  mac: Buffer;
  keyId: string;
  receivedAt: string;
  /** UTF-8 bytes of `canonical`, when the caller measured them already */
  bytes?: number;
  /** core/wire-limits.ts canonicalWireBytes of `canonical`, likewise */
  wireBytes?: number;
  /** the keyed digest of the event's event_id, when it has one (AuditBuffer.seqOfEvent) */
  eventKey?: Buffer;
}

export interface PositionRow {
  source: string;
  key: string;
  path: string;
  offset: number;
  fingerprint: string;
}

export interface QuarantineRow {
  source: string;
  path: string;
  fileKey: string;
  offset: number;
  length: number;
  reason: string;
  message: string;
  /** path of the member at fault, never its value */
  field?: string;
}

export interface BatchRow {
  batch: number;
  firstSeq: number;
  lastSeq: number;
  treeSize: number;
  chainHead: Buffer;
  keyId: string;
  checkpoint: string;
  prevCheckpoint: string | null;
  createdAt: string;
}

/** Where the chain and tree stand; rebuilt from the database on open. */
export interface ChainCursor {
  nextSeq: number;
  prevMac: Buffer;
}

/** A row of the `batches` table. */
export interface RawBatch {
  batch: number;
  first_seq: number;
  last_seq: number;
  tree_size: number;
  frontier: Buffer;
  chain_head: Buffer;
  key_id: string;
  checkpoint: string;
  prev_checkpoint: string | null;
  created_at: string;
}

export function toBatchRow(r: RawBatch): BatchRow {
  return {
    batch: r.batch,
    firstSeq: r.first_seq,
    lastSeq: r.last_seq,
    treeSize: r.tree_size,
    chainHead: r.chain_head,
    keyId: r.key_id,
    checkpoint: r.checkpoint,
    prevCheckpoint: r.prev_checkpoint,
    createdAt: r.created_at,
  };
}
