/**
 * A cheaper first look at a record, for the common case where the caller
 * still holds the JSON text the record was parsed from (the sidecar does).
 *
 * When that text has no backslash, every key and string value appears in it
 * verbatim between quotes; when it is also ASCII without "%", no NFKC or
 * percent view of any string differs from the string. Numbers appear as
 * their literals, which equal their string form unless they have a fraction,
 * an exponent or 16+ digits (then the literal is compared with String(n)).
 * Under those conditions every match a probed rule has in one of the
 * record's strings is also a match in the text, with the probe's anchors
 * widened to accept the characters that delimit strings and numbers in
 * JSON, and the base64 runs of the text are exactly the base64 runs of its
 * strings. So "the text (and its decoded runs) holds no match" proves "no
 * string of the record does", without collecting or joining the strings.
 *
 * Any doubt answers `unknown` and the caller takes the exact path; this
 * module can only make the common case cheaper, never change a result
 * (test/unit/redact-raw-probe.test.ts holds it to that).
 */
import { deriveViews } from './decode.js';
import type { DecodeSettings } from './rules.js';
import type { AnyOf } from './any-of.js';

/** What may stand before or after a string or number in JSON text (used for anchors in the raw probe). */
export const RAW_SEPARATOR = '[\\x00"\\[\\]{}:,\\t\\n\\r ]';

export interface RawProbeParts {
  /**
   * the probed rules' alternation with anchors that also accept
   * RAW_SEPARATOR, plus rawTriggerAlternative (a member that triggers rules)
   */
  rawProbe: AnyOf;
  /** the ordinary probe (anchors accept NUL), for the decoded views joined with NUL */
  probe: AnyOf;
  decode: DecodeSettings;
  maxDepth: number;
}

export type RawAnswer = 'clean' | 'unknown';

/**
 * An RE2 alternative matching any of the member names as JSON writes them
 * (quoted), undefined when there are none, null when some name would be
 * escaped in JSON (quote, backslash, control or non-ASCII) and so cannot be
 * looked for verbatim (no raw probe then).
 */
export function rawTriggerAlternative(names: ReadonlySet<string> | undefined): string | undefined | null {
  if (names === undefined || names.size === 0) return undefined;
  const list = [...names];
  if (!list.every((n) => /^[\x20-\x7e]*$/.test(n) && !/["\\]/.test(n))) return null;
  return `"(?:${list.map((n) => n.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&')).join('|')})"`;
}

/**
 * The probe pays off only where clean records are common: on a clean one it
 * spares the exact path, on an unclean one it is a pass over the line for
 * nothing (it stops at the first match, but the exact path then runs all
 * the same). So the share of clean answers is followed (a moving average
 * over about the last 16 asked), and while it is under half the probe is
 * asked of one record in SAMPLE_EVERY only, which keeps the average moving.
 * Skipping it only sends a record down the exact path, which gives the
 * same result.
 */
const AVERAGE_OVER = 16;
const SAMPLE_EVERY = 16;

export class RawProbe {
  private readonly p: RawProbeParts;
  /** moving average of clean answers (1 = all clean), over about AVERAGE_OVER asked records */
  private cleanShare = 1;
  private skipped = 0;

  constructor(parts: RawProbeParts) {
    this.p = parts;
  }

  /** check(), asked of one record in SAMPLE_EVERY while fewer than half the records asked lately were clean. */
  checkIfWorth(text: string): RawAnswer {
    if (this.cleanShare < 0.5 && ++this.skipped % SAMPLE_EVERY !== 0) return 'unknown';
    const answer = this.check(text);
    this.cleanShare += ((answer === 'clean' ? 1 : 0) - this.cleanShare) / AVERAGE_OVER;
    return answer;
  }

  /**
   * 'clean' only when no probed rule can match any string of the value
   * JSON.parse(text) returns, no triggered member is present and the value
   * nests no deeper than maxDepth. `text` must be exactly what was parsed.
   */
  check(text: string): RawAnswer {
    if (text.includes('\\')) return 'unknown';
    const buf = Buffer.from(text, 'utf8');
    if (buf.length !== text.length) return 'unknown'; // not ASCII: NFKC views
    const d = this.p.decode;
    if (d.percent && text.includes('%')) return 'unknown';
    if (openings(text) >= this.p.maxDepth) return 'unknown'; // the exact path enforces the depth limit
    if (hasInexactNumber(text)) return 'unknown';

    // The text first: a record with PII in clear (most of them) needs no decoded views.
    if (this.p.rawProbe.test(buf, text)) return 'unknown';
    if (d.base64) {
      const views: string[] = [];
      deriveViews(text, d, views, true);
      if (views.length > 0) {
        const joined = views.join('\u0000');
        if (this.p.probe.test(Buffer.from(joined, 'utf8'), joined)) return 'unknown';
      }
    }
    return 'clean';
  }
}

/** Count of "{" and "[" (in strings too): an upper bound on nesting depth. */
function openings(text: string): number {
  let n = 0;
  for (let i = text.indexOf('{'); i !== -1; i = text.indexOf('{', i + 1)) n++;
  for (let i = text.indexOf('['); i !== -1; i = text.indexOf('[', i + 1)) n++;
  return n;
}

/**
 * Whether some number token's literal differs from String(value) (a
 * fraction with a trailing zero, an exponent, 16+ digits, ...). A number
 * token in JSON text follows ":", "[" or "," (or starts the text) and ends
 * before ",", "}", "]" or the end, with optional whitespace; the same shape
 * inside a string is only a false alarm (the caller then takes the exact
 * path). One pass of char codes: a regex for this cost twice as much.
 */
function hasInexactNumber(text: string): boolean {
  const n = text.length;
  for (let i = -1; i < n; i++) {
    if (i >= 0) {
      const c = text.charCodeAt(i);
      if (c !== 0x3a && c !== 0x2c && c !== 0x5b) continue; // : , [
    }
    let j = i + 1;
    let d = text.charCodeAt(j);
    while (isSpace(d)) d = text.charCodeAt(++j);
    if (d !== 0x2d && !isDigit(d)) continue;
    let k = j + 1;
    let digits = d === 0x2d ? 0 : 1;
    let plain = true;
    for (; k < n; k++) {
      const e = text.charCodeAt(k);
      if (isDigit(e)) digits++;
      else if (e === 0x2e || e === 0x65 || e === 0x45 || e === 0x2b || e === 0x2d) plain = false; // . e E + -
      else break;
    }
    let t = k;
    while (isSpace(text.charCodeAt(t))) t++;
    const end = text.charCodeAt(t);
    const token = t >= n || end === 0x2c || end === 0x7d || end === 0x5d; // , } ]
    if (token && (!plain || digits >= 16)) {
      const literal = text.slice(j, k);
      if (String(Number(literal)) !== literal) return true;
    }
    i = k - 1;
  }
  return false;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}
