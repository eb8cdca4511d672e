import { request } from 'undici';
import type { RemoteCode } from '../core/error-codes.js';
import { SealtrailError } from '../core/errors.js';
import { MAX_NOTE_BYTES } from '../core/note.js';
import type { EvidenceRecord } from './verify-stream.js';

export class FetchError extends SealtrailError<RemoteCode> {}

/**
 * Bounds on what a collector can make the verifier hold or do. The collector
 * is not trusted: a hostile one must get a clear error, never a crash, an
 * exhausted heap or an endless loop.
 */
export const LIMITS = {
  /** records asked for per page (the collector's own maximum is 10 000) */
  recordsPerPage: 1000,
  /** bytes of one answer body */
  maxAnswerBytes: 256 * 1024 * 1024,
  /** streams one collector may list */
  maxStreams: 100_000,
  /** checkpoint notes held for one stream (all are needed before its records are checked) */
  maxCheckpoints: 1_000_000,
  /** bytes of all checkpoint notes held for one stream */
  maxCheckpointBytes: 512 * 1024 * 1024,
};

/** One stream of a live collector: checkpoints fetched, records fetched lazily page by page. */
export interface RemoteStreamEvidence {
  stream: string;
  checkpoints: { note: string; label: string }[];
  records: AsyncIterable<EvidenceRecord>;
}

function bad(path: string, what: string): FetchError {
  return new FetchError('collector_bad_answer', `GET ${path}: ${what}`);
}

async function readBounded(body: AsyncIterable<Uint8Array>, max: number, path: string): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > max) throw bad(path, `answer is larger than ${max} bytes`);
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function getJson(base: string, path: string, token: string): Promise<Record<string, unknown>> {
  const url = new URL(path, base).toString();
  let res;
  let text: string;
  try {
    res = await request(url, { headers: { authorization: `Bearer ${token}` }, headersTimeout: 30_000, bodyTimeout: 60_000 });
    text = await readBounded(res.body, res.statusCode === 200 ? LIMITS.maxAnswerBytes : 64 * 1024, path);
  } catch (err) {
    if (err instanceof FetchError) {
      res?.body.destroy();
      throw err;
    }
    throw new FetchError('collector_unreachable', `GET ${path}: ${(err as Error).message}`);
  }
  if (res.statusCode !== 200) {
    let code = `http_${res.statusCode}`;
    try {
      const c = (JSON.parse(text) as { error?: { code?: unknown } } | null)?.error?.code;
      // Only a plain code is echoed: the answer is not trusted terminal output.
      if (typeof c === 'string' && /^[a-z0-9_]{1,64}$/.test(c)) code = c;
    } catch {
      // keep the status code
    }
    throw new FetchError('collector_refused', `GET ${path}: ${res.statusCode} ${code}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw bad(path, 'answer is not JSON');
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw bad(path, 'answer is not a JSON object');
  return json as Record<string, unknown>;
}

function isSeq(n: unknown): n is number {
  return Number.isSafeInteger(n) && (n as number) >= 0;
}

function arrayField(page: Record<string, unknown>, field: string, path: string): unknown[] {
  const v = page[field];
  if (!Array.isArray(v)) throw bad(path, `"${field}" is not an array`);
  return v;
}

/**
 * The cursor for the next page: null ends the listing. It must be a safe
 * integer past the current one and the page must have held something, so a
 * hostile collector cannot loop the verifier or walk it one step at a time.
 */
function nextCursor(page: Record<string, unknown>, field: string, from: number, pageLength: number, path: string): number | null {
  const next = page[field];
  if (next === null || next === undefined) return null;
  if (!isSeq(next)) throw bad(path, `"${field}" is not a non-negative integer`);
  if (next <= from || pageLength === 0) throw bad(path, `"${field}" does not move forward`);
  return next;
}

async function fetchCheckpoints(baseUrl: string, enc: string, token: string): Promise<{ note: string; label: string }[]> {
  const checkpoints: { note: string; label: string }[] = [];
  let bytes = 0;
  let fromBatch: number | null = 0;
  while (fromBatch !== null) {
    const path = `/v1/streams/${enc}/checkpoints?from_batch=${fromBatch}`;
    const page = await getJson(baseUrl, path, token);
    const list = arrayField(page, 'checkpoints', path);
    for (const c of list) {
      const { batch, note } = (c ?? {}) as { batch?: unknown; note?: unknown };
      if (!isSeq(batch) || typeof note !== 'string') throw bad(path, 'a checkpoint lacks an integer "batch" or a string "note"');
      if (note.length > MAX_NOTE_BYTES) throw bad(path, `checkpoint of batch ${batch} is larger than ${MAX_NOTE_BYTES} bytes`);
      bytes += note.length;
      if (checkpoints.length >= LIMITS.maxCheckpoints || bytes > LIMITS.maxCheckpointBytes) {
        throw bad(path, `more checkpoints than the verifier holds (${LIMITS.maxCheckpoints} notes, ${LIMITS.maxCheckpointBytes} bytes)`);
      }
      checkpoints.push({ note, label: `checkpoint of batch ${batch}` });
    }
    fromBatch = nextCursor(page, 'next_from_batch', fromBatch, list.length, path);
  }
  return checkpoints;
}

async function* fetchRecords(baseUrl: string, enc: string, token: string): AsyncGenerator<EvidenceRecord> {
  let fromSeq: number | null = 0;
  while (fromSeq !== null) {
    const path = `/v1/streams/${enc}/records?from_seq=${fromSeq}&limit=${LIMITS.recordsPerPage}`;
    const page = await getJson(baseUrl, path, token);
    const list = arrayField(page, 'records', path);
    if (list.length > LIMITS.recordsPerPage) throw bad(path, `more than the ${LIMITS.recordsPerPage} records asked for`);
    for (const item of list) {
      const r = (item ?? {}) as { seq?: unknown; canonical?: unknown; mac?: unknown; key_id?: unknown };
      if (!isSeq(r.seq) || typeof r.canonical !== 'string' || typeof r.mac !== 'string' || typeof r.key_id !== 'string') {
        throw bad(path, 'a record lacks an integer "seq" or a string "canonical", "mac" or "key_id"');
      }
      yield { seq: r.seq, canonical: r.canonical, mac: Buffer.from(r.mac, 'hex'), keyId: r.key_id };
    }
    fromSeq = nextCursor(page, 'next_from_seq', fromSeq, list.length, path);
  }
}

/**
 * Lists a live collector's streams and, for each, its signed checkpoints and a
 * lazy sequence of its records, fetched a page at a time as the verifier reads
 * them. Nothing the collector says is trusted: the caller verifies it all
 * against the verifier keys it holds.
 */
export async function* fetchEvidence(baseUrl: string, token: string): AsyncGenerator<RemoteStreamEvidence> {
  const path = '/v1/streams';
  const list = arrayField(await getJson(baseUrl, path, token), 'streams', path);
  if (list.length > LIMITS.maxStreams) throw bad(path, `more than ${LIMITS.maxStreams} streams`);
  const names = list.map((s) => (s ?? {}) as { stream?: unknown }).map((s) => s.stream);
  // Names are printed: printable ASCII only, so an answer cannot drive the terminal.
  if (!names.every((n): n is string => typeof n === 'string' && /^[\x21-\x7e]{1,256}$/.test(n))) {
    throw bad(path, 'a stream lacks a "stream" name of 1..256 printable ASCII characters');
  }
  for (const stream of names) {
    const enc = encodeURIComponent(stream);
    yield { stream, checkpoints: await fetchCheckpoints(baseUrl, enc, token), records: fetchRecords(baseUrl, enc, token) };
  }
}
