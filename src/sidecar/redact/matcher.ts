/**
 * Matching one text with a set of rules (stage 2 of engine.ts): every
 * non-overlapping match, leftmost first, validators applied. A Matcher
 * keeps per-scan state (each rule's cursor and RE2 lastIndex), which is
 * safe because a scan never calls back into the engine before it ends: it
 * caches one Matcher per rule subset and reuses it.
 */
import { withoutUpperBounds } from './pattern.js';
import { RuleSieve } from './rule-sieve.js';
import type { CompiledRule } from './ruleset.js';

/** A match to replace: its span in the text (the value group, for value-group rules) and its rule. */
export interface Match {
  start: number;
  end: number;
  rule: CompiledRule;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LONE_SURROGATE_G = new RegExp(LONE_SURROGATE.source, 'g');

/**
 * A set of rules scanned together: a RuleSieve (RE2.Set tests over halves
 * of the rules) says which rules match somewhere in the text, then only
 * those run, each its own small program, merged leftmost-first. (One `(p0)|(p1)|...` program with submatches would
 * be a single call, but for a program this size RE2 extracts submatches
 * with its NFA, over a thousand times slower on this ruleset.)
 */
export class Matcher {
  readonly rules: readonly CompiledRule[];
  readonly minLength: number;
  /** which rules match somewhere; undefined for one rule */
  readonly sieve: RuleSieve | undefined;
  /** per-rule cursors: each rule's next valid match at or after the scan position */
  private readonly cursors: (Found | null | undefined)[];
  private active: CompiledRule[] = [];

  /** `blockOf`: the rules a scan's allow-list admits or refuses together (the probe's groups), kept under one subtree of the sieve. */
  constructor(rules: readonly CompiledRule[], blockOf?: (rule: CompiledRule) => number) {
    this.rules = rules;
    this.minLength = Math.min(...rules.map((r) => r.minLength));
    this.cursors = new Array<undefined>(rules.length);
    // The sieve may over-answer (a rule then runs and finds nothing), so it
    // tests the patterns with their repetitions unbounded: smaller DFAs (pattern.ts).
    this.sieve =
      rules.length > 1 ? new RuleSieve(rules.map((r) => withoutUpperBounds(r.pattern) ?? r.pattern), blockOf ? rules.map(blockOf) : undefined) : undefined;
  }

  /**
   * Non-overlapping matches, leftmost first (at the same start, the earlier
   * rule), validators applied: a match whose validator fails is left alone
   * and its rule looks again from the next character. `text` has no lone
   * surrogates (scanText). `allow`: only rules i with allow[i] set can
   * match (the others are known not to), or every rule when absent.
   */
  scan(text: string, out: Match[], allow?: Uint8Array): void {
    if (text.length < this.minLength) return;
    // One UTF-8 copy for all the RE2 calls below: node-re2 converts a string
    // argument on each call, which costs more than a short match. For ASCII
    // text its byte offsets are the string's offsets, so exec can use it too.
    const bytes = Buffer.from(text, 'utf8');
    const input = bytes.length === text.length ? bytes : text;
    let active: readonly CompiledRule[];
    if (this.sieve) {
      const ids = this.sieve.matching(bytes, allow);
      if (ids.length === 0) return;
      this.active.length = 0;
      for (const i of ids) this.active.push(this.rules[i]!);
      active = this.active;
    } else {
      if (allow !== undefined && !allow[0]) return;
      active = this.rules;
    }
    const cursors = this.cursors;
    for (let i = 0; i < active.length; i++) cursors[i] = undefined;
    let pos = 0;
    while (pos <= text.length) {
      let best: Found | null = null;
      for (let i = 0; i < active.length; i++) {
        let c = cursors[i];
        // A cached match that starts at or after pos is still the rule's first from pos.
        if (c === undefined || (c !== null && c.start < pos)) {
          c = firstValid(active[i]!, text, input, pos);
          cursors[i] = c;
        }
        if (c !== null && (best === null || c.start < best.start)) best = c;
      }
      if (best === null) break;
      if (best.span && best.span[1] > best.span[0]) out.push({ start: best.span[0], end: best.span[1], rule: best.rule });
      pos = best.end > best.start ? best.end : nextCodePoint(text, best.start);
    }
  }
}

interface Found {
  start: number;
  end: number;
  /** what to replace: the whole match, or the value group; null when the group is empty */
  span: [number, number] | null;
  rule: CompiledRule;
}

/** `m` from exec on the text or on its ASCII bytes: offsets and lengths are the same in both. */
function found(m: RegExpExecArray, rule: CompiledRule): Found {
  const start = m.index;
  const end = start + m[0]!.length;
  let span: [number, number] | null = [start, end];
  if (rule.valueGroup) {
    const g = (m as RegExpExecArray & { indices?: ([number, number] | undefined)[] }).indices?.[1];
    span = g && g[1] > g[0] ? [g[0], g[1]] : null;
  }
  return { start, end, span, rule };
}

/** `input`: `text` itself, or its UTF-8 bytes when they are ASCII (one byte per UTF-16 unit). */
function firstValid(rule: CompiledRule, text: string, input: string | Buffer, from: number): Found | null {
  let at = from;
  while (at <= text.length) {
    rule.re.lastIndex = at;
    const m = rule.re.exec(input as string) as RegExpExecArray | null;
    if (m === null) return null;
    const f = found(m, rule);
    if (!f.span || !rule.validate || rule.validate(text.slice(f.span[0], f.span[1]))) return f;
    at = nextCodePoint(text, m.index);
  }
  return null;
}

function nextCodePoint(text: string, i: number): number {
  const c = text.charCodeAt(i);
  if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
    const d = text.charCodeAt(i + 1);
    if (d >= 0xdc00 && d <= 0xdfff) return i + 2;
  }
  return i + 1;
}

/**
 * RE2 works on UTF-8 and reads a lone surrogate as U+FFFD, and so does the
 * probe (Buffer.from). Scan a copy with each lone surrogate replaced by
 * U+FFFD (one UTF-16 unit, so offsets are unchanged): the text RE2 sees is
 * then exactly the probe's, a match can run across a lone surrogate (a secret
 * value continues past it), and anchors do not treat one as a string edge.
 * The replacements act on the original text, lone surrogates included.
 */
export function scanText(x: string, m: Matcher, allow?: Uint8Array): Match[] {
  const out: Match[] = [];
  m.scan(LONE_SURROGATE.test(x) ? x.replace(LONE_SURROGATE_G, '\uFFFD') : x, out, allow);
  return out;
}
