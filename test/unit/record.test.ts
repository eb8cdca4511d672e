import { describe, expect, it } from 'vitest';
import { canonicalize } from '../../src/core/canonical.js';
import { InputError, SealtrailError } from '../../src/core/errors.js';
import { buildRecord, normaliseEvent, wellFormed, type SidecarFields } from '../../src/core/record.js';
import { thrown } from '../helpers/errors.js';

const RECEIVED = '2026-03-04T05:06:07.089Z';
const CANARY = 'CANARY-7f3e-do-not-leak';

function norm(raw: unknown): ReturnType<typeof normaliseEvent> {
  return normaliseEvent(raw, RECEIVED);
}

/** Runs normaliseEvent on hostile input and returns the typed error it must throw. */
function refuse(raw: unknown): InputError {
  const err = thrown(() => norm(raw), InputError, `expected normaliseEvent to refuse ${JSON.stringify(raw)?.slice(0, 200)}`);
  expect(err).toBeInstanceOf(SealtrailError);
  return err;
}

const FIELDS: SidecarFields = {
  id: '018f0000-0000-7000-8000-000000000000',
  stream: 'pod-a',
  seq: 7,
  received_at: RECEIVED,
  source: 'agent-log',
  redaction: { ruleset: 'abc', hits: { email: 1 } },
};

