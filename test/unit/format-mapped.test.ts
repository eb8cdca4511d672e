import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/core/errors.js';
import { normaliseEvent } from '../../src/core/record.js';
import type { LineFormat } from '../../src/sidecar/formats/format.js';
import { mappingFromYaml } from '../../src/sidecar/formats/mapped/index.js';
import { parsePath, PathSyntaxError, readPath } from '../../src/sidecar/formats/mapped/paths.js';
import { convertTime } from '../../src/sidecar/formats/mapped/values.js';
import { thrown } from '../helpers/errors.js';

const CANARY = 'CANARY-mapped-31c9-do-not-leak';
const RECEIVED = '2026-03-04T05:06:07.089Z';

function mapping(rules: string, head = ''): LineFormat {
  return mappingFromYaml(`format: mapped\nversion: 1\n${head}rules:\n${rules}`, 'test.yaml');
}
const one = (f: LineFormat, v: unknown): Record<string, unknown> => {
  const out = f.decode(v);
  expect(out).toHaveLength(1);
  return out[0]!.event;
};
function refuse(f: LineFormat, v: unknown): InputError {
  const err = thrown(() => f.decode(v), InputError);
  expect(err.message).not.toContain(CANARY);
  expect(err.field ?? '').not.toContain(CANARY);
  return err;
}

describe('paths', () => {
  it('parses members, indexes and quoted names', () => {
    expect(parsePath('a.b[2].c').segments).toEqual(['a', 'b', 2, 'c']);
    expect(parsePath('attributes["gen_ai.model"]').segments).toEqual(['attributes', 'gen_ai.model']);
    expect(parsePath('["a\\"b"][0]').segments).toEqual(['a"b', 0]);
    expect(parsePath('$-x:y@z').segments).toEqual(['$-x:y@z']);
  });

  it('refuses bad syntax', () => {
    for (const bad of ['', 'a.', '.a', 'a..b', 'a[', 'a[x]', 'a[01]', 'a[1e3]', 'a]', 'a b', 'a["b"', 'a["b"]c', "a['b']", 'a[9999999999]']) {
      expect(() => parsePath(bad), bad).toThrow(PathSyntaxError);
    }
  });

  it('reads only own members and existing indexes', () => {
    const v = JSON.parse('{"a":{"__proto__":{"x":1},"list":[10,20]}}') as unknown;
    expect(readPath(v, ['a', '__proto__', 'x'])).toBe(1);
    expect(readPath(v, ['a', 'list', 1])).toBe(20);
    expect(readPath(v, ['a', 'list', 2])).toBeUndefined();
    expect(readPath(v, ['a', 'list', '0'])).toBeUndefined();
    expect(readPath(v, ['a', 'constructor'])).toBeUndefined();
    expect(readPath({ b: 1 }, ['__proto__'])).toBeUndefined();
    expect(readPath('str', ['length'])).toBeUndefined();
  });
});

