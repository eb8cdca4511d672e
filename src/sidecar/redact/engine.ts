/**
 * The redaction engine: a compiled ruleset (compile.ts builds it from rule
 * specs) applied to decoded JSON. Two stages, because node-re2 pays a
 * UTF-16 → UTF-8 conversion and a native call per call, which costs more
 * than the matching itself:
 *
 * 1. The probe (record-probe.ts, or raw-probe.ts when the caller passes the
 *    JSON line): one RE2 test over all of a record's strings says whether
 *    any rule can match, and if so halving finds which strings. A record
 *    that matches nothing, the common case, is returned as it is.
 *
 * 2. Redaction. Only the strings stage 1 names are redacted, one by one,
 *    with the rules that apply at their place (scope, keys): one RE2.Set
 *    call says which rules match the text, and those run one by one (small
 *    programs), merged leftmost-first (matcher.ts): the match that starts
 *    earliest wins, and at the same start the earlier rule wins. A match
 *    whose validator fails is left alone and its rule looks again from the
 *    next character, so a valid match beginning inside or after it is still
 *    found. Decoding (NFKC, percent, base64 runs) happens here, per string.
 *
 * Both stages look at the same texts (decode.ts `deriveViews` is the
 * contract), so stage 1 never skips a string stage 2 would redact;
 * `redactUnprobed` (stage 2 on every string) is the reference tests hold
 * the probe to.
 */
import { collectStrings, countHit, DROP, walkRedact, type Hits, type StringPolicy } from './apply.js';
import { base64Candidates, canonicalText, decodeBase64Run, MAX_DECODE_NESTING, MIN_BASE64_RUN } from './decode.js';
import { Matcher, scanText, type Match } from './matcher.js';
import { applyOperator, maskText } from './operators.js';
import { probeSafe } from './pattern.js';
import { RAW_SEPARATOR, RawProbe, rawTriggerAlternative } from './raw-probe.js';
import { buildProbe, groupBit, planProbe, RecordProbe } from './record-probe.js';
import type { DecodeSettings } from './rules.js';
import {
  rulesetDescription,
  rulesetHash,
  type CompiledRule,
  type MatchMode,
  type RedactContext,
  type Ruleset,
} from './ruleset.js';
import { inScope, type PathSegment } from './scope.js';

/** The redaction of one text: its new form and what was counted. */
interface TextResult {
  text: string;
  /** one rule id per replacement */
  hits: string[];
  /** a drop_field rule matched: the member goes */
  drop: boolean;
  /** the first replacement: which rule, and the text it matched (decoded) */
  firstRule: CompiledRule;
  firstMatched: string;
}

/** Distinct rule subsets (scopes make them) whose matchers are kept; past it the cache starts over. */
const MAX_MATCHERS = 256;

export class CompiledRuleset implements Ruleset {
  readonly hash: string;
  readonly ruleIds: readonly string[];
  /** no rule can match a string shorter than this (UTF-16 code units) */
  readonly minLength: number;
  readonly mode: MatchMode;
  readonly decode: DecodeSettings;
  readonly maxDepth: number;
  /** the canonical JSON the hash is taken over */
  readonly description: string;
  private readonly rules: readonly CompiledRule[];
  private readonly keyRules: readonly CompiledRule[];
  private readonly scoped: boolean;
  /** rules run wherever a record has a member named in triggerNames (record-probe.ts planProbe) */
  private readonly triggered: readonly CompiledRule[];
  private readonly triggerNames: ReadonlySet<string> | undefined;
  /** the rules the probe covers: all but the triggered ones */
  private readonly probeRules: readonly CompiledRule[];
  /** stage 1 over a record's strings; undefined when there are no probed rules or RE2 refuses the probe */
  private readonly probe: RecordProbe | undefined;
  /** false when some probed pattern cannot be made probe-safe (\Q...\E) */
  private readonly joinable: boolean;
  /** the first look at a record's JSON text, when the caller passes it (RedactContext.text) */
  private readonly raw: RawProbe | undefined;
  private readonly matchers = new Map<string, Matcher>();
  /**
   * Each probed rule's group (record-probe.ts; its bit in a suspect's mask is
   * groupBit of it). A triggered rule has none: it is not probed, so it is
   * always asked where its member is present.
   */
  private readonly probeGroup = new Map<CompiledRule, number>();
  /** a rule's probe group, or -1 for the rules no group covers: what the stage-2 sieve keeps together */
  private readonly blockOf = (rule: CompiledRule): number => this.probeGroup.get(rule) ?? -1;

