/**
 * The socket source's answer lines (docs/socket-source.md, "Sidecar →
 * client") read into one tagged union. Anything else is `unreadable`: a
 * client must never take an answer it does not understand for an ack.
 */

export type Answer =
  /** `{"ack":N,"seq":S}`, `{"ack":N,"seq":S,"records":K}`, `{"ack":N,"seq":S,"duplicate":true}`, `{"ack":N,"records":0}` */
  | { kind: 'ack'; line: number; seq?: number; records?: number; duplicate?: true }
  /** `{"line":N,"error":{"code","message"}}`: line N did not become a record */
  | { kind: 'refused'; line: number; code: string; message: string }
  /** `{"error":{"code","message"}}`: about the connection, which the sidecar closes next */
  | { kind: 'connection'; code: string; message: string }
  | { kind: 'unreadable' };

const isLineNumber = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 1;
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

export function parseAnswer(text: string): Answer {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    return { kind: 'unreadable' };
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return { kind: 'unreadable' };
  const a = o as Record<string, unknown>;
  if ('ack' in a) {
    if (!isLineNumber(a.ack)) return { kind: 'unreadable' };
    const out: Answer = { kind: 'ack', line: a.ack };
    if (a.seq !== undefined) {
      if (!isCount(a.seq)) return { kind: 'unreadable' };
      out.seq = a.seq;
    }
    if (a.records !== undefined) {
      if (!isCount(a.records)) return { kind: 'unreadable' };
      out.records = a.records;
    }
    if (a.duplicate !== undefined && a.duplicate !== false) {
      if (a.duplicate !== true) return { kind: 'unreadable' };
      out.duplicate = true;
    }
    // An ack must say where the record went, or that there was none.
    if (out.seq === undefined && out.records !== 0) return { kind: 'unreadable' };
    return out;
  }
  const e = a.error;
  if (typeof e !== 'object' || e === null) return { kind: 'unreadable' };
  const { code, message } = e as Record<string, unknown>;
  if (typeof code !== 'string') return { kind: 'unreadable' };
  const msg = typeof message === 'string' ? message : '';
  if (a.line === undefined) return { kind: 'connection', code, message: msg };
  if (!isLineNumber(a.line)) return { kind: 'unreadable' };
  return { kind: 'refused', line: a.line, code, message: msg };
}
