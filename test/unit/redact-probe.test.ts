import { describe, expect, it, vi } from 'vitest';
import { compileRuleset, loadRuleset } from '../../src/sidecar/redact/index.js';
import { compileRe2, withoutCaptures } from '../../src/sidecar/redact/pattern.js';
import { RuleSieve } from '../../src/sidecar/redact/rule-sieve.js';

const realMatching = RuleSieve.prototype.matching;
import { prng as mulberry32 } from '../helpers/prng.js';


const PIECES = [
  'bob@example.com', 'x', '123-45-6789', '4111 1111 1111 1111', '+447700900123', '10.0.0.1', 'plain text',
  'a@b', '@', '.com', '555', '-', ' ', '\u0000', 'ü', '😀', '\ud800', '12', '1.2.3', 'mail me: ',
];

function randomString(r: () => number): string {
  let s = '';
  const n = Math.floor(r() * 4);
  for (let i = 0; i < n; i++) s += PIECES[Math.floor(r() * PIECES.length)];
  return s;
}

function randomValue(r: () => number, depth = 0): unknown {
  const k = r();
  if (depth > 3 || k < 0.4) return randomString(r);
  if (k < 0.5) return Math.floor(r() * 1e10);
  if (k < 0.55) return 123456789;
  if (k < 0.6) return r() < 0.5;
  if (k < 0.75) return Array.from({ length: Math.floor(r() * 4) }, () => randomValue(r, depth + 1));
  const o: Record<string, unknown> = {};
  for (let i = Math.floor(r() * 4); i > 0; i--) o[randomString(r) || `k${i}`] = randomValue(r, depth + 1);
  return o;
}

describe('whole-record probe', () => {
  const rs = loadRuleset(['config/redaction/pii-basic.yaml']);

  it('gives exactly what redacting every string one by one gives (2,000 random records)', () => {
    const r = mulberry32(7);
    for (let i = 0; i < 2000; i++) {
      const v = randomValue(r);
      const h1: Record<string, number> = {};
      const h2: Record<string, number> = {};
      const fast = rs.redact(v, h1);
      const slow = rs.redactUnprobed(v, h2);
      expect(fast).toEqual(slow);
      expect(h1).toEqual(h2);
    }
  });

  it('finds PII in a key, a number and a deep value of the same record', () => {
    const hits: Record<string, number> = {};
    const out = rs.redact({ 'carol@example.org': 1, n: 123456789, a: [{ b: { c: 'ssn 078-05-1120' } }] }, hits) as Record<string, unknown>;
    expect(JSON.stringify(out)).not.toMatch(/carol|078-05-1120/);
    expect(hits.email).toBe(1);
    // 123456789 as a JSON number is a bare SSN to the us_ssn detector: two hits.
    expect(out['n']).toBe('[REDACTED:us_ssn]');
    expect(hits.us_ssn).toBe(2);
  });

  it('is not fooled by anchored rules (falls back to per-string matching)', () => {
    const anchored = compileRuleset([{ id: 'whole', pattern: '^secret$' }]);
    expect(anchored.redact({ a: 'secret', b: 'not secret' })).toEqual({ a: '[REDACTED:whole]', b: 'not secret' });
  });
});

describe('withoutCaptures', () => {
  it.each([
    ['(a)(b)', '(?:a)(?:b)'],
    ['(?P<x>a)|(?<y>b)', '(?:a)|(?:b)'],
    ['[(]x', '[(]x'],
    ['[]()]', '[]()]'],
    ['[^]()]', '[^]()]'],
    ['[[:alpha:]](z)', '[[:alpha:]](?:z)'],
    ['\\(a\\)', '\\(a\\)'],
    ['(?i)(a)', '(?i)(?:a)'],
    ['(?:a)', '(?:a)'],
  ])('%s → %s', (input, expected) => {
    expect(withoutCaptures(input)).toBe(expected);
  });

  it('refuses \\Q...\\E, where the group syntax cannot be told apart', () => {
    expect(withoutCaptures('\\Q(a)\\E')).toBeUndefined();
  });

  it('matches the same strings as the original on a corpus', () => {
    const patterns = ['(a|b)+c', '[(]+(x)', '(?i)(foo)(bar)?', '[]a](b)'];
    const inputs = ['abc', 'aac', '((x', 'FOO', 'foobar', ']b', 'ab', 'c', '(x'];
    for (const p of patterns) {
      const a = compileRe2(p);
      const b = compileRe2(withoutCaptures(p)!);
      if (!('re' in a) || !('re' in b)) throw new Error('pattern did not compile');
      for (const s of inputs) expect(b.re.test(s)).toBe(a.re.test(s));
    }
  });
});

