/**
 * Redaction rule files: reading, YAML parsing and shape validation
 * (docs/redaction.md, "Rule file"). Patterns, detectors, operators and keys
 * are only checked for shape here; compile.ts decides whether they are
 * usable, using the places recorded in `origin` to name file:line:col, and
 * compose.ts follows `include:` and applies `disable:`.
 *
 *   include: [pack:pii-basic, ./team.yaml]     # other rule files
 *   disable: [ipv4]                            # rule ids that do not run
 *   decode: { base64: true, percent: true, nfkc: true }
 *   max_depth: 64
 *   rules:
 *     - id: email                   # [a-z0-9_.-]{1,64}, unique after composition
 *       description: ...            # documentation only (not part of the ruleset hash)
 *       detector: email             # a built-in detector, or
 *       pattern: '...'              # an RE2 pattern (exactly one of the two)
 *       options: {...}              # detector options
 *       validator: luhn             # luhn | iban_mod97 | ssn_valid
 *       keys: true                  # also match object keys
 *       scope: { include: [...], exclude: [...] }
 *       operator: replace           # replace | mask | hash | drop_field
 *       replace: '[REDACTED:email]' # replace: literal text ($ is not special)
 *       keep_last: 4                # mask
 *       key: pseudonym-2026         # hash
 *       per_tenant: true            # hash
 */
import { isSeq } from 'yaml';
import { ConfigError } from '../../core/errors.js';
import { validatorsFor } from '../../config/schema.js';
import { formatDataPath, schemaError } from '../../config/schema-errors.js';
import {
  nodeAtPath,
  parseYamlString,
  placeOfNode,
  placeOfPath,
  readYamlFile,
  toPlainData,
  type DataPath,
  type Place,
  type YamlSource,
} from '../../config/yaml.js';

export const MAX_RULE_FILE_BYTES = 1024 * 1024;
/** Per file and per ruleset: every rule becomes one branch of a single RE2 program. */
export const MAX_RULES = 1000;
export const MAX_PATTERN_LENGTH = 4096;
export const MAX_REPLACE_LENGTH = 1024;
export const MAX_KEEP_LAST = 64;
export const MAX_INCLUDES_PER_FILE = 100;
export const MAX_SCOPE_PATHS = 100;
/** The limit on container nesting a rule file may set with max_depth. */
export const MAX_MAX_DEPTH = 1000;
export const RULE_ID = /^[a-z0-9_.-]{1,64}$/;
export const KEY_ID = /^[A-Za-z0-9_.-]{1,64}$/;

export const OPERATORS = ['replace', 'mask', 'hash', 'drop_field'] as const;
export type OperatorName = (typeof OPERATORS)[number];
export const VALIDATOR_NAMES = ['luhn', 'iban_mod97', 'ssn_valid'] as const;
export type RuleValidatorName = (typeof VALIDATOR_NAMES)[number];

/** Where a rule was written, for error messages. Absent for rules built in code. */
export interface RuleOrigin {
  rule?: Place;
  id?: Place;
  pattern?: Place;
  replace?: Place;
  detector?: Place;
  options?: Place;
  validator?: Place;
  operator?: Place;
  keepLast?: Place;
  key?: Place;
  perTenant?: Place;
  scopeInclude?: Place[];
  scopeExclude?: Place[];
}

export interface RuleScopeSpec {
  include?: readonly string[];
  exclude?: readonly string[];
}

export interface RuleSpec {
  id: string;
  /** RE2 syntax; exactly one of pattern / detector */
  pattern?: string;
  /** a built-in detector name */
  detector?: string;
  /** detector options */
  options?: Readonly<Record<string, unknown>>;
  validator?: RuleValidatorName;
  /** also match object keys; default true */
  keys?: boolean;
  scope?: RuleScopeSpec;
  /** default "replace" */
  operator?: OperatorName;
  /** replace: literal replacement; default "[REDACTED:<id>]" */
  replace?: string;
  /** mask: characters kept at the end; default 0 */
  keepLast?: number;
  /** hash: pseudonym key id */
  key?: string;
  /** hash: mix the record's tenant into the HMAC */
  perTenant?: boolean;
  description?: string;
  origin?: RuleOrigin;
}

