import { describe, expect, it } from 'vitest';
import { Backoff, backoffDelay, DEFAULT_BACKOFF, type BackoffPolicy } from '../../src/client/backoff.js';

/** The client's reconnect delays: exponential, never above maxDelayMs, jittered downwards only, reset by an answer. */

const P: BackoffPolicy = { initialDelayMs: 100, maxDelayMs: 2_000, multiplier: 2, jitter: 0.5 };

describe('backoffDelay', () => {
  it('grows by the multiplier up to maxDelayMs when random() is 0 (no jitter drawn)', () => {
    const d = Array.from({ length: 8 }, (_, a) => backoffDelay(a, P, () => 0));
    expect(d).toEqual([100, 200, 400, 800, 1600, 2000, 2000, 2000]);
  });

  it('takes at most `jitter` of the delay off, in proportion to random()', () => {
    expect(backoffDelay(0, P, () => 0.999999)).toBe(50);
    expect(backoffDelay(3, P, () => 0.5)).toBe(600);
    expect(backoffDelay(20, P, () => 0.5)).toBe(1500);
  });

  it('stays within [max·(1-jitter), max] for any attempt, huge ones included', () => {
    for (const attempt of [10, 100, 1e6, Number.MAX_SAFE_INTEGER]) {
      for (const r of [0, 0.3, 0.999]) {
        const d = backoffDelay(attempt, P, () => r);
        expect(d).toBeGreaterThanOrEqual(1000);
        expect(d).toBeLessThanOrEqual(2000);
      }
    }
  });

  it('with Math.random, every delay lies in its band', () => {
    for (let a = 0; a < 12; a++) {
      const ceiling = Math.min(DEFAULT_BACKOFF.maxDelayMs, DEFAULT_BACKOFF.initialDelayMs * 2 ** a);
      for (let i = 0; i < 50; i++) {
        const d = backoffDelay(a, DEFAULT_BACKOFF);
        expect(d).toBeGreaterThanOrEqual(Math.floor(ceiling * (1 - DEFAULT_BACKOFF.jitter)));
        expect(d).toBeLessThanOrEqual(ceiling);
      }
    }
  });
});

describe('Backoff', () => {
  it('counts failures and starts over after reset()', () => {
    const b = new Backoff(P, () => 0);
    expect([b.next(), b.next(), b.next()]).toEqual([100, 200, 400]);
    expect(b.failures).toBe(3);
    b.reset();
    expect(b.failures).toBe(0);
    expect(b.next()).toBe(100);
  });
});
