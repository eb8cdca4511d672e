/**
 * Redaction rule files: reading, YAML parsing and shape validation. Patterns
 * are only checked for shape here; compile.ts decides whether RE2 accepts
 * them, using the places recorded in `origin` to name file:line:col.
 *
 * File format (version 1):
 *   rules:
 *     - id: email                 # [a-z0-9_.-]{1,64}, unique across all loaded files
 *       description: ...          # optional, documentation only (not part of the ruleset hash)
 *       pattern: '...'            # RE2 syntax
 *       replace: '[REDACTED:email]'  # optional, literal text ($ is not special)
 */
import { isSeq } from 'yaml';
import { ConfigError } from '../../core/errors.js';
import { validatorsFor } from '../../config/schema.js';
import {
  decodeYamlBytes,
  describeAjvError,
  formatDataPath,
  nodeAtPath,
  parseYamlText,
  placeOfNode,
  placeOfPath,
  readBoundedFile,
  toPlainData,
  type Place,
} from '../../config/yaml.js';

export const MAX_RULE_FILE_BYTES = 1024 * 1024;
/** Per file and per ruleset: every rule becomes one branch of a single RE2 program. */
export const MAX_RULES = 1000;
export const MAX_PATTERN_LENGTH = 4096;
export const MAX_REPLACE_LENGTH = 1024;
export const RULE_ID = /^[a-z0-9_.-]{1,64}$/;

/** Where a rule was written, for error messages. Absent for rules built in code. */
export interface RuleOrigin {
  rule?: Place;
  id?: Place;
  pattern?: Place;
  replace?: Place;
}

export interface RuleSpec {
  id: string;
  /** RE2 syntax */
  pattern: string;
  /** literal replacement; default "[REDACTED:<id>]" */
  replace?: string;
  description?: string;
  origin?: RuleOrigin;
}

export const ruleFileSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['rules'],
  properties: {
    rules: {
      type: 'array',
      maxItems: MAX_RULES,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'pattern'],
        properties: {
          id: { type: 'string', pattern: RULE_ID.source },
          description: { type: 'string', maxLength: 1024 },
          pattern: { type: 'string', minLength: 1, maxLength: MAX_PATTERN_LENGTH },
          replace: { type: 'string', maxLength: MAX_REPLACE_LENGTH },
        },
      },
    },
  },
} as const;

export function readRuleFile(path: string): RuleSpec[] {
  const bytes = readBoundedFile(path, MAX_RULE_FILE_BYTES, 'redaction rule file');
  return parseRuleFileText(decodeYamlBytes(bytes, path), path);
}

/** Parse rule-file text; `file` names it in errors. No `${env:...}`: rules are static content. */
export function parseRuleFileText(text: string, file: string): RuleSpec[] {
  if (Buffer.byteLength(text, 'utf8') > MAX_RULE_FILE_BYTES) {
    throw new ConfigError('config_io', `redaction rule file is larger than ${MAX_RULE_FILE_BYTES} bytes`, { file });
  }
  const src = parseYamlText(text, file);

  // Checked on the YAML node before the schema so the error has its own code
  // and points at the first rule over the limit.
  const list = nodeAtPath(src, ['rules']);
  if (list.exact && isSeq(list.node) && list.node.items.length > MAX_RULES) {
    throw new ConfigError(
      'redaction_too_many_rules',
      `more than ${MAX_RULES} rules in one file`,
      placeOfNode(src, list.node.items[MAX_RULES] as Parameters<typeof placeOfNode>[1]),
    );
  }

  const data = toPlainData(src) as { rules: { id: string; pattern: string; replace?: string; description?: string }[] };
  for (const validate of validatorsFor(ruleFileSchema)) {
    if (!validate(data)) {
      const d = describeAjvError(validate.errors![0]!);
      const name = formatDataPath(d.path);
      throw new ConfigError('config_schema', name ? `${name}: ${d.message}` : d.message, placeOfPath(src, d.path, d.atKey));
    }
  }

  return data.rules.map((r, i) => {
    const spec: RuleSpec = {
      id: r.id,
      pattern: r.pattern,
      origin: {
        rule: placeOfPath(src, ['rules', i]),
        id: placeOfPath(src, ['rules', i, 'id']),
        pattern: placeOfPath(src, ['rules', i, 'pattern']),
        replace: placeOfPath(src, ['rules', i, 'replace']),
      },
    };
    if (r.replace !== undefined) spec.replace = r.replace;
    if (r.description !== undefined) spec.description = r.description;
    return spec;
  });
}