describe('normaliseEvent: valid input', () => {
  it('keeps only event_type and defaults time to received_at', () => {
    expect(norm({ event_type: 'conversation_started' })).toEqual({ time: RECEIVED, event_type: 'conversation_started' });
  });

  it('treats time: null as absent', () => {
    expect(norm({ event_type: 'x', time: null }).time).toBe(RECEIVED);
  });

  it('maps every known field', () => {
    const raw = {
      time: '2026-01-02T03:04:05.678Z',
      event_type: 'tool_invoked',
      tenant: 'acme',
      actor: { id: 'u1', type: 'admin' },
      agent: { id: 'a1', name: 'helper' },
      action: 'search',
      tool: { name: 'web.search', arguments: { q: 'weather', n: [1, 2, { deep: true }] } },
      resource: { type: 'doc', id: 'd9' },
      outcome: 'denied',
      approval: { status: 'granted', approver: 'boss' },
      policy: { decision: 'deny', rule: 'r1' },
      model: { provider: 'openai', name: 'gpt' },
      trace_id: 't',
      span_id: 's',
      session_id: 'sess',
      data_classification: 'confidential',
      details: { a: 1, nested: { b: [true, null] } },
    };
    expect(norm(raw)).toEqual(raw);
  });

  it('accepts every event type, known or not, up to 128 characters', () => {
    expect(norm({ event_type: 'policy_violation' }).event_type).toBe('policy_violation');
    expect(norm({ event_type: 'my_custom_type' }).event_type).toBe('my_custom_type');
    expect(norm({ event_type: 'e'.repeat(128) }).event_type).toHaveLength(128);
  });

  it('defaults actor.type to user and accepts every actor type', () => {
    expect(norm({ event_type: 'x', actor: { id: 'u' } }).actor).toEqual({ id: 'u', type: 'user' });
    for (const type of ['user', 'agent', 'admin', 'system']) {
      expect(norm({ event_type: 'x', actor: { id: 'u', type } }).actor).toEqual({ id: 'u', type });
    }
  });

  it('accepts every outcome', () => {
    for (const outcome of ['success', 'failure', 'denied', 'error', 'pending']) {
      expect(norm({ event_type: 'x', outcome }).outcome).toBe(outcome);
    }
  });

  it('treats null optional fields as absent', () => {
    const e = norm({
      event_type: 'x',
      tenant: null,
      actor: null,
      agent: null,
      action: null,
      tool: null,
      resource: null,
      outcome: null,
      approval: null,
      policy: null,
      model: null,
      trace_id: null,
      span_id: null,
      session_id: null,
      data_classification: null,
      details: null,
    });
    expect(e).toEqual({ time: RECEIVED, event_type: 'x' });
  });

  it('drops null members inside small objects but keeps tool.arguments as given', () => {
    const e = norm({ event_type: 'x', agent: { id: null, name: 'n' }, tool: { name: 't', arguments: null } });
    expect(e.agent).toEqual({ name: 'n' });
    expect(e.tool).toEqual({ name: 't', arguments: null });
  });

  it('converts times to UTC with millisecond precision', () => {
    expect(norm({ event_type: 'x', time: '2024-01-01T01:30:00+01:30' }).time).toBe('2024-01-01T00:00:00.000Z');
    expect(norm({ event_type: 'x', time: '2024-06-30T23:59:59.123456789Z' }).time).toBe('2024-06-30T23:59:59.123Z');
    expect(norm({ event_type: 'x', time: 0 }).time).toBe('1970-01-01T00:00:00.000Z');
    expect(norm({ event_type: 'x', time: 1_700_000_000_123 }).time).toBe('2023-11-14T22:13:20.123Z');
    expect(norm({ event_type: 'x', time: 253402300799999 }).time).toBe('9999-12-31T23:59:59.999Z');
  });

  it('keeps unknown top-level keys under details._unmapped, beside given details', () => {
    const e = norm({ event_type: 'x', details: { a: 1 }, foo: 'bar', n: 2, o: { deep: [1] } });
    expect(e.details).toEqual({ a: 1, _unmapped: { foo: 'bar', n: 2, o: { deep: [1] } } });
  });

  it('has no details at all when there is nothing to keep', () => {
    expect('details' in norm({ event_type: 'x' })).toBe(false);
  });

  it('refuses each sidecar-owned field, naming it and not its value, so the input can never pose as the sidecar', () => {
    const forged: Record<string, unknown> = {
      id: 'forged-id',
      stream: 'forged-stream',
      seq: 999,
      received_at: '1999-01-01T00:00:00Z',
      source: 'forged-source',
      redaction: { ruleset: 'forged', hits: {} },
    };
    for (const [k, v] of Object.entries(forged)) {
      const err = thrown(() => norm({ event_type: 'x', [k]: v }), InputError, `expected ${k} to be refused`);
      expect(err.code).toBe('record_invalid');
      expect(err.field).toBe(k);
      expect(err.message).toContain(`field ${k}:`);
      expect(err.message).not.toContain('forged');
    }
  });

  it('keeps members it does not know in their objects, and values outside the standard vocabularies as written', () => {
    const e = norm({
      event_type: 'x',
      actor: { id: 'u', type: 'service', email: 'kept@example.com' },
      agent: { id: 'a', version: '1.2.3', labels: { team: 'x' } },
      tool: { name: 't', args: { q: 1 }, call_id: 'c-1' },
      resource: { kind: 'doc' },
      outcome: 'SUCCESS',
      approval: { by: 'b' },
      policy: { reason: 'r' },
      model: { temperature: 0.2, name: 'm' },
    }) as unknown as Record<string, Record<string, unknown>>;
    expect(e.actor).toEqual({ id: 'u', type: 'service', email: 'kept@example.com' });
    expect(e.agent).toEqual({ id: 'a', version: '1.2.3', labels: { team: 'x' } });
    expect(e.tool).toEqual({ name: 't', args: { q: 1 }, call_id: 'c-1' });
    expect(e.resource).toEqual({ kind: 'doc' });
    expect(e.outcome).toBe('SUCCESS');
    expect(e.approval).toEqual({ by: 'b' });
    expect(e.policy).toEqual({ reason: 'r' });
    expect(e.model).toEqual({ name: 'm', temperature: 0.2 });
    expect(e.details).toBeUndefined();
  });

  it('keeps a "__proto__" member of a known object as a member, never as a prototype', () => {
    const raw = JSON.parse('{"event_type":"x","agent":{"id":"a","__proto__":{"polluted":true}}}');
    const e = norm(raw) as unknown as { agent: Record<string, unknown> };
    expect(Object.getPrototypeOf(e.agent)).toBe(Object.prototype);
    expect(Object.hasOwn(e.agent, '__proto__')).toBe(true);
    expect((e.agent as { polluted?: unknown }).polluted).toBeUndefined();
  });

  it('does not mutate its input', () => {
    const raw = { event_type: 'x', details: { a: 1 }, extra: { b: 2 }, actor: { id: 'u' } };
    const copy = structuredClone(raw);
    norm(raw);
    expect(raw).toEqual(copy);
  });

  it('produces something canonicalisable for any accepted input', () => {
    const e = norm(JSON.parse('{"event_type":"x","details":{"big":1e300,"neg":-0,"s":"\\u00e9"},"zz":[1,"2",null]}'));
    expect(() => canonicalize(buildRecord(e, FIELDS))).not.toThrow();
  });

  // BUG: record.ts builds _unmapped with plain assignment
  // (`(unmapped ??= {})[key] = raw[k]`), so an input key "__proto__" (an own
  // property after JSON.parse) is not stored as a key: an object value becomes
  // the prototype of _unmapped (canonicalize then throws canonical_invalid and
  // the event is quarantined), a primitive value is silently ignored. Contract:
  // "anything it does not know is kept (never dropped)".
  it('keeps an unknown "__proto__" key with an object value under details._unmapped', () => {
    const raw = JSON.parse(`{"event_type":"x","__proto__":{"kept":"${CANARY}"}}`) as unknown;
    const e = norm(raw);
    expect(canonicalize(e)).toContain(CANARY);
  });

  it('keeps an unknown "__proto__" key with a string value under details._unmapped', () => {
    const raw = JSON.parse(`{"event_type":"x","__proto__":"${CANARY}"}`) as unknown;
    expect(canonicalize(norm(raw))).toContain(CANARY);
  });

  // BUG: when the input has both details._unmapped and unknown top-level keys,
  // record.ts overwrites details._unmapped with the unknown keys, silently
  // dropping what the input had put there.
  it('never drops an input details._unmapped when unknown top-level keys are present', () => {
    const e = norm({ event_type: 'x', details: { _unmapped: { mine: CANARY } }, unknown_key: 1 });
    const text = canonicalize(e);
    expect(text).toContain(CANARY);
    expect(text).toContain('unknown_key');
  });

  it('keeps an own "__proto__" key inside details', () => {
    const raw = JSON.parse(`{"event_type":"x","details":{"__proto__":{"kept":"${CANARY}"}}}`) as unknown;
    expect(canonicalize(norm(raw))).toContain(CANARY);
  });

  it('keeps an input details._unmapped when there are no unknown keys', () => {
    const e = norm({ event_type: 'x', details: { _unmapped: { mine: CANARY } } });
    expect(canonicalize(e)).toContain(CANARY);
  });
});

