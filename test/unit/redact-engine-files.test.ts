/**
 * Rule files v2 (docs/redaction.md, "Rule file"): include / pack: composition,
 * disable, decode and max_depth settings, every error code at its
 * file:line:col, and what the ruleset hash covers.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.js';
import { loadRuleset, packDirectory, packNames } from '../../src/sidecar/redact/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'sealtrail-redact-files-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const KEYS = new Map([
  ['pseudonym-2026', Buffer.alloc(32, 1)],
  ['pseudonym-2027', Buffer.alloc(32, 2)],
]);

let n = 0;
/** Write a rule file (in its own directory unless a name is given) and return its path. */
function file(text: string, name?: string): string {
  const path = name ? join(tmp, name) : join(tmp, `f${n++}`, 'rules.yaml');
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text);
  return path;
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

function expectError(fn: () => unknown, code: string, path: string, line: number, col: number): ConfigError {
  const err = configError(fn);
  expect(err.code, err.message).toBe(code);
  expect([err.file, err.line, err.col], err.message).toEqual([path, line, col]);
  expect(err.message.startsWith(`${path}:${line}:${col}: `)).toBe(true);
  return err;
}

describe('composition', () => {
  it('include: relative paths, depth first, the including file last', () => {
    const b = file('rules:\n  - {id: b, pattern: bbb}\n', 'comp/b.yaml');
    file("include: ['../b.yaml']\nrules:\n  - {id: a, pattern: aaa}\n", 'comp/sub/a.yaml');
    const top = file("include: ['./sub/a.yaml']\nrules:\n  - {id: top, pattern: ttt}\n", 'comp/top.yaml');
    const rs = loadRuleset([top]);
    expect(rs.ruleIds).toEqual(['b', 'a', 'top']);
    expect(rs.redact('aaa bbb ttt')).toBe('[REDACTED:a] [REDACTED:b] [REDACTED:top]');
    // an absolute path works too
    expect(loadRuleset([file(`include: [${JSON.stringify(b)}]\n`)]).ruleIds).toEqual(['b']);
  });

  it('pack:NAME is config/redaction/NAME.yaml of the package', () => {
    expect(packDirectory()).toBe(join(import.meta.dirname, '../../config/redaction'));
    expect(packNames()).toEqual(expect.arrayContaining(['pii-basic', 'secrets']));
    const top = file('include: [pack:pii-basic, pack:secrets]\nrules:\n  - {id: mine, pattern: zzz}\n');
    const rs = loadRuleset([top]);
    const pii = loadRuleset([join(packDirectory(), 'pii-basic.yaml')]).ruleIds;
    const secrets = loadRuleset([join(packDirectory(), 'secrets.yaml')]).ruleIds;
    expect(rs.ruleIds).toEqual([...pii, ...secrets, 'mine']);
    expect(rs.redact({ a: 'alice@example.com zzz' })).toEqual({ a: '[REDACTED:email] [REDACTED:mine]' });
  });

  it('disable: an included rule does not run; the name may come from anywhere in the composition', () => {
    const top = file('include: [pack:pii-basic]\ndisable: [ipv4]\n');
    const rs = loadRuleset([top]);
    expect(rs.ruleIds).not.toContain('ipv4');
    expect(rs.redact('host 10.0.0.1')).toBe('host 10.0.0.1');
    // an included file may disable a rule the including file defines
    const inc = file('disable: [later]\n', 'dis/inc.yaml');
    const both = file(`include: [${JSON.stringify(inc)}]\nrules:\n  - {id: later, pattern: lll}\n  - {id: kept, pattern: kkk}\n`, 'dis/top.yaml');
    expect(loadRuleset([both]).ruleIds).toEqual(['kept']);
    // across top-level files too
    expect(loadRuleset([file('disable: [kept]\n'), both]).ruleIds).toEqual([]);
  });

  it('a disabled hash rule needs no key', () => {
    const top = file('rules:\n  - {id: h, pattern: x, operator: hash, key: missing}\ndisable: [h]\n');
    expect(loadRuleset([top]).ruleIds).toEqual([]);
  });

  it('decode and max_depth: the last file that sets one wins, key by key', () => {
    const inc = file('decode: {base64: false, percent: false}\nmax_depth: 5\n', 'set/inc.yaml');
    const top = file(`include: [${JSON.stringify(inc)}]\ndecode: {percent: true}\nrules:\n  - {id: email, detector: email}\n`, 'set/top.yaml');
    const rs = loadRuleset([top]);
    expect(rs.decode).toEqual({ base64: false, percent: true, nfkc: true });
    expect(rs.maxDepth).toBe(5);
    expect(rs.redact('alice%40example.com')).toBe('[REDACTED:email]');
    const b64 = Buffer.from('alice@example.com').toString('base64');
    expect(rs.redact(b64)).toBe(b64);
    expect(() => rs.redact([[[[[[1]]]]]])).toThrow(expect.objectContaining({ code: 'redact_too_deep' }));
    expect(loadRuleset([top, file('max_depth: 7\n')]).maxDepth).toBe(7);
  });

  it('pseudonym keys come from the options; the hash rule uses them', () => {
    const top = file('rules:\n  - {id: email, detector: email, operator: hash, key: pseudonym-2026}\n');
    const rs = loadRuleset([top], { pseudonymKeys: KEYS });
    expect(rs.redact('alice@example.com')).toMatch(/^pii:pseudonym-2026:[a-z2-7]{16}$/);
  });
});

