/**
 * Stage 1 of the engine (engine.ts): which of a record's strings can any
 * rule match at all?
 *
 * node-re2 pays a UTF-16 → UTF-8 conversion and a native call per call,
 * which costs more than the matching itself. So all of a record's strings
 * (keys, values, numbers' string forms) are joined with NUL into one buffer
 * and tested with ONE RE2 call: test() of the capture-free alternation of
 * the rules (anchors widened to accept the NUL separator, pattern.ts
 * probeSafe). Views that decoding adds (NFKC forms of non-ASCII strings,
 * percent-decoded text, decoded base64 runs; decode.ts finds them with
 * cheap JS scans and only where they exist) go through a second call when
 * there are any. A record that matches nothing, the common case, is done.
 * Otherwise the matching strings are found by halving the buffer (test() on
 * zero-copy sub-buffers). When every rule declares `requires` literals, a
 * JS test for them runs first and can spare the RE2 call.
 *
 * Rules that match nearly anything but are scoped to named members
 * (secret_field: the whole value of a `password` member) would make every
 * probe hit; planProbe sets them apart, and the engine runs them wherever a
 * record has such a member instead.
 *
 * Contract: the probe looks at the same texts stage 2 does (decode.ts
 * `deriveViews`), so it never leaves out a string stage 2 would redact; it
 * may name a string stage 2 then leaves alone.
 */
import { deriveViews, hasNonAscii, MIN_BASE64_RUN } from './decode.js';
import { AnyOf, literalRegExp } from './any-of.js';
import { probeSafe, withoutCaptures, withoutUpperBounds } from './pattern.js';
import type { DecodeSettings } from './rules.js';
import type { CompiledRule } from './ruleset.js';
import { requiredMemberName } from './scope.js';

/** How a ruleset's rules divide between the probe and member triggers. */
export interface ProbePlan {
  /**
   * Rules that match nearly any text (`[\s\S]+` for the whole value of a
   * `password` member) but are scoped to paths naming a member: they would
   * make every record's probe hit, so instead they run wherever a record has
   * a member of one of `triggerNames`, on the values in their scope.
   */
  readonly triggered: readonly CompiledRule[];
  readonly triggerNames: ReadonlySet<string> | undefined;
  /** the rules the probe covers: all but the triggered ones */
  readonly probeRules: readonly CompiledRule[];
}

export function planProbe(rules: readonly CompiledRule[]): ProbePlan {
  const triggered: CompiledRule[] = [];
  const names = new Set<string>();
  for (const r of rules) {
    const need = r.scope && r.scope.include.length > 0 && isBroad(r) ? r.scope.include.map(requiredMemberName) : [];
    if (need.length === 0 || need.includes(undefined)) continue;
    triggered.push(r);
    for (const n of need) names.add(n!);
  }
  return {
    triggered,
    triggerNames: names.size > 0 ? names : undefined,
    probeRules: rules.filter((r) => !triggered.includes(r)),
  };
}

/** Text that no PII rule should match; a rule that matches it matches nearly anything. */
const BLAND = ['a', 'Z', '0', ' ', '-', 'hello world', 'ok 42'];

function isBroad(r: CompiledRule): boolean {
  return BLAND.some((t) => {
    r.re.lastIndex = 0;
    const hit = r.re.test(t);
    r.re.lastIndex = 0;
    return hit;
  });
}

/** The probe over a record's NUL-joined strings. */
export class RecordProbe {
  /** the probed rules' capture-free patterns, any of which matching makes a suspect (test() only) */
  readonly re: AnyOf;
  /**
   * When every probed rule declares `requires` literals (a secrets-only
   * ruleset, say), a record holding none of them cannot match: one JS test
   * instead of an RE2 call. With rules that have none (email, ipv4: "@" and
   * "." are everywhere anyway) the test would only add cost.
   */
  private readonly gate: RegExp | undefined;
  private readonly decode: DecodeSettings;

  /** The probe for `rules` (at least one), or undefined when it cannot be built (\Q...\E, RE2 refusing the program). */
  static build(rules: readonly CompiledRule[], decode: DecodeSettings): RecordProbe | undefined {
    const re = buildProbe(rules);
    if (re === undefined) return undefined;
    const allGated = rules.every((r) => r.requires !== undefined);
    return new RecordProbe(re, allGated ? literalRegExp([...new Set(rules.flatMap((r) => r.requires!))]) : undefined, decode);
  }

  private constructor(re: AnyOf, gate: RegExp | undefined, decode: DecodeSettings) {
    this.re = re;
    this.gate = gate;
    this.decode = decode;
  }

  /** The group that tests each rule build() was given (by position): the bit of groupBit a suspect's mask has for it. */
  ruleGroups(): number[] {
    const out: number[] = [];
    for (let g = 0; g < this.re.groupCount; g++) for (const i of this.re.groupMembers(g)) out[i] = g;
    return out;
  }

