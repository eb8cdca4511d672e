import { describe, expect, it } from 'vitest';
import { formatSoak, runSoak } from '../../bench/soak.js';

/**
 * The CI variant of `npm run soak`: the same program (bench/soak.ts) with 24
 * random SIGKILLs of the sidecar during ingestion instead of 200. Real
 * processes, real HTTP; SOAK_SEED replays a failing run.
 */
const KILLS = 24;
const SEED = Number(process.env.SOAK_SEED ?? 20261123);

describe('soak: random SIGKILLs of the sidecar during ingestion', () => {
  it(`the collector holds every line exactly once after ${KILLS} kills (seed ${SEED})`, async () => {
    const r = await runSoak({ kills: KILLS, seed: SEED });
    console.log(formatSoak(r));
    expect(r.problems).toEqual([]);
    expect(r.kills).toBe(KILLS);
    expect(r.lines).toBeGreaterThan(5_000);
    expect(r.rotations).toBeGreaterThanOrEqual(1);
    expect(r.missing).toBe(0);
    expect(r.duplicated).toBe(0);
    expect(r.foreign).toBe(0);
    expect(r.stored).toBe(r.lines);
    expect(r.verifyUrl).toBe(0);
    expect(r.verifyDb).toBe(0);
    expect(r.ok).toBe(true);
  }, 600_000);
});