describe('errors name file:line:col', () => {
  it('redaction_rule_invalid: detector and pattern together', () => {
    const f = file("rules:\n  - id: a\n    pattern: 'x'\n    detector: email\n");
    expect(expectError(() => loadRuleset([f]), 'redaction_rule_invalid', f, 4, 15).message).toContain('exactly one of "detector" and "pattern"');
  });

  it('redaction_rule_invalid: operator parameters that do not belong to the operator', () => {
    const f1 = file("rules:\n  - id: a\n    pattern: 'x'\n    operator: mask\n    replace: 'y'\n");
    expect(expectError(() => loadRuleset([f1]), 'redaction_rule_invalid', f1, 5, 14).message).toContain('"replace" applies to operator replace');
    const f2 = file("rules:\n  - id: a\n    pattern: 'x'\n    keep_last: 4\n");
    expectError(() => loadRuleset([f2]), 'redaction_rule_invalid', f2, 4, 16);
    const f3 = file("rules:\n  - id: a\n    pattern: 'x'\n    operator: mask\n    per_tenant: true\n");
    expectError(() => loadRuleset([f3]), 'redaction_rule_invalid', f3, 5, 17);
    const f4 = file("rules:\n  - id: a\n    pattern: 'x'\n    key: pseudonym-2026\n");
    expectError(() => loadRuleset([f4], { pseudonymKeys: KEYS }), 'redaction_rule_invalid', f4, 4, 10);
  });

  it('redaction_rule_invalid: hash without a key, at the operator', () => {
    const f = file("rules:\n  - id: a\n    pattern: 'x'\n    operator: hash\n");
    expect(expectError(() => loadRuleset([f]), 'redaction_rule_invalid', f, 4, 15).message).toContain('needs "key"');
  });

  it('redaction_rule_invalid: options on a pattern rule, bad detector options, a pattern RE2 refuses', () => {
    const f1 = file("rules:\n  - id: a\n    pattern: 'x'\n    options: {prefix: MRN}\n");
    expectError(() => loadRuleset([f1]), 'redaction_rule_invalid', f1, 4, 14);
    const f2 = file('rules:\n  - id: mrn\n    detector: medical_record_number\n    options:\n      min_digits: 0\n');
    expect(expectError(() => loadRuleset([f2]), 'redaction_rule_invalid', f2, 5, 7).message).toContain('min_digits');
    const f3 = file("rules:\n  - id: a\n    pattern: '(?<=x)y'\n");
    expectError(() => loadRuleset([f3]), 'redaction_rule_invalid', f3, 3, 14);
  });

  it('redaction_unknown_detector at the detector', () => {
    const f = file('rules:\n  - id: a\n    detector: emial\n');
    expect(expectError(() => loadRuleset([f]), 'redaction_unknown_detector', f, 3, 15).message).toContain('unknown detector "emial"');
  });

  it('redaction_unknown_key at the key, naming it; also without any keys', () => {
    const f = file('rules:\n  - id: a\n    detector: email\n    operator: hash\n    key: pseudonym-1999\n');
    const err = expectError(() => loadRuleset([f], { pseudonymKeys: KEYS }), 'redaction_unknown_key', f, 5, 10);
    expect(err.message).toContain('"pseudonym-1999"');
    expectError(() => loadRuleset([f]), 'redaction_unknown_key', f, 5, 10);
  });

  it('redaction_scope_invalid at the scope path', () => {
    const f = file("rules:\n  - id: a\n    detector: email\n    scope:\n      include: ['$.ok.**']\n      exclude:\n        - '$.ok'\n        - 'details.x'\n");
    expect(expectError(() => loadRuleset([f]), 'redaction_scope_invalid', f, 8, 11).message).toContain('must start with "$"');
    for (const bad of ['$.', '$.a b', '$[x]', "$['unterminated", '$.a..b']) {
      const g = file(`rules:\n  - id: a\n    detector: email\n    scope: {include: [${JSON.stringify(bad)}]}\n`);
      expect(configError(() => loadRuleset([g])).code, bad).toBe('redaction_scope_invalid');
    }
  });

  it('redaction_include_cycle at the include that closes the cycle', () => {
    const a = join(tmp, 'cyc', 'a.yaml');
    const b = join(tmp, 'cyc', 'b.yaml');
    file("rules: []\ninclude:\n  - './b.yaml'\n", 'cyc/a.yaml');
    file("include: ['./a.yaml']\n", 'cyc/b.yaml');
    const err = expectError(() => loadRuleset([a]), 'redaction_include_cycle', b, 1, 11);
    expect(err.message).toContain(`${a} -> ${b} -> ${a}`);
    const self = file("include: ['rules.yaml']\n");
    expectError(() => loadRuleset([self]), 'redaction_include_cycle', self, 1, 11);
  });

  it('a file included twice (a diamond, not a cycle) is composed once', () => {
    file('rules:\n  - {id: s, pattern: sss}\n', 'twice/shared.yaml');
    const top = file("include: ['./shared.yaml', './shared.yaml']\n", 'twice/top.yaml');
    expect(loadRuleset([top]).ruleIds).toEqual(['s']);
  });

  it('redaction_rule_duplicate: a later file may not redefine an included id', () => {
    const top = file('include: [pack:pii-basic]\nrules:\n  - id: email\n    pattern: x\n');
    const err = expectError(() => loadRuleset([top]), 'redaction_rule_duplicate', top, 3, 9);
    expect(err.message).toContain(`first defined at ${join(packDirectory(), 'pii-basic.yaml')}:`);
  });

  it('redaction_unknown_rule at the disable entry', () => {
    const f = file('include: [pack:pii-basic]\ndisable:\n  - ipv4\n  - ipv5\n');
    expect(expectError(() => loadRuleset([f]), 'redaction_unknown_rule', f, 4, 5).message).toContain('"ipv5"');
  });

  it('redaction_unknown_pack at the include entry, listing the packs', () => {
    const f = file('include:\n  - pack:pii-basics\n');
    expect(expectError(() => loadRuleset([f]), 'redaction_unknown_pack', f, 2, 5).message).toContain('pii-basic');
    const g = file('include: ["pack:../secrets"]\n');
    expectError(() => loadRuleset([g]), 'redaction_unknown_pack', g, 1, 11);
  });

  it('config_io for a missing include, at the include entry', () => {
    const f = file("include:\n  - './nope.yaml'\n");
    expect(expectError(() => loadRuleset([f]), 'config_io', f, 2, 5).message).toContain('ENOENT');
  });

  it('includes that repeat exponentially are composed once each', () => {
    for (let i = 0; i < 10; i++) file(i === 9 ? 'rules: [{id: leaf, pattern: zzz}]\n' : `include: ['./l${i + 1}.yaml', './l${i + 1}.yaml']\n`, `exp/l${i}.yaml`);
    expect(loadRuleset([join(tmp, 'exp/l0.yaml')]).ruleIds).toEqual(['leaf']);
  });

  it('config_schema: unknown keys, bad enums, a rule with neither detector nor pattern', () => {
    const f1 = file("rules:\n  - id: a\n    pattern: 'x'\n    keeplast: 4\n");
    expect(expectError(() => loadRuleset([f1]), 'config_schema', f1, 4, 5).message).toContain('did you mean "keep_last"');
    const f2 = file("rules:\n  - id: a\n    pattern: 'x'\n    operator: encrypt\n");
    expectError(() => loadRuleset([f2]), 'config_schema', f2, 4, 15);
    const f3 = file("rules:\n  - id: a\n    pattern: 'x'\n    validator: crc32\n");
    expectError(() => loadRuleset([f3]), 'config_schema', f3, 4, 16);
    const f4 = file('rules:\n  - id: a\n    description: nothing to match\n');
    expect(expectError(() => loadRuleset([f4]), 'config_schema', f4, 2, 5).message).toContain('"pattern" (or "detector")');
    const f5 = file('decode: {base64: yes, zip: true}\n');
    expect(configError(() => loadRuleset([f5])).code).toBe('config_schema');
    const f6 = file('max_depth: 0\n');
    expectError(() => loadRuleset([f6]), 'config_schema', f6, 1, 12);
  });
});

