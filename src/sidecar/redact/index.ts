/**
 * Redaction (docs/redaction.md): rule files (rules.ts) → composed
 * (compose.ts: include, pack:, disable, decode, max_depth) → compiled
 * ruleset (compile.ts) → applied to decoded JSON (apply.ts). Everything
 * here is pure apart from reading the rule files in loadRuleset.
 */
import { compileRuleset, type CompiledRuleset } from './compile.js';
import { composeRuleFiles } from './compose.js';

export {
  compileRuleset,
  CompiledRuleset,
  defaultReplacement,
  EMPTY_RULESET,
  REDACT_ENGINE_VERSION,
  rulesetDescription,
} from './compile.js';
export type { CompileOptions, CompiledRule, MatchMode, RedactContext, Ruleset } from './compile.js';
export { composeRuleFiles, MAX_RULE_FILES, packDirectory, packNames } from './compose.js';
export type { Composition } from './compose.js';
export { MAX_REDACT_DEPTH } from './apply.js';
export {
  DEFAULT_DECODE,
  DEFAULT_MAX_DEPTH,
  MAX_KEEP_LAST,
  MAX_PATTERN_LENGTH,
  MAX_REPLACE_LENGTH,
  MAX_RULE_FILE_BYTES,
  MAX_RULES,
  OPERATORS,
  parseRuleFile,
  parseRuleFileText,
  readRuleFile,
  readRuleFileFull,
} from './rules.js';
export type { DecodeSettings, OperatorName, RuleFile, RuleOrigin, RuleScopeSpec, RuleSpec } from './rules.js';
export { minMatchLength } from './pattern.js';
export { base32, maskText, pseudonym } from './operators.js';

export interface LoadOptions {
  /**
   * Pseudonym keys by id (sidecar.redaction.pseudonym_keys), for rules with
   * `operator: hash`. A rule naming an id that is not here is a ConfigError
   * (redaction_unknown_key) at the rule's `key:`.
   */
  pseudonymKeys?: ReadonlyMap<string, Buffer>;
}

/**
 * Load, compose and compile rule files in order. Rule ids must be unique
 * across the whole composition; errors are ConfigError naming file:line:col.
 */
export function loadRuleset(paths: readonly string[], opts: LoadOptions = {}): CompiledRuleset {
  const c = composeRuleFiles(paths);
  return compileRuleset(c.specs, {
    ...(opts.pseudonymKeys ? { pseudonymKeys: opts.pseudonymKeys } : {}),
    decode: c.decode,
    ...(c.maxDepth !== undefined ? { maxDepth: c.maxDepth } : {}),
    disabled: c.disabled,
  });
}
