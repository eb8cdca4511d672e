/**
 * Compiling rule specs into a Ruleset.
 *
 * All rules become ONE RE2 program, `(p0)|(p1)|...`, so each string is
 * scanned once however many rules there are; the capture group that took
 * part tells which rule matched. RE2's alternation is leftmost-first: the
 * match that starts earliest wins, and at the same start the earlier rule
 * wins. When the combined program cannot be built (two rules use the same
 * group name, an unterminated \Q, RE2's memory budget), rules are matched one
 * by one with exactly the same leftmost-first selection, so the output never
 * depends on which path was taken.
 */
import { createHash } from 'node:crypto';
import { ConfigError } from '../../core/errors.js';
import { collectStrings, countHit, redactValue, type Hits, type StringRedactor } from './apply.js';
import { captureGroupCount, compileRe2, minMatchLength, withoutCaptures, type RE2Instance } from './pattern.js';
import { MAX_PATTERN_LENGTH, MAX_REPLACE_LENGTH, MAX_RULES, RULE_ID, type RuleSpec } from './rules.js';

/**
 * Part of the ruleset hash: bump when the meaning of a compiled ruleset
 * changes (matching semantics, key/number handling), so records redacted by
 * different engines never claim the same ruleset.
 */
export const REDACT_ENGINE_VERSION = 'sealtrail-redact/1';

export interface Ruleset {
  /** hex SHA-256 over the engine version and each rule's id, pattern and replacement, in order */
  readonly hash: string;
  readonly ruleIds: readonly string[];
  /**
   * Never mutates the input. Containers on the path to a change are copied;
   * untouched subtrees (and the whole value, when nothing matched) are
   * returned as they are, so callers must not mutate the result's shared
   * parts either. Adds replacements per rule id to `hits`.
   */
  redact(value: unknown, hits?: Record<string, number>): unknown;
}

interface CompiledRule {
  id: string;
  pattern: string;
  replace: string;
}

/** How strings are scanned; exposed for tests and diagnostics. */
export type MatchMode = 'none' | 'combined' | 'per-rule';

export class CompiledRuleset implements Ruleset, StringRedactor {
  readonly hash: string;
  readonly ruleIds: readonly string[];
  /** no rule can match a string shorter than this (UTF-16 code units) */
  readonly minLength: number;
  readonly mode: MatchMode;
  private readonly rules: readonly CompiledRule[];
  private readonly combined:
    | { re: RE2Instance; probe: RE2Instance; finder: RE2Instance | undefined; groups: readonly number[] }
    | undefined;
  private readonly single: readonly RE2Instance[];
  /** false when a rule is anchored, where a joined probe could miss a match */
  private readonly wholeValueProbe: boolean;

