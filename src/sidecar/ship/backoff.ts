/** Exponential backoff with full jitter: uniform in [0, min(max, initial * 2^attempt)]. */
export function fullJitterDelay(attempt: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const cap = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * cap);
}

/**
 * Retry-After as delta-seconds or an HTTP-date (RFC 9110 §10.2.3), in ms from
 * now; undefined when absent or unparsable. Capped so a hostile collector
 * cannot park the shipper for days.
 */
export function parseRetryAfter(value: string | string[] | undefined, nowMs: number, capMs = 10 * 60_000): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined) return undefined;
  const t = v.trim();
  if (/^\d{1,10}$/.test(t)) return Math.min(Number(t) * 1000, capMs);
  // Only the IMF-fixdate form (RFC 9110 §5.6.7), not whatever Date.parse guesses at.
  if (!/^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(t)) {
    return undefined;
  }
  const date = Date.parse(t);
  if (!Number.isFinite(date)) return undefined;
  return Math.min(Math.max(0, date - nowMs), capMs);
}

export type ShipVerdict = 'ack' | 'retry' | 'halt';

/**
 * What to do with a collector answer. Retrying cannot fix 4xx answers other
 * than 408/429, so they halt the stream (alert) and are re-probed slowly;
 * nothing is ever skipped or deleted.
 */
export function classifyStatus(status: number): ShipVerdict {
  if (status === 200 || status === 201) return 'ack';
  if (status === 408 || status === 429 || status >= 500) return 'retry';
  return 'halt';
}
