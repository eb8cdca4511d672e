/**
 * A mapping file (docs/formats.md, "Mapped"), validated into a Mapping.
 *
 *   format: mapped
 *   version: 1
 *   description: …               # optional, for people
 *   batch: data                   # optional: {"data": [ … ]} holds one input per element
 *   field_sets:                   # optional: fields several rules share (`use:`)
 *     span: { trace_id: trace_id, span_id: id }
 *   rules:                        # the first rule whose `when` holds is applied
 *     - name: tool_call           # optional, for people and errors
 *       when: { equals: { "span_data.type": function } }
 *       use: [span]
 *       fields: { event_type: { value: tool_invoked }, tool.name: span_data.name }
 *       derive: { … }             # fallbacks for targets `fields` left unset
 *       keep_rest: details._unmapped   # where unread input goes: details or details.<name>
 *
 * Contracts:
 * - Every problem is a ConfigError at its file:line:col naming the setting
 *   (spec-report.ts): unknown keys, wrong types, path and template syntax,
 *   time units, targets that are not sealtrail fields or that the sidecar
 *   owns, constants that do not fit their target, a rule that can never set
 *   event_type, a group without the member it needs (actor.id, tool.name),
 *   a rule that can never be reached.
 * - Bounded: MAX_RULES rules, MAX_FIELDS fields per rule; paths, templates
 *   and conditions are bounded where they are parsed.
 */
import { type DataPath, type YamlSource } from '../../../config/yaml.js';
import { parseCondition, type Condition } from './conditions.js';
import { isMapping, onlyKeys, reporterFor, type Reporter } from './spec-report.js';
import { parseField, type FieldRule } from './sources.js';
import { GROUP_REQUIRED, parseTarget } from './targets.js';

export interface Rule {
  /** `name`, or `rules[i]` */
  readonly label: string;
  readonly when?: Condition;
  readonly fields: readonly FieldRule[];
  readonly derive: readonly FieldRule[];
  /** where unread input goes, below details: [] for details itself, ['_unmapped'] by default */
  readonly keepRest: readonly string[];
}

export interface Mapping {
  readonly file: string;
  readonly batch?: string;
  readonly rules: readonly Rule[];
}

export const MAX_RULES = 256;
export const MAX_FIELDS = 128;
const MAX_FIELD_SETS = 64;
const NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const TOP_KEYS = ['format', 'version', 'description', 'batch', 'field_sets', 'rules'];
const RULE_KEYS = ['name', 'description', 'when', 'use', 'fields', 'derive', 'keep_rest'];

export function parseMapping(src: YamlSource, data: Record<string, unknown>): Mapping {
  const r: Reporter = reporterFor(src);
  onlyKeys(r, data, [], TOP_KEYS);
  if (data['format'] !== 'mapped') r.fail(['format'], Object.hasOwn(data, 'format') ? 'must be mapped' : 'missing required key "format" (mapped)', !Object.hasOwn(data, 'format'));
  if (data['version'] !== 1) r.fail(['version'], Object.hasOwn(data, 'version') ? 'must be 1' : 'missing required key "version" (1)');
  if (data['description'] !== undefined && typeof data['description'] !== 'string') r.fail(['description'], 'must be a string');
  const batch = data['batch'];
  if (batch !== undefined && (typeof batch !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(batch))) {
    r.fail(['batch'], 'must be a member name (1-64 of A-Z a-z 0-9 _ -)');
  }
  const sets = fieldSets(r, data['field_sets']);

  const rules = data['rules'];
  if (!Array.isArray(rules) || rules.length === 0) r.fail(['rules'], 'must be a list of at least one rule');
  if (rules.length > MAX_RULES) r.fail(['rules', MAX_RULES], `at most ${MAX_RULES} rules`);
  const out: Rule[] = [];
  rules.forEach((raw, i) => {
    const previous = out.find((x) => x.when === undefined);
    if (previous) r.fail(['rules', i], `never reached: ${previous.label} before it has no when: and applies to every input`);
    out.push(parseRule(r, raw, ['rules', i], sets));
  });
  return { file: src.file, ...(batch === undefined ? {} : { batch: batch as string }), rules: out };
}

type FieldSets = Map<string, { raw: Record<string, unknown>; at: DataPath }>;

function fieldSets(r: Reporter, v: unknown): FieldSets {
  const sets: FieldSets = new Map();
  if (v === undefined) return sets;
  if (!isMapping(v)) r.fail(['field_sets'], 'must be a mapping of name: fields');
  const names = Object.keys(v);
  if (names.length > MAX_FIELD_SETS) r.fail(['field_sets'], `at most ${MAX_FIELD_SETS} field sets`);
  for (const name of names) {
    if (!NAME.test(name)) r.fail(['field_sets', name], 'a name is 1-64 of A-Z a-z 0-9 _ . -', true);
    const set = v[name];
    if (!isMapping(set)) r.fail(['field_sets', name], 'must be a mapping of target: source');
    sets.set(name, { raw: set, at: ['field_sets', name] });
  }
  return sets;
}

