/**
 * Stage 2 is told which rules the probe ruled out for a string (its probe
 * groups), but keeps one matcher per rule subset (scope, key or value), not
 * one per mix of groups: with the five bundled packs there are ten probe
 * groups, so strings mixing PII of different kinds name up to 1,023 mixes,
 * and a matcher per mix would compile RE2 Sets for nearly every string once
 * the cache (256) overflowed. Anyone who writes event text could force that.
 */
import { describe, expect, it } from 'vitest';
import { loadRuleset } from '../../src/sidecar/redact/index.js';

const PACKS = ['pii-basic', 'gdpr', 'hipaa', 'pci', 'secrets'].map((p) => `config/redaction/${p}.yaml`);

// Each hits a different set of probe groups of the five packs together.
const SAMPLES = [
  'DE89370400440532013000',
  'AB123456C',
  'aged 93 years',
  'PIN: 1234',
  '4111 1111 1111 1111',
  'bob@example.com',
  '+447700900123',
  'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abcdefghijk',
  'AKIAIOSFODNN7EXAMPLE',
  'password=hunter2x',
];

describe('stage 2 matchers under every mix of probe groups', () => {
  const rs = loadRuleset(PACKS);
  const records: { note: string }[] = [];
  for (let sub = 1; sub < 1 << SAMPLES.length; sub++) records.push({ note: SAMPLES.filter((_, i) => sub & (1 << i)).join(' | ') });

  it('redacts each exactly as every rule on every string does', () => {
    for (const v of records.slice(0, 300)) expect(rs.redact(v)).toEqual(rs.redactUnprobed(v));
  });

  it('builds no new matcher once warm, whatever the mix', () => {
    for (const v of records) rs.redact(v); // warm up
    const matchers = (rs as unknown as { matchers: Map<string, unknown> }).matchers;
    const before = [...matchers.keys()];
    let built = 0;
    const set = matchers.set.bind(matchers);
    matchers.set = (k: string, m: unknown) => {
      built++;
      return set(k, m);
    };
    for (const v of records) rs.redact(v);
    expect(built).toBe(0);
    expect(before.length).toBeLessThanOrEqual(4);
  });
});
