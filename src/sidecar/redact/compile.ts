/**
 * Compiling rule specs into a Ruleset, and the matching engine.
 *
 * Two stages, because node-re2 pays a UTF-16 → UTF-8 conversion and a
 * native call per call, which costs more than the matching itself:
 *
 * 1. The probe. All of a record's strings (keys, values, numbers' string
 *    forms) are joined with NUL into one buffer and tested with ONE RE2
 *    call: test() of the capture-free alternation of the rules (anchors
 *    widened to accept the NUL separator, pattern.ts probeSafe). Views that
 *    decoding adds (NFKC forms of non-ASCII strings, percent-decoded text,
 *    decoded base64 runs; decode.ts finds them with cheap JS scans and only
 *    where they exist) go through a second call when there are any. A
 *    record that matches nothing, the common case, is done. Otherwise the
 *    matching strings are found by halving the buffer (test() on zero-copy
 *    sub-buffers). When every rule declares `requires` literals, a JS test
 *    for them runs first and can spare the RE2 call.
 *    Rules that match nearly anything but are scoped to named members
 *    (secret_field: the whole value of a `password` member) would make every
 *    probe hit; they run instead wherever a record has such a member.
 *
 * 2. Redaction. Only the strings stage 1 names are redacted, one by one,
 *    with the rules that apply at their place (scope, keys): one RE2.Set
 *    call says which rules match the text, and those run one by one (small
 *    programs), merged leftmost-first: the match that starts earliest wins,
 *    and at the same start the earlier rule wins. A match whose validator
 *    fails is left alone and its rule looks again from the next character,
 *    so a valid match beginning inside or after it is still found.
 *
 * Both stages look at the same texts (decode.ts `deriveViews` is the
 * contract), so stage 1 never skips a string stage 2 would redact;
 * `redactUnprobed` (stage 2 on every string) is the reference tests hold
 * the probe to.
 */
import { createHash } from 'node:crypto';
import RE2 from 're2';
import { ConfigError } from '../../core/errors.js';
import { collectStrings, countHit, DROP, MAX_REDACT_DEPTH, walkRedact, type Hits, type StringPolicy } from './apply.js';
import { base64Candidates, canonicalText, decodeBase64Run, deriveViews, hasNonAscii, MAX_DECODE_NESTING, MIN_BASE64_RUN } from './decode.js';
import { buildDetector, DETECTOR_NAMES } from './detectors.js';
import { applyOperator, maskText, type Operator } from './operators.js';
import { captureGroupCount, compileRe2, minMatchLength, probeSafe, withoutCaptures, type RE2Instance } from './pattern.js';
import {
  DEFAULT_DECODE,
  DEFAULT_MAX_DEPTH,
  KEY_ID,
  MAX_KEEP_LAST,
  MAX_MAX_DEPTH,
  MAX_PATTERN_LENGTH,
  MAX_REPLACE_LENGTH,
  MAX_RULES,
  OPERATORS,
  RULE_ID,
  VALIDATOR_NAMES,
  type DecodeSettings,
  type RuleSpec,
  type RuleValidatorName,
} from './rules.js';
import {
  formatScopePath,
  inScope,
  parseScopePath,
  requiredMemberName,
  type CompiledScope,
  type PathSegment,
  type ScopePattern,
} from './scope.js';
import { RAW_SEPARATOR, RawProbe, rawTriggerAlternative } from './raw-probe.js';
import { VALIDATORS } from './validators.js';
import type { Place } from '../../config/yaml.js';

/**
 * Part of the ruleset hash: bump when the meaning of a compiled ruleset
 * changes (matching semantics, key/number handling, decoding), so records
 * redacted by different engines never claim the same ruleset.
 */
export const REDACT_ENGINE_VERSION = 'sealtrail-redact/2';

export interface RedactContext {
  /** the record's tenant, mixed into per-tenant pseudonyms (missing: empty string) */
  tenant?: string;
  /**
   * The JSON text the value was parsed from, exactly, when the caller holds
   * it: lets a clean record be recognised without walking it (raw-probe.ts).
   * Never pass a text the value was not parsed from unchanged.
   */
  text?: string;
}

