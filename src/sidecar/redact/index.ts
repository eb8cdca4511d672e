/**
 * Redaction: rule files (rules.ts) → compiled ruleset (compile.ts) → applied
 * to decoded JSON (apply.ts). Everything here is pure apart from reading the
 * rule files in loadRuleset.
 */
import { ConfigError } from '../../core/errors.js';
import { compileRuleset, type Ruleset } from './compile.js';
import { MAX_RULES, readRuleFile, type RuleSpec } from './rules.js';

export { compileRuleset, defaultReplacement, EMPTY_RULESET, REDACT_ENGINE_VERSION, CompiledRuleset } from './compile.js';
export type { MatchMode, Ruleset } from './compile.js';
export { MAX_REDACT_DEPTH } from './apply.js';
export {
  MAX_PATTERN_LENGTH,
  MAX_REPLACE_LENGTH,
  MAX_RULE_FILE_BYTES,
  MAX_RULES,
  parseRuleFileText,
  readRuleFile,
} from './rules.js';
export type { RuleOrigin, RuleSpec } from './rules.js';
export { minMatchLength } from './pattern.js';

/** Load and compile rule files in order; rule ids must be unique across all of them. */
export function loadRuleset(paths: readonly string[]): Ruleset {
  const specs: RuleSpec[] = [];
  for (const path of paths) {
    const rules = readRuleFile(path);
    if (specs.length + rules.length > MAX_RULES) {
      const over = rules[MAX_RULES - specs.length];
      throw new ConfigError(
        'redaction_too_many_rules',
        `more than ${MAX_RULES} redaction rules across the loaded files`,
        over?.origin?.rule ?? { file: path },
      );
    }
    specs.push(...rules);
  }
  return compileRuleset(specs);
}
