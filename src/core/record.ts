import { MAX_DEPTH } from './canonical.js';
import { defineFree, defineKey } from './own-key.js';
import { InputError } from './errors.js';
import { normaliseTime } from './time.js';
import {
  type AuditEvent,
  type AuditRecord,
  type RedactionProvenance,
} from './types.js';
import { isPlainObject } from './plain-object.js';
import { SURROGATE_ESCAPE } from './json-text.js';

/**
 * Normaliser for sealtrail's input shape (docs/events.md): one JSON object
 * whose fields are the audit record's "who/what/when/outcome" fields.
 *
 * Lenient where it is safe, strict where it matters: what it does not know
 * is kept, never a reason to refuse (unknown members of `actor`, `tool`, …
 * stay in their object; unknown top-level members go under
 * details._unmapped; values outside the standard vocabularies of `outcome`
 * and `actor.type` are kept as written). Refused is only what would break
 * the record's meaning: no `event_type`, a `time` that cannot be read, a
 * field the sidecar owns (id, stream, seq, …: the input cannot forge them),
 * or a core field of the wrong JSON type.
 *
 * Error messages name the field only, never its value: the value may be PII.
 */

const MAX_STRING = 64 * 1024;
const SIDECAR_FIELDS = new Set(['id', 'stream', 'seq', 'received_at', 'source', 'redaction']);
const KNOWN_FIELDS = new Set([
  'event_id',
  'time',
  'event_type',
  'tenant',
  'actor',
  'agent',
  'action',
  'tool',
  'resource',
  'outcome',
  'approval',
  'policy',
  'model',
  'trace_id',
  'span_id',
  'session_id',
  'data_classification',
  'details',
]);

/** RFC 9562 text form, any version; what a client writes in event_id. */
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/**
 * The client's idempotency id (`event_id`), lowercased; undefined when the
 * event has none. A UUID and nothing else: it is read before redaction (a
 * resend must match its first send whatever the rules do), so it must not
 * be able to carry free text.
 */
export function eventIdOf(raw: Record<string, unknown>): string | undefined {
  const v = raw.event_id;
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || !UUID.test(v)) throw invalid('event_id', 'must be a UUID (8-4-4-4-12 hexadecimal digits), as a client generates for each event');
  return v.toLowerCase();
}

function invalid(field: string, what: string): InputError {
  return new InputError('record_invalid', `field ${field}: ${what}`, field);
}

/**
 * Names a member in an error only when its name looks like an identifier; a
 * key is input too and could itself be PII (an email used as a key).
 */
function memberPath(field: string, key: string): string {
  return /^[A-Za-z0-9_-]{1,64}$/.test(key) ? `${field}.${key}` : `${field}.<unnamed>`;
}

function str(v: unknown, field: string, required = false): string | undefined {
  if (v === undefined || v === null) {
    if (required) throw invalid(field, 'is required');
    return undefined;
  }
  if (typeof v !== 'string') throw invalid(field, 'expected a string');
  if (required && v.length === 0) throw invalid(field, 'must not be empty');
  if (v.length > MAX_STRING) throw invalid(field, `longer than ${MAX_STRING} characters`);
  return v;
}

function obj(v: unknown, field: string): Record<string, unknown> | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isPlainObject(v)) throw invalid(field, 'expected an object');
  return v;
}

/**
 * The object's known members, which must be strings, followed by every other
 * member as written (any JSON value: `agent.version`, `tool.call_id`): an
 * agent's extra detail is kept, never a reason to refuse the event.
 */
function strFields<K extends string>(
  v: unknown,
  field: string,
  keys: readonly K[],
  required: readonly K[] = [],
): (Partial<Record<K, string>> & Record<string, unknown>) | undefined {
  const o = obj(v, field);
  if (!o) return undefined;
  const out: Partial<Record<K, string>> & Record<string, unknown> = {};
  for (const k of keys) {
    const s = str(o[k], memberPath(field, k), required.includes(k));
    if (s !== undefined) defineKey(out, k, s);
  }
  for (const k of Object.keys(o)) {
    if (!(keys as readonly string[]).includes(k) && o[k] !== undefined) defineKey(out, k, o[k]);
  }
  return out;
}

