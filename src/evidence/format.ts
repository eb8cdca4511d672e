import { createHash } from 'node:crypto';
import { STREAM_ID } from '../core/wire-ids.js';

/**
 * Layout of an evidence bundle (docs/evidence.md):
 *
 *   manifest.json        canonical JSON (RFC 8785) + "\n": every other file with its size and SHA-256, the query
 *   manifest.sha256      "<sha256 of manifest.json>  manifest.json\n" (sha256sum -c format)
 *   records.jsonl        one stored canonical record per line (each names its stream and seq)
 *   proofs.jsonl         line i: inclusion proof of record line i against a bundled checkpoint
 *   consistency.jsonl    consistency proofs chaining each stream's bundled checkpoints, oldest to newest
 *   checkpoints/<stream>/<tree size>.note   signed checkpoints (C2SP signed notes, as the sidecar signed them)
 *   keys/<first 16 hex of SHA-256(vkey)>.vkey   verifier keys, "<vkey>\n"
 */

export const BUNDLE_FORMAT = 'sealtrail-evidence';
export const BUNDLE_VERSION = 1;

export const MANIFEST = 'manifest.json';
export const MANIFEST_SUM = 'manifest.sha256';
export const RECORDS = 'records.jsonl';
export const PROOFS = 'proofs.jsonl';
export const CONSISTENCY = 'consistency.jsonl';
export const CHECKPOINT_DIR = 'checkpoints';
export const KEY_DIR = 'keys';

/** Query parameters a bundle may have been selected with (GET /v1/audit names). */
export const BUNDLE_QUERY_PARAMS: readonly string[] = [
  'from',
  'to',
  'tenant',
  'actor',
  'agent',
  'event_type',
  'tool',
  'outcome',
  'model',
  'trace_id',
  'session_id',
  'resource',
  'resource_type',
  'approval',
  'data_classification',
  'stream',
];

export interface ManifestFile {
  path: string;
  bytes: number;
  /** lowercase hex */
  sha256: string;
}

export interface Manifest {
  format: typeof BUNDLE_FORMAT;
  version: typeof BUNDLE_VERSION;
  /** RFC 3339, when the bundle was written (informational: not signed) */
  created: string;
  /** the filters the records were selected with, as GET /v1/audit parameters */
  query: Record<string, string>;
  counts: { records: number; checkpoints: number; consistency: number; keys: number };
  /** every file but manifest.json and manifest.sha256, sorted by path */
  files: ManifestFile[];
}

/** records.jsonl line i's proof. */
export interface ProofLine {
  stream: string;
  leaf_index: number;
  /** hex of SHA-256(0x00 || record line bytes) */
  leaf_hash: string;
  tree_size: number;
  /** base64, RFC 9162 order */
  hashes: string[];
  /** bundle path of the checkpoint of tree_size */
  checkpoint: string;
}

export interface ConsistencyLine {
  stream: string;
  from_size: number;
  to_size: number;
  from: string;
  to: string;
  hashes: string[];
}

export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export function checkpointPath(stream: string, size: number): string {
  return `${CHECKPOINT_DIR}/${stream}/${size}.note`;
}

export function keyPath(vkey: string): string {
  return `${KEY_DIR}/${sha256Hex(vkey).slice(0, 16)}.vkey`;
}

export function manifestSumText(manifestBytes: Uint8Array): string {
  return `${sha256Hex(manifestBytes)}  ${MANIFEST}\n`;
}

const CHECKPOINT_FILE = /^checkpoints\/([^/]+)\/(0|[1-9][0-9]{0,15})\.note$/;
const KEY_FILE = /^keys\/[0-9a-f]{16}\.vkey$/;

export type BundlePath =
  | { kind: 'records' | 'proofs' | 'consistency' }
  | { kind: 'checkpoint'; stream: string; size: number }
  | { kind: 'key' };

/** What a bundle path holds, or undefined when no bundle file may have this path. */
export function classifyPath(path: string): BundlePath | undefined {
  if (path === RECORDS) return { kind: 'records' };
  if (path === PROOFS) return { kind: 'proofs' };
  if (path === CONSISTENCY) return { kind: 'consistency' };
  const cp = CHECKPOINT_FILE.exec(path);
  if (cp) {
    const size = Number(cp[2]);
    if (!STREAM_ID.test(cp[1]!) || !Number.isSafeInteger(size)) return undefined;
    return { kind: 'checkpoint', stream: cp[1]!, size };
  }
  if (KEY_FILE.test(path)) return { kind: 'key' };
  return undefined;
}