describe('time conversion', () => {
  const ok = (v: unknown, unit: Parameters<typeof convertTime>[1], utc = false) => {
    const r = convertTime(v, unit, utc);
    if (!r.ok) throw new Error(r.why);
    return [r.value, r.lossy];
  };
  const bad = (v: unknown, unit: Parameters<typeof convertTime>[1], utc = false): string => {
    const r = convertTime(v, unit, utc);
    expect(r.ok).toBe(false);
    return r.ok ? '' : r.why;
  };

  it('converts every epoch unit exactly, from numbers and numeric strings', () => {
    expect(ok(1772445900, 'epoch_s')).toEqual(['2026-03-02T10:05:00.000Z', false]);
    expect(ok('1772445900.5', 'epoch_s')).toEqual(['2026-03-02T10:05:00.500Z', false]);
    expect(ok(1772445900.1234, 'epoch_s')).toEqual(['2026-03-02T10:05:00.123Z', true]);
    expect(ok(1772445900123, 'epoch_ms')).toEqual(['2026-03-02T10:05:00.123Z', false]);
    expect(ok('1772445900123456', 'epoch_us')).toEqual(['2026-03-02T10:05:00.123Z', true]);
    expect(ok('1772445900123000000', 'epoch_ns')).toEqual(['2026-03-02T10:05:00.123Z', false]);
    expect(ok('1772445900123000001', 'epoch_ns')).toEqual(['2026-03-02T10:05:00.123Z', true]);
    expect(ok(0, 'epoch_ms')).toEqual(['1970-01-01T00:00:00.000Z', false]);
  });

  it('guesses the epoch unit by magnitude under auto, and reads RFC 3339', () => {
    expect(ok(1772445900, 'auto')[0]).toBe('2026-03-02T10:05:00.000Z');
    expect(ok(1772445900123, 'auto')[0]).toBe('2026-03-02T10:05:00.123Z');
    expect(ok('1772445900123456', 'auto')[0]).toBe('2026-03-02T10:05:00.123Z');
    expect(ok(1772445900123456789n.toString(), 'auto')[0]).toBe('2026-03-02T10:05:00.123Z');
    expect(ok('2026-03-02T11:05:00.123456+01:00', 'auto')).toEqual(['2026-03-02T10:05:00.123Z', true]);
    expect(ok('2026-03-02T10:05:00.120Z', 'rfc3339')).toEqual(['2026-03-02T10:05:00.120Z', false]);
  });

  it('takes a date-time without offset as UTC only with assume_utc', () => {
    expect(bad('2026-03-02T10:05:00', 'rfc3339')).toContain('assume_utc');
    expect(bad('2026-03-02T10:05:00', 'auto')).toContain('assume_utc');
    expect(ok('2026-03-02T10:05:00.000001', 'auto', true)).toEqual(['2026-03-02T10:05:00.000Z', true]);
    expect(ok('2026-03-02T10:05:00+02:00', 'rfc3339', true)[0]).toBe('2026-03-02T08:05:00.000Z');
  });

  it('refuses garbage, negative, non-finite and out-of-range values without quoting them', () => {
    for (const v of ['12abc', '1e9', ' 12', '12 ', '-5', '+5', '0x10', '1.', '.5', '١٢٣', '', CANARY, true, null, {}, [], -1, Number.NaN, Infinity]) {
      expect(bad(v, 'epoch_s')).not.toContain(CANARY);
    }
    expect(bad('253402300800', 'epoch_s')).toContain('9999');
    expect(bad(253402300800000, 'epoch_ms')).toContain('9999');
    expect(bad('99999999999999999999999', 'auto')).not.toBe('');
    expect(bad('10000-01-01T00:00:00Z', 'rfc3339')).toContain('RFC 3339');
    expect(bad('9999-12-31T23:30:00-01:00', 'rfc3339')).toContain('9999');
    expect(bad('2026-02-30T00:00:00Z', 'rfc3339')).toContain('RFC 3339');
    expect(bad('2026-03-02 10:05:00Z', 'auto')).toContain('RFC 3339');
    expect(bad(1772445900, 'rfc3339')).toContain('string');
    expect(bad(`2026-03-02T10:05:00Z${'0'.repeat(100)}`, 'rfc3339')).toContain('RFC 3339');
  });
});