function parseRule(r: Reporter, v: unknown, at: DataPath, sets: FieldSets): Rule {
  if (!isMapping(v)) r.fail(at, 'a rule must be a mapping with fields');
  onlyKeys(r, v, at, RULE_KEYS);
  const name = v['name'];
  if (name !== undefined && (typeof name !== 'string' || !NAME.test(name))) r.fail([...at, 'name'], 'a name is 1-64 of A-Z a-z 0-9 _ . -');
  const label = typeof name === 'string' ? `rule ${name}` : `rules[${String(at[1])}]`;
  if (v['description'] !== undefined && typeof v['description'] !== 'string') r.fail([...at, 'description'], 'must be a string');
  const when = v['when'] === undefined ? undefined : parseCondition(r, v['when'], [...at, 'when']);

  // Fields of the sets named in `use`, then the rule's own: a target the rule names replaces the set's.
  const entries = new Map<string, { raw: unknown; at: DataPath }>();
  const use = v['use'];
  if (use !== undefined) {
    if (!Array.isArray(use)) r.fail([...at, 'use'], 'must be a list of field_sets names');
    use.forEach((n, i) => {
      const set = typeof n === 'string' ? sets.get(n) : undefined;
      if (!set) r.fail([...at, 'use', i], 'not a name defined under field_sets');
      for (const t of Object.keys(set.raw)) entries.set(t, { raw: set.raw[t], at: [...set.at, t] });
    });
  }
  const own = v['fields'];
  if (own !== undefined && !isMapping(own)) r.fail([...at, 'fields'], 'must be a mapping of target: source');
  for (const t of Object.keys(own ?? {})) entries.set(t, { raw: own![t], at: [...at, 'fields', t] });
  const fields = fieldList(r, entries, at, 'fields');

  const d = v['derive'];
  if (d !== undefined && !isMapping(d)) r.fail([...at, 'derive'], 'must be a mapping of target: source');
  const derived = new Map<string, { raw: unknown; at: DataPath }>();
  for (const t of Object.keys(d ?? {})) derived.set(t, { raw: d![t], at: [...at, 'derive', t] });
  const derive = fieldList(r, derived, at, 'derive');

  const all = [...fields, ...derive];
  const targets = new Set(all.map((f) => f.target.text));
  if (!targets.has('event_type')) r.fail(at, 'no field sets event_type (under fields: or derive:)');
  for (const f of all) {
    const [group, member] = f.target.segments;
    const need = GROUP_REQUIRED[group!];
    if (member !== undefined && need !== undefined && !targets.has(`${group}.${need}`)) {
      r.fail(placeOf(entries, derived, f.target.text), `${group}.${need} must be mapped too: a ${group} without ${need} is refused`, true);
    }
  }
  checkOverlaps(r, all, entries, derived);
  return { label, ...(when === undefined ? {} : { when }), fields, derive, keepRest: keepRest(r, v['keep_rest'], [...at, 'keep_rest']) };
}

function fieldList(r: Reporter, entries: Map<string, { raw: unknown; at: DataPath }>, at: DataPath, key: string): FieldRule[] {
  if (entries.size > MAX_FIELDS) r.fail([...at, key], `at most ${MAX_FIELDS} fields in a rule`);
  const out: FieldRule[] = [];
  for (const [text, e] of entries) {
    const target = parseTarget(text);
    if (typeof target === 'string') r.fail(e.at, target, true);
    out.push(parseField(r, target, e.raw, e.at));
  }
  return out;
}

function placeOf(a: Map<string, { at: DataPath }>, b: Map<string, { at: DataPath }>, text: string): DataPath {
  return (a.get(text) ?? b.get(text))!.at;
}

/** `details.a` and `details.a.b` in one rule would write into each other. */
function checkOverlaps(r: Reporter, all: readonly FieldRule[], a: Map<string, { at: DataPath }>, b: Map<string, { at: DataPath }>): void {
  const texts = [...new Set(all.map((f) => f.target.text))].filter((t) => t.startsWith('details.'));
  for (const t of texts) {
    const inner = texts.find((u) => u !== t && u.startsWith(`${t}.`));
    if (inner) r.fail(placeOf(a, b, inner), `overlaps ${t}; map one or the other`, true);
  }
}

function keepRest(r: Reporter, v: unknown, at: DataPath): string[] {
  if (v === undefined) return ['_unmapped'];
  if (v === 'details') return [];
  if (typeof v === 'string' && /^details\.[A-Za-z0-9_-]{1,64}$/.test(v)) return [v.slice(8)];
  return r.fail(at, 'must be details or details.<name> (input no field reads is kept, never dropped)');
}