describe('normaliseEvent: hostile input', () => {
  it.each([
    ['null', null],
    ['undefined', undefined],
    ['number', 42],
    ['string', CANARY],
    ['boolean', true],
    ['empty array', []],
    ['array of objects', [{ event_type: 'x', v: CANARY }]],
  ])('refuses a non-object (%s) with record_not_object', (_name, raw) => {
    const err = refuse(raw);
    expect(err.code).toBe('record_not_object');
    expect(err.message).not.toContain(CANARY);
  });

  it.each([
    ['missing', {}],
    ['null', { event_type: null }],
    ['empty', { event_type: '' }],
    ['number', { event_type: 5 }],
    ['object', { event_type: { v: CANARY } }],
    ['array', { event_type: [CANARY] }],
    ['129 characters', { event_type: CANARY + 'e'.repeat(129 - CANARY.length) }],
    ['over 64 KiB', { event_type: CANARY.repeat(Math.ceil(70_000 / CANARY.length)) }],
  ])('refuses event_type %s', (_name, raw) => {
    const err = refuse(raw);
    expect(err.code).toBe('record_invalid');
    expect(err.message).toContain('event_type');
    expect(err.message).not.toContain(CANARY);
  });

  const C = CANARY;
  const cases: Array<[string, string, unknown]> = [
    // field named in the message, value carrying the canary
    ['tenant', 'tenant', 123],
    ['tenant', 'tenant', { v: C }],
    ['tenant', 'tenant', [C]],
    ['tenant', 'tenant', C.repeat(5000)],
    ['actor', 'actor', C],
    ['actor', 'actor', [C]],
    ['actor', 'actor', 5],
    ['actor', 'actor.id', { type: 'user' }],
    ['actor', 'actor.id', { id: '' }],
    ['actor', 'actor.id', { id: 5 }],
    ['actor', 'actor.id', { id: { v: C } }],
    ['actor', 'actor.type', { id: 'u', type: 1 }],
    ['agent', 'agent', C],
    ['agent', 'agent.id', { id: 1 }],
    ['agent', 'agent.name', { name: [C] }],
    ['action', 'action', 1],
    ['action', 'action', { v: C }],
    ['tool', 'tool', C],
    ['tool', 'tool', [C]],
    ['tool', 'tool.name', { arguments: { q: C } }],
    ['tool', 'tool.name', { name: '', arguments: C }],
    ['tool', 'tool.name', { name: 7, arguments: C }],
    ['resource', 'resource', C],
    ['resource', 'resource.type', { type: 1 }],
    ['outcome', 'outcome', 1],
    ['outcome', 'outcome', { v: C }],
    ['approval', 'approval.status', { status: true }],
    ['approval', 'approval', C],
    ['policy', 'policy.decision', { decision: [C] }],
    ['model', 'model.provider', { provider: { v: C } }],
    ['trace_id', 'trace_id', 1],
    ['span_id', 'span_id', { v: C }],
    ['session_id', 'session_id', [C]],
    ['data_classification', 'data_classification', false],
    ['details', 'details', C],
    ['details', 'details', [C]],
    ['details', 'details', 5],
    ['time', 'time', C],
    ['time', 'time', `2024-01-01T00:00:00Z${C}`],
    ['time', 'time', '2024-02-30T00:00:00Z'],
    ['time', 'time', '2023-02-29T00:00:00Z'],
    ['time', 'time', '2024-04-31T00:00:00Z'],
    ['time', 'time', '2024-13-01T00:00:00Z'],
    ['time', 'time', '2024-01-01T24:00:00Z'],
    ['time', 'time', '2024'],
    ['time', 'time', 'March 1'],
    ['time', 'time', 'March 1, 2024 10:00 GMT'],
    ['time', 'time', '2024-01-01'],
    ['time', 'time', '2024-01-01T00:00:00'],
    ['time', 'time', '2024-01-01 00:00:00Z'],
    ['time', 'time', ''],
    ['time', 'time', true],
    ['time', 'time', { v: C }],
    ['time', 'time', [C]],
    ['time', 'time', -1],
    ['time', 'time', 253402300800000],
    ['time', 'time', 1e300],
    ['time', 'time', Number.NaN],
    ['time', 'time', Number.POSITIVE_INFINITY],
  ];

  it.each(cases)('refuses a bad %s (%s) without quoting the value', (field, named, value) => {
    const err = refuse({ event_type: 'x', [field]: value });
    expect(err.code).toBe('record_invalid');
    expect(err.message).toContain(named);
    expect(err.message).not.toContain(CANARY);
    expect(err.message.length).toBeLessThan(300);
  });

  it('never quotes an over-long string value in the error', () => {
    const big = CANARY.repeat(10_000);
    for (const field of ['tenant', 'action', 'trace_id', 'data_classification']) {
      const err = refuse({ event_type: 'x', [field]: big });
      expect(err.message).not.toContain(CANARY);
      expect(err.message).toContain(field);
    }
    const err = refuse({ event_type: 'x', tool: { name: big } });
    expect(err.message).toContain('tool.name');
    expect(err.message).not.toContain(CANARY);
  });

  it('accepts strings of exactly 64 KiB characters', () => {
    const s = 'a'.repeat(64 * 1024);
    expect(norm({ event_type: 'x', tenant: s }).tenant).toBe(s);
  });

  it('does not validate the contents of details or tool.arguments', () => {
    const e = norm({ event_type: 'x', details: { time: 'March 1', outcome: 'whatever' }, tool: { name: 't', arguments: 'free text' } });
    expect(e.details).toEqual({ time: 'March 1', outcome: 'whatever' });
    expect(e.tool).toEqual({ name: 't', arguments: 'free text' });
  });
});

