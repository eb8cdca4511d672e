/**
 * What built-in detectors are made of (detectors.ts holds the table):
 * the DetectorDef a detector builds, readers for its options, the
 * structured DetectorError they throw, and the label fragments detectors
 * with user-supplied labels (secret_kv keys, medical_record_number
 * prefixes) are written with.
 *
 * Contracts:
 * - A reader is only called for an option that is present (not undefined);
 *   defaults belong to the detector's build, where they are documented.
 * - Every problem with a detector name or its options is a DetectorError
 *   carrying the ConfigError code it becomes, the detector and the option
 *   at fault. compile.ts adds the rule id and file:line:col from those
 *   fields and the message, which it never has to take apart.
 * - Messages quote only what a rule file wrote (detector and option names,
 *   numeric bounds), never event data.
 */
import type { DetectorCode } from '../../core/error-codes.js';
import { SealtrailError } from '../../core/errors.js';

export interface DetectorDef {
  /** the detector name, e.g. "email" */
  id: string;
  description: string;
  /** RE2 syntax; no capture groups unless valueGroup */
  pattern: string;
  /**
   * Checksum run on the redacted part (the whole match, or the value group);
   * a candidate that fails is left alone.
   */
  validator?: 'luhn' | 'iban_mod97' | 'ssn_valid';
  /**
   * The pattern has exactly ONE capturing group, the part to redact; the rest
   * of the match (a key, a separator, a quote) stays as it is. A match in
   * which the group did not take part is left alone entirely: a pattern uses
   * that to consume look-alike text (ipv4 swallows 5-part version strings
   * such as 1.2.3.4.5) so that nothing inside it is redacted.
   */
  valueGroup?: boolean;
  /**
   * Cheap prefilter: every match contains at least one of these substrings
   * when compared in lowercase (`text.toLowerCase().includes(s)`), or
   * undefined when no literal is common to all matches. Exact on NFKC text;
   * on text that skipped NFKC, RE2's `(?i)` also folds U+017F (ſ) to s and
   * U+212A (Kelvin sign) to k, which toLowerCase() does not, so a prefilter
   * there must fold those two as well.
   */
  requires?: string[];
}

/**
 * A detector name or option that cannot be used. `message` is complete
 * ("detector medical_record_number: option min_digits must be ...");
 * the fields say what it is about, for callers that place or word it.
 */
export class DetectorError extends SealtrailError<DetectorCode> {
  /** the detector as named by the caller */
  readonly detector: string;
  /** the option at fault; undefined when the problem is the options as a whole, or a combination of them */
  readonly option: string | undefined;
  constructor(code: DetectorCode, detector: string, option: string | undefined, message: string) {
    super(code, message);
    this.detector = detector;
    this.option = option;
  }
}

/** The detector and option a reader is reading, for its errors. */
export interface OptionPlace {
  readonly detector: string;
  readonly option: string;
}

/** Checks one present option's value and returns it typed; throws DetectorError. */
export type OptionReader<T> = (value: unknown, at: OptionPlace) => T;

function invalidOption(at: OptionPlace, requirement: string): DetectorError {
  return new DetectorError('redaction_rule_invalid', at.detector, at.option, `detector ${at.detector}: option ${at.option} ${requirement}`);
}

export const bool: OptionReader<boolean> = (v, at) => {
  if (typeof v !== 'boolean') throw invalidOption(at, 'must be true or false');
  return v;
};

export function int(lo: number, hi: number): OptionReader<number> {
  return (v, at) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) {
      throw invalidOption(at, `must be an integer from ${lo} to ${hi}`);
    }
    return v;
  };
}

/** Labels people write before a value ("MRN", "member id"): letters first, then a small safe alphabet. */
const LABEL = /^[A-Za-z][A-Za-z0-9_ .#/-]{0,63}$/;
const MAX_LABELS = 32;

/** A label or a list of 1..32 labels (see LABEL), trimmed. */
export const labels: OptionReader<string[]> = (v, at) => {
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || list.length === 0 || list.length > MAX_LABELS) {
    throw invalidOption(at, `must be a string or a list of 1 to ${MAX_LABELS} strings`);
  }
  for (const s of list) {
    if (typeof s !== 'string' || !LABEL.test(s.trim())) {
      throw new DetectorError(
        'redaction_rule_invalid',
        at.detector,
        at.option,
        `detector ${at.detector}: option ${at.option}: each entry must start with a letter and hold at most 64 of A-Z a-z 0-9 space _ . # / -`,
      );
    }
  }
  return (list as string[]).map((s) => s.trim());
};

/**
 * A label as a case-insensitive RE2 fragment in which any run of separators
 * (space, _, ., -) may be written as any other run or left out, so
 * "member_id" also finds "Member ID", "member-id" and "memberId".
 */
export function labelPattern(label: string): string {
  return label
    .split(/[\s_.-]+/)
    .filter((p) => p.length > 0)
    .map(escapeRe2)
    .join('[ \\t_.-]*');
}

/** The longest separator-free piece of a label: a literal every match of labelPattern() contains. */
export function labelLiteral(label: string): string {
  let best = '';
  for (const p of label.split(/[\s_.-]+/)) if (p.length > best.length) best = p;
  return best.toLowerCase();
}

function escapeRe2(s: string): string {
  return s.replace(/[\\^$.|?*+()[\]{}#/-]/g, (c) => `\\${c}`);
}
