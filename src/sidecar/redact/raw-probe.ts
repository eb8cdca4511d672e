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
import type { RE2Instance } from './pattern.js';

/** What may stand before or after a string or number in JSON text (used for anchors in the raw probe). */
export const RAW_SEPARATOR = '[\\x00"\\[\\]{}:,\\t\\n\\r ]';

/**
 * Number tokens whose literal may differ from String(value): fractions,
 * exponents, 16+ digits. Fixed JS pattern (not user input); each attempt
 * starts at a delimiter and scans only the digit run after it, so it is linear.
 */
const INEXACT_NUMBER = /(?:^|[:[,])[ \t\n\r]*(-?(?:\d+\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|\d{16,}))[ \t\n\r]*(?=[,}\]]|$)/g;

export interface RawProbeParts {
  /**
   * the probed rules' alternation with anchors that also accept
   * RAW_SEPARATOR, plus rawTriggerAlternative (a member that triggers rules)
   */
  rawProbe: RE2Instance;
  /** the ordinary probe (anchors accept NUL), for the decoded views joined with NUL */
  probe: RE2Instance;
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

export class RawProbe {
  private readonly p: RawProbeParts;

  constructor(parts: RawProbeParts) {
    this.p = parts;
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

    let viewsText: string | undefined;
    if (d.base64) {
      const views: string[] = [];
      deriveViews(text, d, views, true);
      if (views.length > 0) viewsText = views.join('\u0000');
    }
    if (this.p.rawProbe.test(buf)) return 'unknown';
    if (viewsText !== undefined && this.p.probe.test(Buffer.from(viewsText, 'utf8'))) return 'unknown';
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

function hasInexactNumber(text: string): boolean {
  INEXACT_NUMBER.lastIndex = 0;
  for (let m = INEXACT_NUMBER.exec(text); m !== null; m = INEXACT_NUMBER.exec(text)) {
    const literal = m[1]!;
    if (String(Number(literal)) !== literal) return true;
    // a zero-length step cannot happen (every match consumes a digit), so exec always advances
  }
  return false;
}