  constructor(rules: readonly CompiledRule[], decode: DecodeSettings, maxDepth: number) {
    this.rules = rules;
    this.ruleIds = Object.freeze(rules.map((r) => r.id));
    this.decode = decode;
    this.maxDepth = maxDepth;
    this.description = rulesetDescription(rules, decode, maxDepth);
    this.hash = rulesetHash(this.description);
    this.minLength = rules.length === 0 ? 0 : Math.min(...rules.map((r) => r.minLength));
    this.keyRules = rules.filter((r) => r.keys);
    this.scoped = rules.some((r) => r.scope !== undefined);
    const { triggered, triggerNames, probeRules } = planProbe(rules);
    this.triggered = triggered;
    this.triggerNames = triggerNames;
    this.probeRules = probeRules;
    this.joinable = probeRules.every((r) => probeSafe(r.pattern) !== undefined);
    this.probe = probeRules.length > 0 ? RecordProbe.build(probeRules, decode) : undefined;
    if (this.probe) {
      const groups = this.probe.ruleGroups();
      probeRules.forEach((r, i) => this.probeGroup.set(r, groups[i]!));
    }
    // Trigger names ride in the raw probe as quoted literals: one RE2 pass answers both questions.
    const triggerAlt = rawTriggerAlternative(triggerNames);
    const rawProbe =
      this.probe && this.joinable && triggerAlt !== null ? buildProbe(probeRules, RAW_SEPARATOR, triggerAlt) : undefined;
    this.raw = rawProbe ? new RawProbe({ rawProbe, probe: this.probe!.re, decode, maxDepth }) : undefined;
    if (rules.length === 0) this.mode = 'none';
    else this.mode = rules.length === 1 || this.matcher(rules, 'all').sieve ? 'combined' : 'per-rule';
  }

  redact(value: unknown, hits?: Record<string, number>, ctx?: RedactContext): unknown {
    if (this.rules.length === 0) {
      collectStrings(value, [], this.maxDepth); // the depth limit is structural
      return value;
    }
    if (!this.joinable || (this.probeRules.length > 0 && !this.probe)) {
      return this.redactUnprobed(value, hits, ctx);
    }
    if (ctx?.text !== undefined && this.raw !== undefined && this.raw.checkIfWorth(ctx.text) === 'clean') return value;
    const parts: string[] = [];
    const triggered = collectStrings(value, parts, this.maxDepth, this.triggerNames);
    const suspects = parts.length > 0 && this.probeRules.length > 0 ? this.probe!.suspects(parts) : null;
    if (suspects === null && !triggered) return value;
    return walkRedact(value, this.policy(hits, ctx, suspects ?? NOTHING, triggered), this.scoped, this.maxDepth);
  }

  /**
   * The same result as redact(), with every string redacted one by one and
   * no whole-record probe: the reference the probe is tested against, and
   * the path for rulesets that cannot be probed (a pattern with \Q...\E
   * quoting, which probeSafe cannot read; RE2 refusing the probe program).
   */
  redactUnprobed(value: unknown, hits?: Record<string, number>, ctx?: RedactContext): unknown {
    if (this.rules.length === 0) {
      collectStrings(value, [], this.maxDepth);
      return value;
    }
    return walkRedact(value, this.policy(hits, ctx, undefined, true), this.scoped, this.maxDepth);
  }

  /** Redact one string as if it were a value at the record root. */
  redactString(s: string, hits?: Hits, ctx?: RedactContext): string {
    const out = this.policy(hits, ctx, undefined, true)(s, false, this.scoped ? [] : undefined);
    return out === undefined ? s : out === DROP ? '' : out;
  }