describe('mapped: rules, fields and sources', () => {
  const f = mapping(`  - name: tool
    when: { equals: { kind: tool } }
    fields:
      event_type: { value: tool_invoked }
      tool.name: { path: call.name, required: true }
      tool.arguments: call.args
      actor.id: [user.id, user.email]
      actor.type: { path: user.kind, map: { human: user, bot: agent }, default: system }
      outcome:
        - { value: error, when: { exists: error } }
        - { path: status, map: { ok: success, no: denied } }
      time: { path: ts, time: epoch_ms }
      details.call.id: { path: call.id, as: string }
  - name: other
    when: { any: [{ exists: event }, { in: { kind: [a, b] } }] }
    fields:
      event_type: event
    derive:
      event_type: { template: "{kind}_{sub.step}" }
    keep_rest: details
`);

  it('applies the first rule that matches, with each kind of source', () => {
    const e = one(f, {
      kind: 'tool',
      call: { name: 'search', args: { q: 'x' }, id: 42 },
      user: { email: 'a@b.c', kind: 'bot' },
      status: 'ok',
      ts: 1772445900123,
    });
    expect(e).toEqual({
      event_type: 'tool_invoked',
      tool: { name: 'search', arguments: { q: 'x' } },
      actor: { id: 'a@b.c', type: 'agent' },
      outcome: 'success',
      time: '2026-03-02T10:05:00.123Z',
      // kind was only tested by when:, status changed by map: both stay as written
      details: { call: { id: '42' }, _unmapped: { kind: 'tool', user: { kind: 'bot' }, status: 'ok' } },
    });
    expect(normaliseEvent(e, RECEIVED).actor).toEqual({ id: 'a@b.c', type: 'agent' });
  });

  it('takes the first source that gives a value, and a default when none does', () => {
    const e = one(f, { kind: 'tool', call: { name: 's' }, user: { id: 'u1', email: 'x' }, error: { message: 'boom' }, status: 'ok' });
    expect(e['actor']).toEqual({ id: 'u1', type: 'system' });
    expect(e['outcome']).toBe('error');
    // user.email was not read (user.id was), status was not read (the error source applied): both stay
    expect((e['details'] as Record<string, unknown>)['_unmapped']).toEqual({ kind: 'tool', user: { email: 'x' }, error: { message: 'boom' }, status: 'ok' });
  });

  it('derives event_type from a template when fields leave it unset, and keeps the rest in details', () => {
    const e = one(f, { kind: 'a', sub: { step: 3, more: true } });
    expect(e).toEqual({ event_type: 'a_3', details: { kind: 'a', sub: { step: 3, more: true } } });
    expect(one(f, { event: 'given', kind: 'a' })).toEqual({ event_type: 'given', details: { kind: 'a' } });
  });

  it('refuses what no rule matches, naming nothing from the input', () => {
    const err = refuse(f, { kind: CANARY });
    expect(err.code).toBe('mapping_failed');
    expect(err.field).toBeUndefined();
  });

  it('refuses a missing required value, naming the input path', () => {
    const err = refuse(f, { kind: 'tool', call: { args: {} } });
    expect([err.code, err.field]).toEqual(['mapping_failed', 'call.name']);
    const noType = refuse(f, { kind: 'b' });
    expect([noType.code, noType.field]).toEqual(['mapping_failed', 'event']);
  });

  it('refuses a value of the wrong type at a mapped path, naming it', () => {
    const cases: [unknown, string][] = [
      [{ kind: 'tool', call: { name: { first: CANARY } } }, 'call.name'],
      [{ kind: 'tool', call: { name: 7 } }, 'call.name'],
      [{ kind: 'tool', call: { name: 's' }, user: { id: ['x'] } }, 'user.id'],
      [{ kind: 'tool', call: { name: 's', id: { x: 1 } } }, 'call.id'],
      [{ kind: 'tool', call: { name: 's' }, status: { v: CANARY } }, 'status'],
      [{ kind: 'tool', call: { name: 's' }, ts: `${CANARY}1` }, 'ts'],
      [{ kind: 'tool', call: { name: 's' }, ts: '17724459001234567890123' }, 'ts'],
      [{ kind: 'tool', call: { name: 's' }, ts: 253402300800000 }, 'ts'],
      [{ kind: 'a', sub: { step: { deep: 1 } } }, 'sub.step'],
      [{ event: 12 }, 'event'],
    ];
    for (const [input, field] of cases) {
      const err = refuse(f, input);
      expect([err.code, err.field], field).toEqual(['mapping_failed', field]);
    }
  });

  it('refuses a value that is not an object, and names the element of an array', () => {
    expect(refuse(f, 'x').code).toBe('record_not_object');
    expect(refuse(f, null).code).toBe('record_not_object');
    const a = { kind: 'a', sub: { step: 1 } };
    const err = refuse(f, [a, 5]);
    expect([err.code, err.field]).toEqual(['record_not_object', '[1]']);
    const inner = refuse(f, [a, { kind: 'tool' }]);
    expect([inner.code, inner.field]).toEqual(['mapping_failed', '[1].call.name']);
  });

  it('gives one event per element of an array', () => {
    const out = f.decode([{ kind: 'a', sub: { step: 0 } }, { kind: 'b', sub: { step: 'one' } }]);
    expect(out.map((d) => [d.path, d.event['event_type']])).toEqual([
      ['[0]', 'a_0'],
      ['[1]', 'b_one'],
    ]);
  });

  it('is deterministic and never shares a constant between events', () => {
    const g = mapping(`  - fields:\n      event_type: { value: x }\n      details.tags: { value: [a, b] }\n`);
    const [a, b] = [one(g, {}), one(g, {})];
    expect(a).toEqual(b);
    ((a['details'] as Record<string, unknown>)['tags'] as string[]).push('mutated');
    expect((b['details'] as Record<string, unknown>)['tags']).toEqual(['a', 'b']);
    expect((one(g, {})['details'] as Record<string, unknown>)['tags']).toEqual(['a', 'b']);
  });
});

