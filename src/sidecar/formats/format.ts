/**
 * A line format: how one parsed input value (a JSON line from a file or a
 * socket, one event of an HTTP request, one decoded OTLP request) becomes
 * zero or more events in sealtrail's input shape (docs/events.md), which
 * ingest then redacts, normalises, chains and commits.
 *
 * Contracts:
 * - decode() is pure: no I/O, no clock, no randomness. The same value gives
 *   the same events, so a line re-read after a crash becomes the same events.
 * - It never quotes input in an error: an InputError names the member at
 *   fault by path (`field`) and says what was expected, never what was there.
 *   Redaction runs after decode, so anything quoted would bypass it.
 * - Every string of the input that carries meaning ends up in some event
 *   (mapped to a record field, or kept under `details`): a format drops only
 *   what is structural (wrapper arrays, OTLP's empty defaults).
 * - One value that becomes several events is one unit: ingest commits all of
 *   them with the line's position, or quarantines the line (all or none).
 * - Events are plain objects built with own data properties only (a
 *   "__proto__" key from the input must stay a key, see core/record.ts).
 */

/** The names `format:` takes in a source's config. `mapped` also takes a mapping file. */
export const FORMAT_NAMES = ['sealtrail', 'otlp-json', 'cloudevents', 'mapped', 'auto'] as const;
export type FormatName = (typeof FORMAT_NAMES)[number];

/** One event a format produced, and where in the input value it came from (for errors and positions). */
export interface DecodedEvent {
  /** an object in sealtrail's input shape: event_type, time, actor, tool, model, details, … */
  event: Record<string, unknown>;
  /** path of the item inside the value, '' for the value itself: `resourceSpans[0].scopeSpans[0].spans[3]` */
  path: string;
}

export interface LineFormat {
  readonly name: FormatName;
  /**
   * The events one parsed value holds. Throws InputError (with `field`) when
   * the value is not of this format or cannot be mapped; returns [] for a
   * value that is of the format but holds nothing (an OTLP request with no
   * spans).
   */
  decode(value: unknown): DecodedEvent[];
}
