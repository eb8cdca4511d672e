import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/core/errors.js';
import {
  compileRuleset,
  EMPTY_RULESET,
  loadRuleset,
  MAX_REDACT_DEPTH,
  REDACT_ENGINE_VERSION,
  type RuleSpec,
} from '../../src/sidecar/redact/index.js';

const FIX = join(import.meta.dirname, '../fixtures/redaction');
const EMAIL: RuleSpec = { id: 'email', pattern: '(?i)[a-z0-9._%+-]+@[a-z0-9.-]+\\.[a-z]{2,}' };
const email = compileRuleset([EMAIL]);

function sha256(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex');
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object') {
    for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k]);
    Object.freeze(v);
  }
  return v;
}

describe('walking decoded JSON', () => {
  it('redacts string values at any depth and leaves other values alone', () => {
    const input = { a: 'mail alice@example.com', b: [1, true, null, 'x', { c: 'bob@example.org' }], d: 'plain' };
    expect(email.redact(input)).toEqual({
      a: 'mail [REDACTED:email]',
      b: [1, true, null, 'x', { c: '[REDACTED:email]' }],
      d: 'plain',
    });
  });

  it('top-level scalars', () => {
    expect(email.redact('alice@example.com')).toBe('[REDACTED:email]');
    expect(email.redact(42)).toBe(42);
    expect(email.redact(null)).toBe(null);
    expect(email.redact(false)).toBe(false);
  });

  it('redacts object keys, suffixing collisions "#2", "#3"', () => {
    const out = email.redact({ 'a@example.com': 1, 'b@example.com': 2, 'c@example.com': 3, other: 4 }) as object;
    expect(Object.entries(out)).toEqual([
      ['[REDACTED:email]', 1],
      ['[REDACTED:email]#2', 2],
      ['[REDACTED:email]#3', 3],
      ['other', 4],
    ]);
  });

  it('an existing key that already looks like a label keeps its name and value', () => {
    const out = email.redact({ 'a@example.com': 1, '[REDACTED:email]': 'orig', '[REDACTED:email]#2': 'orig2' }) as object;
    expect(out).toEqual({ '[REDACTED:email]': 'orig', '[REDACTED:email]#2': 'orig2', '[REDACTED:email]#3': 1 });
  });

  it('a "__proto__" key stays an own key and the result keeps a normal prototype', () => {
    const input = JSON.parse('{"__proto__":"alice@example.com","x":{"__proto__":{"y":1}}}') as object;
    const out = email.redact(input) as Record<string, unknown>;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.hasOwn(out, '__proto__')).toBe(true);
    expect(Object.getOwnPropertyDescriptor(out, '__proto__')?.value).toBe('[REDACTED:email]');
    expect(JSON.stringify(out)).toBe('{"__proto__":"[REDACTED:email]","x":{"__proto__":{"y":1}}}');
  });

  it('numbers are matched on their string form and become the redacted string', () => {
    const nine = compileRuleset([{ id: 'nine', pattern: '^[0-9]{9}$' }]);
    const hits: Record<string, number> = {};
    expect(nine.redact({ a: 123456789, b: 1234567890, c: 12345678.9, d: -123456789 }, hits)).toEqual({
      a: '[REDACTED:nine]',
      b: 1234567890,
      c: 12345678.9,
      d: -123456789,
    });
    expect(hits).toEqual({ nine: 1 });
    // A partial hit still turns the number into its redacted string form.
    expect(compileRuleset([{ id: 'p', pattern: '^12' }]).redact(12345)).toBe('[REDACTED:p]345');
  });

  it(`depth ${MAX_REDACT_DEPTH} is fine, ${MAX_REDACT_DEPTH + 1} throws redact_too_deep without the data`, () => {
    const nest = (n: number, leaf: unknown, obj: boolean): unknown => {
      let v = leaf;
      for (let i = 0; i < n; i++) v = obj ? { k: v } : [v];
      return v;
    };
    for (const obj of [false, true]) {
      const ok = email.redact(nest(64, 'alice@example.com', obj));
      expect(JSON.stringify(ok)).toContain('[REDACTED:email]');
      let err: unknown;
      try {
        email.redact(nest(65, 'alice@example.com', obj));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(InputError);
      expect((err as InputError).code).toBe('redact_too_deep');
      expect((err as Error).message).not.toContain('alice');
    }
    // Also with no rules: the limit is structural.
    expect(() => EMPTY_RULESET.redact(nest(65, 1, false))).toThrow(InputError);
  });

  it('never mutates its input; copies only the containers on the path to a change', () => {
    const input = deepFreeze({ 'k@example.com': ['alice@example.com', { n: 'bob@example.org' }], plain: { x: 1 } });
    const before = JSON.stringify(input);
    const out = email.redact(input) as Record<string, unknown>;
    expect(JSON.stringify(input)).toBe(before);
    expect(out).not.toBe(input);
    expect(out['plain']).toEqual({ x: 1 });
    // untouched subtrees are shared (copy on write); input is frozen, so sharing is safe
    expect(out['plain']).toBe(input.plain);
    const same = EMPTY_RULESET.redact(input);
    expect(same).toEqual(input);
  });

  it('counts hits per rule across strings, keys and calls', () => {
    const hits: Record<string, number> = { email: 5 };
    email.redact({ 'a@example.com': 'x b@example.com y c@example.com', z: ['d@example.com'] }, hits);
    expect(hits).toEqual({ email: 9 });
  });

  it('hit counting is safe for ids like "constructor" and "__proto__"', () => {
    const rs = compileRuleset([
      { id: 'constructor', pattern: 'aaa' },
      { id: '__proto__', pattern: 'bbb' },
    ]);
    const hits: Record<string, number> = {};
    expect(rs.redact('aaa bbb bbb', hits)).toBe('[REDACTED:constructor] [REDACTED:__proto__] [REDACTED:__proto__]');
    expect(Object.getPrototypeOf(hits)).toBe(Object.prototype);
    expect(Object.entries(hits)).toEqual([
      ['constructor', 1],
      ['__proto__', 2],
    ]);
  });

  it('replacements are literal text ($ is not special), and may be empty', () => {
    const rs = compileRuleset([{ id: 'x', pattern: 'secret', replace: '$& $1 $$ $<n>' }]);
    expect(rs.redact('a secret b')).toBe('a $& $1 $$ $<n> b');
    const del = compileRuleset([{ id: 'x', pattern: 'secret', replace: '' }]);
    expect(del.redact({ secret: 1, 'secret ': 2, '': 3 })).toEqual({ '': 3, '#2': 1, ' ': 2 });
  });

  it('keeps lone surrogates and astral characters intact around matches', () => {
    expect(email.redact('\ud800 alice@example.com \udc00')).toBe('\ud800 [REDACTED:email] \udc00');
    expect(email.redact('x\udbffalice@example.com')).toBe('x\udbff[REDACTED:email]');
    expect(email.redact('\ud800 nothing here at all')).toBe('\ud800 nothing here at all');
    expect(email.redact('😀😀 alice@example.com 😀')).toBe('😀😀 [REDACTED:email] 😀');
  });

  it('short strings are returned as is without matching', () => {
    const s = 'a@b.c'; // shorter than the 6-character minimum of the email rule
    expect(email.redact(s)).toBe(s);
  });

  it('runs in linear time on inputs that make backtracking engines explode', () => {
    const rs = compileRuleset([{ id: 'evil', pattern: '(a+)+$' }, { id: 'evil2', pattern: '(x|x)*y' }]);
    const as = `${'a'.repeat(50_000)}!`;
    expect(rs.redact(as)).toBe(as);
    expect(rs.redact('x'.repeat(50_000))).toBe('x'.repeat(50_000));
    email.redact(`${'a'.repeat(1_000_000)}@`);
  });
});

