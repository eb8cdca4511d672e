/** The audit record: exactly the object whose RFC 8785 bytes form the Merkle leaf. */
export const ACTOR_TYPES = ['user', 'agent', 'admin', 'system'] as const;
export type ActorType = (typeof ACTOR_TYPES)[number];
export const OUTCOMES = ['success', 'failure', 'denied', 'error', 'pending'] as const;
export type Outcome = (typeof OUTCOMES)[number];

export interface RedactionProvenance {
  /** hex SHA-256 of the compiled ruleset */
  ruleset: string;
  /** rule id -> number of replacements made in this record */
  hits: Record<string, number>;
  /**
   * Present only when the input had to be repaired before it could become a
   * record: lone UTF-16 surrogates (from \uD800-\uDFFF escapes) replaced
   * by U+FFFD, and `keys_renamed` (present when not 0) keys that took a
   * "#2" suffix because their repaired name was taken.
   */
  repaired?: { lone_surrogates: number; keys_renamed?: number };
}

/** What the event says; produced by a normaliser from an input line. */
/** Members an input adds to a known object (`agent.version`, `tool.call_id`): kept as written. */
type Extra = { [member: string]: unknown };

export interface AuditEvent {
  /** the client's idempotency id (a UUID, lowercase): a resent event with the same id is stored once */
  event_id?: string;
  time: string;
  event_type: string;
  tenant?: string;
  /** `type`: one of ACTOR_TYPES, or another string kept as the input wrote it; other members kept as written */
  actor?: { id: string; type: ActorType | (string & {}) } & Extra;
  agent?: { id?: string; name?: string } & Extra;
  action?: string;
  tool?: { name: string; arguments?: unknown } & Extra;
  resource?: { type?: string; id?: string } & Extra;
  /** one of OUTCOMES, or another string kept as the input wrote it */
  outcome?: Outcome | (string & {});
  approval?: { status?: string; approver?: string } & Extra;
  policy?: { decision?: string; rule?: string } & Extra;
  model?: { provider?: string; name?: string } & Extra;
  trace_id?: string;
  span_id?: string;
  session_id?: string;
  data_classification?: string;
  details?: Record<string, unknown>;
}

/** What the sidecar adds. */
export interface AuditRecord extends AuditEvent {
  id: string;
  stream: string;
  seq: number;
  received_at: string;
  source: string;
  redaction: RedactionProvenance;
}

/** One record on the wire inside a sealed batch. MACs live beside the record, never inside it. */
export interface WireRecord {
  seq: number;
  /** the record's RFC 8785 canonical JSON text; its UTF-8 bytes are the leaf input */
  canonical: string;
  /** hex HMAC-SHA-256 chain value for this record */
  mac: string;
  key_id: string;
}

/** POST /v1/batches body. */
export interface SealedBatch {
  v: 1;
  stream: string;
  /** 0, 1, 2, ... per stream, no gaps */
  batch: number;
  first_seq: number;
  last_seq: number;
  records: WireRecord[];
  /** hex mac of the last record in this batch (the chain head after it) */
  chain_head: string;
  /** signed note text of the previous batch's checkpoint, null for batch 0 */
  prev_checkpoint: string | null;
  /** signed note text: C2SP tlog-checkpoint over tree size last_seq + 1 */
  checkpoint: string;
}
