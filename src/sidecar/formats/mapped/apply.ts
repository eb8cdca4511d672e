/**
 * A Mapping applied to one input object: the event in sealtrail's input shape.
 *
 * Contracts:
 * - Pure and deterministic. Every failure is an InputError whose `field` is
 *   the input path the mapping reads (prefixed with the item's place in a
 *   batch) and whose message says what was expected, never the value:
 *   record_not_object for an input that is not an object, mapping_failed for
 *   no rule matching, a required field without value, a value of the wrong
 *   JSON type, a time that cannot be read.
 * - What no field carried unchanged is kept under the rule's keep_rest
 *   (rest.ts), so the event says everything the input said.
 * - The event is built from plain objects with own data properties; member
 *   names come from the mapping, values from the input as they are.
 */
import { InputError } from '../../../core/errors.js';
import { holds } from './conditions.js';
import { joinField, readPath, type PathExpr } from './paths.js';
import { ReadSet } from './rest.js';
import type { FieldRule, Source } from './sources.js';
import type { Mapping, Rule } from './spec.js';
import { expectedText, fitsTarget, GROUP_REQUIRED, type Target } from './targets.js';
import { renderTemplate } from './template.js';
import { convertTime, defineFree, isPlainObject, scalarText } from './values.js';

/** What the record allows (docs/events.md); checked here to name the input path. */
const MAX_EVENT_TYPE = 128;

interface Produced {
  value: unknown;
  /** the path read, when its value was carried unchanged */
  read?: PathExpr;
}

interface Ctx {
  input: Record<string, unknown>;
  prefix: string;
  reads: ReadSet;
}

export function applyMapping(mapping: Mapping, input: unknown, prefix = ''): Record<string, unknown> {
  if (!isPlainObject(input)) {
    throw new InputError('record_not_object', 'an input of a mapped format must be a JSON object', prefix || undefined);
  }
  const rule = mapping.rules.find((r) => r.when === undefined || holds(r.when, input));
  if (!rule) {
    throw new InputError('mapping_failed', `no rule of the mapping ${mapping.file} applies to this input`, prefix || undefined);
  }
  return applyRule(rule, { input, prefix, reads: new ReadSet() });
}

function applyRule(rule: Rule, ctx: Ctx): Record<string, unknown> {
  const values = new Map<string, { target: Target; value: unknown }>();
  const sourcePath = new Map<string, string>();
  const run = (f: FieldRule): void => {
    const got = produce(f, ctx);
    const first = f.sources.find((s) => s.kind === 'path')?.paths[0] ?? firstPlaceholder(f.sources);
    if (first && !sourcePath.has(f.target.text)) sourcePath.set(f.target.text, first.text);
    if (got === undefined) return;
    values.set(f.target.text, { target: f.target, value: got.value });
    if (got.read) ctx.reads.add(got.read.segments);
  };
  for (const f of rule.fields) run(f);
  for (const f of rule.derive) if (!values.has(f.target.text)) run(f);

  const blame = (target: string): string | undefined => {
    const p = sourcePath.get(target);
    return p === undefined ? ctx.prefix || target : joinField(ctx.prefix, p);
  };
  if (!values.has('event_type')) {
    throw new InputError('mapping_failed', `${rule.label} found no value for event_type`, blame('event_type'));
  }
  for (const [group, need] of Object.entries(GROUP_REQUIRED)) {
    const used = [...values.keys()].some((t) => t.startsWith(`${group}.`));
    if (used && !values.has(`${group}.${need}`)) {
      throw new InputError('mapping_failed', `${rule.label} found no value for ${group}.${need}, which ${group} needs`, blame(`${group}.${need}`));
    }
  }
  return build(values, rule, ctx);
}

function firstPlaceholder(sources: readonly Source[]): PathExpr | undefined {
  for (const s of sources) for (const p of s.template ?? []) if (typeof p !== 'string') return p;
  return undefined;
}

/** The first source of the field that gives a value; throws for a wrong one. */
function produce(f: FieldRule, ctx: Ctx): Produced | undefined {
  for (const s of f.sources) {
    if (s.when && !holds(s.when, ctx.input)) continue;
    const got = fromSource(f.target, s, ctx);
    if (got !== undefined) return got;
  }
  if (f.required) {
    // `field` is one path (the first the mapping reads); the message lists the others.
    const paths = f.sources.flatMap((s) => (s.kind === 'path' ? s.paths : [])).map((x) => x.text);
    const p = paths[0] ?? firstPlaceholder(f.sources)?.text;
    const others = paths.length > 1 ? ` (read from ${paths.join(', ')})` : '';
    throw new InputError(
      'mapping_failed',
      `no value for ${f.target.text}, which the mapping requires${others}`,
      p === undefined ? ctx.prefix || f.target.text : joinField(ctx.prefix, p),
    );
  }
  return undefined;
}

