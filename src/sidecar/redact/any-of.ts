/**
 * "Does any of these patterns match somewhere in this text?", asked of a
 * few RE2.Sets of a few patterns each rather than of one program of all
 * the patterns' alternation.
 *
 * Why: on the bundled packs (19 probed rules, counted repetitions such as
 * `[a-z0-9-]{1,63}`) the one program's DFA outgrows RE2's cache and is
 * rebuilt again and again: ~20 µs for a 530-byte line (bench/README.md,
 * bench:ingest).
 *
 * Exactness: a Set runs a DFA only. When its DFA gives up (the memory budget
 * spent on hostile input) node-re2 throws instead of answering, and the
 * group's alternation, which RE2 then finishes with its NFA, answers
 * instead. So the answer is always "some pattern matches"; only its cost
 * changes.
 */
import RE2 from 're2';
import { compileRe2, type RE2Instance } from './pattern.js';

type RE2Set = InstanceType<typeof RE2.Set>;

/**
 * Patterns per Set. A DFA state of a union is a combination of its
 * patterns' states, so the union of all 19 probed rules outgrows RE2's
 * DFA cache (8 MiB, not settable from node-re2) and is rebuilt on every
 * few texts; unions of a few stay warm. Three to five per Set measured
 * alike on the bundled packs, one or seven a few per cent slower
 * (bench/README.md, bench:ingest).
 */
export const PATTERNS_PER_SET = 5;

interface Group {
  /**
   * When every pattern of the group declares `requires` literals (one of
   * which is in any text it matches): a JS test for them, which spares the
   * RE2 call on a text holding none (a JSON line holding no "eyJ", say).
   */
  gate: RegExp | undefined;
  set: RE2Set | undefined;
  /** the group's alternation, no flags: the answer when the Set cannot give one */
  alternation: RE2Instance;
  /** the group's patterns, as indices into the list build() was given */
  members: readonly number[];
}

export class AnyOf {
  private readonly groups: readonly Group[];

  /**
   * undefined when RE2 refuses a group's alternation (too large, or a
   * pattern it cannot read). `requires[i]`: literals (lower case) one of
   * which every match of pattern i holds, when it declares them; patterns
   * that declare them are grouped together so their groups can be gated.
   */
  static build(patterns: readonly string[], requires: readonly (readonly string[] | undefined)[] = []): AnyOf | undefined {
    if (patterns.length === 0) return undefined;
    const order = patterns.map((_, i) => i);
    const gated = (i: number): boolean => (requires[i]?.length ?? 0) > 0;
    order.sort((a, b) => Number(gated(a)) - Number(gated(b)) || a - b);
    const groups: Group[] = [];
    for (let k = 0; k < order.length; k += PATTERNS_PER_SET) {
      const idx = order.slice(k, k + PATTERNS_PER_SET);
      const part = idx.map((i) => patterns[i]!);
      const alt = compileRe2(part.map((p) => `(?:${p})`).join('|'), '');
      if (!('re' in alt)) return undefined;
      let set: RE2Set | undefined;
      try {
        set = new RE2.Set(part);
      } catch {
        set = undefined; // over the Set's memory budget: the alternation answers alone
      }
      const gate = idx.every(gated) ? literalRegExp([...new Set(idx.flatMap((i) => requires[i]!))]) : undefined;
      groups.push({ gate, set, alternation: alt.re, members: idx });
    }
    return new AnyOf(groups);
  }

  private constructor(groups: readonly Group[]) {
    this.groups = groups;
  }

  /** how many groups the patterns were split into (testGroup's range) */
  get groupCount(): number {
    return this.groups.length;
  }

  /** `text`: the input as a string, when the caller has it: lets a gated group answer without RE2. */
  test(input: Buffer | string, text?: string): boolean {
    for (const g of this.groups) if (groupTest(g, input, text)) return true;
    return false;
  }

  /** The patterns of group `i`, as indices into the list build() was given. */
  groupMembers(i: number): readonly number[] {
    return this.groups[i]!.members;
  }

  /** Whether a pattern of group `i` matches: test() is testGroup() over every group. */
  testGroup(i: number, input: Buffer | string, text?: string): boolean {
    return groupTest(this.groups[i]!, input, text);
  }
}

function groupTest(g: Group, input: Buffer | string, text: string | undefined): boolean {
  if (g.gate !== undefined && text !== undefined && !g.gate.test(text)) return false;
  if (g.set !== undefined) {
    try {
      return g.set.test(input);
    } catch {
      // the Set's DFA gave up on this input; the alternation's NFA finishes it
    }
  }
  g.alternation.lastIndex = 0;
  return g.alternation.test(input);
}

/** A case-insensitive JS RegExp for any of the given literals (built-in detector constants, escaped). */
export function literalRegExp(literals: readonly string[]): RegExp {
  if (literals.length === 0) return /(?!)/;
  // 'u' makes 'i' use Unicode simple case folding, as RE2's (?i) does
  // (U+017F folds to "s", U+212A to "k"), so the prefilter never rules out
  // a text the pattern would match.
  return new RegExp(literals.map((l) => l.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('|'), 'iu');
}