export interface DecodeSettings {
  /** scan inside base64 / base64url runs of >= 16 characters */
  readonly base64: boolean;
  /** scan inside percent-encoded text */
  readonly percent: boolean;
  /** match on NFKC-normalised text */
  readonly nfkc: boolean;
}

export const DEFAULT_DECODE: DecodeSettings = Object.freeze({ base64: true, percent: true, nfkc: true });
export const DEFAULT_MAX_DEPTH = 64;

/** One `include:` entry: a path relative to the file, or `pack:NAME`. */
export interface IncludeRef {
  target: string;
  place: Place;
}

export interface DisableRef {
  id: string;
  place: Place;
}

/** Everything one rule file says, before composition. */
export interface RuleFile {
  file: string;
  include: IncludeRef[];
  disable: DisableRef[];
  decode: Partial<Record<keyof DecodeSettings, { value: boolean; place: Place }>>;
  maxDepth?: { value: number; place: Place };
  rules: RuleSpec[];
}

const stringList = (maxItems: number, item: object): object => ({ type: 'array', maxItems, items: item });

export const ruleFileSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    include: stringList(MAX_INCLUDES_PER_FILE, { type: 'string', minLength: 1, maxLength: 4096 }),
    disable: stringList(MAX_RULES, { type: 'string', pattern: RULE_ID.source }),
    decode: {
      type: 'object',
      additionalProperties: false,
      properties: { base64: { type: 'boolean' }, percent: { type: 'boolean' }, nfkc: { type: 'boolean' } },
    },
    max_depth: { type: 'integer', minimum: 1, maximum: MAX_MAX_DEPTH },
    rules: {
      type: 'array',
      maxItems: MAX_RULES,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id'],
        properties: {
          id: { type: 'string', pattern: RULE_ID.source },
          description: { type: 'string', maxLength: 1024 },
          detector: { type: 'string', minLength: 1, maxLength: 64 },
          pattern: { type: 'string', minLength: 1, maxLength: MAX_PATTERN_LENGTH },
          options: { type: 'object' },
          validator: { type: 'string', enum: [...VALIDATOR_NAMES] },
          keys: { type: 'boolean' },
          scope: {
            type: 'object',
            additionalProperties: false,
            properties: {
              include: stringList(MAX_SCOPE_PATHS, { type: 'string', minLength: 1, maxLength: 1024 }),
              exclude: stringList(MAX_SCOPE_PATHS, { type: 'string', minLength: 1, maxLength: 1024 }),
            },
          },
          operator: { type: 'string', enum: [...OPERATORS] },
          replace: { type: 'string', maxLength: MAX_REPLACE_LENGTH },
          keep_last: { type: 'integer', minimum: 0, maximum: MAX_KEEP_LAST },
          key: { type: 'string', pattern: KEY_ID.source },
          per_tenant: { type: 'boolean' },
        },
      },
    },
  },
} as const;

interface RawRule {
  id: string;
  description?: string;
  detector?: string;
  pattern?: string;
  options?: Record<string, unknown>;
  validator?: RuleValidatorName;
  keys?: boolean;
  scope?: { include?: string[]; exclude?: string[] };
  operator?: OperatorName;
  replace?: string;
  keep_last?: number;
  key?: string;
  per_tenant?: boolean;
}

interface RawFile {
  include?: string[];
  disable?: string[];
  decode?: Partial<Record<keyof DecodeSettings, boolean>>;
  max_depth?: number;
  rules?: RawRule[];
}

/** Read and parse a rule file (rules only; see readRuleFileFull for the rest). */
export function readRuleFile(path: string): RuleSpec[] {
  return readRuleFileFull(path).rules;
}

export function readRuleFileFull(path: string): RuleFile {
  return fromSource(readYamlFile(path, MAX_RULE_FILE_BYTES, 'redaction rule file'));
}

/** Parse rule-file text; `file` names it in errors. No `${env:...}`: rules are static content. */
export function parseRuleFileText(text: string, file: string): RuleSpec[] {
  return parseRuleFile(text, file).rules;
}