describe('buildRecord', () => {
  it('adds the sidecar fields after the event so they always win', () => {
    const ev = norm({ event_type: 'x', tenant: 't' });
    const forged = { ...ev, id: 'forged', seq: -1 } as typeof ev;
    const rec = buildRecord(forged, FIELDS);
    expect(rec).toEqual({ ...ev, ...FIELDS });
    expect(rec.id).toBe(FIELDS.id);
    expect(rec.seq).toBe(7);
  });
});

describe('wellFormed', () => {
  it('replaces lone surrogates in strings with U+FFFD', () => {
    expect(wellFormed('a\ud800b')).toBe('a\ufffdb');
    expect(wellFormed('\udc00')).toBe('\ufffd');
    expect(wellFormed('x\udbff')).toBe('x\ufffd');
    expect(wellFormed('\ud83d\ude00')).toBe('\ud83d\ude00');
  });

  it('walks arrays and objects, keys included', () => {
    const v = wellFormed({ 'k\ud800': ['ok', 'bad\udc00', { deep: '\ud801' }], fine: 1 });
    expect(v).toEqual({ 'k\ufffd': ['ok', 'bad\ufffd', { deep: '\ufffd' }], fine: 1 });
    expect(JSON.stringify(v)).not.toMatch(/\\ud[89a-f]/i);
  });

  it('returns the same object when nothing changes and does not mutate input', () => {
    const v = { a: ['x', { b: 'y' }], c: 1, d: null, e: true };
    expect(wellFormed(v)).toBe(v);
    const bad = { a: ['x', '\ud800'] };
    const out = wellFormed(bad) as { a: string[] };
    expect(out).not.toBe(bad);
    expect(bad.a[1]).toBe('\ud800');
    expect(out.a[1]).toBe('\ufffd');
  });

  it('passes primitives through', () => {
    for (const v of [null, 1, true, false, undefined]) expect(wellFormed(v)).toBe(v);
  });

  it('keeps an own "__proto__" key when nothing in the object changes', () => {
    const raw = JSON.parse('{"__proto__":{"a":"b"},"x":1}') as unknown;
    expect(Object.keys(wellFormed(raw) as object)).toEqual(['__proto__', 'x']);
  });

  // BUG: wellFormed rebuilds a changed object with `out[k2] = v2` on a plain {},
  // so an own "__proto__" key (JSON.parse creates one) is not copied: with a
  // primitive value the assignment is ignored, with an object value it becomes
  // the prototype. Either way the key vanishes from the record that gets hashed.
  it('keeps an own "__proto__" key as a key when the object is rebuilt', () => {
    const raw = JSON.parse('{"__proto__":"\\ud800","x":1}') as unknown;
    const out = wellFormed(raw) as Record<string, unknown>;
    expect(Object.keys(out)).toEqual(['__proto__', 'x']);
  });
});
