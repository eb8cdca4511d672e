/**
 * One field of a mapping rule: a target (targets.ts) and where its value
 * comes from.
 *
 *   actor.id: agent_did                               short for { path: agent_did }
 *   actor.type: { value: agent }                      a constant
 *   time: { path: [timestamp, created_at], time: auto, assume_utc: true }
 *   outcome: { path: status, map: { ok: success }, default: error }
 *   event_type: { template: "{run_type}_finished" }
 *   outcome:                                          a list: the first that gives a value
 *     - { value: error, when: { exists: error } }
 *     - { value: success }
 *
 * Source keys: exactly one of path / value / template, and
 *   time        auto | rfc3339 | epoch_s | epoch_ms | epoch_us | epoch_ns (`time` defaults to auto)
 *   assume_utc  a date-time without offset is UTC
 *   map         input value (as text) → output value; a value not listed passes unchanged
 *   default     when the input has no value, or `map` has no entry for it
 *   as: string  numbers and booleans become their JSON text
 *   required    no value → the line is refused (mapping_failed)
 *   when        the source applies only when the condition holds
 *
 * Contract: everything a source can hold is checked here, against the
 * target's type (a constant, a `map` output and a `default` must fit it), so
 * a mapping that loads can only fail at run time on input.
 */
import { type DataPath } from '../../../config/yaml.js';
import { parseCondition, type Condition } from './conditions.js';
import { PathSyntaxError, type PathExpr } from './paths.js';
import { isMapping, onlyKeys, pathAt, type Reporter } from './spec-report.js';
import { expectedText, fitsTarget, type Target } from './targets.js';
import { parseTemplate, TemplateSyntaxError, type TemplatePart } from './template.js';
import { convertTime, TIME_UNITS, type TimeUnit } from './values.js';

export interface Source {
  readonly kind: 'path' | 'value' | 'template';
  /** path sources: the candidates, the first present one is read */
  readonly paths: readonly PathExpr[];
  readonly value?: unknown;
  readonly template?: readonly TemplatePart[];
  readonly time?: TimeUnit;
  readonly assumeUtc: boolean;
  readonly map?: ReadonlyMap<string, unknown>;
  readonly hasDefault: boolean;
  readonly default?: unknown;
  readonly asString: boolean;
  readonly when?: Condition;
}

export interface FieldRule {
  readonly target: Target;
  /** tried in order; the first that gives a value sets the target */
  readonly sources: readonly Source[];
  readonly required: boolean;
}

export const MAX_SOURCES = 16;
const MAX_MAP_ENTRIES = 1024;
const PATH_KEYS = ['path', 'time', 'assume_utc', 'map', 'default', 'as', 'required', 'when'];
const VALUE_KEYS = ['value', 'required', 'when'];
const TEMPLATE_KEYS = ['template', 'map', 'default', 'required', 'when'];
const ALL_KEYS = [...new Set([...PATH_KEYS, 'value', 'template'])];

export function parseField(r: Reporter, target: Target, v: unknown, at: DataPath): FieldRule {
  const list = Array.isArray(v) ? v : [v];
  if (list.length === 0 || list.length > MAX_SOURCES) r.fail(at, `a list of 1-${MAX_SOURCES} sources`);
  let required = false;
  const sources = list.map((s, i) => {
    const here = Array.isArray(v) ? [...at, i] : at;
    const src = parseSource(r, target, s, here);
    if (isMapping(s) && s['required'] === true) required = true;
    return src;
  });
  return { target, sources, required };
}

function parseSource(r: Reporter, target: Target, v: unknown, at: DataPath): Source {
  if (typeof v === 'string') return pathSource(r, target, { path: v }, at, true);
  if (!isMapping(v)) r.fail(at, 'must be a path (a string) or a mapping with path, value or template');
  onlyKeys(r, v, at, ALL_KEYS);
  const kinds = ['path', 'value', 'template'].filter((k) => Object.hasOwn(v, k));
  if (kinds.length !== 1) r.fail(at, 'needs exactly one of path, value, template');
  if (v['required'] !== undefined && typeof v['required'] !== 'boolean') r.fail([...at, 'required'], 'must be true or false');
  if (kinds[0] === 'path') return pathSource(r, target, v, at, false);
  const when = v['when'] === undefined ? undefined : parseCondition(r, v['when'], [...at, 'when']);
  const base = { when, assumeUtc: false, hasDefault: false, asString: false, paths: [] as PathExpr[] };
  if (kinds[0] === 'value') {
    onlyKeys(r, v, at, VALUE_KEYS);
    const value = v['value'];
    checkFits(r, target, value, [...at, 'value'], undefined);
    return { ...base, kind: 'value', value };
  }
  onlyKeys(r, v, at, TEMPLATE_KEYS);
  if (target.kind !== 'string' && target.kind !== 'enum' && target.kind !== 'any') r.fail([...at, 'template'], `${target.text} takes ${expectedText(target)}, not a template`);
  if (target.text === 'time') r.fail([...at, 'template'], 'time cannot come from a template; use path with time:');
  const text = v['template'];
  if (typeof text !== 'string' || text.length === 0) r.fail([...at, 'template'], 'must be a non-empty string');
  let template: TemplatePart[];
  try {
    template = parseTemplate(text);
  } catch (err) {
    if (err instanceof TemplateSyntaxError || err instanceof PathSyntaxError) r.fail([...at, 'template'], err.message);
    throw err;
  }
  return { ...base, kind: 'template', template, ...mapAndDefault(r, target, v, at, undefined) };
}

