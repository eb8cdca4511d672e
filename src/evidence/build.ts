import { closeSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { canonicalize } from '../core/canonical.js';
import { parseCheckpoint } from '../core/checkpoint.js';
import type { ExportCode } from '../core/error-codes.js';
import { SealtrailError } from '../core/errors.js';
import { leafHash, verifyConsistency, verifyInclusion } from '../core/merkle.js';
import { openNote, type NoteVerifier } from '../core/note.js';
import { fileError } from '../fs/file-errors.js';
import { mkdirPrivate, openPrivate, writeAll, writeFilePrivate } from '../fs/private-files.js';
import {
  BUNDLE_FORMAT,
  BUNDLE_VERSION,
  checkpointPath,
  CONSISTENCY,
  keyPath,
  MANIFEST,
  MANIFEST_SUM,
  manifestSumText,
  PROOFS,
  RECORDS,
  sha256Hex,
  type ConsistencyLine,
  type Manifest,
  type ManifestFile,
  type ProofLine,
} from './format.js';
import { getJsonObject } from './http.js';

export class ExportError extends SealtrailError<ExportCode> {}

export interface BundleKey {
  /** verifier key text */
  vkey: string;
  verifier: NoteVerifier;
}

export interface ExportBundleOptions {
  url: string;
  /** admin token (the consistency and stream routes are admin only) */
  token: string;
  /** GET /v1/audit filter parameters (from, to, tenant, stream, event_type, ...) */
  query: Record<string, string>;
  /** keys the checkpoints are signed with; only those that sign a bundled checkpoint are written */
  keys: BundleKey[];
  /** a directory that does not exist or is empty */
  dir: string;
  now?: Date;
}

export interface ExportSummary {
  records: number;
  checkpoints: number;
  consistency: number;
  keys: number;
  streams: string[];
}

const PAGE = 1000;

function bad(what: string): ExportError {
  return new ExportError('collector_bad_answer', what);
}

interface HeldCheckpoint {
  note: string;
  size: number;
  root: Buffer;
  /** indexes into opts.keys of the keys that verified it */
  keys: number[];
}

/** Opens a note with the given keys, remembering which ones signed it. */
function openWith(note: unknown, stream: string, keys: BundleKey[]): HeldCheckpoint {
  if (typeof note !== 'string') throw bad(`stream ${stream}: checkpoint is not a string`);
  const used: number[] = [];
  let text: string | undefined;
  for (const [i, k] of keys.entries()) {
    try {
      text = openNote(note, [k.verifier]).text;
      used.push(i);
    } catch {
      // not signed by this key (or not at all: checked below)
    }
  }
  if (text === undefined) {
    throw new ExportError('export_key_missing', `stream ${stream}: no given key verifies a checkpoint (pass --keys DIR or --vkey FILE)`);
  }
  const cp = parseCheckpoint(text);
  if (cp.origin !== `sealtrail/${stream}`) throw bad(`stream ${stream}: checkpoint origin is ${cp.origin}`);
  return { note, size: cp.size, root: cp.root, keys: used };
}

function queryString(q: Record<string, string>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) p.set(k, v);
  return p.toString();
}

/**
 * Writes an evidence bundle (docs/evidence.md) for the records the query
 * selects: records and their inclusion proofs are fetched page by page from
 * GET /v1/audit?proof=true and appended to disk as they come, so memory
 * holds one page plus the distinct checkpoints. Everything fetched is
 * checked before it is written (a bundle that would not verify is an error
 * here, not later at the auditor's).
 */