describe('ruleset hash', () => {
  const BASE = `include: [pack:pii-basic]
disable: [ipv6]
decode: {base64: true, percent: true, nfkc: true}
max_depth: 64
rules:
  - id: mrn
    description: Medical record numbers
    detector: medical_record_number
    options: {prefix: MRN, min_digits: 6}
  - id: acct
    pattern: 'ACCT-[0-9]{8}'
    validator: luhn
    keys: true
    scope: {include: ['$.details.**'], exclude: ['$.details.trace']}
    operator: mask
    keep_last: 4
  - id: member
    pattern: 'MEM-[0-9]{6}'
    operator: hash
    key: pseudonym-2026
    per_tenant: false
  - id: note
    pattern: 'SECRET-[A-Z]{4}'
    replace: '[gone]'
`;
  const hashOf = (text: string, keys: ReadonlyMap<string, Buffer> = KEYS): string => loadRuleset([file(text)], { pseudonymKeys: keys }).hash;

  it('changing any one setting changes the hash', () => {
    const variants: [string, string][] = [
      ['max_depth: 64', 'max_depth: 65'],
      ['base64: true,', 'base64: false,'],
      ['percent: true,', 'percent: false,'],
      ['nfkc: true}', 'nfkc: false}'],
      ['disable: [ipv6]', 'disable: [ipv4]'],
      ['disable: [ipv6]', 'disable: []'],
      ['id: mrn', 'id: mrn2'],
      ['min_digits: 6', 'min_digits: 7'],
      ["'ACCT-[0-9]{8}'", "'ACCT-[0-9]{9}'"],
      ['validator: luhn', 'validator: ssn_valid'],
      ['    keys: true', '    keys: false'],
      ["include: ['$.details.**']", "include: ['$.details.*']"],
      ["exclude: ['$.details.trace']", "exclude: ['$.details.span']"],
      ['keep_last: 4', 'keep_last: 3'],
      ['operator: mask\n    keep_last: 4', 'operator: replace'],
      ['key: pseudonym-2026', 'key: pseudonym-2027'],
      ['per_tenant: false', 'per_tenant: true'],
      ["replace: '[gone]'", "replace: '[gone!]'"],
      ["    replace: '[gone]'\n", '    operator: drop_field\n'],
      ['include: [pack:pii-basic]', 'include: [pack:pii-basic, pack:secrets]'],
    ];
    const base = hashOf(BASE);
    const seen = new Map<string, string>([[base, 'base']]);
    for (const [from, to] of variants) {
      expect(BASE.includes(from), from).toBe(true);
      const h = hashOf(BASE.replace(from, to));
      expect(seen.get(h), `${from} -> ${to}`).toBeUndefined();
      seen.set(h, `${from} -> ${to}`);
    }
    // rule order decides ties, so it is part of the hash
    const swapped = BASE.replace(/  - id: member[\s\S]*?per_tenant: false\n/, '');
    const member = '  - id: member\n    pattern: \'MEM-[0-9]{6}\'\n    operator: hash\n    key: pseudonym-2026\n    per_tenant: false\n';
    expect(hashOf(swapped.replace('rules:\n', `rules:\n${member}`))).not.toBe(base);
  });

  it('the same rules written differently give the same hash; key bytes are not part of it', () => {
    const base = hashOf(BASE);
    const reformatted = `# the same ruleset, written differently
rules:
- {id: mrn, detector: medical_record_number, options: {min_digits: 6, prefix: "MRN"}, description: another text}
- pattern: "ACCT-[0-9]{8}"
  id: acct
  operator: "mask"
  keep_last: 4
  scope:
    exclude: ["$['details'].trace"]
    include: ["$.details.**.**"]
  validator: luhn
- id: member
  key: "pseudonym-2026"
  operator: hash
  pattern: MEM-[0-9]{6}
- {id: note, pattern: 'SECRET-[A-Z]{4}', operator: replace, replace: "[gone]"}
max_depth: 64
disable:
  - ipv6
include:
  - "pack:pii-basic"
`;
    expect(hashOf(reformatted)).toBe(base);
    expect(hashOf(BASE, new Map([['pseudonym-2026', Buffer.alloc(48, 3)]]))).toBe(base);
    // decode defaults are the defaults, written or not
    expect(hashOf(BASE.replace('decode: {base64: true, percent: true, nfkc: true}\n', ''))).toBe(base);
  });

  it('a disabled rule is not part of the hash', () => {
    const a = 'rules:\n  - {id: x, pattern: aaa}\n  - {id: y, pattern: bbb}\ndisable: [y]\n';
    expect(hashOf(a)).toBe(hashOf(a.replace('bbb', 'ccc')));
    expect(hashOf(a)).toBe(hashOf('rules:\n  - {id: x, pattern: aaa}\n'));
  });
});
