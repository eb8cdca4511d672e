import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/core/errors.js';
import { normaliseEvent } from '../../src/core/record.js';
import { cloudEventsFormat, looksLikeCloudEvent } from '../../src/sidecar/formats/cloudevents.js';
import { thrown } from '../helpers/errors.js';
import { ROOT } from '../helpers/procs.js';

const RECEIVED = '2026-03-04T05:06:07.089Z';
const CANARY = 'CANARY-ce-5b1d-do-not-leak';
const lines = readFileSync(join(ROOT, 'test/fixtures/formats/cloudevents.jsonl'), 'utf8')
  .split('\n')
  .filter((l) => l.length > 0)
  .map((l) => JSON.parse(l) as unknown);

const decode = (v: unknown) => cloudEventsFormat.decode(v);
const one = (v: unknown): Record<string, unknown> => {
  const out = decode(v);
  expect(out).toHaveLength(1);
  return out[0]!.event;
};
function refuse(v: unknown): InputError {
  const err = thrown(() => decode(v), InputError);
  expect(err.message).not.toContain(CANARY);
  expect(err.field ?? '').not.toContain(CANARY);
  return err;
}
const minimal = { specversion: '1.0', type: 'com.example.x', source: '/s', id: '1' };

describe('cloudevents: the fixture file', () => {
  it('maps every line, and every event passes normaliseEvent', () => {
    let events = 0;
    for (const line of lines) {
      for (const d of decode(line)) {
        events++;
        const n = normaliseEvent(d.event, RECEIVED);
        expect(n.event_type).toMatch(/^com\.example\./);
      }
    }
    expect(events).toBe(6);
  });

  it('maps type, time, traceparent, the attributes and data of a tool call', () => {
    const e = one(lines[0]);
    expect(e).toEqual({
      event_type: 'com.example.agent.tool.invoked',
      time: '2026-03-02T14:00:00.000Z',
      trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
      span_id: '00f067aa0ba902b7',
      actor: { id: 'agent-claims', type: 'agent' },
      tool: { name: 'lookup_claim', arguments: { claim_id: '1182' } },
      outcome: 'success',
      session_id: 'sess-7',
      details: {
        cloudevent: {
          specversion: '1.0',
          source: '/agents/claims-assistant',
          id: 'A234-1234-1234',
          subject: 'claim-1182',
          datacontenttype: 'application/json',
          traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
          tracestate: 'rojo=00f067aa0ba902b7',
        },
        data: { latency_ms: 231 },
      },
    });
  });

  it('converts a time with an offset to UTC and keeps finer digits as written; extensions go to details', () => {
    const e = one(lines[1]);
    expect(e['time']).toBe('2026-03-02T14:00:00.123Z');
    const details = e['details'] as Record<string, Record<string, unknown>>;
    expect(details['cloudevent']!['time']).toBe('2026-03-02T15:00:00.123456+01:00');
    expect(details['cloudevent']!['comexampletenant']).toBe('acme');
    // approval, action, resource fit; "approved" is not an outcome, so it stays in data
    expect(e['approval']).toEqual({ status: 'granted', approver: 'u-9' });
    expect(e['action']).toBe('wire_transfer');
    expect(e['resource']).toEqual({ type: 'payment', id: 'pay-5' });
    expect(e['outcome']).toBeUndefined();
    expect(details['data']).toEqual({ outcome: 'approved' });
  });

  it('keeps data_base64 as written and string data under details.data; null attributes are unset', () => {
    expect(one(lines[2])['details']).toEqual({
      cloudevent: { specversion: '1.0', source: '/scanner', id: 'c-1', datacontenttype: 'application/pdf' },
      data_base64: 'JVBERi0xLjQKJcfsj6IK',
    });
    const note = one(lines[3]);
    expect(note['time']).toBeUndefined();
    expect(note['details']).toEqual({
      cloudevent: { specversion: '1.0', source: '/notes', id: 'd-1', datacontenttype: 'text/plain' },
      data: 'a plain text note',
    });
  });

  it('gives one event per element of a batch, with its path', () => {
    const out = decode(lines[4]);
    expect(out.map((d) => d.path)).toEqual(['[0]', '[1]']);
    expect(out[0]!.event['outcome']).toBe('failure');
    expect(out[1]!.event['event_type']).toBe('com.example.batch.second');
    expect(decode([])).toEqual([]);
  });
});

describe('cloudevents: looksLikeCloudEvent', () => {
  it('needs an object with string specversion and type', () => {
    expect(looksLikeCloudEvent(minimal)).toBe(true);
    expect(looksLikeCloudEvent({ specversion: 1, type: 'x' })).toBe(false);
    expect(looksLikeCloudEvent({ specversion: '1.0' })).toBe(false);
    expect(looksLikeCloudEvent([minimal])).toBe(false);
    expect(looksLikeCloudEvent(null)).toBe(false);
    expect(looksLikeCloudEvent('{"specversion":"1.0"}')).toBe(false);
  });
});

