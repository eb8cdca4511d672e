/**
 * `import … from 'sealtrail'`: the library surface for whoever checks what
 * a collector holds (docs/library.md): the verifiers (an evidence bundle, a
 * record's inclusion proof, a consistency proof), the Merkle, canonical JSON
 * and signed-note primitives they are built on, the record and checkpoint
 * types, the AuditStore interface a custom store implements, and the errors
 * to catch.
 *
 * Contract: loading this module loads src/core, src/evidence/verify.ts
 * (with its format.ts), src/verify/record-proof.ts and node: builtins,
 * nothing else: no native addon (better-sqlite3, re2), no pg, fastify or
 * pino, nothing of the sidecar or the collector. The store types are
 * re-exported type-only, so they cost nothing at run time.
 * test/unit/root-export.test.ts walks the import graph to hold this.
 */

// ---- verifiers -----------------------------------------------------------------

export {
  verifyRecordProof,
  verifyConsistencyProof,
  ProofCheckError,
  type AuditItem,
  type ConsistencyProofAnswer,
  type ConsistencyProofResult,
  type InclusionProofAnswer,
  type ProofCheckOptions,
  type RecordProofResult,
  type SignedTree,
  type VerifierKeyInput,
} from './verify/record-proof.js';
// From verify.ts itself, not evidence/index.ts: that one also brings the exporter and its HTTP client.
export {
  verifyBundle,
  formatFailure,
  type BundleFailure,
  type BundleResult,
  type BundleSummary,
  type VerifyBundleOptions,
} from './evidence/verify.js';

// ---- primitives ----------------------------------------------------------------

export { canonicalize } from './core/canonical.js';
export { HASH_SIZE, leafHash, verifyConsistency, verifyInclusion } from './core/merkle.js';
export { openNote, parseVerifierKey, type NoteVerifier } from './core/note.js';
export { originForStream, parseCheckpoint, type Checkpoint } from './core/checkpoint.js';

// ---- records ---------------------------------------------------------------------

export {
  ACTOR_TYPES,
  OUTCOMES,
  type ActorType,
  type AuditEvent,
  type AuditRecord,
  type Outcome,
  type RedactionProvenance,
  type SealedBatch,
  type WireRecord,
} from './core/types.js';

// ---- storage contract (types only) --------------------------------------------------

export type {
  AuditStore,
  AppendBatchInput,
  CheckpointRow,
  NewRecord,
  RecordFilters,
  RecordIndexFields,
  RecordKey,
  RecordOrder,
  RecordQuery,
  RecordRow,
  StoredBatch,
  StreamState,
  StreamSummary,
  SubtreeHash,
  SubtreeRef,
} from './collector/store/types.js';

// ---- errors ------------------------------------------------------------------------

export { SealtrailError, CanonicalError, NoteError, ProofError } from './core/errors.js';
export type { CanonicalCode, ErrorCode, NoteCode, ProofCheckCode, ProofCode } from './core/error-codes.js';