describe('stage 2 asks only the rules of the groups the probe saw', () => {
  // Twelve literal rules: three probe groups of five, five and two.
  const words = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliet', 'kilo', 'lima'];
  const rules = words.map((w) => ({ id: w, pattern: `${w}[0-9]+` }));
  const rs = compileRuleset(rules);
  const matcherKeys = (): string[] => [...(rs as unknown as { matchers: Map<string, unknown> }).matchers.keys()];

  it('redacts exactly as every rule on every string would, over random mixes of the groups', () => {
    const r = mulberry32(11);
    for (let i = 0; i < 1500; i++) {
      const pick = (): string => {
        let s = '';
        for (let n = Math.floor(r() * 4); n > 0; n--) s += `${words[Math.floor(r() * words.length)]}${r() < 0.7 ? Math.floor(r() * 99) : ''} `;
        return s;
      };
      const v = { a: pick(), [pick() || 'k']: [pick(), { b: pick() }] };
      const h1: Record<string, number> = {};
      const h2: Record<string, number> = {};
      expect(rs.redact(v, h1)).toEqual(rs.redactUnprobed(v, h2));
      expect(h1).toEqual(h2);
    }
  });

  it('sieves a string where one group matched for that group\'s rules only, with the one matcher of all rules', () => {
    const asked: (number[] | undefined)[] = [];
    const matching = vi.spyOn(RuleSieve.prototype, 'matching').mockImplementation(function (this: RuleSieve, input, allow) {
      asked.push(allow ? [...allow.keys()].filter((i) => allow[i]) : undefined);
      return realMatching.call(this, input, allow);
    });
    try {
      const out = rs.redact({ note: 'call kilo7 now', other: 'nothing here' }) as Record<string, string>;
      expect(out.note).toBe('call [REDACTED:kilo] now');
    } finally {
      matching.mockRestore();
    }
    // Asked about the last group's rules (kilo, lima) only, not all twelve.
    expect(asked).toEqual([[10, 11]]);
    // No matcher of its own for that mix of groups: one per rule subset, not per mask.
    expect(matcherKeys().sort()).toEqual(['all', 'keys']);
  });

  it('redacts with a ruleset whose only rule is a triggered one (no probe at all)', () => {
    const only = compileRuleset([{ id: 'sf', pattern: '[\\s\\S]+', scope: { include: ['$.password'] } }]);
    const v = { password: 'hunter2', other: 'x' };
    expect(only.redact(v)).toEqual(only.redactUnprobed(v));
    expect((only.redact(v) as Record<string, string>).other).toBe('x');
    expect(JSON.stringify(only.redact(v))).not.toContain('hunter2');
  });

  it('keeps every rule in play when there are more groups than a mask has bits', () => {
    const many = Array.from({ length: 160 }, (_, i) => ({ id: `r${i}`, pattern: `tok${i}x[0-9]+` }));
    const big = compileRuleset(many);
    const v = { a: 'tok3x1 and tok157x22', b: ['tok80x5'] };
    const hits: Record<string, number> = {};
    expect(big.redact(v, hits)).toEqual(big.redactUnprobed(v));
    expect(hits).toEqual({ r3: 1, r157: 1, r80: 1 });
  });
});
