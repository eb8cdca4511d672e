/**
 * What a compiled ruleset is: the rule records compile.ts hands the engine
 * (engine.ts), the Ruleset API callers see, and the canonical description
 * the ruleset hash is taken over (docs/redaction.md, "Provenance").
 *
 * The hash lives beside the records it covers rather than with the
 * compiler (which fills them) or the engine (which reports it): a field
 * added to CompiledRule is a decision about rulesetDescription, taken in
 * this file. Every record names the ruleset that redacted it by this hash,
 * so for a given rule file it must stay byte-identical across refactors
 * (tests pin it); a change of meaning bumps REDACT_ENGINE_VERSION instead.
 */
import { createHash } from 'node:crypto';
import type { Operator } from './operators.js';
import type { RE2Instance } from './pattern.js';
import type { DecodeSettings, RuleValidatorName } from './rules.js';
import { formatScopePath, type CompiledScope } from './scope.js';

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

/** The ruleset hash: hex SHA-256 of the description's UTF-8. */
export function rulesetHash(description: string): string {
  return createHash('sha256').update(description, 'utf8').digest('hex');
}
