import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { constants } from 'node:buffer';
import { join } from 'node:path';
import { canonicalize } from '../core/canonical.js';
import { parseCheckpoint } from '../core/checkpoint.js';
import { hashFromBase64, leafHash, verifyConsistency, verifyInclusion } from '../core/merkle.js';
import { openNote, parseVerifierKey, type NoteVerifier } from '../core/note.js';
import { timeKey } from '../core/time-key.js';
import { EQUALITY_FILTERS, extractIndexFields, type RecordIndexFields } from '../core/record-index.js';
import { STREAM_ID } from '../core/wire-ids.js';
import {
  BUNDLE_FORMAT,
  BUNDLE_QUERY_PARAMS,
  BUNDLE_VERSION,
  checkpointPath,
  classifyPath,
  CONSISTENCY,
  keyPath,
  MANIFEST,
  MANIFEST_SUM,
  manifestSumText,
  PROOFS,
  RECORDS,
  sha256Hex,
  type Manifest,
} from './format.js';

/**
 * Offline verification of an evidence bundle (docs/evidence.md): no
 * collector, no network. Pure apart from reading the directory.
 *
 * The manifest hashes only protect the bundle in transit (anyone can
 * recompute them). What binds the records is cryptographic: each record's
 * leaf hash is proved included in a checkpoint signed by a verifier key, and
 * the checkpoints of a stream are proved to extend one another. Beyond that
 * the verifier is strict about bytes (canonical JSON lines, strict base64
 * and hex, exact file names), so a bundle has exactly one valid encoding and
 * any altered byte is an error, not a reinterpretation.
 */

export interface BundleFailure {
  /** bundle path of the offending file ("." for the bundle itself) */
  file: string;
  /** the item inside it, e.g. "line 3", when there is one */
  item?: string;
  reason: string;
}

export interface BundleSummary {
  records: number;
  checkpoints: number;
  consistency: number;
  streams: string[];
  keys: number;
  /** where the keys that opened the checkpoints came from */
  keySource: 'bundle' | 'trusted';
  query: Record<string, string>;
  created: string;
}

export type BundleResult = ({ ok: true } & BundleSummary) | { ok: false; failure: BundleFailure };

export interface VerifyBundleOptions {
  /**
   * Verifier keys the auditor trusts (pinned out of band). When given, every
   * checkpoint must verify with one of them; the bundled keys are then only
   * checked for form. Without them the bundle's own keys are used, which
   * proves the bundle is self-consistent, not who signed it.
   */
  trusted?: NoteVerifier[];
}

class Failed extends Error {
  constructor(readonly failure: BundleFailure) {
    super(failure.reason);
  }
}