  /**
   * `suspects`: only these strings (by content) can match a probed rule,
   * and only the probed rules of the groups in their mask; undefined: any
   * string can match any rule. `triggered`: the record has a member a
   * triggered rule's scope names, so strings in such a scope are redacted too.
   */
  private policy(
    hits: Hits | undefined,
    ctx: RedactContext | undefined,
    suspects: ReadonlyMap<string, number> | undefined,
    triggered: boolean,
  ): StringPolicy {
    const tenant = ctx?.tenant;
    return (s, isKey, path) => {
      let mask = ALL_GROUPS;
      if (suspects !== undefined) {
        const m = suspects.get(s);
        if (m === undefined && !(triggered && this.triggeredHere(isKey, path))) return undefined;
        mask = m ?? 0;
      }
      const rules = this.rulesFor(isKey, path);
      if (rules.length === 0) return undefined;
      const allow = this.allowed(rules, mask);
      if (allow !== undefined && !allow.includes(1)) return undefined;
      const r = this.processString(s, rules, tenant, 0, allow);
      if (r === undefined) return undefined;
      if (hits) for (const id of r.hits) countHit(hits, id);
      return r.drop ? DROP : r.text;
    };
  }

  /**
   * Which of `rules` can match a string whose probe groups are `mask`: the
   * probed rules of those groups, and every triggered rule (not probed);
   * undefined when every rule can. The rules ruled out cannot match the
   * string or any of its decoded views (the probe's contract), so stage 2's
   * sieve need not ask about them. The matcher stays the one for `rules`:
   * a matcher per mask would compile RE2 Sets for every mix of groups.
   */
  private allowed(rules: readonly CompiledRule[], mask: number): Uint8Array | undefined {
    if (mask === ALL_GROUPS) return undefined;
    const count = this.probe?.re.groupCount ?? 0; // no probe: every rule is a triggered one
    const allow = new Uint8Array(rules.length);
    for (let i = 0; i < rules.length; i++) {
      const g = this.probeGroup.get(rules[i]!);
      allow[i] = g === undefined || (mask & groupBit(g, count)) !== 0 ? 1 : 0;
    }
    return allow;
  }

  private triggeredHere(isKey: boolean, path: readonly PathSegment[] | undefined): boolean {
    if (path === undefined) return true;
    for (const r of this.triggered) if ((!isKey || r.keys) && inScope(r.scope!, path)) return true;
    return false;
  }

  private rulesFor(isKey: boolean, path: readonly PathSegment[] | undefined): readonly CompiledRule[] {
    const base = isKey ? this.keyRules : this.rules;
    if (!this.scoped || path === undefined) return base;
    let out: CompiledRule[] | undefined;
    for (let i = 0; i < base.length; i++) {
      const r = base[i]!;
      const ok = r.scope === undefined || inScope(r.scope, path);
      if (!ok && !out) out = base.slice(0, i);
      else if (ok && out) out.push(r);
    }
    return out ?? base;
  }

  // ------------------------------------------------------------ stage 2: one string

  /**
   * Rules are tried on the canonical form (NFKC, percent-decoded) first; when
   * that form differs and matches, it is the output, with the redactions
   * applied. Otherwise the text as written is tried.
   */
  /** `allow`: which of `rules` can match (engine.allowed), or all of them when absent. */
  private processString(s: string, rules: readonly CompiledRule[], tenant: string | undefined, depth: number, allow?: Uint8Array): TextResult | undefined {
    const t = canonicalText(s, this.decode);
    const r = this.redactText(t, rules, tenant, depth, allow);
    if (r !== undefined || t === s) return r;
    return this.redactText(s, rules, tenant, depth, allow);
  }