describe('combining rules into one scan', () => {
  it('uses a combined program when it can', () => {
    expect(email.mode).toBe('combined');
    expect(EMPTY_RULESET.ruleIds).toEqual([]);
  });

  it('attributes matches to the right rule even when rules have their own groups', () => {
    const rs = compileRuleset([
      { id: 'one', pattern: '(a)(b)(?:c)(d)?' },
      { id: 'two', pattern: '(?P<x>x)(y)' },
      { id: 'three', pattern: '(?i)(z+)' },
    ]);
    const hits: Record<string, number> = {};
    expect(rs.redact('abc xy ZZz abcd abc', hits)).toBe('[REDACTED:one] [REDACTED:two] [REDACTED:three] [REDACTED:one] [REDACTED:one]');
    expect(hits).toEqual({ one: 3, two: 1, three: 1 });
  });

  it('the earliest match wins; at the same start, the earlier rule wins', () => {
    const rs = compileRuleset([
      { id: 'short', pattern: 'bc' },
      { id: 'long', pattern: 'abcd' },
    ]);
    expect(rs.redact('abcd')).toBe('[REDACTED:long]');
    const tie = compileRuleset([
      { id: 'first', pattern: 'ab' },
      { id: 'second', pattern: 'abc' },
    ]);
    expect(tie.redact('abc')).toBe('[REDACTED:first]c');
  });

  it('inline flags stay inside their own rule', () => {
    const rs = compileRuleset([
      { id: 'ci', pattern: '(?i)abc' },
      { id: 'cs', pattern: 'xyz' },
    ]);
    expect(rs.redact('ABC XYZ xyz')).toBe('[REDACTED:ci] XYZ [REDACTED:cs]');
  });

  it('rules a single textual alternation could not hold give the same results', () => {
    const specs = (named: boolean): RuleSpec[] => [
      { id: 'email', pattern: EMAIL.pattern },
      { id: 'ab', pattern: named ? '(?P<g>a)b+' : '(a)b+' },
      { id: 'bc', pattern: named ? '(?P<g>b)c' : '(b)c' },
      { id: 'num', pattern: '[0-9]{3,}' },
      { id: 'quoted', pattern: '\\Qx.y' },
    ];
    const fallback = compileRuleset(specs(true));
    const combined = compileRuleset(specs(false).map((s) => (s.id === 'quoted' ? { ...s, pattern: 'x\\.y' } : s)));
    // Both run through one RE2.Set, which compiles each pattern on its own, so
    // duplicate group names and an unterminated \Q no longer force per-rule mode.
    expect(fallback.mode).toBe('combined');
    expect(combined.mode).toBe('combined');
    const corpus = [
      'abbbc bc abc',
      'a@example.com 12 123 4567 ab',
      'x.y xzy',
      'bcbcbc abab 999a@b.co',
      '😀abb😀bc😀123',
      '\ud800bc',
      '',
      'nothing',
    ];
    for (const s of corpus) {
      const h1: Record<string, number> = {};
      const h2: Record<string, number> = {};
      expect(fallback.redact({ [s]: s }, h1)).toEqual(combined.redact({ [s]: s }, h2));
      expect(h1).toEqual(h2);
    }
    expect(fallback.redact('x.y')).toBe('[REDACTED:quoted]');
  });
});