export interface Ruleset {
  /** hex SHA-256 over a canonical description of the compiled ruleset (see rulesetDescription) */
  readonly hash: string;
  readonly ruleIds: readonly string[];
  /**
   * Never mutates the input. Containers on the path to a change are copied;
   * untouched subtrees (and the whole value, when nothing matched) are
   * returned as they are, so callers must not mutate the result's shared
   * parts either. Adds replacements per rule id to `hits`. Throws
   * InputError('redact_too_deep') for values nested deeper than max_depth.
   */
  redact(value: unknown, hits?: Record<string, number>, ctx?: RedactContext): unknown;
}

export interface CompileOptions {
  /** pseudonym keys by id, for `operator: hash` (the key bytes never enter the hash or any message) */
  pseudonymKeys?: ReadonlyMap<string, Buffer>;
  decode?: Partial<DecodeSettings>;
  maxDepth?: number;
  /** rule ids that are checked but do not run (`disable:`) */
  disabled?: ReadonlySet<string>;
}

export interface CompiledRule {
  /** position among the enabled rules; decides ties */
  readonly index: number;
  readonly id: string;
  /** RE2 syntax, detectors resolved */
  readonly pattern: string;
  readonly validatorName: RuleValidatorName | undefined;
  readonly validate: ((text: string) => boolean) | undefined;
  /** the pattern's one capture group is the part to replace */
  readonly valueGroup: boolean;
  /** lowercased literals, one of which every match contains (a prefilter; not part of the hash) */
  readonly requires: readonly string[] | undefined;
  readonly keys: boolean;
  readonly scope: CompiledScope | undefined;
  readonly op: Operator;
  /** flags 'g' (+ 'd' for value groups) */
  readonly re: RE2Instance;
  readonly minLength: number;
}

/** How the full ruleset scans a string; exposed for tests and diagnostics. */
export type MatchMode = 'none' | 'combined' | 'per-rule';

interface Match {
  start: number;
  end: number;
  rule: CompiledRule;
}

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