  private redactText(x: string, rules: readonly CompiledRule[], tenant: string | undefined, depth: number, allow: Uint8Array | undefined): TextResult | undefined {
    const m = this.matcherFor(rules);
    const direct = m ? scanText(x, m, allow) : [];
    const runs = this.decode.base64 && depth < MAX_DECODE_NESTING && x.length >= MIN_BASE64_RUN ? this.runHits(x, rules, tenant, depth, allow) : [];
    if (direct.length === 0 && runs.length === 0) return undefined;

    // drop_field wins over everything else in the string: the member goes, one hit.
    for (const d of direct) {
      if (d.rule.op.kind === 'drop_field') return dropped(d.rule, x.slice(d.start, d.end));
    }
    for (const r of runs) {
      if (r.drop || r.rule.op.kind === 'drop_field') return dropped(r.rule, r.matched);
    }

    // A base64 run with a hit is replaced whole; direct matches overlapping it merge into it.
    type Span = { start: number; end: number; direct?: Match; run?: RunHit };
    const spans: Span[] = [];
    for (const d of direct) spans.push({ start: d.start, end: d.end, direct: d });
    for (const r of runs) spans.push({ start: r.start, end: r.end, run: r });
    if (runs.length > 0) spans.sort((a, b) => a.start - b.start || (a.run ? -1 : 1));

    let out = '';
    let pos = 0;
    const hits: string[] = [];
    let firstRule: CompiledRule | undefined;
    let firstMatched = '';
    for (let i = 0; i < spans.length; ) {
      let start = spans[i]!.start;
      let end = spans[i]!.end;
      let run = spans[i]!.run;
      let j = i + 1;
      while (j < spans.length && spans[j]!.start < end) {
        end = Math.max(end, spans[j]!.end);
        start = Math.min(start, spans[j]!.start);
        run ??= spans[j]!.run;
        j++;
      }
      let replacement: string;
      if (run) {
        // One hit per run in the group; the first run's rule decides the replacement.
        for (let k = i; k < j; k++) if (spans[k]!.run) hits.push(spans[k]!.run!.rule.id);
        const op = run.rule.op;
        replacement = op.kind === 'mask' ? maskText(x.slice(start, end), op.keepLast) : applyOperator(op, run.matched, tenant);
        if (!firstRule) {
          firstRule = run.rule;
          firstMatched = run.matched;
        }
      } else {
        const d = spans[i]!.direct!;
        const matched = x.slice(d.start, d.end);
        replacement = applyOperator(d.rule.op, matched, tenant);
        hits.push(d.rule.id);
        if (!firstRule) {
          firstRule = d.rule;
          firstMatched = matched;
        }
      }
      out += x.slice(pos, start) + replacement;
      pos = end;
      i = j;
    }
    return { text: out + x.slice(pos), hits, drop: false, firstRule: firstRule!, firstMatched };
  }

  /** Base64 runs of `x` whose decoded text some rule matches. */
  private runHits(x: string, rules: readonly CompiledRule[], tenant: string | undefined, depth: number, allow: Uint8Array | undefined): RunHit[] {
    const c = base64Candidates(x);
    const out: RunHit[] = [];
    let covered = -1;
    for (let k = 0; k < c.length; k += 2) {
      const a = c[k]!;
      const b = c[k + 1]!;
      if (a < covered) continue; // a "/" piece of a run that already hit
      const decoded = decodeBase64Run(x.slice(a, b));
      if (decoded === null) continue;
      const r = this.processString(decoded, rules, tenant, depth + 1, allow);
      if (r === undefined) continue;
      out.push({ start: a, end: b, rule: r.firstRule, matched: r.firstMatched, drop: r.drop });
      covered = b;
    }
    return out;
  }

  /** `rules` as one (cached) matcher; which of them match a text is RE2.Set's answer in scan(). */
  private matcherFor(rules: readonly CompiledRule[]): Matcher | undefined {
    if (rules.length === 0) return undefined;
    const key = rules === this.rules ? 'all' : rules === this.keyRules ? 'keys' : rules.map((r) => r.index).join(',');
    return this.matcher(rules, key);
  }

  private matcher(rules: readonly CompiledRule[], key: string): Matcher {
    let m = this.matchers.get(key);
    if (!m) {
      if (this.matchers.size >= MAX_MATCHERS) this.matchers.clear();
      m = new Matcher(rules, this.blockOf);
      this.matchers.set(key, m);
    }
    return m;
  }
}

interface RunHit {
  start: number;
  end: number;
  /** the rule of the first match inside the decoded run, and what it matched */
  rule: CompiledRule;
  matched: string;
  drop: boolean;
}

function dropped(rule: CompiledRule, matched: string): TextResult {
  return { text: '', hits: [rule.id], drop: true, firstRule: rule, firstMatched: matched };
}

const NOTHING: ReadonlyMap<string, number> = new Map<string, number>();

/** A mask that rules nothing out (record-probe.ts groupBit). */
const ALL_GROUPS = -1;

