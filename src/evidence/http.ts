import { request } from 'undici';
import type { CollectorRequestCode } from '../core/error-codes.js';
import { SealtrailError } from '../core/errors.js';

/** Bytes of one collector answer the CLI holds at most. */
export const MAX_ANSWER_BYTES = 256 * 1024 * 1024;

export class CollectorRequestError extends SealtrailError<CollectorRequestCode> {}

/** GET base+path with a bearer token; the answer as text (200) or a CollectorRequestError naming the error code. */
export async function getText(base: string, path: string, token: string): Promise<string> {
  let url: URL;
  try {
    url = new URL(path, base);
  } catch {
    throw new CollectorRequestError('usage_url', `${base}: not a URL`);
  }
  let res;
  const chunks: Buffer[] = [];
  try {
    res = await request(url, { headers: { authorization: `Bearer ${token}` }, headersTimeout: 60_000, bodyTimeout: 120_000 });
    let n = 0;
    for await (const c of res.body) {
      n += (c as Buffer).length;
      if (n > MAX_ANSWER_BYTES) {
        res.body.destroy();
        throw new CollectorRequestError('collector_bad_answer', `GET ${url.pathname}: answer larger than ${MAX_ANSWER_BYTES} bytes`);
      }
      chunks.push(c as Buffer);
    }
  } catch (err) {
    if (err instanceof CollectorRequestError) throw err;
    throw new CollectorRequestError('collector_unreachable', `${url.origin}: ${(err as Error).message}`, { cause: err });
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (res.statusCode !== 200) {
    let detail = `HTTP ${res.statusCode}`;
    try {
      const e = (JSON.parse(text) as { error?: { code?: unknown; message?: unknown } }).error;
      // Only a plain code is echoed: the answer is not trusted terminal output.
      if (typeof e?.code === 'string' && /^[a-z0-9_]{1,64}$/.test(e.code)) detail += ` ${e.code}`;
    } catch {
      /* status alone */
    }
    throw new CollectorRequestError('collector_refused', `GET ${url.pathname}: ${detail}`);
  }
  return text;
}

export async function getJsonObject(base: string, path: string, token: string): Promise<Record<string, unknown>> {
  const text = await getText(base, path, token);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new CollectorRequestError('collector_bad_answer', `GET ${path.split('?')[0]}: answer is not JSON`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new CollectorRequestError('collector_bad_answer', `GET ${path.split('?')[0]}: answer is not a JSON object`);
  }
  return v as Record<string, unknown>;
}
