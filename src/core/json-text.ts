/**
 * JSON sent as text inside an event (tool arguments and results: the
 * conventions want an object, SDKs often send its JSON text), read the one
 * way the sidecar's OTLP mapping and the client's adapters both use.
 */

/** A \uD800–\uDFFF escape in JSON text: only such text can parse to a lone surrogate. */
export const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;

/** Deepest JSON text parsed; deeper text stays a string (the record stays within redaction's max_depth). */
export const MAX_PARSED_DEPTH = 32;

/**
 * Text holding a JSON object or array becomes that value; anything else
 * (plain text, a scalar, JSON nested deeper than MAX_PARSED_DEPTH, JSON
 * whose strings would hold a lone surrogate) stays as it came.
 */
export function parseJsonText(v: unknown): unknown {
  if (typeof v !== 'string') return v;
  if (!/^\s*[[{]/.test(v)) return v;
  let parsed: unknown;
  try {
    parsed = JSON.parse(v);
  } catch {
    return v;
  }
  if (typeof parsed !== 'object' || parsed === null || jsonDepth(parsed, MAX_PARSED_DEPTH) > MAX_PARSED_DEPTH) return v;
  // A \ud800 escape parses to a lone surrogate, which no record can hold
  // (RFC 8785), and ingest's repair runs before formats: such text stays
  // the (well-formed) text it was sent as.
  if (SURROGATE_ESCAPE.test(v) && !wellFormedJson(parsed)) return v;
  return parsed;
}

function wellFormedJson(v: unknown): boolean {
  if (typeof v === 'string') return v.isWellFormed();
  if (typeof v !== 'object' || v === null) return true;
  if (Array.isArray(v)) return v.every(wellFormedJson);
  return Object.entries(v).every(([k, x]) => k.isWellFormed() && wellFormedJson(x));
}

/** Container depth of a parsed JSON value, counting stops once past `limit`. */
function jsonDepth(v: unknown, limit: number): number {
  if (typeof v !== 'object' || v === null) return 0;
  if (limit < 0) return 1;
  let deepest = 0;
  for (const child of Array.isArray(v) ? v : Object.values(v)) {
    const d = jsonDepth(child, limit - 1);
    if (d > deepest) deepest = d;
    if (deepest > limit) break;
  }
  return deepest + 1;
}