function pathSource(r: Reporter, target: Target, v: Record<string, unknown>, at: DataPath, short: boolean): Source {
  if (!short) onlyKeys(r, v, at, PATH_KEYS);
  const pathAtKey = short ? at : [...at, 'path'];
  const raw = v['path'];
  const list = Array.isArray(raw) ? raw : [raw];
  if (list.length === 0 || list.length > MAX_SOURCES) r.fail(pathAtKey, `a list of 1-${MAX_SOURCES} paths`);
  const paths = list.map((p, i) => pathAt(r, p, Array.isArray(raw) ? [...pathAtKey, i] : pathAtKey));

  let time: TimeUnit | undefined;
  if (v['time'] !== undefined) {
    if (typeof v['time'] !== 'string' || !(TIME_UNITS as readonly string[]).includes(v['time'])) {
      r.fail([...at, 'time'], `unknown time unit (one of ${TIME_UNITS.join(', ')})`);
    }
    time = v['time'] as TimeUnit;
    if (target.kind !== 'string' && target.kind !== 'any') r.fail([...at, 'time'], `${target.text} takes ${expectedText(target)}, not a time`);
  } else if (target.text === 'time') {
    time = 'auto';
  }
  const assume = v['assume_utc'];
  if (assume !== undefined && typeof assume !== 'boolean') r.fail([...at, 'assume_utc'], 'must be true or false');
  if (assume !== undefined && time === undefined) r.fail([...at, 'assume_utc'], 'only with time:');
  const as = v['as'];
  if (as !== undefined && as !== 'string') r.fail([...at, 'as'], 'must be string (numbers and booleans become text)');
  if (as !== undefined && time !== undefined) r.fail([...at, 'as'], 'not with time:');
  const assumeUtc = assume === true;
  const when = v['when'] === undefined ? undefined : parseCondition(r, v['when'], [...at, 'when']);
  const timed = time === undefined ? undefined : { unit: time, assumeUtc };
  return {
    kind: 'path',
    paths,
    ...(time === undefined ? {} : { time }),
    assumeUtc,
    asString: as === 'string',
    ...(when === undefined ? {} : { when }),
    ...(short ? { hasDefault: false } : mapAndDefault(r, target, v, at, timed)),
  };
}

function mapAndDefault(
  r: Reporter,
  target: Target,
  v: Record<string, unknown>,
  at: DataPath,
  timed: { unit: TimeUnit; assumeUtc: boolean } | undefined,
): { map?: ReadonlyMap<string, unknown>; hasDefault: boolean; default?: unknown } {
  const out: { map?: Map<string, unknown>; hasDefault: boolean; default?: unknown } = { hasDefault: false };
  if (v['map'] !== undefined) {
    const m = v['map'];
    if (!isMapping(m) || Object.keys(m).length === 0) r.fail([...at, 'map'], 'must be a mapping of input value: output value');
    const keys = Object.keys(m);
    if (keys.length > MAX_MAP_ENTRIES) r.fail([...at, 'map'], `at most ${MAX_MAP_ENTRIES} entries`);
    // A Map, not the YAML object: an input value "__proto__" or "constructor" must find nothing.
    out.map = new Map();
    for (const k of keys) {
      checkFits(r, target, m[k], [...at, 'map', k], timed);
      out.map.set(k, m[k]);
    }
  }
  if (Object.hasOwn(v, 'default')) {
    checkFits(r, target, v['default'], [...at, 'default'], timed);
    out.hasDefault = true;
    out.default = v['default'];
  }
  return out;
}

function checkFits(r: Reporter, target: Target, value: unknown, at: DataPath, timed: { unit: TimeUnit; assumeUtc: boolean } | undefined): void {
  if (value === null || value === undefined) r.fail(at, 'must not be null');
  if (timed || target.text === 'time') {
    const t = convertTime(value, timed?.unit ?? 'rfc3339', timed?.assumeUtc ?? false);
    if (!t.ok) r.fail(at, t.why);
    return;
  }
  if (!fitsTarget(target, value)) r.fail(at, `${target.text} takes ${expectedText(target)}`);
}