export function normaliseEvent(raw: unknown, receivedAt: string): AuditEvent {
  if (!isPlainObject(raw)) {
    throw new InputError('record_not_object', 'a line must hold one JSON object');
  }
  const event: AuditEvent = {
    time: raw.time === undefined || raw.time === null ? receivedAt : normaliseTime(raw.time, 'time'),
    event_type: str(raw.event_type, 'event_type', true)!,
  };
  if (event.event_type.length > 128) throw invalid('event_type', 'longer than 128 characters');

  const tenant = str(raw.tenant, 'tenant');
  if (tenant !== undefined) event.tenant = tenant;
  const eventId = eventIdOf(raw);
  if (eventId !== undefined) event.event_id = eventId;

  for (const k of SIDECAR_FIELDS) {
    if (Object.hasOwn(raw, k)) throw invalid(k, 'is set by the sidecar and cannot come from the input; rename it or move it under details');
  }
  if (raw.actor !== undefined && raw.actor !== null) {
    const a = strFields(raw.actor, 'actor', ['id', 'type'] as const, ['id'])!;
    // `type` defaults to user; a type outside ACTOR_TYPES is kept as written.
    const { id, type, ...rest } = a;
    event.actor = { id: id!, type: type ?? 'user' };
    for (const k of Object.keys(rest)) defineKey(event.actor, k, rest[k]);
  }
  const agent = strFields(raw.agent, 'agent', ['id', 'name'] as const);
  if (agent) event.agent = agent;
  const action = str(raw.action, 'action');
  if (action !== undefined) event.action = action;

  const tool = obj(raw.tool, 'tool');
  if (tool) {
    event.tool = { name: str(tool.name, 'tool.name', true)! };
    for (const k of Object.keys(tool)) {
      if (k !== 'name' && tool[k] !== undefined) defineKey(event.tool, k, tool[k]);
    }
  }
  const resource = strFields(raw.resource, 'resource', ['type', 'id'] as const);
  if (resource) event.resource = resource;

  // One of OUTCOMES is what queries and reports expect; another string is kept as written.
  const outcome = str(raw.outcome, 'outcome');
  if (outcome !== undefined) event.outcome = outcome;
  const approval = strFields(raw.approval, 'approval', ['status', 'approver'] as const);
  if (approval) event.approval = approval;
  const policy = strFields(raw.policy, 'policy', ['decision', 'rule'] as const);
  if (policy) event.policy = policy;
  const model = strFields(raw.model, 'model', ['provider', 'name'] as const);
  if (model) event.model = model;
  for (const f of ['trace_id', 'span_id', 'session_id', 'data_classification'] as const) {
    const v = str(raw[f], f);
    if (v !== undefined) event[f] = v;
  }
  const details = obj(raw.details, 'details');

  let unmapped: Record<string, unknown> | undefined;
  for (const k of Object.keys(raw)) {
    if (KNOWN_FIELDS.has(k)) continue;
    defineKey((unmapped ??= {}), k, raw[k]);
  }
  if (details || unmapped) {
    event.details = {};
    if (details) for (const k of Object.keys(details)) defineKey(event.details, k, details[k]);
    if (unmapped) {
      // An input that already has details._unmapped keeps it; ours takes the next free name.
      let name = '_unmapped';
      for (let n = 2; Object.hasOwn(event.details, name); n++) name = `_unmapped#${n}`;
      defineKey(event.details, name, unmapped);
    }
  }
  return event;
}

export interface SidecarFields {
  id: string;
  stream: string;
  seq: number;
  received_at: string;
  source: string;
  redaction: RedactionProvenance;
}

