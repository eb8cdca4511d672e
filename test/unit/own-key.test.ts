import { describe, expect, it } from 'vitest';
import { defineKey } from '../../src/core/own-key.js';
import { wellFormed } from '../../src/core/record.js';

describe('defineKey', () => {
  it('makes every key an own, enumerable member, "__proto__" and the names Object.prototype holds included', () => {
    const o: Record<string, unknown> = {};
    for (const k of ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', 'a']) defineKey(o, k, { k });
    expect(Object.getPrototypeOf(o)).toBe(Object.prototype);
    expect(Object.keys(o)).toEqual(['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', 'a']);
    expect(JSON.stringify(o)).toBe('{"__proto__":{"k":"__proto__"},"constructor":{"k":"constructor"},"toString":{"k":"toString"},"hasOwnProperty":{"k":"hasOwnProperty"},"valueOf":{"k":"valueOf"},"a":{"k":"a"}}');
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
  });
});

describe('wellFormed copies only what it repairs', () => {
  it('returns the very same objects when nothing needs repair, and a copy with members in order when something does', () => {
    const clean = JSON.parse('{"a":{"b":[1,"x"]},"__proto__":{"c":"d"},"e":"f"}');
    expect(wellFormed(clean)).toBe(clean);
    const dirty = JSON.parse('{"a":{"b":[1,"x"]},"k\\ud800":"v","m":"\\udc00","__proto__":{"c":"d"}}');
    const counter = { lone_surrogates: 0, keys_renamed: 0 };
    const fixed = wellFormed(dirty, 0, counter) as Record<string, unknown>;
    expect(fixed).not.toBe(dirty);
    expect(fixed.a).toBe(dirty.a);
    expect(Object.keys(fixed)).toEqual(['a', 'm', '__proto__', 'k\ufffd']);
    expect(fixed.m).toBe('\ufffd');
    expect(Object.getPrototypeOf(fixed)).toBe(Object.prototype);
    expect(counter.lone_surrogates).toBe(2);
  });
});
