import { describe, expect, it } from 'vitest';
import { roundOrder } from '../../bench/baseline.js';
import { cpuPercents, linesDue, phaseFigures, phases, type Sample } from '../../bench/footprint.js';
import { median, percentile } from '../../bench/proc-stats.js';

/**
 * The arithmetic behind bench:footprint and `npm run bench -- --baseline`:
 * pacing, per-second CPU samples, percentiles and the alternating order.
 * Nothing here measures speed.
 */
describe('bench helpers', () => {
  it('paces a phase to exactly rate x seconds lines, evenly', () => {
    expect(linesDue(100, 0)).toBe(0);
    expect(linesDue(100, 9)).toBe(0);
    expect(linesDue(100, 10)).toBe(1);
    expect(linesDue(1000, 10)).toBe(10);
    expect(linesDue(1000, 60_000)).toBe(60_000);
    expect(linesDue(100, -5)).toBe(0);
    // every 10 ms tick of a 1,000/s phase writes 10 lines, never a second's worth at once
    const perTick = Array.from({ length: 100 }, (_, i) => linesDue(1000, (i + 1) * 10) - linesDue(1000, i * 10));
    expect(new Set(perTick)).toEqual(new Set([10]));
  });

  it('takes nearest-rank percentiles, one of the samples', () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(xs, 0.5)).toBe(50);
    expect(percentile(xs, 0.95)).toBe(95);
    expect(percentile(xs, 0.99)).toBe(99);
    expect(percentile(xs, 1)).toBe(100);
    expect(percentile([7], 0.99)).toBe(7);
    expect(percentile([], 0.5)).toBeNaN();
    expect(percentile([1, 2, 3], 0)).toBe(1);
  });

  it('takes the median of values in any order', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });

  it('makes CPU % of one core per interval, and the phase mean over its whole span', () => {
    const s: Sample[] = [
      { t: 0, cpu: 10, rss: 50 },
      { t: 1000, cpu: 10.02, rss: 52 },
      { t: 2000, cpu: 10.02, rss: 54 },
      { t: 4000, cpu: 10.1, rss: 54 },
    ];
    const per = cpuPercents(s);
    expect(per.map((x) => Math.round(x * 100) / 100)).toEqual([2, 0, 4]);
    const f = phaseFigures(s);
    expect(f.cpuMean).toBeCloseTo(2.5, 6);
    expect(f.cpuP95).toBeCloseTo(4, 6);
    expect(f.rssMean).toBe(52.5);
    expect(f.rssMax).toBe(54);
  });

  it('runs idle, 100/s, 1,000/s, then full speed unless left out', () => {
    expect(phases(true).map((p) => p.rate)).toEqual([0, 100, 1000, 'full']);
    expect(phases(false).map((p) => p.rate)).toEqual([0, 100, 1000]);
  });

  it('alternates which stack runs first, round by round', () => {
    expect([0, 1, 2, 3].map((r) => roundOrder(r, 'b', 'c').join(''))).toEqual(['bc', 'cb', 'bc', 'cb']);
  });
});