/**
 * Adds the sidecar's fields to an event. The event object is taken over (it
 * is fresh from normaliseEvent), which avoids copying every record.
 */
export function buildRecord(event: AuditEvent, fields: SidecarFields): AuditRecord {
  const r = event as AuditRecord;
  r.id = fields.id;
  r.stream = fields.stream;
  r.seq = fields.seq;
  r.received_at = fields.received_at;
  r.source = fields.source;
  r.redaction = fields.redaction;
  return r;
}


/**
 * `parsed` with lone UTF-16 surrogates (invalid in I-JSON, RFC 7493, and
 * refused by RFC 8785) replaced by U+FFFD in every key and string, and how
 * many were replaced. `text` is the JSON it was parsed from: a lone
 * surrogate can only come from a \uD800-\uDFFF escape or from a text that
 * is itself ill-formed, so most lines skip the walk. The count goes into the
 * record's redaction provenance, so a repaired record says so.
 */
export function repairLoneSurrogates(parsed: unknown, text: string): { value: unknown; repaired: Repairs } {
  if (!SURROGATE_ESCAPE.test(text) && text.isWellFormed()) return { value: parsed, repaired: { lone_surrogates: 0, keys_renamed: 0 } };
  const counter: Repairs = { lone_surrogates: 0, keys_renamed: 0 };
  const value = wellFormed(parsed, 0, counter);
  return { value, repaired: counter };
}

/** What repairLoneSurrogates changed: replaced code units, and keys renamed because their repair collided. */
export interface Repairs {
  lone_surrogates: number;
  keys_renamed: number;
}

/**
 * Replaces lone UTF-16 surrogates with U+FFFD throughout a value, counting
 * them in `counter`. Two keys can repair to the same text ("\ud800" and
 * "\udbff" both become "\ufffd", or one meets a literal "\ufffd"): keys that
 * needed no repair keep their names, and a repaired key that would overwrite
 * another takes the next free "<key>#2", "#3", … (counted), so no member is
 * lost. Walks as deep as canonicalize allows.
 */
export function wellFormed(value: unknown, depth = 0, counter: Repairs = { lone_surrogates: 0, keys_renamed: 0 }): unknown {
  if (typeof value === 'string') return repairString(value, counter);
  if (depth > MAX_DEPTH || typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const v = wellFormed(value[i], depth + 1, counter);
      if (v !== value[i]) (out ??= value.slice())[i] = v;
    }
    return out ?? value;
  }
  // The copy is made only once something needs repair: most input needs none.
  let out: Record<string, unknown> | undefined;
  let broken: Array<[string, unknown]> | undefined;
  const keys = Object.keys(value);
  const src = value as Record<string, unknown>;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    const v = src[k];
    if (!k.isWellFormed()) {
      (broken ??= []).push([k, v]);
      if (!out) out = copyOf(src, keys, i);
      continue;
    }
    const v2 = wellFormed(v, depth + 1, counter);
    if (v2 !== v && !out) out = copyOf(src, keys, i);
    if (out) defineKey(out, k, v2);
  }
  if (broken && out) {
    const next = new Map<string, number>();
    for (const [k, v] of broken) {
      const repaired = repairString(k, counter);
      if (defineFree(out, repaired, wellFormed(v, depth + 1, counter), next) !== repaired) counter.keys_renamed++;
    }
  }
  return out ?? value;
}

/** A fresh object with the first `n` members of `src` (keys well-formed, values unchanged so far). */
function copyOf(src: Record<string, unknown>, keys: string[], n: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) {
    const k = keys[i]!;
    if (k.isWellFormed()) defineKey(out, k, src[k]);
  }
  return out;
}

function repairString(s: string, counter: Repairs): string {
  if (s.isWellFormed()) return s;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
      else counter.lone_surrogates++;
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      counter.lone_surrogates++;
    }
  }
  return s.toWellFormed();
}