describe('mapped: what is kept', () => {
  it('keeps a value changed by map, or cut by a time conversion, as written', () => {
    const g = mapping(`  - fields:
      event_type: { value: x }
      outcome: { path: s, map: { ok: success } }
      time: { path: t, time: epoch_us }
      action: { path: a, map: { same: same } }
`);
    const e = one(g, { s: 'ok', t: 1772445900123456, a: 'same' });
    expect(e['outcome']).toBe('success');
    expect((e['details'] as Record<string, unknown>)['_unmapped']).toEqual({ s: 'ok', t: 1772445900123456 });
    const whole = one(g, { s: 'success', t: 1772445900123000, a: 'same' });
    expect(whole['details']).toBeUndefined();
  });

  it('counts a null member as read, and keeps arrays read into whole', () => {
    const g = mapping(`  - fields:\n      event_type: { value: x }\n      action: [a, b]\n      model.name: msgs[0].model\n`);
    const e = one(g, { a: null, b: 'act', msgs: [{ model: 'm', role: 'r' }, { x: 1 }] });
    expect(e['action']).toBe('act');
    expect(e['model']).toEqual({ name: 'm' });
    expect((e['details'] as Record<string, unknown>)['_unmapped']).toEqual({ msgs: [{ model: 'm', role: 'r' }, { x: 1 }] });
  });

  it('merges details and the rest without overwriting: a taken name gets #2', () => {
    const g = mapping(`  - fields:
      event_type: { value: x }
      details: d
      details.note: n
      details.sub.k: k
    keep_rest: details
`);
    const e = one(g, { d: { note: 'from d', sub: 'a string', _unmapped: 1 }, n: 'from n', k: 'v', extra: 'e', note: 'top' });
    expect(e['details']).toEqual({
      note: 'from d',
      sub: 'a string',
      _unmapped: 1,
      'note#2': 'from n',
      'sub#2': { k: 'v' },
      extra: 'e',
      'note#3': 'top',
    });
  });

  it('puts the rest under details._unmapped#2 when the input details hold _unmapped', () => {
    const g = mapping(`  - fields:\n      event_type: { value: x }\n      details: d\n`);
    const e = one(g, { d: { _unmapped: 'theirs' }, other: 1 });
    expect(e['details']).toEqual({ _unmapped: 'theirs', '_unmapped#2': { other: 1 } });
    expect(refuse(g, { d: [1, 2] }).field).toBe('d');
  });

  it('unwraps a batch body only when the array is its only member', () => {
    const g = mapping(`  - fields:\n      event_type: t\n`, 'batch: data\n');
    expect(g.decode({ data: [{ t: 'a' }, { t: 'b' }] }).map((d) => [d.path, d.event['event_type']])).toEqual([
      ['data[0]', 'a'],
      ['data[1]', 'b'],
    ]);
    expect(one(g, { data: [], t: 'c' })).toEqual({ event_type: 'c', details: { _unmapped: { data: [] } } });
    expect(g.decode({ data: [] })).toEqual([]);
    const err = refuse(g, { data: [{ t: 'a' }, { u: 1 }] });
    expect([err.code, err.field]).toEqual(['mapping_failed', 'data[1].t']);
    expect(refuse(g, { data: new Array(10_001).fill({ t: 'a' }) }).code).toBe('record_invalid');
  });
});

