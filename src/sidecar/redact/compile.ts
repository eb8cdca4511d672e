/**
 * Compiling rule specs (rules.ts, composed by compose.ts) into a ruleset:
 * every field is validated, detectors are resolved to their patterns, and
 * the result is the CompiledRule records (ruleset.ts) the engine runs
 * (engine.ts). Nothing here matches text; what a compiled ruleset hashes to
 * is decided by ruleset.ts rulesetDescription.
 *
 * Contracts:
 * - Errors are ConfigError with the offending node's file:line:col when the
 *   spec came from a file (the places in `origin`, falling back to the
 *   rule's). Codes and messages are part of the CLI's output: keep them.
 * - Messages name rule ids, key ids and RE2's reason, never data or key
 *   material.
 * - A disabled rule is checked like any other (a typo fails at load), except
 *   that its pseudonym key need not exist; it does not run and is not hashed.
 */
import { ConfigError } from '../../core/errors.js';
import type { Place } from '../../config/yaml.js';
import { buildDetector, DETECTOR_NAMES, DetectorError, type DetectorDef } from './detectors.js';
import { CompiledRuleset } from './engine.js';
import type { Operator } from './operators.js';
import { captureGroupCount, compileRe2, minMatchLength } from './pattern.js';
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
import type { CompiledRule, Ruleset } from './ruleset.js';
import { parseScopePath, type CompiledScope, type ScopePattern } from './scope.js';
import { VALIDATORS } from './validators.js';

export interface CompileOptions {
  /** pseudonym keys by id, for `operator: hash` (the key bytes never enter the hash or any message) */
  pseudonymKeys?: ReadonlyMap<string, Buffer>;
  decode?: Partial<DecodeSettings>;
  maxDepth?: number;
  /** rule ids that are checked but do not run (`disable:`) */
  disabled?: ReadonlySet<string>;
}

export function defaultReplacement(id: string): string {
  return `[REDACTED:${id}]`;
}

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
    let def: DetectorDef;
    try {
      def = buildDetector(name, spec.options);
    } catch (err) {
      if (!(err instanceof DetectorError)) throw err;
      if (err.code === 'redaction_unknown_detector') {
        throw new ConfigError(
          err.code,
          `rule "${id}": unknown detector "${String(name).slice(0, 64)}"; built-in detectors: ${DETECTOR_NAMES.join(', ')}`,
          at(o.detector),
        );
      }
      // Option problems point at the rule's `options:` mapping; the message names the option.
      throw new ConfigError(err.code, `rule "${id}": detector "${name}": ${err.message.slice(0, 300)}`, at(o.options ?? o.detector), {
        cause: err,
      });
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
