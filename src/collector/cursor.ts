import { createHash, createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import type { ApiCode } from '../core/error-codes.js';
import { HttpError } from '../core/errors.js';
import type { RecordKey } from './store/types.js';

const MAX_CURSOR_CHARS = 2048;
const TAG_BYTES = 16;

function bad(): HttpError<ApiCode> {
  return new HttpError(400, 'query_invalid', 'parameter "cursor" is not a cursor issued for this query');
}

/**
 * Opaque keyset cursors for GET /v1/audit: base64url(JSON {t,s,q,f}) "."
 * base64url(HMAC tag). The tag is not what makes the API safe (positions are
 * bound SQL parameters and the caller is an admin anyway); it gives a clean
 * 400 for corrupted or hand-edited cursors and binds a cursor to the filters
 * and the order it was issued for (queryHash). Replicas behind a load balancer must share the key.
 */
export class CursorCodec {
  private readonly key: Buffer;

  constructor(key: Buffer) {
    this.key = key;
  }

  /** Derives the cursor key from configuration every replica shares. */
  static fromSecrets(secrets: readonly string[]): CursorCodec {
    const ikm = Buffer.from([...secrets].sort().join('\n'), 'utf8');
    const key = Buffer.from(hkdfSync('sha256', ikm, 'sealtrail', 'sealtrail/v1/audit-cursor', 32));
    return new CursorCodec(key);
  }

  /** Stable hash of the filters, so a cursor cannot continue a different query. */
  static filterHash(filters: object): string {
    const entries = Object.entries(filters)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return createHash('sha256').update(JSON.stringify(entries)).digest('base64url').slice(0, 22);
  }

  /**
   * What a cursor is bound to: the filters and the direction. A cursor of an
   * ascending query replayed with order=desc would silently skip the records
   * before it, so it must fail the check instead. Ascending hashes as the
   * filters alone, so cursors issued before `order` existed stay valid.
   */
  static queryHash(filters: object, order: 'asc' | 'desc'): string {
    return CursorCodec.filterHash(order === 'desc' ? { ...filters, '~order': 'desc' } : filters);
  }

  private tag(payload: string): Buffer {
    return createHmac('sha256', this.key).update(payload).digest().subarray(0, TAG_BYTES);
  }

  encode(k: RecordKey, filterHash: string): string {
    const payload = Buffer.from(JSON.stringify({ t: k.timeKey, s: k.stream, q: k.seq, f: filterHash })).toString(
      'base64url',
    );
    return `${payload}.${this.tag(payload).toString('base64url')}`;
  }

  /** Throws HttpError 400 for anything but an untampered cursor of this query. */
  decode(cursor: string, filterHash: string): RecordKey {
    if (cursor.length > MAX_CURSOR_CHARS) throw bad();
    const m = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/.exec(cursor);
    if (!m) throw bad();
    const payload = m[1]!;
    const tag = Buffer.from(m[2]!, 'base64url');
    if (tag.length !== TAG_BYTES || !timingSafeEqual(tag, this.tag(payload))) throw bad();
    let v: unknown;
    try {
      v = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    } catch {
      throw bad();
    }
    // Even a correctly tagged cursor is re-validated: the key may be derived
    // from weak secrets, and the values go to the store.
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad();
    const o = v as Record<string, unknown>;
    if (Object.keys(o).length !== 4) throw bad();
    const { t, s, q, f } = o;
    // Time keys of years 0001..9999 lie within ±3e17; beyond 1e18 a value
    // would not even fit the stores' 64-bit columns.
    if (typeof t !== 'number' || !Number.isInteger(t) || Math.abs(t) > 1e18) throw bad();
    if (typeof s !== 'string' || s.length === 0 || s.length > 256) throw bad();
    if (typeof q !== 'number' || !Number.isSafeInteger(q) || q < 0) throw bad();
    if (f !== filterHash) throw bad();
    return { timeKey: t, stream: s, seq: q };
  }
}
