import { request } from 'undici';
import { SealtrailError } from '../core/errors.js';
import type { StreamEvidence } from './from-db.js';
import type { EvidenceRecord } from './verify-stream.js';

export class FetchError extends SealtrailError {}

async function getJson(base: string, path: string, token: string): Promise<unknown> {
  const url = new URL(path, base).toString();
  let res;
  try {
    res = await request(url, { headers: { authorization: `Bearer ${token}` }, headersTimeout: 30_000, bodyTimeout: 60_000 });
  } catch (err) {
    throw new FetchError('collector_unreachable', `GET ${path}: ${(err as Error).message}`);
  }
  const text = await res.body.text();
  if (res.statusCode !== 200) {
    let code = `http_${res.statusCode}`;
    try {
      code = (JSON.parse(text) as { error: { code: string } }).error.code ?? code;
    } catch {
      // keep the status code
    }
    throw new FetchError('collector_refused', `GET ${path}: ${res.statusCode} ${code}`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new FetchError('collector_bad_answer', `GET ${path}: answer is not JSON`);
  }
}

/**
 * Pulls every stream's records and signed checkpoints from a live collector.
 * Nothing the collector says is trusted: the caller verifies it all against
 * the verifier keys it holds.
 */
export async function fetchEvidence(baseUrl: string, token: string): Promise<StreamEvidence[]> {
  const list = (await getJson(baseUrl, '/v1/streams', token)) as { streams: Array<{ stream: string }> };
  const out: StreamEvidence[] = [];
  for (const { stream } of list.streams) {
    const enc = encodeURIComponent(stream);
    const checkpoints: { note: string; label: string }[] = [];
    let fromBatch: number | null = 0;
    while (fromBatch !== null) {
      const page = (await getJson(baseUrl, `/v1/streams/${enc}/checkpoints?from_batch=${fromBatch}`, token)) as {
        checkpoints: Array<{ batch: number; note: string }>;
        next_from_batch: number | null;
      };
      for (const c of page.checkpoints) checkpoints.push({ note: c.note, label: `checkpoint of batch ${c.batch}` });
      fromBatch = page.next_from_batch !== null && page.next_from_batch > fromBatch ? page.next_from_batch : null;
    }
    const records: EvidenceRecord[] = [];
    let fromSeq: number | null = 0;
    while (fromSeq !== null) {
      const page = (await getJson(baseUrl, `/v1/streams/${enc}/records?from_seq=${fromSeq}&limit=10000`, token)) as {
        records: Array<{ seq: number; canonical: string; mac: string; key_id: string }>;
        next_from_seq: number | null;
      };
      for (const r of page.records) {
        records.push({ seq: r.seq, canonical: r.canonical, mac: Buffer.from(r.mac, 'hex'), keyId: r.key_id });
      }
      // Only move forward: a hostile collector must not be able to loop the verifier.
      fromSeq = page.next_from_seq !== null && page.next_from_seq > fromSeq ? page.next_from_seq : null;
    }
    out.push({ stream, records, checkpoints });
  }
  return out;
}
