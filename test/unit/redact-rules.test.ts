import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import RE2 from 're2';
import { ConfigError } from '../../src/core/errors.js';
import {
  compileRuleset,
  loadRuleset,
  MAX_RULE_FILE_BYTES,
  MAX_RULES,
  minMatchLength,
  parseRuleFileText,
} from '../../src/sidecar/redact/index.js';

const FIX = join(import.meta.dirname, '../fixtures/redaction');
const PACK = join(import.meta.dirname, '../../config/redaction/pii-basic.yaml');
const tmp = mkdtempSync(join(tmpdir(), 'sealtrail-redact-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

function expectError(fn: () => unknown, code: string, file?: string, line?: number, col?: number): ConfigError {
  const err = configError(fn);
  expect(err.code, err.message).toBe(code);
  if (file !== undefined) expect(err.file).toBe(file);
  if (line !== undefined) expect([err.line, err.col], err.message).toEqual([line, col]);
  return err;
}

function rulesYaml(n: number, prefix = 'r'): string {
  let s = 'rules:\n';
  for (let i = 0; i < n; i++) s += `  - {id: ${prefix}${i}, pattern: 'x${i}y'}\n`;
  return s;
}

describe('rule files', () => {
  it('loads the shipped pack', () => {
    const rs = loadRuleset([PACK]);
    // The first five ids keep their place; the detector-based pack added three.
    expect(rs.ruleIds).toEqual(['email', 'us_ssn', 'payment_card', 'phone_e164', 'ipv4', 'phone_nanp', 'phone_uk', 'ipv6']);
    expect(rs.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('keeps origin places for every rule', () => {
    const specs = parseRuleFileText("rules:\n  - id: a\n    pattern: 'x'\n", 'mem.yaml');
    expect(specs).toEqual([
      {
        id: 'a',
        pattern: 'x',
        origin: {
          rule: { file: 'mem.yaml', line: 2, col: 5 },
          id: { file: 'mem.yaml', line: 2, col: 9 },
          pattern: { file: 'mem.yaml', line: 3, col: 14 },
          replace: { file: 'mem.yaml', line: 2, col: 5 },
        },
      },
    ]);
  });

  it('a backreference is redaction_rule_invalid at the pattern scalar, with RE2s reason', () => {
    const file = join(FIX, 'backref.yaml');
    const err = expectError(() => loadRuleset([file]), 'redaction_rule_invalid', file, 6, 14);
    expect(err.message).toContain('rule "backref"');
    expect(err.message).toContain('invalid escape sequence');
    expect(err.message.startsWith(`${file}:6:14: `)).toBe(true);
  });

  it('a lookahead is redaction_rule_invalid at the pattern scalar', () => {
    const file = join(FIX, 'lookahead.yaml');
    const err = expectError(() => loadRuleset([file]), 'redaction_rule_invalid', file, 3, 16);
    expect(err.message).toContain('invalid perl operator');
  });

  it('a pattern that can match the empty string is refused', () => {
    const file = join(FIX, 'empty-match.yaml');
    const err = expectError(() => loadRuleset([file]), 'redaction_rule_invalid', file, 3, 14);
    expect(err.message).toContain('empty string');
    for (const p of ['a?', '(?:)', '^', '\\b', 'x{0}', '(a|)', '[a]*?']) {
      expect(configError(() => compileRuleset([{ id: 'e', pattern: p }])).code).toBe('redaction_rule_invalid');
    }
  });

  it('duplicate ids in one file point at the second, naming the first', () => {
    const file = join(FIX, 'dup-ids.yaml');
    const err = expectError(() => loadRuleset([file]), 'redaction_rule_duplicate', file, 6, 9);
    expect(err.message).toContain(`first defined at ${file}:2:9`);
  });

  it('duplicate ids across files', () => {
    const a = join(FIX, 'dup-a.yaml');
    const b = join(FIX, 'dup-b.yaml');
    const err = expectError(() => loadRuleset([a, b]), 'redaction_rule_duplicate', b, 4, 9);
    expect(err.message).toContain(`first defined at ${a}:2:9`);
    // The same file twice is composed once (like an include diamond), not a duplicate.
    expect(loadRuleset([a, a]).ruleIds).toEqual(loadRuleset([a]).ruleIds);
  });

  it('unknown keys are errors at the key', () => {
    const file = join(FIX, 'unknown-key.yaml');
    const err = expectError(() => loadRuleset([file]), 'config_schema', file, 4, 5);
    expect(err.message).toContain('did you mean "replace"');
  });

  it('shape errors', () => {
    expectError(() => parseRuleFileText('rules:\n  - id: Email\n    pattern: x\n', 'f.yaml'), 'config_schema', 'f.yaml', 2, 9);
    expectError(() => parseRuleFileText('rules:\n  - id: a\n', 'f.yaml'), 'config_schema', 'f.yaml', 2, 5);
    expectError(() => parseRuleFileText("rules:\n  - id: a\n    pattern: ''\n", 'f.yaml'), 'config_schema', 'f.yaml', 3, 14);
    expectError(() => parseRuleFileText('rules:\n  - id: a\n    pattern: [x]\n', 'f.yaml'), 'config_schema', 'f.yaml', 3, 14);
    expectError(() => parseRuleFileText('rulez: []\n', 'f.yaml'), 'config_schema', 'f.yaml', 1, 1);
    expectError(() => parseRuleFileText('- id: a\n', 'f.yaml'), 'config_schema', 'f.yaml', 1, 1);
    expectError(() => parseRuleFileText('', 'f.yaml'), 'config_schema', 'f.yaml', 1, 1);
    expectError(() => parseRuleFileText(`rules:\n  - id: a\n    pattern: '${'x'.repeat(4097)}'\n`, 'f.yaml'), 'config_schema');
    expect(parseRuleFileText('rules: []\n', 'f.yaml')).toEqual([]);
  });

  it('YAML problems are config_yaml', () => {
    expectError(() => parseRuleFileText('rules:\n\t- id: a\n', 'f.yaml'), 'config_yaml', 'f.yaml', 2, 1);
    expectError(() => parseRuleFileText('rules:\n  - id: a\n    id: b\n    pattern: x\n', 'f.yaml'), 'config_yaml', 'f.yaml', 3, 5);
    expectError(() => parseRuleFileText('rules: [\n', 'f.yaml'), 'config_yaml');
  });

  it('files over 1 MiB are refused', () => {
    const big = join(tmp, 'big.yaml');
    writeFileSync(big, `# ${'x'.repeat(MAX_RULE_FILE_BYTES)}\nrules: []\n`);
    expectError(() => loadRuleset([big]), 'config_io', big);
  });

  it('missing files are config_io', () => {
    expectError(() => loadRuleset([join(tmp, 'nope.yaml')]), 'config_io');
  });

  it(`more than ${MAX_RULES} rules in a file point at the first one over`, () => {
    const file = join(tmp, 'many.yaml');
    writeFileSync(file, rulesYaml(MAX_RULES + 1));
    expectError(() => loadRuleset([file]), 'redaction_too_many_rules', file, MAX_RULES + 2, 5);
    const exact = join(tmp, 'exact.yaml');
    writeFileSync(exact, rulesYaml(MAX_RULES));
    expect(loadRuleset([exact]).ruleIds).toHaveLength(MAX_RULES);
  });

  it(`more than ${MAX_RULES} rules across files`, () => {
    const a = join(tmp, 'a.yaml');
    const b = join(tmp, 'b.yaml');
    writeFileSync(a, rulesYaml(600, 'a'));
    writeFileSync(b, rulesYaml(600, 'b'));
    expectError(() => loadRuleset([a, b]), 'redaction_too_many_rules', b, 402, 5);
    const specs = Array.from({ length: MAX_RULES + 1 }, (_, i) => ({ id: `r${i}`, pattern: `x${i}` }));
    expect(configError(() => compileRuleset(specs)).code).toBe('redaction_too_many_rules');
  });

  it('a full ruleset of 1000 rules still matches correctly', () => {
    const file = join(tmp, 'full.yaml');
    writeFileSync(file, rulesYaml(MAX_RULES));
    const rs = loadRuleset([file]);
    const hits: Record<string, number> = {};
    expect(rs.redact('x0y x999y x1000y x5y', hits)).toBe('[REDACTED:r0] [REDACTED:r999] x1000y [REDACTED:r5]');
    expect(hits).toEqual({ r0: 1, r999: 1, r5: 1 });
  });

  it('rules built in code report errors without a place', () => {
    const err = configError(() => compileRuleset([{ id: 'x', pattern: '(a)\\1' }]));
    expect(err.code).toBe('redaction_rule_invalid');
    expect(err.file).toBeUndefined();
    expect(configError(() => compileRuleset([{ id: 'Bad Id', pattern: 'x' }])).code).toBe('redaction_rule_invalid');
    expect(configError(() => compileRuleset([{ id: 'x', pattern: 'y' }, { id: 'x', pattern: 'z' }])).code).toBe(
      'redaction_rule_duplicate',
    );
  });
});

describe('minMatchLength', () => {
  it.each([
    ['a', 1],
    ['abc', 3],
    ['a*', 0],
    ['a+', 1],
    ['a?b', 1],
    ['a{3}', 3],
    ['a{2,5}', 2],
    ['a{2,}', 2],
    ['a{3}?', 3],
    ['a*?b+?', 1],
    ['(ab)+c?', 2],
    ['(?:ab|c)d', 2],
    ['ab|c', 1],
    ['(?i)abc', 3],
    ['(?i:ab)c', 3],
    ['(?P<n>ab)(?<m>c)', 3],
    ['[]a]b', 2],
    ['[^]]', 1],
    ['[[:alpha:]x]{4}', 4],
    ['[\\]]x', 2],
    ['\\p{L}{2}', 2],
    ['\\pL\\PN', 2],
    ['\\x{41}\\x42', 2],
    ['\\Qa.b\\E', 3],
    ['\\Qab\\E*', 1],
    ['\\Qab', 2],
    ['\\d{3}-\\d{2}', 6],
    ['\\bfoo\\b', 3],
    ['^$', 0],
    ['\\A\\z', 0],
    ['😀', 1],
    ['a{,3}', 5], // not a repetition in RE2: literal "{,3}"
    ['((a|bc)(d|))e', 2],
    ['\\C', 0],
    ['\\101', 1],
    ['(?s).', 1],
  ])('%s → %d', (pattern, n) => {
    expect(new RE2(pattern).source.length).toBeGreaterThan(0); // RE2 accepts it
    expect(minMatchLength(pattern)).toBe(n);
  });

  it('is a lower bound of real matches on a corpus', () => {
    const patterns = ['(?i)[a-z]+@[a-z]+\\.[a-z]{2,}', '\\b[2-6](?:[ -]?[0-9]){12,18}\\b', '(a|bc)+d{2,3}', 'x\\Qy.z\\E?'];
    const corpus = ['a@b.cd', 'AAA@bbb.ccc', '4111 1111 1111 1111', 'ad', 'bcdd', 'abcaddd', 'xy.z', 'xy.', 'bcbcbcddd'];
    for (const p of patterns) {
      const re = new RE2(p, 'g');
      const min = minMatchLength(p);
      for (const s of corpus) for (const m of s.matchAll(re as unknown as RegExp)) expect(m[0].length).toBeGreaterThanOrEqual(min);
    }
  });
});

describe('rule text in memory', () => {
  it('gets the same character checks as a rule file', () => {
    expect(() => parseRuleFileText('rules:\n  - id: a\n    pattern: "x\u0001y"\n', 'mem.yaml')).toThrow(ConfigError);
    expect(() => parseRuleFileText('rules:\n  - id: a\n    pattern: "x\u0001y"\n', 'mem.yaml')).toThrow(/mem\.yaml:3:\d+/);
  });
});
