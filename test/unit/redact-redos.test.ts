/**
 * Rule patterns are RE2 only: what RE2 cannot run in linear time
 * (backreferences, lookaround, atomic groups, possessive quantifiers,
 * recursion, ...) is refused when the rule file loads, with the pattern's
 * file:line:col and RE2's own reason. The classic catastrophic-backtracking
 * shapes that RE2 *can* run — `(a+)+$` and friends — load, and return on
 * adversarial input (RE2 is linear; no timing is asserted here, bench/redact.ts
 * measures growth).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import RE2 from 're2';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.js';
import { loadRuleset } from '../../src/sidecar/redact/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'sealtrail-redos-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let files = 0;
/** A rule file whose second rule has `pattern`; the pattern's value sits on line 5. */
function ruleFile(pattern: string): { file: string; line: number } {
  const file = join(tmp, `rules-${++files}.yaml`);
  // YAML single quotes: backslashes are literal, a quote is doubled.
  writeFileSync(file, `rules:\n  - id: ok\n    pattern: 'abc'\n  - id: suspect\n    pattern: '${pattern.replace(/'/g, "''")}'\n`);
  return { file, line: 5 };
}

/** RE2's reason for refusing a pattern, as node-re2 reports it. */
function re2Reason(pattern: string): string {
  try {
    new RE2(pattern, 'u');
  } catch (err) {
    return (err as Error).message.replace(/^Invalid regular expression:\s*/, '');
  }
  throw new Error(`RE2 accepts ${pattern}`);
}

function loadError(paths: string[]): ConfigError {
  try {
    loadRuleset(paths);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected loadRuleset to throw');
}

describe('patterns RE2 refuses are refused at load, naming file:line:col and the RE2 reason', () => {
  const refused: Array<[string, string]> = [
    ['backreference', '(a)\\1'],
    ['named backreference \\k<n>', '(?<n>a)\\k<n>'],
    ['Python named backreference (?P=n)', '(?P<n>a)(?P=n)'],
    ['lookahead', '(?=a)b'],
    ['negative lookahead', 'x(?!a)'],
    ['lookbehind', '(?<=a)b'],
    ['negative lookbehind', '(?<!a)b'],
    ['atomic group', '(?>a+)b'],
    ['possessive +', 'a++b'],
    ['possessive *', 'a*+b'],
    ['\\Z (end before a final newline)', 'a\\Z'],
    ['\\G (previous match end)', '\\Ga'],
    ['recursion', '(a(?R)?b)'],
    ['conditional', '(a)?(?(1)b|c)'],
    ['inline comment', 'a(?#comment)b'],
    ['\\X (grapheme cluster)', '\\X'],
    ['repetition over RE2\'s limit', 'a{1001}'],
    ['nested repetition over RE2\'s limit', '(?:a{100}){100}'],
  ];

  for (const [name, pattern] of refused) {
    it(`${name}: ${pattern}`, () => {
      const reason = re2Reason(pattern);
      const { file, line } = ruleFile(pattern);
      const err = loadError([file]);
      expect(err.code).toBe('redaction_rule_invalid');
      expect(err.file).toBe(file);
      expect(err.line).toBe(line);
      expect(err.col).toEqual(expect.any(Number));
      expect(err.message).toContain(`${file}:${line}:`);
      expect(err.message).toContain(reason);
      expect(err.message).toContain('suspect');
    });
  }

  it('names the file that holds the bad rule when several are loaded', () => {
    const good = join(tmp, 'good.yaml');
    writeFileSync(good, "rules:\n  - id: fine\n    pattern: 'fine'\n");
    const { file, line } = ruleFile('(?=x)');
    const err = loadError([good, file]);
    expect(err.file).toBe(file);
    expect(err.line).toBe(line);
  });
});

describe('catastrophic-backtracking shapes run in linear time under RE2, so they load', () => {
  const n = 100_000;
  const cases: Array<[string, string]> = [
    ['(a+)+$', `${'a'.repeat(n)}!`],
    ['(a|aa)+$', `${'a'.repeat(n)}!`],
    ['(a|a)+$', `${'a'.repeat(n)}!`],
    ['(a*)*b', 'a'.repeat(n)],
    ['(x+x+)+y', 'x'.repeat(n)],
    ['(\\w+\\s?)+$', `${'word '.repeat(n / 5)}!`],
    ['^(([a-z])+.)+[A-Z]([a-z])+$', `${'a'.repeat(n)}!`],
    ['(.*a){12}', `${'a'.repeat(n)}!`.replace(/a/g, 'b')],
    ['a\\z', 'a'.repeat(n)],
  ];

  for (const [pattern, input] of cases) {
    it(`${pattern} loads and returns on ${input.length.toLocaleString('en-US')} characters`, () => {
      const { file } = ruleFile(pattern);
      const rs = loadRuleset([file]);
      expect(rs.ruleIds).toEqual(['ok', 'suspect']);
      const hits: Record<string, number> = {};
      // a bare string value: object keys could match these patterns too
      const out = rs.redact(input, hits);
      expect(typeof out).toBe('string');
      const matches = new RE2(pattern, 'g').test(input);
      if (!matches) expect(out).toBe(input);
      else expect(hits.suspect ?? 0).toBeGreaterThan(0);
    });
  }
});
