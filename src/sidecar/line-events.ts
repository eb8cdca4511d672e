/**
 * One input line → its events → record texts: the steps Ingest takes for
 * every line and `sealtrail redact` takes to refuse exactly what a sidecar
 * refuses. Pure apart from the clock and ids the caller passes in.
 *
 * Order (DESIGN invariant 1): JSON.parse → well-formed strings → format
 * decode → per event: redact → normalise → add sidecar fields → canonicalise
 * → size check. Nothing derived from the line reaches an error message
 * before redaction: errors name reasons and field paths, never values.
 */
import { canonicalize } from '../core/canonical.js';
import { InputError, SealtrailError } from '../core/errors.js';
import { buildRecord, normaliseEvent, repairLoneSurrogates, wellFormed, type Repairs } from '../core/record.js';
import type { RedactionProvenance } from '../core/types.js';
import { canonicalWireBytes, recordSizeProblem } from '../core/wire-limits.js';
import type { DecodedEvent, LineFormat } from './formats/format.js';
import type { RedactContext, Ruleset } from './redact/index.js';

/** Why a line or an event cannot become records: a quarantine reason, a message naming no value, the field at fault. */
export interface LineFailure {
  code: string;
  message: string;
  field?: string;
}

export interface DecodedLine {
  events: DecodedEvent[];
  repaired: Repairs;
  /** the line's text, when the one event is exactly what was parsed from it: lets redaction skip a clean line unwalked */
  text: string | undefined;
}

/**
 * Parses (unless the source already decoded the value), repairs lone
 * surrogates and decodes by format. Blank text gives `'blank'`.
 */
export function decodeLine(line: { text?: string; value?: unknown; wellFormed?: true }, format: LineFormat): DecodedLine | 'blank' | { failure: LineFailure } {
  let parsed: unknown;
  const text = line.value === undefined ? (line.text ?? '') : undefined;
  if (text === undefined) {
    parsed = line.value;
  } else {
    if (text.trim().length === 0) return 'blank';
    try {
      parsed = JSON.parse(text);
    } catch {
      // V8's SyntaxError quotes the input, which may be PII: keep only a fixed message.
      return { failure: { code: 'json_invalid', message: 'line is not valid JSON' } };
    }
  }
  try {
    let clean: unknown;
    let repaired: Repairs;
    if (text !== undefined) ({ value: clean, repaired } = repairLoneSurrogates(parsed, text));
    else {
      repaired = { lone_surrogates: 0, keys_renamed: 0 };
      clean = line.wellFormed ? parsed : wellFormed(parsed, 0, repaired);
    }
    const events = format.decode(clean);
    const same = text !== undefined && clean === parsed && events.length === 1 && events[0]!.event === parsed;
    return { events, repaired, text: same ? text : undefined };
  } catch (err) {
    return { failure: failureOf(err) };
  }
}

export interface RecordFields {
  id: string;
  stream: string;
  seq: number;
  receivedAt: string;
  source: string;
}

export interface MadeRecord {
  /** the redacted event, before normalisation (what `sealtrail redact` prints) */
  redacted: unknown;
  /** canonical record text */
  canonical: string;
  bytes: number;
  wireBytes: number;
  hits: Record<string, number>;
}

/** One event → one record text, or why it cannot be one. Never throws. */
export function eventToRecord(
  input: Record<string, unknown>,
  ruleset: Ruleset,
  fields: RecordFields,
  opts: { text?: string; repaired: Repairs; tenant?: string },
): MadeRecord | { failure: LineFailure } {
  const hits: Record<string, number> = {};
  try {
    // The tenant is read before redaction: per-tenant pseudonyms depend on it.
    const tenant = opts.tenant ?? input.tenant;
    const ctx: RedactContext = opts.text !== undefined ? { text: opts.text } : {};
    if (typeof tenant === 'string') ctx.tenant = tenant;
    const redacted = ruleset.redact(input, hits, ctx);
    const event = normaliseEvent(redacted, fields.receivedAt);
    const redaction: RedactionProvenance = { ruleset: ruleset.hash, hits };
    if (opts.repaired.lone_surrogates > 0) {
      redaction.repaired = { lone_surrogates: opts.repaired.lone_surrogates };
      if (opts.repaired.keys_renamed > 0) redaction.repaired.keys_renamed = opts.repaired.keys_renamed;
    }
    const record = buildRecord(event, { id: fields.id, stream: fields.stream, seq: fields.seq, received_at: fields.receivedAt, source: fields.source, redaction });
    const canonical = canonicalize(record);
    const bytes = Buffer.byteLength(canonical, 'utf8');
    const wireBytes = canonicalWireBytes(canonical, bytes);
    const tooLarge = recordSizeProblem(wireBytes);
    if (tooLarge !== undefined) return { failure: { code: 'record_too_large', message: tooLarge } };
    return { redacted, canonical, bytes, wireBytes, hits };
  } catch (err) {
    return { failure: failureOf(err) };
  }
}

/**
 * Why a line failed, fit for a quarantine row. Anything but a SealtrailError
 * (a RangeError, a bug in a rule) must not fail the whole chunk: the source
 * would offer the same lines again forever. The message of a foreign error
 * may quote the input, so only its name is kept.
 */
export function failureOf(err: unknown): LineFailure {
  if (err instanceof InputError && err.field !== undefined) return { code: err.code, message: err.message, field: err.field };
  if (err instanceof SealtrailError) return { code: err.code, message: err.message };
  const name = err instanceof Error ? err.name : typeof err;
  return { code: 'record_failed', message: `line could not be turned into a record (${name})` };
}

/** A failure whose field is named under `path`, where the event sat in its line or request. */
export function under(path: string, f: LineFailure): LineFailure {
  if (path === '') return f;
  return { ...f, field: f.field !== undefined && f.field !== '' ? `${path}.${f.field}` : path };
}