describe('ruleset hash', () => {
  it('is SHA-256 over a canonical description (engine version, decode, max_depth, rules)', () => {
    const rs = compileRuleset([{ id: 'a', pattern: 'x+', replace: '[A]' }, { id: 'b', pattern: 'y' }]);
    const rule = (id: string, pattern: string, replace: string): object => ({
      id,
      pattern,
      validator: null,
      value_group: false,
      keys: true,
      scope: null,
      operator: { kind: 'replace', replace },
    });
    const expected = sha256(
      JSON.stringify({
        engine: REDACT_ENGINE_VERSION,
        decode: { base64: true, percent: true, nfkc: true },
        max_depth: 64,
        rules: [rule('a', 'x+', '[A]'), rule('b', 'y', '[REDACTED:b]')],
      }),
    );
    expect(rs.hash).toBe(expected);
    expect(EMPTY_RULESET.hash).toBe(
      sha256(`{"engine":"${REDACT_ENGINE_VERSION}","decode":{"base64":true,"percent":true,"nfkc":true},"max_depth":64,"rules":[]}`),
    );
    expect(loadRuleset([]).hash).toBe(EMPTY_RULESET.hash);
  });

  it('is stable: same rules, same hash, whatever the file formatting or descriptions', () => {
    const a = loadRuleset([join(FIX, 'basic.yaml')]);
    const b = loadRuleset([join(FIX, 'basic-reformatted.yaml')]);
    expect(a.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(b.hash).toBe(a.hash);
    expect(loadRuleset([join(FIX, 'basic.yaml')]).hash).toBe(a.hash);
  });

  it('changes with any id, pattern, replacement or order change', () => {
    const base: RuleSpec[] = [
      { id: 'a', pattern: 'x+' },
      { id: 'b', pattern: 'y' },
    ];
    const variants: RuleSpec[][] = [
      [{ id: 'a2', pattern: 'x+' }, base[1]!],
      [{ id: 'a', pattern: 'x*x' }, base[1]!],
      [{ id: 'a', pattern: 'x+', replace: '[X]' }, base[1]!],
      [base[1]!, base[0]!],
      [base[0]!],
    ];
    const hashes = new Set([compileRuleset(base).hash, ...variants.map((v) => compileRuleset(v).hash)]);
    expect(hashes.size).toBe(variants.length + 1);
    expect(compileRuleset(base).hash).toBe(compileRuleset(base.map((r) => ({ ...r, description: 'changed' }))).hash);
  });
});