export async function exportBundle(opts: ExportBundleOptions): Promise<ExportSummary> {
  const { dir } = opts;
  // Evidence is record text: the bundle is private (files 0600, directories made here 0700) until its owner shares it.
  mkdirPrivate(dir, 'bundle directory');
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch (err) {
    throw fileError(err, dir, 'bundle directory', 'list');
  }
  if (entries.length > 0) throw new ExportError('export_dir_not_empty', `${dir}: not empty`);
  const put = (p: string, data: string): void => writeFilePrivate(join(dir, p), data, 'bundle file');
  const held = new Map<string, Map<number, HeldCheckpoint>>();
  const hold = (stream: string, note: unknown): HeldCheckpoint => {
    let m = held.get(stream);
    if (!m) held.set(stream, (m = new Map()));
    const c = openWith(note, stream, opts.keys);
    const prev = m.get(c.size);
    if (prev && prev.note !== c.note) throw bad(`stream ${stream}: two different checkpoints of tree size ${c.size}`);
    if (!prev) m.set(c.size, c);
    return prev ?? c;
  };

  const recFd = openPrivate(join(dir, RECORDS), 'bundle file');
  let proofFd: number;
  try {
    proofFd = openPrivate(join(dir, PROOFS), 'bundle file');
  } catch (err) {
    closeSync(recFd);
    throw err;
  }
  let records = 0;
  try {
    let cursor: string | null = null;
    do {
      const q = queryString({ ...opts.query, limit: String(PAGE), proof: 'true', ...(cursor ? { cursor } : {}) });
      const page = await getJsonObject(opts.url, `/v1/audit?${q}`, opts.token);
      if (!Array.isArray(page.items)) throw bad('GET /v1/audit: no items');
      let recText = '';
      let proofText = '';
      for (const it of page.items as Record<string, any>[]) {
        const stream = it?.stream;
        if (typeof stream !== 'string') throw bad('GET /v1/audit: item without stream');
        const canonical = canonicalize(it.record);
        const leaf = leafHash(Buffer.from(canonical, 'utf8'));
        if (leaf.toString('hex') !== it.leaf_hash) throw bad(`stream ${stream} seq ${it.seq}: record does not hash to its leaf`);
        const p = it.proof as Record<string, unknown> | undefined;
        if (!p || !Array.isArray(p.hashes) || p.leaf_index !== it.seq || it.record?.seq !== it.seq || it.record?.stream !== stream) {
          throw bad(`stream ${stream} seq ${it.seq}: missing or inconsistent proof`);
        }
        const cp = hold(stream, p.checkpoint);
        const hashes = (p.hashes as unknown[]).map((h) => Buffer.from(String(h), 'base64'));
        if (cp.size !== p.tree_size || !verifyInclusion(leaf, it.seq as number, cp.size, hashes, cp.root)) {
          throw bad(`stream ${stream} seq ${it.seq}: inclusion proof does not verify`);
        }
        const line: ProofLine = {
          stream,
          leaf_index: it.seq as number,
          leaf_hash: leaf.toString('hex'),
          tree_size: cp.size,
          hashes: hashes.map((h) => h.toString('base64')),
          checkpoint: checkpointPath(stream, cp.size),
        };
        recText += `${canonical}\n`;
        proofText += `${canonicalize(line)}\n`;
        records++;
      }
      writeAll(recFd, recText);
      writeAll(proofFd, proofText);
      cursor = typeof page.next_cursor === 'string' ? page.next_cursor : null;
    } while (cursor);
  } finally {
    closeSync(recFd);
    closeSync(proofFd);
  }

  // Each stream's newest checkpoint joins, so the chain ends at the head.
  if (held.size > 0) {
    const s = await getJsonObject(opts.url, '/v1/streams', opts.token);
    for (const st of (Array.isArray(s.streams) ? s.streams : []) as Record<string, unknown>[]) {
      if (typeof st.stream === 'string' && held.has(st.stream) && typeof st.last_checkpoint === 'string') {
        hold(st.stream, st.last_checkpoint);
      }
    }
  }

  let consText = '';
  let consistency = 0;
  const streams = [...held.keys()].sort();
  for (const stream of streams) {
    const cps = [...held.get(stream)!.values()].sort((a, b) => a.size - b.size);
    for (let i = 1; i < cps.length; i++) {
      const [a, b] = [cps[i - 1]!, cps[i]!];
      const r = await getJsonObject(
        opts.url,
        `/v1/streams/${encodeURIComponent(stream)}/consistency?from=${a.size}&to=${b.size}`,
        opts.token,
      );
      if (r.from_checkpoint !== a.note || r.to_checkpoint !== b.note || !Array.isArray(r.hashes)) {
        throw bad(`stream ${stream}: consistency answer does not name the checkpoints asked for`);
      }
      const hashes = (r.hashes as unknown[]).map((h) => Buffer.from(String(h), 'base64'));
      if (!verifyConsistency(a.size, b.size, a.root, b.root, hashes)) {
        throw bad(`stream ${stream}: checkpoints of tree sizes ${a.size} and ${b.size} are not consistent`);
      }
      const line: ConsistencyLine = {
        stream,
        from_size: a.size,
        to_size: b.size,
        from: checkpointPath(stream, a.size),
        to: checkpointPath(stream, b.size),
        hashes: hashes.map((h) => h.toString('base64')),
      };
      consText += `${canonicalize(line)}\n`;
      consistency++;
    }
  }
  put(CONSISTENCY, consText);

  let checkpoints = 0;
  const usedKeys = new Set<number>();
  for (const stream of streams) {
    for (const c of held.get(stream)!.values()) {
      const p = checkpointPath(stream, c.size);
      mkdirPrivate(join(dir, dirname(p)), 'bundle directory');
      put(p, c.note);
      checkpoints++;
      c.keys.forEach((k) => usedKeys.add(k));
    }
  }
  const keyFiles = new Set<string>();
  for (const i of [...usedKeys].sort((a, b) => a - b)) {
    const vkey = opts.keys[i]!.vkey;
    const p = keyPath(vkey);
    if (keyFiles.has(p)) continue;
    keyFiles.add(p);
    mkdirPrivate(join(dir, dirname(p)), 'bundle directory');
    put(p, `${vkey}\n`);
  }
  if (records > 0 && keyFiles.size === 0) throw new ExportError('export_key_missing', 'no key signs the bundled checkpoints');

  const files: ManifestFile[] = [];
  const paths = [RECORDS, PROOFS, CONSISTENCY, ...keyFiles];
  for (const stream of streams) for (const c of held.get(stream)!.values()) paths.push(checkpointPath(stream, c.size));
  for (const p of paths.sort()) {
    const b = readFileSync(join(dir, p));
    files.push({ path: p, bytes: b.length, sha256: sha256Hex(b) });
  }
  const manifest: Manifest = {
    format: BUNDLE_FORMAT,
    version: BUNDLE_VERSION,
    created: (opts.now ?? new Date()).toISOString(),
    query: opts.query,
    counts: { records, checkpoints, consistency, keys: keyFiles.size },
    files,
  };
  const mtext = `${canonicalize(manifest)}\n`;
  put(MANIFEST, mtext);
  put(MANIFEST_SUM, manifestSumText(Buffer.from(mtext, 'utf8')));
  return { records, checkpoints, consistency, keys: keyFiles.size, streams };
}