describe('cloudevents: refused input', () => {
  it('names the missing or wrong required attribute (format_mismatch)', () => {
    for (const name of ['specversion', 'id', 'source', 'type']) {
      const missing = { ...minimal } as Record<string, unknown>;
      delete missing[name];
      const e1 = refuse(missing);
      expect([e1.code, e1.field]).toEqual(['format_mismatch', name]);
      const wrong = refuse({ ...minimal, [name]: { v: CANARY } });
      expect([wrong.code, wrong.field]).toEqual(['format_mismatch', name]);
    }
    expect(refuse({ ...minimal, id: '' }).field).toBe('id');
    const v03 = refuse({ ...minimal, specversion: '0.3' });
    expect([v03.code, v03.field]).toEqual(['format_mismatch', 'specversion']);
    expect(v03.message).not.toContain('0.3');
  });

  it('refuses a type longer than 128 characters with record_invalid naming type', () => {
    const err = refuse({ ...minimal, type: `${CANARY}${'x'.repeat(200)}` });
    expect([err.code, err.field]).toEqual(['record_invalid', 'type']);
  });

  it('refuses a time that is not RFC 3339 or beyond 9999, naming time', () => {
    for (const time of [CANARY, '2026-03-02 10:00:00Z', '2026-03-02T10:00:00', '10000-01-01T00:00:00Z', '9999-12-31T23:30:00-01:00', 1772445900, '2026-02-30T00:00:00Z']) {
      const err = refuse({ ...minimal, time });
      expect([err.code, err.field]).toEqual(['record_invalid', 'time']);
    }
  });

  it('refuses data and data_base64 together, and data_base64 that is not a string', () => {
    expect(refuse({ ...minimal, data: {}, data_base64: 'AA==' }).code).toBe('format_mismatch');
    const err = refuse({ ...minimal, data_base64: 12 });
    expect([err.code, err.field]).toEqual(['format_mismatch', 'data_base64']);
  });

  it('refuses a value that is not an object, and names the element of a batch', () => {
    expect(refuse('a string').code).toBe('record_not_object');
    expect(refuse(42).code).toBe('record_not_object');
    const err = refuse([minimal, 'x']);
    expect([err.code, err.field]).toEqual(['record_not_object', '[1]']);
    const deep = refuse([minimal, minimal, { ...minimal, source: 7 }]);
    expect([deep.code, deep.field]).toEqual(['format_mismatch', '[2].source']);
  });

  it('bounds a batch', () => {
    const err = refuse(new Array(10_001).fill(minimal));
    expect(err.code).toBe('record_invalid');
    expect(decode(new Array(10_000).fill(minimal))).toHaveLength(10_000);
  });
});

describe('cloudevents: hostile input', () => {
  it('keeps "__proto__" members as plain keys, in attributes and in data', () => {
    const ce = JSON.parse(
      `{"specversion":"1.0","type":"t","source":"/s","id":"1","__proto__":{"polluted":1},"data":{"__proto__":{"x":1},"actor":{"id":"a","__proto__":{"y":2}}}}`,
    ) as unknown;
    const e = one(ce);
    const details = e['details'] as Record<string, Record<string, unknown>>;
    expect(Object.hasOwn(details['cloudevent']!, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(details['cloudevent'])).toBe(Object.prototype);
    expect(Object.hasOwn(details['data']!, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    const n = normaliseEvent(e, RECEIVED);
    expect(n.actor?.id).toBe('a');
  });

  it('keeps members of the wrong shape in data instead of lifting them', () => {
    const e = one({
      ...minimal,
      data: { actor: { name: 'no id' }, tool: { name: 5 }, outcome: 3, model: { name: ['x'] }, session_id: {}, agent: 'x', tenant: 't1' },
    });
    expect(e['tenant']).toBe('t1');
    expect((e['details'] as Record<string, unknown>)['data']).toEqual({
      actor: { name: 'no id' },
      tool: { name: 5 },
      outcome: 3,
      model: { name: ['x'] },
      session_id: {},
      agent: 'x',
    });
    expect(() => normaliseEvent(e, RECEIVED)).not.toThrow();
  });

  it('ignores a malformed traceparent (kept as written) and does not let data.trace_id override a valid one', () => {
    for (const tp of ['00-00000000000000000000000000000000-00f067aa0ba902b7-01', 'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01', CANARY, 7]) {
      const e = one({ ...minimal, traceparent: tp });
      expect(e['trace_id']).toBeUndefined();
      expect((e['details'] as Record<string, Record<string, unknown>>)['cloudevent']!['traceparent']).toBe(tp);
    }
    const e = one({ ...minimal, traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', data: { trace_id: 'other' } });
    expect(e['trace_id']).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect((e['details'] as Record<string, unknown>)['data']).toEqual({ trace_id: 'other' });
  });

  it('copes with deeply nested and huge data without walking it', () => {
    let deep: unknown = 'leaf';
    for (let i = 0; i < 100_000; i++) deep = { d: deep };
    const e = one({ ...minimal, data: { actor: { id: 'a' }, deep } });
    expect((e['details'] as Record<string, Record<string, unknown>>)['data']!['deep']).toBe(deep);
    const big = new Array(1_000_000).fill(0);
    expect((one({ ...minimal, data: big })['details'] as Record<string, unknown>)['data']).toBe(big);
  });
});