describe('mapped: hostile input', () => {
  const g = mapping(`  - fields:
      event_type: t
      actor.id: who.id
      details.meta: meta
`);

  it('keeps "__proto__" members as plain keys and pollutes nothing', () => {
    const input = JSON.parse('{"t":"x","who":{"id":"u","__proto__":{"admin":true}},"__proto__":{"polluted":1},"meta":{"__proto__":{"p":2}}}') as unknown;
    const e = one(g, input);
    const details = e['details'] as Record<string, Record<string, unknown>>;
    expect(Object.hasOwn(details['_unmapped']!, '__proto__')).toBe(true);
    expect(Object.hasOwn(details['_unmapped']!['who'] as object, '__proto__')).toBe(true);
    expect(Object.hasOwn(details['meta']!, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(details['_unmapped'])).toBe(Object.prototype);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(({} as Record<string, unknown>)['admin']).toBeUndefined();
    expect(normaliseEvent(e, RECEIVED).actor).toEqual({ id: 'u', type: 'user' });
  });

  it('does not take prototype members for input: a map lookup of "constructor" or "__proto__" finds nothing', () => {
    const h = mapping(`  - fields:\n      event_type: { value: x }\n      outcome: { path: s, map: { ok: success }, default: error }\n`);
    for (const s of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      expect(one(h, { s })['outcome']).toBe('error');
    }
    expect(refuse(g, { constructor: 'x' }).field).toBe('t');
  });

  it('copes with deep nesting and huge arrays without walking them', () => {
    let deep: unknown = 'leaf';
    for (let i = 0; i < 100_000; i++) deep = { d: deep };
    const big = new Array(1_000_000).fill({ a: 1 });
    const e = one(g, { t: 'x', who: { id: 'u' }, meta: deep, big, nest: deep });
    const details = e['details'] as Record<string, unknown>;
    expect(details['meta']).toBe(deep);
    expect((details['_unmapped'] as Record<string, unknown>)['big']).toBe(big);
    const noId = one(g, { t: 'x', who: deep });
    expect(noId['actor']).toBeUndefined();
    expect(((noId['details'] as Record<string, unknown>)['_unmapped'] as Record<string, unknown>)['who']).toBe(deep);
  });

  it('refuses non-string values where strings are expected, for every value type', () => {
    for (const v of [1, true, { a: 1 }, [1], 1.5e300]) {
      const err = refuse(g, { t: v });
      expect([err.code, err.field]).toEqual(['mapping_failed', 't']);
      const who = refuse(g, { t: 'x', who: { id: v } });
      expect(who.field).toBe('who.id');
    }
  });

  it('refuses an event_type longer than the record allows, naming the input path', () => {
    const err = refuse(g, { t: `${CANARY}${'x'.repeat(128)}` });
    expect([err.code, err.field]).toEqual(['mapping_failed', 't']);
    expect(one(g, { t: 'x'.repeat(128) })['event_type']).toHaveLength(128);
  });

  it('refuses times out of range and numeric strings with garbage, naming the path', () => {
    const h = mapping(`  - fields:\n      event_type: { value: x }\n      time: { path: at.ts, time: auto }\n`);
    for (const ts of ['10000-01-01T00:00:00Z', '+010000-01-01T00:00:00Z', '253402300800000000000', '1772445900x', '17724459 00', `${CANARY}`, -1, { v: 1 }, '2026-03-02T10:05:00']) {
      const err = refuse(h, { at: { ts } });
      expect([err.code, err.field], String(ts)).toEqual(['mapping_failed', 'at.ts']);
    }
    expect(one(h, { at: { ts: '9999-12-31T23:59:59.999Z' } })['time']).toBe('9999-12-31T23:59:59.999Z');
    expect(one(h, { at: {} })['time']).toBeUndefined();
  });
});