  constructor(rules: readonly CompiledRule[], minLength: number, regexes: readonly RE2Instance[]) {
    this.rules = rules;
    this.ruleIds = Object.freeze(rules.map((r) => r.id));
    this.hash = rulesetHash(rules);
    this.minLength = minLength;
    this.combined = rules.length > 0 ? buildCombined(rules) : undefined;
    this.single = this.combined ? [] : regexes;
    this.mode = rules.length === 0 ? 'none' : this.combined ? 'combined' : 'per-rule';
    this.wholeValueProbe = rules.every((r) => !/[\^$]|\\[AzZ]|\(\?[a-zA-Z]*m/.test(r.pattern));
  }

  redact(value: unknown, hits?: Record<string, number>): unknown {
    if (!this.combined || !this.wholeValueProbe) return redactValue(value, this, hits);
    // One RE2 call over all of the value's strings joined by NUL: converting
    // each string to UTF-8 separately costs more than the matching itself.
    // Any match inside one string is also a match in the joined text (no rule
    // is anchored, and NUL is a non-word character for \b), and the scan's
    // matches overlap every string that holds one, so only those strings are
    // redacted one by one; a match that merely spans a separator makes its
    // strings be re-checked, never skipped.
    const parts = collectStrings(value);
    const joined = parts.join('\u0000');
    const { probe, finder } = this.combined;
    if (!probe.test(joined)) return value;
    const re = finder ?? this.combined.re;
    const suspects = new Set<string>();
    const ends: number[] = [];
    let at = 0;
    for (const p of parts) {
      at += p.length;
      ends.push(at);
      at += 1;
    }
    re.lastIndex = 0;
    let i = 0;
    for (let m = re.exec(joined); m !== null; m = re.exec(joined)) {
      const start = m.index;
      const end = start + Math.max(1, m[0].length);
      while (i < parts.length && ends[i]! <= start) i++;
      for (let j = i; j < parts.length && ends[j]! - parts[j]!.length < end; j++) suspects.add(parts[j]!);
      if (m[0].length === 0) re.lastIndex++;
    }
    re.lastIndex = 0;
    return redactValue(value, { redactString: (s, h) => (suspects.has(s) ? this.redactString(s, h) : s) }, hits);
  }

  redactString(s: string, hits: Hits | undefined): string {
    if (this.rules.length === 0 || s.length < this.minLength) return s;
    // RE2 works on UTF-8 and would turn a lone surrogate into U+FFFD anywhere
    // in the string; match the well-formed stretches and keep the rest as is.
    if (LONE_SURROGATE.test(s)) return this.redactIllFormed(s, hits);
    return this.redactWellFormed(s, hits);
  }

  private redactIllFormed(s: string, hits: Hits | undefined): string {
    let out = '';
    let from = 0;
    for (const m of s.matchAll(LONE_SURROGATE_G)) {
      out += this.redactWellFormed(s.slice(from, m.index), hits) + m[0];
      from = m.index + m[0].length;
    }
    return out + this.redactWellFormed(s.slice(from), hits);
  }

  private redactWellFormed(s: string, hits: Hits | undefined): string {
    if (s.length < this.minLength) return s;
    return this.combined ? this.replaceCombined(s, hits) : this.replacePerRule(s, hits);
  }

  private replaceCombined(s: string, hits: Hits | undefined): string {
    const { re, probe, groups } = this.combined!;
    if (!probe.test(s)) return s;
    const rules = this.rules;
    let changed = false;
    const out = re.replace(s, (...args: unknown[]) => {
      changed = true;
      for (let i = 0; i < groups.length; i++) {
        const g = args[groups[i]!];
        if (typeof g === 'string' && g.length > 0) {
          if (hits) countHit(hits, rules[i]!.id);
          return rules[i]!.replace;
        }
      }
      // Unreachable: every branch is a capture group and no rule matches "".
      // Redact anyway rather than let the text through.
      return rules[0]!.replace;
    });
    return changed ? out : s;
  }

  private replacePerRule(s: string, hits: Hits | undefined): string {
    const res = this.single;
    const next: (RegExpExecArray | null | undefined)[] = new Array<undefined>(res.length);
    let out = '';
    let pos = 0;
    for (;;) {
      let best = -1;
      for (let i = 0; i < res.length; i++) {
        let m = next[i];
        // A cached match that starts at or after pos is still the leftmost one from pos.
        if (m === undefined || (m !== null && m.index < pos)) {
          const re = res[i]!;
          re.lastIndex = pos;
          m = re.exec(s);
          next[i] = m;
        }
        if (m && (best === -1 || m.index < next[best]!.index)) best = i;
      }
      if (best === -1) break;
      const m = next[best]!;
      out += s.slice(pos, m.index) + this.rules[best]!.replace;
      if (hits) countHit(hits, this.rules[best]!.id);
      pos = m.index + Math.max(1, m[0].length);
    }
    return pos === 0 ? s : out + s.slice(pos);
  }
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LONE_SURROGATE_G = new RegExp(LONE_SURROGATE.source, 'g');

function buildCombined(
  rules: readonly CompiledRule[],
): { re: RE2Instance; probe: RE2Instance; finder: RE2Instance | undefined; groups: number[] } | undefined {
  const groups: number[] = [];
  let next = 1;
  for (const r of rules) {
    const inner = captureGroupCount(r.pattern);
    if (inner === undefined) return undefined;
    groups.push(next);
    next += 1 + inner;
  }
  const source = rules.map((r) => `(${r.pattern})`).join('|');
  const compiled = compileRe2(source, 'g');
  // The probe has no 'g' flag (test() must not move a lastIndex) and answers
  // "any match?" with RE2's DFA, several times cheaper than a replace() that
  // tracks submatches; most strings match nothing.
  const probe = compileRe2(source, '');
  // Finding where matches are (not which rule) needs no submatches at all.
  const bare = rules.map((r) => withoutCaptures(r.pattern));
  const finder = bare.every((b) => b !== undefined) ? compileRe2(bare.map((b) => `(?:${b})`).join('|'), 'g') : undefined;
  if (!('re' in compiled) || !('re' in probe)) return undefined;
  return { re: compiled.re, probe: probe.re, finder: finder && 're' in finder ? finder.re : undefined, groups };
}

/**
 * A canonical description, not the source text: reformatting or reordering
 * keys in a rule file, or editing a description, leaves the hash alone;
 * changing what is matched or what it becomes changes it. Rule order is
 * included because it decides ties.
 */
function rulesetHash(rules: readonly CompiledRule[]): string {
  const description = JSON.stringify({
    engine: REDACT_ENGINE_VERSION,
    rules: rules.map((r) => ({ id: r.id, pattern: r.pattern, replace: r.replace })),
  });
  return createHash('sha256').update(description, 'utf8').digest('hex');
}

export function defaultReplacement(id: string): string {
  return `[REDACTED:${id}]`;
}

/**
 * Validate and compile. Errors are ConfigError with the rule's file:line:col
 * when the spec came from a file; they name rule ids and RE2's reason, never
 * any data.
 */
export function compileRuleset(specs: readonly RuleSpec[]): CompiledRuleset {
  if (specs.length > MAX_RULES) {
    throw new ConfigError('redaction_too_many_rules', `more than ${MAX_RULES} redaction rules`, specs[MAX_RULES]?.origin?.rule ?? {});
  }
  const firstSeen = new Map<string, RuleSpec>();
  const rules: CompiledRule[] = [];
  const regexes: RE2Instance[] = [];
  let minLength = Infinity;
  for (const spec of specs) {
    const o = spec.origin ?? {};
    if (typeof spec.id !== 'string' || !RULE_ID.test(spec.id)) {
      throw new ConfigError('redaction_rule_invalid', 'rule id must match [a-z0-9_.-]{1,64}', o.id ?? o.rule ?? {});
    }
    const earlier = firstSeen.get(spec.id);
    if (earlier) {
      const there = earlier.origin?.id;
      const where = there?.file ? ` (first defined at ${there.file}:${there.line ?? 1}:${there.col ?? 1})` : '';
      throw new ConfigError('redaction_rule_duplicate', `duplicate rule id "${spec.id}"${where}`, o.id ?? o.rule ?? {});
    }
    firstSeen.set(spec.id, spec);

    if (typeof spec.pattern !== 'string' || spec.pattern.length === 0 || spec.pattern.length > MAX_PATTERN_LENGTH) {
      throw new ConfigError('redaction_rule_invalid', `rule "${spec.id}": pattern must be 1..${MAX_PATTERN_LENGTH} characters`, o.pattern ?? o.rule ?? {});
    }
    const re = compileRe2(spec.pattern, 'g');
    if (!('re' in re)) {
      throw new ConfigError('redaction_rule_invalid', `rule "${spec.id}": pattern rejected by RE2: ${re.reason}`, o.pattern ?? o.rule ?? {});
    }
    const min = minMatchLength(spec.pattern);
    if (min === 0) {
      throw new ConfigError('redaction_rule_invalid', `rule "${spec.id}": pattern can match the empty string`, o.pattern ?? o.rule ?? {});
    }
    minLength = Math.min(minLength, min);

    const replace = spec.replace ?? defaultReplacement(spec.id);
    if (typeof replace !== 'string' || replace.length > MAX_REPLACE_LENGTH) {
      throw new ConfigError('redaction_rule_invalid', `rule "${spec.id}": replace must be a string of at most ${MAX_REPLACE_LENGTH} characters`, o.replace ?? o.rule ?? {});
    }
    rules.push({ id: spec.id, pattern: spec.pattern, replace });
    regexes.push(re.re);
  }
  return new CompiledRuleset(rules, minLength === Infinity ? 0 : minLength, regexes);
}

export const EMPTY_RULESET: Ruleset = compileRuleset([]);