function fromSource(target: Target, s: Source, ctx: Ctx): Produced | undefined {
  if (s.kind === 'value') return { value: fresh(s.value) };
  let raw: unknown;
  let from: PathExpr | undefined;
  if (s.kind === 'template') {
    const r = renderTemplate(s.template!, ctx.input);
    if (!r.ok) throw wrong(ctx, r.path, 'a string, number or boolean (a template placeholder)');
    raw = r.value;
  } else {
    for (const p of s.paths) {
      const v = readPath(ctx.input, p.segments);
      if (v === undefined) continue;
      // null says "unset": the event says the same by leaving the field out.
      if (v === null) {
        ctx.reads.add(p.segments);
        continue;
      }
      raw = v;
      from = p;
      break;
    }
  }
  if (raw === undefined) return s.hasDefault ? { value: fresh(s.default) } : undefined;

  let value: unknown = raw;
  let unchanged = true;
  if (s.map) {
    const key = scalarText(raw);
    if (key !== undefined && s.map.has(key)) value = fresh(s.map.get(key));
    else if (s.hasDefault) value = fresh(s.default);
    unchanged = value === raw;
  }
  if (s.asString && value === raw) {
    const text = scalarText(raw);
    if (text === undefined) throw wrong(ctx, from, 'a string, number or boolean');
    value = text;
  }
  if (s.time) {
    const t = convertTime(value, s.time, s.assumeUtc);
    if (!t.ok) throw new InputError('mapping_failed', `${t.why} (for ${target.text})`, field(ctx, from, target));
    value = t.value;
    if (t.lossy) unchanged = false;
  } else if (!fitsTarget(target, value, false)) {
    throw wrong(ctx, from, `${target.kind === 'enum' ? 'a string' : expectedText(target)} for ${target.text}`);
  } else if (target.text === 'event_type' && (value as string).length > MAX_EVENT_TYPE) {
    throw wrong(ctx, from, `at most ${MAX_EVENT_TYPE} characters for event_type`);
  }
  return unchanged && from ? { value, read: from } : { value };
}

function field(ctx: Ctx, from: PathExpr | undefined, target: Target): string {
  return from ? joinField(ctx.prefix, from.text) : ctx.prefix || target.text;
}

function wrong(ctx: Ctx, from: PathExpr | undefined, expected: string): InputError {
  const where = from ? joinField(ctx.prefix, from.text) : ctx.prefix || undefined;
  return new InputError('mapping_failed', `expected ${expected}`, where);
}

/** The event object: groups and details built from the targets, then the rest. */
function build(values: Map<string, { target: Target; value: unknown }>, rule: Rule, ctx: Ctx): Record<string, unknown> {
  const event: Record<string, unknown> = {};
  const details: Record<string, unknown> = {};
  const owned = new Set<object>([details]);
  let hasDetails = false;
  // `details` (an object merged member by member) first, so details.* and the rest take free names after it.
  const whole = values.get('details');
  if (whole) {
    hasDetails = true;
    const o = whole.value as Record<string, unknown>;
    for (const k of Object.keys(o)) defineFree(details, k, o[k]);
  }
  for (const { target, value } of values.values()) {
    const segs = target.segments;
    if (segs[0] === 'details') {
      if (segs.length === 1) continue;
      hasDetails = true;
      setIn(details, segs.slice(1), value, owned);
    } else if (segs.length === 1) {
      defineFree(event, segs[0]!, value);
    } else {
      setIn(groupOf(event, segs[0]!), segs.slice(1), value, owned);
    }
  }
  const rest = ctx.reads.restOf(ctx.input);
  if (rest !== undefined) {
    hasDetails = true;
    const r = rest as Record<string, unknown>;
    if (rule.keepRest.length === 0) for (const k of Object.keys(r)) defineFree(details, k, r[k]);
    else setIn(details, rule.keepRest, r, owned);
  }
  if (hasDetails) defineFree(event, 'details', details);
  return event;
}

function groupOf(event: Record<string, unknown>, name: string): Record<string, unknown> {
  if (Object.hasOwn(event, name)) return event[name] as Record<string, unknown>;
  const g: Record<string, unknown> = {};
  defineFree(event, name, g);
  return g;
}

/**
 * Sets o.a.b… = value, creating objects on the way. Only objects this event
 * created (`owned`) are filled in; where a name is taken by anything else
 * (a member merged from the input's details) the next free "#n" is used.
 */
function setIn(o: Record<string, unknown>, path: readonly string[], value: unknown, owned: Set<object>): void {
  let cur = o;
  for (let i = 0; i < path.length - 1; i++) {
    const k = path[i]!;
    let name = k;
    for (let n = 2; Object.hasOwn(cur, name) && !owned.has(cur[name] as object); n++) name = `${k}#${n}`;
    if (!Object.hasOwn(cur, name)) {
      const next: Record<string, unknown> = {};
      owned.add(next);
      defineFree(cur, name, next);
    }
    cur = cur[name] as Record<string, unknown>;
  }
  defineFree(cur, path[path.length - 1]!, value);
}

/** A constant of the mapping, copied so that no two events share an object. */
function fresh(v: unknown): unknown {
  return typeof v === 'object' && v !== null ? structuredClone(v) : v;
}