export function parseRuleFile(text: string, file: string): RuleFile {
  return fromSource(parseYamlString(text, file, MAX_RULE_FILE_BYTES, 'redaction rule file'));
}

function fromSource(src: YamlSource): RuleFile {
  const file = src.file;
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

  const data = toPlainData(src) as RawFile;
  for (const validate of validatorsFor(ruleFileSchema)) {
    if (!validate(data)) throw schemaError(src, validate.errors![0]!);
  }

  (data.rules ?? []).forEach((r, i) => {
    if (r.pattern === undefined && r.detector === undefined) {
      throw new ConfigError(
        'config_schema',
        `${formatDataPath(['rules', i])}: missing required key "pattern" (or "detector")`,
        placeOfPath(src, ['rules', i]),
      );
    }
  });

  const out: RuleFile = {
    file,
    include: (data.include ?? []).map((target, i) => ({ target, place: placeOfPath(src, ['include', i]) })),
    disable: (data.disable ?? []).map((id, i) => ({ id, place: placeOfPath(src, ['disable', i]) })),
    decode: {},
    rules: (data.rules ?? []).map((r, i) => toSpec(src, r, ['rules', i])),
  };
  for (const k of ['base64', 'percent', 'nfkc'] as const) {
    const v = data.decode?.[k];
    if (v !== undefined) out.decode[k] = { value: v, place: placeOfPath(src, ['decode', k]) };
  }
  if (data.max_depth !== undefined) out.maxDepth = { value: data.max_depth, place: placeOfPath(src, ['max_depth']) };
  return out;
}

function toSpec(src: YamlSource, r: RawRule, at: DataPath): RuleSpec {
  /** the place of a key that is present; undefined when it is absent */
  const here = (...rest: (string | number)[]): Place | undefined => {
    const path = [...at, ...rest];
    return nodeAtPath(src, path).exact ? placeOfPath(src, path) : undefined;
  };
  const origin: RuleOrigin = {
    rule: placeOfPath(src, at),
    id: placeOfPath(src, [...at, 'id']),
    pattern: placeOfPath(src, [...at, 'pattern']),
    replace: placeOfPath(src, [...at, 'replace']),
  };
  const opt: [keyof RuleOrigin, string][] = [
    ['detector', 'detector'],
    ['options', 'options'],
    ['validator', 'validator'],
    ['operator', 'operator'],
    ['keepLast', 'keep_last'],
    ['key', 'key'],
    ['perTenant', 'per_tenant'],
  ];
  for (const [name, yamlKey] of opt) {
    const p = here(yamlKey);
    if (p) (origin as Record<string, Place>)[name] = p;
  }
  if (r.scope?.include) origin.scopeInclude = r.scope.include.map((_, i) => placeOfPath(src, [...at, 'scope', 'include', i]));
  if (r.scope?.exclude) origin.scopeExclude = r.scope.exclude.map((_, i) => placeOfPath(src, [...at, 'scope', 'exclude', i]));

  const spec: RuleSpec = { id: r.id, origin };
  if (r.pattern !== undefined) spec.pattern = r.pattern;
  if (r.detector !== undefined) spec.detector = r.detector;
  if (r.options !== undefined) spec.options = r.options;
  if (r.validator !== undefined) spec.validator = r.validator;
  if (r.keys !== undefined) spec.keys = r.keys;
  if (r.scope !== undefined) {
    spec.scope = {};
    if (r.scope.include !== undefined) spec.scope.include = r.scope.include;
    if (r.scope.exclude !== undefined) spec.scope.exclude = r.scope.exclude;
  }
  if (r.operator !== undefined) spec.operator = r.operator;
  if (r.replace !== undefined) spec.replace = r.replace;
  if (r.keep_last !== undefined) spec.keepLast = r.keep_last;
  if (r.key !== undefined) spec.key = r.key;
  if (r.per_tenant !== undefined) spec.perTenant = r.per_tenant;
  if (r.description !== undefined) spec.description = r.description;
  return spec;
}