function fail(file: string, reason: string, item?: string): never {
  throw new Failed({ file, reason, ...(item === undefined ? {} : { item }) });
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const HEX64 = /^[0-9a-f]{64}$/;
const VKEY = /^[^\s+]+\+[0-9a-f]{8}\+[A-Za-z0-9+/]+={0,2}$/;

/** manifest.json lists files, not records: far below this in any bundle export writes. */
const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;

function text(file: string, data: Buffer): string {
  if (data.length > constants.MAX_STRING_LENGTH) fail(file, `too large to read (${data.length} bytes)`);
  try {
    return UTF8.decode(data);
  } catch {
    return fail(file, 'not valid UTF-8');
  }
}

/** Parses JSON that must be exactly its own RFC 8785 form. */
function canonicalJson(file: string, s: string, item?: string): unknown {
  let v: unknown;
  try {
    v = JSON.parse(s);
  } catch {
    return fail(file, 'not JSON', item);
  }
  let c: string;
  try {
    c = canonicalize(v);
  } catch {
    return fail(file, 'not canonical JSON', item);
  }
  if (c !== s) fail(file, 'not in canonical form (RFC 8785)', item);
  return v;
}

/** Lines of a JSONL file: empty, or "\n"-terminated lines none of them empty. */
function jsonLines(file: string, data: Buffer): string[] {
  const s = text(file, data);
  if (s.length === 0) return [];
  if (!s.endsWith('\n')) fail(file, 'does not end with a newline');
  const lines = s.slice(0, -1).split('\n');
  lines.forEach((l, i) => l.length === 0 && fail(file, 'empty line', `line ${i + 1}`));
  return lines;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function exactKeys(file: string, v: unknown, keys: readonly string[], item?: string): Record<string, unknown> {
  if (!isObject(v)) return fail(file, 'not a JSON object', item);
  const have = Object.keys(v).sort();
  const want = [...keys].sort();
  if (have.length !== want.length || have.some((k, i) => k !== want[i])) {
    fail(file, `members must be exactly ${want.join(', ')}`, item);
  }
  return v;
}

function size(file: string, v: unknown, what: string, item?: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(file, `${what} is not a non-negative integer`, item);
  return v as number;
}

function hashes(file: string, v: unknown, item: string): Buffer[] {
  if (!Array.isArray(v) || v.length > 128) return fail(file, 'hashes is not a list of at most 128 hashes', item);
  return v.map((h) => hashFromBase64(h) ?? fail(file, 'hash is not the strict base64 of 32 bytes', item));
}

/** Every regular file under dir, as "/"-separated relative paths; anything else is refused. */
function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string, depth: number): void => {
    if (depth > 3) fail(rel, 'directories nested too deep');
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const p = rel === '' ? name : `${rel}/${name}`;
      const st = lstatSync(join(dir, p));
      if (st.isDirectory()) walk(p, depth + 1);
      else if (st.isFile()) out.push(p);
      else fail(p, 'not a regular file or directory');
    }
  };
  walk('', 0);
  return out;
}

function readManifest(dir: string, present: Set<string>): Manifest {
  if (!present.has(MANIFEST)) fail(MANIFEST, 'missing');
  if (!present.has(MANIFEST_SUM)) fail(MANIFEST_SUM, 'missing');
  const bytes = lstatSync(join(dir, MANIFEST)).size;
  if (bytes > MAX_MANIFEST_BYTES) fail(MANIFEST, `larger than ${MAX_MANIFEST_BYTES} bytes`);
  const raw = readFileSync(join(dir, MANIFEST));
  const sum = readFileSync(join(dir, MANIFEST_SUM));
  if (!sum.equals(Buffer.from(manifestSumText(raw)))) fail(MANIFEST_SUM, 'does not match the SHA-256 of manifest.json');
  const s = text(MANIFEST, raw);
  if (!s.endsWith('\n')) fail(MANIFEST, 'does not end with a newline');
  const m = exactKeys(MANIFEST, canonicalJson(MANIFEST, s.slice(0, -1)), ['format', 'version', 'created', 'query', 'counts', 'files']);
  if (m.format !== BUNDLE_FORMAT) fail(MANIFEST, `format is not ${BUNDLE_FORMAT}`);
  if (m.version !== BUNDLE_VERSION) fail(MANIFEST, `version is not ${BUNDLE_VERSION}`);
  if (typeof m.created !== 'string' || timeKey(m.created) === undefined) fail(MANIFEST, 'created is not an RFC 3339 time');
  const query = m.query;
  if (!isObject(query)) return fail(MANIFEST, 'query is not an object');
  for (const [k, v] of Object.entries(query)) {
    if (!BUNDLE_QUERY_PARAMS.includes(k)) fail(MANIFEST, `query has an unknown parameter`, k);
    if (typeof v !== 'string' || v.length === 0) fail(MANIFEST, 'query value is not a non-empty string', k);
  }
  for (const k of ['from', 'to'] as const) {
    if (query[k] !== undefined && timeKey(query[k] as string) === undefined) fail(MANIFEST, `query ${k} is not an RFC 3339 time`);
  }
  const counts = exactKeys(MANIFEST, m.counts, ['records', 'checkpoints', 'consistency', 'keys'], 'counts');
  for (const [k, v] of Object.entries(counts)) size(MANIFEST, v, `counts.${k}`);
  if (!Array.isArray(m.files)) fail(MANIFEST, 'files is not a list');
  let prev = '';
  for (const [i, f] of (m.files as unknown[]).entries()) {
    const item = `files[${i}]`;
    const e = exactKeys(MANIFEST, f, ['path', 'bytes', 'sha256'], item);
    if (typeof e.path !== 'string' || classifyPath(e.path) === undefined) fail(MANIFEST, 'path is not a bundle file name', item);
    if ((e.path as string) <= prev) fail(MANIFEST, 'files are not sorted by path without repeats', item);
    prev = e.path as string;
    size(MANIFEST, e.bytes, 'bytes', item);
    if (typeof e.sha256 !== 'string' || !HEX64.test(e.sha256)) fail(MANIFEST, 'sha256 is not 64 lowercase hex digits', item);
  }
  return m as unknown as Manifest;
}

