/**
 * Redaction (docs/redaction.md): rule files (rules.ts) → composed
 * (compose.ts: include, pack:, disable, decode, max_depth) → validated and
 * compiled (compile.ts; detectors.ts for `detector:`) into the records of
 * ruleset.ts, which also names a ruleset by its hash → run by the engine
 * (engine.ts: record-probe.ts / raw-probe.ts, then matcher.ts per string)
 * over decoded JSON (apply.ts). Everything here is pure apart from reading
 * the rule files in loadRuleset.
 */
import { compileRuleset } from './compile.js';
import { composeRuleFiles } from './compose.js';
import type { CompiledRuleset } from './engine.js';

export { compileRuleset, defaultReplacement, EMPTY_RULESET } from './compile.js';
export type { CompileOptions } from './compile.js';
export { CompiledRuleset } from './engine.js';
export { REDACT_ENGINE_VERSION, rulesetDescription } from './ruleset.js';
export type { CompiledRule, MatchMode, RedactContext, Ruleset } from './ruleset.js';
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