  /**
   * The strings (by content) that some rule may match, each with the groups
   * (`groupMask`) whose patterns may match it or one of its decoded views;
   * null when none can. Only rules of those groups can match the string, so
   * stage 2 need not ask the others (engine.ts).
   */
  suspects(parts: string[]): Map<string, number> | null {
    const joined = parts.join('\u0000');
    const buf = Buffer.from(joined, 'utf8');
    const ascii = buf.length === joined.length;
    const d = this.decode;
    const percent = d.percent && joined.includes('%');
    const nfkc = d.nfkc && !ascii;
    let views: string[] | undefined;
    let viewOrigin: number[] | undefined;
    if (d.base64 || percent || nfkc) {
      for (let i = 0; i < parts.length; i++) {
        const p = parts[i]!;
        if (!((d.base64 && p.length >= MIN_BASE64_RUN) || (percent && p.includes('%')) || (nfkc && hasNonAscii(p)))) continue;
        views ??= [];
        const before = views.length;
        deriveViews(p, d, views, ascii);
        if (views.length > before) {
          viewOrigin ??= [];
          for (let k = before; k < views.length; k++) viewOrigin.push(i);
        }
      }
    }
    const viewsText = views !== undefined && views.length > 0 ? views.join('\u0000') : undefined;

    if (this.gate && !this.gate.test(joined) && !(viewsText !== undefined && this.gate.test(viewsText))) return null;
    // Group by group (any-of.ts): a group that matches nowhere costs one
    // pass, and halving with one group's Set is cheaper than with all of them.
    const probe = this.re;
    const viewsBuf = viewsText !== undefined ? Buffer.from(viewsText, 'utf8') : undefined;
    let suspects: Map<string, number> | null = null;
    for (let g = 0; g < probe.groupCount; g++) {
      const test = (b: Buffer): boolean => probe.testGroup(g, b);
      const bit = groupBit(g, probe.groupCount);
      if (probe.testGroup(g, buf, joined)) {
        suspects ??= new Map<string, number>();
        const found = suspects;
        bisect(test, buf, byteStarts(parts, ascii), 0, parts.length, true, (i) => mark(found, parts[i]!, bit));
      }
      if (viewsBuf !== undefined && probe.testGroup(g, viewsBuf, viewsText)) {
        suspects ??= new Map<string, number>();
        const found = suspects;
        const starts = byteStarts(views!, viewsBuf.length === viewsText!.length);
        bisect(test, viewsBuf, starts, 0, views!.length, true, (i) => mark(found, parts[viewOrigin![i]!]!, bit));
      }
    }
    return suspects !== null && suspects.size > 0 ? suspects : null;
  }
}

/**
 * The bit for group `g` in a suspect's mask, or every bit (-1) when there
 * are more groups than bits: then the mask says nothing and stage 2 asks
 * every rule, as before masks existed.
 */
export function groupBit(g: number, groupCount: number): number {
  return groupCount <= MAX_MASKED_GROUPS ? 1 << g : -1;
}

/** Groups a mask can name (bits 0..29 of a small integer). */
export const MAX_MASKED_GROUPS = 30;

function mark(found: Map<string, number>, s: string, bit: number): void {
  found.set(s, (found.get(s) ?? 0) | bit);
}

export function buildProbe(rules: readonly CompiledRule[], separator?: string, extra?: string): AnyOf | undefined {
  // Capture-free where possible (smaller program; test() never needs
  // submatches), otherwise the patterns as written.
  const safe = rules.map((r) => probeSafe(r.pattern, separator));
  if (safe.some((p) => p === undefined)) return undefined;
  for (const bare of [true, false]) {
    // Unbounded repetitions keep the DFA small; the probe may over-answer (pattern.ts).
    const parts = safe.map((p) => (bare ? withoutCaptures(p!) : p)).map((p) => (p === undefined ? p : (withoutUpperBounds(p) ?? p)));
    if (parts.some((p) => p === undefined)) continue;
    const probe = AnyOf.build([...(parts as string[]), ...(extra ? [extra] : [])], rules.map((r) => r.requires));
    if (probe) return probe;
  }
  return undefined;
}

/** Each part's byte offset in the NUL-joined buffer, plus one past the end. */
function byteStarts(parts: readonly string[], ascii: boolean): number[] {
  const starts = new Array<number>(parts.length + 1);
  let at = 0;
  for (let i = 0; i < parts.length; i++) {
    starts[i] = at;
    at += (ascii ? parts[i]!.length : Buffer.byteLength(parts[i]!, 'utf8')) + 1;
  }
  starts[parts.length] = at;
  return starts;
}

/**
 * Calls `touch(i)` for the parts lo..hi-1 that the probe matches on their
 * own, by halving: test() runs RE2's forward DFA only and stops at the
 * first match, while exec() would also need the reverse DFA, which a big
 * combined program can make expensive. Sub-buffers share memory (no copy)
 * and hold whole parts, so a test sees each part as it is on its own
 * (anchors and \b behave the same at a NUL as at the end of the text).
 * `known`: the range is already known to match. When the left half does not
 * match, the right one is assumed to (a match may have spanned the halves,
 * costing at worst one needless suspect, never a missed one).
 */
function bisect(probe: (b: Buffer) => boolean, buf: Buffer, starts: readonly number[], lo: number, hi: number, known: boolean, touch: (i: number) => void): void {
  for (;;) {
    if (!known && !probe(buf.subarray(starts[lo]!, starts[hi]! - 1))) return;
    if (hi - lo === 1) {
      touch(lo);
      return;
    }
    const mid = byteMiddle(starts, lo, hi);
    if (probe(buf.subarray(starts[lo]!, starts[mid]! - 1))) {
      bisect(probe, buf, starts, lo, mid, true, touch);
      lo = mid;
      known = false;
    } else {
      lo = mid;
      known = true;
    }
  }
}

/**
 * The part boundary nearest the byte middle of parts lo..hi-1 (lo < mid < hi):
 * halving bytes rather than parts isolates a long string (free text, where
 * PII usually is) among many short ones (keys, ids) in fewer, smaller tests.
 */
function byteMiddle(starts: readonly number[], lo: number, hi: number): number {
  const target = (starts[lo]! + starts[hi]!) / 2;
  let a = lo + 1;
  let b = hi - 1;
  while (a < b) {
    const m = (a + b) >> 1;
    if (starts[m]! < target) a = m + 1;
    else b = m;
  }
  // a is the first boundary at or after the middle; the one before may be nearer.
  return a > lo + 1 && target - starts[a - 1]! < starts[a]! - target ? a - 1 : a;
}

