import { describe, expect, it } from 'vitest';
import { classifyStatus, fullJitterDelay, parseRetryAfter } from '../../src/sidecar/ship/backoff.js';

const NOW = Date.UTC(2026, 4, 1, 12, 0, 0);

function seq(values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length]!;
}

describe('fullJitterDelay', () => {
  it('is 0 when random() is 0', () => {
    for (let a = 0; a < 40; a++) expect(fullJitterDelay(a, 100, 10_000, () => 0)).toBe(0);
  });

  it('approaches but never reaches the exponential cap', () => {
    const almost = () => 0.999999999;
    expect(fullJitterDelay(0, 100, 10_000, almost)).toBe(99);
    expect(fullJitterDelay(1, 100, 10_000, almost)).toBe(199);
    expect(fullJitterDelay(3, 100, 10_000, almost)).toBe(799);
    expect(fullJitterDelay(6, 100, 10_000, almost)).toBe(6399);
    expect(fullJitterDelay(7, 100, 10_000, almost)).toBe(9999);
    expect(fullJitterDelay(50, 100, 10_000, almost)).toBe(9999);
  });

  it('is proportional to random() within the cap', () => {
    expect(fullJitterDelay(2, 100, 10_000, () => 0.5)).toBe(200);
    expect(fullJitterDelay(10, 100, 10_000, () => 0.25)).toBe(2500);
  });

  it('stays within [0, max] for any attempt, including huge ones', () => {
    const rnd = seq([0, 0.1, 0.5, 0.9, 0.999999]);
    for (const attempt of [0, 1, 5, 29, 30, 31, 64, 1000, 1e9, Number.MAX_SAFE_INTEGER]) {
      for (let i = 0; i < 5; i++) {
        const d = fullJitterDelay(attempt, 250, 30_000, rnd);
        expect(Number.isInteger(d)).toBe(true);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThan(30_000);
      }
    }
  });

  it('uses Math.random by default and stays in bounds', () => {
    for (let i = 0; i < 1000; i++) {
      const d = fullJitterDelay(3, 10, 50);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(50);
    }
  });
});

describe('parseRetryAfter', () => {
  it('reads delta-seconds', () => {
    expect(parseRetryAfter('0', NOW)).toBe(0);
    expect(parseRetryAfter('1', NOW)).toBe(1000);
    expect(parseRetryAfter('120', NOW)).toBe(120_000);
    expect(parseRetryAfter(' 5 ', NOW)).toBe(5000);
  });

  it('takes the first of repeated headers', () => {
    expect(parseRetryAfter(['2', '300'], NOW)).toBe(2000);
  });

  it('caps huge values so a hostile collector cannot park the shipper', () => {
    expect(parseRetryAfter('9999999999', NOW)).toBe(10 * 60_000);
    expect(parseRetryAfter('601', NOW)).toBe(10 * 60_000);
    expect(parseRetryAfter('600', NOW)).toBe(10 * 60_000);
    expect(parseRetryAfter('3600', NOW, 5000)).toBe(5000);
    const far = new Date(NOW + 30 * 86_400_000).toUTCString();
    expect(parseRetryAfter(far, NOW)).toBe(10 * 60_000);
  });

  it('reads an HTTP-date relative to now', () => {
    const in30 = new Date(NOW + 30_000).toUTCString();
    expect(parseRetryAfter(in30, NOW)).toBe(30_000);
    expect(parseRetryAfter('Fri, 01 May 2026 12:00:07 GMT', NOW)).toBe(7000);
  });

  it('treats an HTTP-date in the past as "now"', () => {
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT', NOW)).toBe(0);
  });

  it('returns undefined when absent or garbage', () => {
    expect(parseRetryAfter(undefined, NOW)).toBeUndefined();
    expect(parseRetryAfter([], NOW)).toBeUndefined();
    for (const g of ['', '   ', 'garbage', 'soon', '1e3', '0x10', '99999999999999999999', 'NaN', 'Infinity']) {
      expect(parseRetryAfter(g, NOW)).toBeUndefined();
    }
  });

  it('never yields a negative or over-cap wait for malformed numbers', () => {
    // RFC 9110 allows only non-negative integers; whatever the parser makes of
    // these, the wait must stay in [0, cap].
    for (const g of ['-1', '-100', '1.5', '+5', 'March 1', '2024', '3000']) {
      const v = parseRetryAfter(g, NOW);
      if (v !== undefined) {
        expect(v).toBeGreaterThanOrEqual(0);
        expect(v).toBeLessThanOrEqual(10 * 60_000);
      }
    }
  });
});

describe('classifyStatus', () => {
  it.each([200, 201])('%i is an ack', (s) => expect(classifyStatus(s)).toBe('ack'));
  it.each([408, 429, 500, 502, 503, 504, 599])('%i is retried', (s) => expect(classifyStatus(s)).toBe('retry'));
  it.each([100, 202, 204, 301, 302, 304, 400, 401, 403, 404, 405, 409, 410, 413, 415, 422])('%i halts', (s) =>
    expect(classifyStatus(s)).toBe('halt'),
  );
});