const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LONE_SURROGATE_G = new RegExp(LONE_SURROGATE.source, 'g');
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
  /**
   * Rules that match nearly any text (`[\s\S]+` for the whole value of a
   * `password` member) but are scoped to paths naming a member: they would
   * make every record's probe hit, so instead they run wherever a record has
   * a member of one of these names, on the values in their scope.
   */
  private readonly triggered: readonly CompiledRule[];
  private readonly triggerNames: ReadonlySet<string> | undefined;
  /** the rules the probe covers: all but the triggered ones */
  private readonly probeRules: readonly CompiledRule[];
  /**
   * When every probed rule declares `requires` literals (a secrets-only
   * ruleset, say), a record holding none of them cannot match: one JS test
   * instead of an RE2 call. With rules that have none (email, ipv4: "@" and
   * "." are everywhere anyway) the test would only add cost.
   */
  private readonly gate: RegExp | undefined;
  /** the probe: the probed rules' capture-free alternation, no flags (test() only) */
  private readonly probeAll: RE2Instance | undefined;
  /** false when some probed pattern cannot be made probe-safe (\Q...\E) */
  private readonly joinable: boolean;
  /** the first look at a record's JSON text, when the caller passes it (RedactContext.text) */
  private readonly raw: RawProbe | undefined;
  private readonly matchers = new Map<string, Matcher>();

  constructor(rules: readonly CompiledRule[], decode: DecodeSettings, maxDepth: number) {
    this.rules = rules;
    this.ruleIds = Object.freeze(rules.map((r) => r.id));
    this.decode = decode;
    this.maxDepth = maxDepth;
    this.description = rulesetDescription(rules, decode, maxDepth);
    this.hash = createHash('sha256').update(this.description, 'utf8').digest('hex');
    this.minLength = rules.length === 0 ? 0 : Math.min(...rules.map((r) => r.minLength));
    this.keyRules = rules.filter((r) => r.keys);
    this.scoped = rules.some((r) => r.scope !== undefined);
    const triggered: CompiledRule[] = [];
    const names = new Set<string>();
    for (const r of rules) {
      const need = r.scope && r.scope.include.length > 0 && isBroad(r) ? r.scope.include.map(requiredMemberName) : [];
      if (need.length === 0 || need.includes(undefined)) continue;
      triggered.push(r);
      for (const n of need) names.add(n!);
    }
    this.triggered = triggered;
    this.triggerNames = names.size > 0 ? names : undefined;
    const probeRules = rules.filter((r) => !triggered.includes(r));
    this.probeRules = probeRules;
    const allGated = probeRules.length > 0 && probeRules.every((r) => r.requires !== undefined);
    this.gate = allGated ? literalRegExp([...new Set(probeRules.flatMap((r) => r.requires!))]) : undefined;
    this.joinable = probeRules.every((r) => probeSafe(r.pattern) !== undefined);
    this.probeAll = probeRules.length > 0 ? buildProbe(probeRules) : undefined;
    // Trigger names ride in the raw probe as quoted literals: one RE2 pass answers both questions.
    const triggerAlt = rawTriggerAlternative(this.triggerNames);
    const rawProbe =
      this.probeAll && this.joinable && triggerAlt !== null ? buildProbe(probeRules, RAW_SEPARATOR, triggerAlt) : undefined;
    this.raw = rawProbe ? new RawProbe({ rawProbe, probe: this.probeAll!, decode, maxDepth }) : undefined;
    if (rules.length === 0) this.mode = 'none';
    else this.mode = rules.length === 1 || this.matcher(rules, 'all').set ? 'combined' : 'per-rule';
  }

  redact(value: unknown, hits?: Record<string, number>, ctx?: RedactContext): unknown {
    if (this.rules.length === 0) {
      collectStrings(value, [], this.maxDepth); // the depth limit is structural
      return value;
    }
    if (!this.joinable || (this.probeRules.length > 0 && !this.probeAll)) {
      return this.redactUnprobed(value, hits, ctx);
    }
    if (ctx?.text !== undefined && this.raw !== undefined && this.raw.check(ctx.text) === 'clean') return value;
    const parts: string[] = [];
    const triggered = collectStrings(value, parts, this.maxDepth, this.triggerNames);
    const suspects = parts.length > 0 && this.probeRules.length > 0 ? this.probe(parts) : null;
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
   * `suspects`: only these strings (by content) can match a probed rule;
   * undefined: any string can. `triggered`: the record has a member a
   * triggered rule's scope names, so strings in such a scope are redacted too.
   */
  private policy(
    hits: Hits | undefined,
    ctx: RedactContext | undefined,
    suspects: ReadonlySet<string> | undefined,
    triggered: boolean,
  ): StringPolicy {
    const tenant = ctx?.tenant;
    return (s, isKey, path) => {
      if (suspects !== undefined && !suspects.has(s) && !(triggered && this.triggeredHere(isKey, path))) return undefined;
      const rules = this.rulesFor(isKey, path);
      if (rules.length === 0) return undefined;
      const r = this.processString(s, rules, tenant, 0);
      if (r === undefined) return undefined;
      if (hits) for (const id of r.hits) countHit(hits, id);
      return r.drop ? DROP : r.text;
    };
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

  // ------------------------------------------------------------ stage 1: the probe

  /** The strings (by content) that some rule may match, or null when none can. */
  private probe(parts: string[]): Set<string> | null {
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
    const probe = this.probeAll!;
    const inMain = probe.test(buf);
    const viewsBuf = viewsText !== undefined ? Buffer.from(viewsText, 'utf8') : undefined;
    const inViews = viewsBuf !== undefined && probe.test(viewsBuf);
    if (!inMain && !inViews) return null;

    const suspects = new Set<string>();
    if (inMain) {
      const starts = byteStarts(parts, ascii);
      bisect(probe, buf, starts, 0, parts.length, true, (i) => suspects.add(parts[i]!));
    }
    if (inViews) {
      const starts = byteStarts(views!, viewsBuf!.length === viewsText!.length);
      bisect(probe, viewsBuf!, starts, 0, views!.length, true, (i) => suspects.add(parts[viewOrigin![i]!]!));
    }
    return suspects.size > 0 ? suspects : null;
  }

  // ------------------------------------------------------------ stage 2: one string

  /**
   * Rules are tried on the canonical form (NFKC, percent-decoded) first; when
   * that form differs and matches, it is the output, with the redactions
   * applied. Otherwise the text as written is tried.
   */
  private processString(s: string, rules: readonly CompiledRule[], tenant: string | undefined, depth: number): TextResult | undefined {
    const t = canonicalText(s, this.decode);
    const r = this.redactText(t, rules, tenant, depth);
    if (r !== undefined || t === s) return r;
    return this.redactText(s, rules, tenant, depth);
  }

  private redactText(x: string, rules: readonly CompiledRule[], tenant: string | undefined, depth: number): TextResult | undefined {
    const m = this.matcherFor(rules);
    const direct = m ? scanText(x, m) : [];
    const runs = this.decode.base64 && depth < MAX_DECODE_NESTING && x.length >= MIN_BASE64_RUN ? this.runHits(x, rules, tenant, depth) : [];
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
  private runHits(x: string, rules: readonly CompiledRule[], tenant: string | undefined, depth: number): RunHit[] {
    const c = base64Candidates(x);
    const out: RunHit[] = [];
    let covered = -1;
    for (let k = 0; k < c.length; k += 2) {
      const a = c[k]!;
      const b = c[k + 1]!;
      if (a < covered) continue; // a "/" piece of a run that already hit
      const decoded = decodeBase64Run(x.slice(a, b));
      if (decoded === null) continue;
      const r = this.processString(decoded, rules, tenant, depth + 1);
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
      m = new Matcher(rules);
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

const NOTHING: ReadonlySet<string> = new Set<string>();

type RE2Set = InstanceType<typeof RE2.Set>;

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
function bisect(probe: RE2Instance, buf: Buffer, starts: readonly number[], lo: number, hi: number, known: boolean, touch: (i: number) => void): void {
  for (;;) {
    if (!known && !probe.test(buf.subarray(starts[lo]!, starts[hi]! - 1))) return;
    if (hi - lo === 1) {
      touch(lo);
      return;
    }
    const mid = byteMiddle(starts, lo, hi);
    if (probe.test(buf.subarray(starts[lo]!, starts[mid]! - 1))) {
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

// ------------------------------------------------------------ matching one text

/**
 * A set of rules scanned together: one RE2.Set call says which rules match
 * somewhere in the text, then only those run, each its own small program,
 * merged leftmost-first. (One `(p0)|(p1)|...` program with submatches would
 * be a single call, but for a program this size RE2 extracts submatches
 * with its NFA, over a thousand times slower on this ruleset.)
 */
class Matcher {
  readonly rules: readonly CompiledRule[];
  readonly minLength: number;
  /** which rules match somewhere; undefined for one rule or when RE2 refuses the set */
  readonly set: RE2Set | undefined;
  /** per-rule cursors: each rule's next valid match at or after the scan position */
  private readonly cursors: (Found | null | undefined)[];
  private active: CompiledRule[] = [];

  constructor(rules: readonly CompiledRule[]) {
    this.rules = rules;
    this.minLength = Math.min(...rules.map((r) => r.minLength));
    this.cursors = new Array<undefined>(rules.length);
    let set: RE2Set | undefined;
    if (rules.length > 1) {
      try {
        set = new RE2.Set(rules.map((r) => r.pattern));
      } catch {
        set = undefined; // RE2's memory budget: every rule runs
      }
    }
    this.set = set;
  }

  /**
   * Non-overlapping matches, leftmost first (at the same start, the earlier
   * rule), validators applied: a match whose validator fails is left alone
   * and its rule looks again from the next character. `text` has no lone
   * surrogates (scanText).
   */
  scan(text: string, out: Match[]): void {
    if (text.length < this.minLength) return;
    let active: readonly CompiledRule[];
    if (this.set) {
      const ids = this.set.match(text);
      if (ids.length === 0) return;
      ids.sort((x, y) => x - y);
      this.active.length = 0;
      for (const i of ids) this.active.push(this.rules[i]!);
      active = this.active;
    } else {
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
          c = firstValid(active[i]!, text, pos);
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

function firstValid(rule: CompiledRule, text: string, from: number): Found | null {
  let at = from;
  while (at <= text.length) {
    rule.re.lastIndex = at;
    const m = rule.re.exec(text);
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
function scanText(x: string, m: Matcher): Match[] {
  const out: Match[] = [];
  m.scan(LONE_SURROGATE.test(x) ? x.replace(LONE_SURROGATE_G, '\uFFFD') : x, out);
  return out;
}

function buildProbe(rules: readonly CompiledRule[], separator?: string, extra?: string): RE2Instance | undefined {
  // Capture-free where possible (smaller program; test() never needs
  // submatches), otherwise the patterns as written.
  const safe = rules.map((r) => probeSafe(r.pattern, separator));
  if (safe.some((p) => p === undefined)) return undefined;
  for (const bare of [true, false]) {
    const parts = safe.map((p) => (bare ? withoutCaptures(p!) : p));
    if (parts.some((p) => p === undefined)) continue;
    const source = [...parts, ...(extra ? [extra] : [])].map((p) => `(?:${p})`).join('|');
    const test = compileRe2(source, '');
    if ('re' in test) return test.re;
  }
  return undefined;
}

/** A case-insensitive JS RegExp for any of the given literals (built-in detector constants, escaped). */
function literalRegExp(literals: readonly string[]): RegExp {
  if (literals.length === 0) return /(?!)/;
  // 'u' makes 'i' use Unicode simple case folding, as RE2's (?i) does
  // (U+017F folds to "s", U+212A to "k"), so the prefilter never rules out
  // a text the pattern would match.
  return new RegExp(literals.map((l) => l.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('|'), 'iu');
}

// ------------------------------------------------------------ hash

/**
 * A canonical description, not the source text: reformatting or reordering
 * keys in a rule file, or editing a description, leaves the hash alone;
 * changing what is matched, where, or what it becomes changes it. Rule
 * order is included because it decides ties. Key ids are included, key
 * material never.
 */
export function rulesetDescription(rules: readonly CompiledRule[], decode: DecodeSettings, maxDepth: number): string {
  return JSON.stringify({
    engine: REDACT_ENGINE_VERSION,
    decode: { base64: decode.base64, percent: decode.percent, nfkc: decode.nfkc },
    max_depth: maxDepth,
    rules: rules.map((r) => ({
      id: r.id,
      pattern: r.pattern,
      validator: r.validatorName ?? null,
      value_group: r.valueGroup,
      keys: r.keys,
      scope: r.scope ? { include: r.scope.include.map(formatScopePath), exclude: r.scope.exclude.map(formatScopePath) } : null,
      operator: describeOperator(r.op),
    })),
  });
}

function describeOperator(op: Operator): Record<string, unknown> {
  switch (op.kind) {
    case 'replace':
      return { kind: 'replace', replace: op.text };
    case 'mask':
      return { kind: 'mask', keep_last: op.keepLast };
    case 'hash':
      return { kind: 'hash', key: op.keyId, per_tenant: op.perTenant };
    case 'drop_field':
      return { kind: 'drop_field' };
  }
}

export function defaultReplacement(id: string): string {
  return `[REDACTED:${id}]`;
}

// ------------------------------------------------------------ compiling

/**
 * Validate and compile. Errors are ConfigError with the offending node's
 * file:line:col when the spec came from a file; they name rule ids, key ids
 * and RE2's reason, never any data or key material.
 */
export function compileRuleset(specs: readonly RuleSpec[], opts: CompileOptions = {}): CompiledRuleset {
  if (specs.length > MAX_RULES) {
    throw new ConfigError('redaction_too_many_rules', `more than ${MAX_RULES} redaction rules`, specs[MAX_RULES]?.origin?.rule ?? {});
  }
  const decode: DecodeSettings = { ...DEFAULT_DECODE, ...definedOnly(opts.decode ?? {}) };
  const maxDepth = opts.maxDepth ?? DEFAULT_MAX_DEPTH;
  if (!Number.isInteger(maxDepth) || maxDepth < 1 || maxDepth > MAX_MAX_DEPTH) {
    throw new ConfigError('redaction_rule_invalid', `max_depth must be an integer from 1 to ${MAX_MAX_DEPTH}`);
  }
  const firstSeen = new Map<string, RuleSpec>();
  const rules: CompiledRule[] = [];
  for (const spec of specs) {
    const o = spec.origin ?? {};
    const at = (p: Place | undefined): Place => p ?? o.rule ?? {};
    if (typeof spec.id !== 'string' || !RULE_ID.test(spec.id)) {
      throw new ConfigError('redaction_rule_invalid', 'rule id must match [a-z0-9_.-]{1,64}', at(o.id));
    }
    const earlier = firstSeen.get(spec.id);
    if (earlier) {
      const there = earlier.origin?.id;
      const where = there?.file ? ` (first defined at ${there.file}:${there.line ?? 1}:${there.col ?? 1})` : '';
      throw new ConfigError('redaction_rule_duplicate', `duplicate rule id "${spec.id}"${where}`, at(o.id));
    }
    firstSeen.set(spec.id, spec);
    const enabled = !opts.disabled?.has(spec.id);
    const rule = compileRule(spec, enabled ? rules.length : -1, enabled, opts.pseudonymKeys);
    if (enabled) rules.push(rule);
  }
  return new CompiledRuleset(rules, decode, maxDepth);
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function compileRule(spec: RuleSpec, index: number, enabled: boolean, keys: ReadonlyMap<string, Buffer> | undefined): CompiledRule {
  const o = spec.origin ?? {};
  const at = (p: Place | undefined): Place => p ?? o.rule ?? {};
  const id = spec.id;
  const invalid = (message: string, p: Place | undefined): ConfigError => new ConfigError('redaction_rule_invalid', `rule "${id}": ${message}`, at(p));

  // What is matched: a detector or a pattern.
  const hasPattern = spec.pattern !== undefined;
  const hasDetector = spec.detector !== undefined;
  if (hasPattern === hasDetector) {
    throw invalid('needs exactly one of "detector" and "pattern"', hasPattern ? o.detector : undefined);
  }
  let pattern: string;
  let validatorName: RuleValidatorName | undefined = spec.validator;
  let valueGroup = false;
  let requires: string[] | undefined;
  if (hasDetector) {
    const name = spec.detector!;
    if (typeof name !== 'string' || !(DETECTOR_NAMES as readonly string[]).includes(name)) {
      throw new ConfigError(
        'redaction_unknown_detector',
        `rule "${id}": unknown detector "${String(name).slice(0, 64)}"; built-in detectors: ${DETECTOR_NAMES.join(', ')}`,
        at(o.detector),
      );
    }
    let def;
    try {
      def = buildDetector(name, spec.options);
    } catch (err) {
      const reason = err instanceof Error ? err.message.replace(/^[^:]*:\d+:\d+: /, '') : String(err);
      const code = err instanceof ConfigError ? err.code : 'redaction_rule_invalid';
      throw new ConfigError(code, `rule "${id}": detector "${name}": ${reason.slice(0, 300)}`, at(o.options ?? o.detector), { cause: err });
    }
    pattern = def.pattern;
    validatorName ??= def.validator;
    valueGroup = def.valueGroup === true;
    if (def.requires && def.requires.length > 0) requires = [...new Set(def.requires.map((l) => l.toLowerCase()))];
  } else {
    if (spec.options !== undefined) throw invalid('"options" applies to detectors only', o.options);
    pattern = spec.pattern!;
  }
  if (typeof pattern !== 'string' || pattern.length === 0 || pattern.length > MAX_PATTERN_LENGTH) {
    throw invalid(`pattern must be 1..${MAX_PATTERN_LENGTH} characters`, o.pattern);
  }
  const re = compileRe2(pattern, valueGroup ? 'gd' : 'g');
  if (!('re' in re)) throw invalid(`pattern rejected by RE2: ${re.reason}`, hasDetector ? o.detector : o.pattern);
  const minLength = minMatchLength(pattern);
  if (minLength === 0) throw invalid('pattern can match the empty string', hasDetector ? o.detector : o.pattern);
  if (valueGroup && captureGroupCount(pattern) !== 1) throw invalid('detector value group is not exactly one capture group', o.detector);
  if (validatorName !== undefined && !(VALIDATOR_NAMES as readonly string[]).includes(validatorName)) {
    throw invalid(`unknown validator "${String(validatorName).slice(0, 32)}"; validators: ${VALIDATOR_NAMES.join(', ')}`, o.validator);
  }

  // What it becomes.
  const kind = spec.operator ?? 'replace';
  if (!(OPERATORS as readonly string[]).includes(kind)) {
    throw invalid(`unknown operator "${String(kind).slice(0, 32)}"; operators: ${OPERATORS.join(', ')}`, o.operator);
  }
  if (spec.replace !== undefined && kind !== 'replace') throw invalid(`"replace" applies to operator replace, not ${kind}`, o.replace);
  if (spec.keepLast !== undefined && kind !== 'mask') throw invalid(`"keep_last" applies to operator mask, not ${kind}`, o.keepLast);
  if (spec.key !== undefined && kind !== 'hash') throw invalid(`"key" applies to operator hash, not ${kind}`, o.key);
  if (spec.perTenant !== undefined && kind !== 'hash') throw invalid(`"per_tenant" applies to operator hash, not ${kind}`, o.perTenant);
  let op: Operator;
  switch (kind) {
    case 'replace': {
      const text = spec.replace ?? defaultReplacement(id);
      if (typeof text !== 'string' || text.length > MAX_REPLACE_LENGTH) {
        throw invalid(`replace must be a string of at most ${MAX_REPLACE_LENGTH} characters`, o.replace);
      }
      op = { kind, text };
      break;
    }
    case 'mask': {
      const keepLast = spec.keepLast ?? 0;
      if (!Number.isInteger(keepLast) || keepLast < 0 || keepLast > MAX_KEEP_LAST) {
        throw invalid(`keep_last must be an integer from 0 to ${MAX_KEEP_LAST}`, o.keepLast);
      }
      op = { kind, keepLast };
      break;
    }
    case 'hash': {
      const keyId = spec.key;
      if (keyId === undefined) throw invalid('operator hash needs "key" (a pseudonym key id from the sidecar config)', o.operator);
      if (typeof keyId !== 'string' || !KEY_ID.test(keyId)) throw invalid('key must be a key id ([A-Za-z0-9_.-]{1,64})', o.key);
      const key = keys?.get(keyId);
      if (enabled && (key === undefined || key.length === 0)) {
        throw new ConfigError(
          'redaction_unknown_key',
          `rule "${id}": unknown pseudonym key "${keyId}" (define it under sidecar.redaction.pseudonym_keys)`,
          at(o.key),
        );
      }
      op = { kind, keyId, key: key ?? Buffer.alloc(0), perTenant: spec.perTenant === true };
      break;
    }
    default:
      op = { kind: 'drop_field' };
  }

  // Where it applies.
  let scope: CompiledScope | undefined;
  if (spec.scope !== undefined) {
    const parse = (list: readonly string[] | undefined, places: Place[] | undefined): ScopePattern[] =>
      (list ?? []).map((text, i) => {
        const p = typeof text === 'string' ? parseScopePath(text) : { reason: 'must be a string' };
        if ('reason' in p) {
          throw new ConfigError('redaction_scope_invalid', `rule "${id}": scope path: ${p.reason}`, at(places?.[i]));
        }
        return p.pattern;
      });
    const include = parse(spec.scope.include, o.scopeInclude);
    const exclude = parse(spec.scope.exclude, o.scopeExclude);
    if (include.length > 0 || exclude.length > 0) scope = { include, exclude };
  }

  return {
    index,
    id,
    pattern,
    validatorName,
    validate: validatorName ? VALIDATORS[validatorName] : undefined,
    valueGroup,
    requires,
    keys: spec.keys !== false,
    scope,
    op,
    re: re.re,
    minLength,
  };
}

export const EMPTY_RULESET: Ruleset = compileRuleset([]);

export { MAX_REDACT_DEPTH };
