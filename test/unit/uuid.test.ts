import { describe, expect, it } from 'vitest';
import { uuidv7 } from '../../src/core/uuid.js';

const FORMAT = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function timestampOf(u: string): number {
  return Number.parseInt(u.replace(/-/g, '').slice(0, 12), 16);
}

function bytesOf(u: string): Buffer {
  return Buffer.from(u.replace(/-/g, ''), 'hex');
}

describe('uuidv7', () => {
  it('has the RFC 9562 text form, version 7 and variant 10', () => {
    for (let i = 0; i < 2000; i++) {
      const u = uuidv7();
      expect(u).toMatch(FORMAT);
      const b = bytesOf(u);
      expect(b.length).toBe(16);
      expect(b[6]! >> 4).toBe(7);
      expect(b[8]! >> 6).toBe(0b10);
    }
  });

  it('encodes the given millisecond timestamp in the first 48 bits', () => {
    for (const ms of [0, 1, 1_704_067_200_123, 2 ** 40 + 12345, 2 ** 48 - 1]) {
      expect(timestampOf(uuidv7(ms))).toBe(ms);
    }
    expect(uuidv7(1_704_067_200_123).slice(0, 13)).toBe('018cc251-f47b');
  });

  it('floors fractional and clamps negative timestamps', () => {
    expect(timestampOf(uuidv7(1234.9))).toBe(1234);
    expect(timestampOf(uuidv7(-5))).toBe(0);
  });

  it('defaults to the current time', () => {
    const before = Date.now();
    const u = uuidv7();
    const after = Date.now();
    const t = timestampOf(u);
    expect(t).toBeGreaterThanOrEqual(before);
    expect(t).toBeLessThanOrEqual(after);
  });

  it('is unique across many calls, including across random-pool refills', () => {
    const n = 20_000; // the pool holds 1638 draws, so this refills it a dozen times
    const seen = new Set<string>();
    for (let i = 0; i < n; i++) seen.add(uuidv7(1_700_000_000_000));
    expect(seen.size).toBe(n);
  });

  it('has random bits that are not constant', () => {
    const tails = new Set<string>();
    for (let i = 0; i < 100; i++) tails.add(uuidv7(42).slice(15));
    expect(tails.size).toBe(100);
    // every hex digit of the random part should vary over many samples
    const sample = Array.from({ length: 500 }, () => uuidv7(42).replace(/-/g, ''));
    for (const pos of [13, 14, 15, 17, 18, 20, 25, 31]) {
      expect(new Set(sample.map((s) => s[pos])).size).toBeGreaterThan(4);
    }
  });

  it('timestamps of successive calls never go backwards, and order follows time', () => {
    let prev = 0;
    for (let i = 0; i < 5000; i++) {
      const t = timestampOf(uuidv7());
      expect(t).toBeGreaterThanOrEqual(prev);
      prev = t;
    }
    const a = uuidv7(1_000_000);
    const b = uuidv7(1_000_001);
    const c = uuidv7(2 ** 47);
    expect([c, b, a].sort()).toEqual([a, b, c]);
  });

  it('returns independent strings (the shared random pool is copied, not aliased)', () => {
    const a = uuidv7(1);
    const b = uuidv7(1);
    expect(a).not.toBe(b);
    expect(a.slice(0, 14)).toBe(b.slice(0, 14));
  });
});