interface OpenCheckpoint {
  stream: string;
  size: number;
  root: Buffer;
}

/** Does the record satisfy the manifest's query? (Checked so the query cannot be rewritten to describe other records.) */
function checkQuery(query: Record<string, string>, rec: Record<string, unknown>, stream: string, item: string): void {
  const time = typeof rec.time === 'string' ? rec.time : '';
  const tk = timeKey(time);
  const fields: RecordIndexFields = extractIndexFields(rec, time, tk ?? 0);
  for (const [k, v] of Object.entries(query)) {
    let ok: boolean;
    if (k === 'from') ok = tk !== undefined && tk >= timeKey(v)!;
    else if (k === 'to') ok = tk !== undefined && tk < timeKey(v)!;
    else if (k === 'stream') ok = stream === v;
    else {
      const f = EQUALITY_FILTERS.find((e) => e.param === k)!;
      ok = (fields as unknown as Record<string, unknown>)[f.field] === v;
    }
    if (!ok) fail(RECORDS, `record does not match the manifest's query (${k})`, item);
  }
}

function verify(dir: string, opts: VerifyBundleOptions): BundleSummary {
  let files: string[];
  try {
    files = listFiles(dir);
  } catch (err) {
    if (err instanceof Failed) throw err;
    return fail('.', `cannot read the bundle directory (${(err as Error).message})`);
  }
  const present = new Set(files);
  const manifest = readManifest(dir, present);

  // Transport integrity: listed == present, each with its size and hash.
  const data = new Map<string, Buffer>();
  const listed = new Set(manifest.files.map((f) => f.path));
  for (const p of files) {
    if (p !== MANIFEST && p !== MANIFEST_SUM && !listed.has(p)) fail(p, 'present but not listed in manifest.json');
  }
  for (const f of manifest.files) {
    if (!present.has(f.path)) fail(f.path, 'listed in manifest.json but missing');
    // Size first: a file far larger than listed is refused without being read.
    const bytes = lstatSync(join(dir, f.path)).size;
    if (bytes !== f.bytes) fail(f.path, `size ${bytes} is not the ${f.bytes} bytes listed in manifest.json`);
    const b = readFileSync(join(dir, f.path));
    if (sha256Hex(b) !== f.sha256) fail(f.path, 'SHA-256 does not match manifest.json');
    data.set(f.path, b);
  }
  for (const p of [RECORDS, PROOFS, CONSISTENCY]) if (!data.has(p)) fail(p, 'missing');

  // Keys: strict form, named by their hash.
  const bundled: { path: string; verifier: NoteVerifier; used: boolean }[] = [];
  for (const [p, b] of data) {
    if (classifyPath(p)!.kind !== 'key') continue;
    const s = text(p, b);
    const vkey = s.slice(0, -1);
    if (!s.endsWith('\n') || !VKEY.test(vkey)) fail(p, 'not a verifier key followed by a newline');
    if (keyPath(vkey) !== p) fail(p, 'file name is not the hash of the key');
    let v: NoteVerifier;
    try {
      v = parseVerifierKey(vkey);
    } catch (err) {
      return fail(p, `not a verifier key (${(err as Error).message})`);
    }
    // name+hash+key: the key's base64 may itself hold "+"; the name and hash may not.
    const keyB64 = vkey.slice(vkey.indexOf('+', vkey.indexOf('+') + 1) + 1);
    if (Buffer.from(keyB64, 'base64').toString('base64') !== keyB64) fail(p, 'key is not strict base64');
    bundled.push({ path: p, verifier: v, used: false });
  }
  const verifiers = opts.trusted ?? bundled.map((k) => k.verifier);

  // Checkpoints: each signed by a key, its origin and size matching its name.
  const checkpoints = new Map<string, OpenCheckpoint>();
  for (const [p, b] of data) {
    const c = classifyPath(p)!;
    if (c.kind !== 'checkpoint') continue;
    let cp;
    try {
      const opened = openNote(b, verifiers);
      cp = parseCheckpoint(opened.text);
      for (const v of opened.verified) {
        for (const k of bundled) if (k.verifier.name === v.name && k.verifier.keyHash === v.keyHash) k.used = true;
      }
    } catch (err) {
      return fail(p, `checkpoint does not verify (${(err as Error).message})`);
    }
    if (cp.origin !== `sealtrail/${c.stream}`) fail(p, `origin is not sealtrail/${c.stream}`);
    if (cp.size !== c.size) fail(p, `signed tree size ${cp.size} is not the ${c.size} of its name`);
    if (cp.extensions.length !== 0) fail(p, 'checkpoint has extension lines');
    checkpoints.set(p, { stream: c.stream, size: cp.size, root: cp.root });
  }
  if (!opts.trusted) {
    for (const k of bundled) if (!k.used) fail(k.path, 'key signs none of the bundled checkpoints');
  }

  // Records and their inclusion proofs, line by line.
  const records = jsonLines(RECORDS, data.get(RECORDS)!);
  const proofs = jsonLines(PROOFS, data.get(PROOFS)!);
  if (proofs.length !== records.length) fail(PROOFS, `${proofs.length} proofs for ${records.length} records`);
  const seen = new Set<string>();
  const streams = new Set<string>();
  for (let i = 0; i < records.length; i++) {
    const item = `line ${i + 1}`;
    const line = records[i]!;
    const rec = canonicalJson(RECORDS, line, item);
    if (!isObject(rec)) fail(RECORDS, 'record is not a JSON object', item);
    const r = rec as Record<string, unknown>;
    if (typeof r.stream !== 'string' || !STREAM_ID.test(r.stream)) fail(RECORDS, 'record has no valid stream', item);
    const stream = r.stream as string;
    const seq = size(RECORDS, r.seq, 'seq', item);
    const key = `${stream}\n${seq}`;
    if (seen.has(key)) fail(RECORDS, `stream ${stream} seq ${seq} appears twice`, item);
    seen.add(key);
    streams.add(stream);
    checkQuery(manifest.query, r, stream, item);

    const p = exactKeys(PROOFS, canonicalJson(PROOFS, proofs[i]!, item), [
      'stream',
      'leaf_index',
      'leaf_hash',
      'tree_size',
      'hashes',
      'checkpoint',
    ], item);
    const leaf = leafHash(Buffer.from(line, 'utf8'));
    if (p.stream !== stream) fail(PROOFS, 'stream is not the record\'s', item);
    if (p.leaf_index !== seq) fail(PROOFS, 'leaf_index is not the record\'s seq', item);
    if (p.leaf_hash !== leaf.toString('hex')) fail(PROOFS, 'leaf_hash is not the hash of the record line', item);
    const treeSize = size(PROOFS, p.tree_size, 'tree_size', item);
    if (p.checkpoint !== checkpointPath(stream, treeSize)) fail(PROOFS, 'checkpoint is not the bundle path of its tree size', item);
    const cp = checkpoints.get(p.checkpoint as string);
    if (!cp) return fail(PROOFS, `checkpoint ${String(p.checkpoint)} is not in the bundle`, item);
    if (!verifyInclusion(leaf, seq, cp.size, hashes(PROOFS, p.hashes, item), cp.root)) {
      fail(PROOFS, `inclusion proof does not lead to the root of ${String(p.checkpoint)}`, item);
    }
  }

  // Consistency: each stream's checkpoints, oldest to newest, chained pairwise.
  const byStream = new Map<string, OpenCheckpoint[]>();
  for (const c of checkpoints.values()) byStream.set(c.stream, [...(byStream.get(c.stream) ?? []), c]);
  const expected: { stream: string; from: number; to: number; fromCp: OpenCheckpoint; toCp: OpenCheckpoint }[] = [];
  for (const stream of [...byStream.keys()].sort()) {
    const list = byStream.get(stream)!.sort((a, b) => a.size - b.size);
    for (let i = 1; i < list.length; i++) {
      expected.push({ stream, from: list[i - 1]!.size, to: list[i]!.size, fromCp: list[i - 1]!, toCp: list[i]! });
    }
  }
  const cons = jsonLines(CONSISTENCY, data.get(CONSISTENCY)!);
  if (cons.length !== expected.length) {
    fail(CONSISTENCY, `${cons.length} proofs where the bundled checkpoints need ${expected.length}`);
  }
  for (let i = 0; i < cons.length; i++) {
    const item = `line ${i + 1}`;
    const e = expected[i]!;
    const c = exactKeys(CONSISTENCY, canonicalJson(CONSISTENCY, cons[i]!, item), [
      'stream',
      'from_size',
      'to_size',
      'from',
      'to',
      'hashes',
    ], item);
    if (
      c.stream !== e.stream ||
      c.from_size !== e.from ||
      c.to_size !== e.to ||
      c.from !== checkpointPath(e.stream, e.from) ||
      c.to !== checkpointPath(e.stream, e.to)
    ) {
      fail(CONSISTENCY, `expected the proof from ${checkpointPath(e.stream, e.from)} to ${checkpointPath(e.stream, e.to)}`, item);
    }
    if (!verifyConsistency(e.from, e.to, e.fromCp.root, e.toCp.root, hashes(CONSISTENCY, c.hashes, item))) {
      fail(CONSISTENCY, `consistency proof from tree size ${e.from} to ${e.to} of stream ${e.stream} does not verify`, item);
    }
  }

  const counts = {
    records: records.length,
    checkpoints: checkpoints.size,
    consistency: cons.length,
    keys: bundled.length,
  };
  for (const [k, v] of Object.entries(counts)) {
    if (manifest.counts[k as keyof typeof counts] !== v) fail(MANIFEST, `counts.${k} is not ${v}`);
  }
  return {
    ...counts,
    streams: [...streams].sort(),
    keySource: opts.trusted ? 'trusted' : 'bundle',
    query: manifest.query,
    created: manifest.created,
  };
}

/** Verifies the bundle in `dir`; never throws for a bad bundle, names the first failure instead. */
export function verifyBundle(dir: string, opts: VerifyBundleOptions = {}): BundleResult {
  try {
    return { ok: true, ...verify(dir, opts) };
  } catch (err) {
    if (err instanceof Failed) return { ok: false, failure: err.failure };
    return { ok: false, failure: { file: '.', reason: `cannot read the bundle (${(err as Error).message})` } };
  }
}

export function formatFailure(f: BundleFailure): string {
  return `${f.file}${f.item === undefined ? '' : ` (${f.item})`}: ${f.reason}`;
}
