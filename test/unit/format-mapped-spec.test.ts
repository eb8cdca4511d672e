import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.js';
import { loadMapping, mappingFromYaml } from '../../src/sidecar/formats/mapped/index.js';
import { thrown } from '../helpers/errors.js';

const FILE = 'team/mapping.yaml';
const CANARY = 'CANARY-map-77aa-do-not-leak';

/** A mapping whose rule's fields are `fields` (YAML lines, indented by the caller). */
const withFields = (fields: string): string => `format: mapped
version: 1
rules:
  - when: { exists: kind }
    fields:
      event_type: kind
${fields}`;

function refuse(text: string): ConfigError {
  const err = thrown(() => mappingFromYaml(text, FILE), ConfigError);
  expect(err.file).toBe(FILE);
  expect(err.message).not.toContain(CANARY);
  return err;
}

/** The 1-based line and column of the first occurrence of `needle` in `text`. */
function placeOf(text: string, needle: string): [number, number] {
  const i = text.indexOf(needle);
  if (i < 0) throw new Error(`${needle} not in text`);
  const before = text.slice(0, i).split('\n');
  return [before.length, before[before.length - 1]!.length + 1];
}

function expectAt(text: string, needle: string, code = 'config_schema'): ConfigError {
  const err = refuse(text);
  expect(err.code).toBe(code);
  expect([err.line, err.col]).toEqual(placeOf(text, needle));
  expect(err.message.startsWith(`${FILE}:${err.line}:${err.col}: `)).toBe(true);
  return err;
}

describe('mapping files: a valid one', () => {
  it('loads and decodes', () => {
    const f = mappingFromYaml(withFields('      actor.id: who\n'), FILE);
    expect(f.decode({ kind: 'k', who: 'u1' })).toEqual([{ event: { event_type: 'k', actor: { id: 'u1' } }, path: '' }]);
  });
});

describe('mapping files: problems at file:line:col', () => {
  it('an unknown top-level key', () => {
    const text = `format: mapped\nversion: 1\nrulez: []\nrules:\n  - fields: { event_type: x }\n`;
    expect(expectAt(text, 'rulez').message).toContain('unknown key');
  });

  it('an unknown key in a source, a rule and a condition', () => {
    expectAt(withFields(`      actor.id: { pth: who }\n`), 'pth:');
    expectAt(withFields(`      actor.id: { path: who, tim: auto }\n`), 'tim:');
    const rule = `format: mapped\nversion: 1\nrules:\n  - fields: { event_type: x }\n    keep: details\n`;
    expectAt(rule, 'keep:');
    const cond = `format: mapped\nversion: 1\nrules:\n  - when: { exist: kind }\n    fields: { event_type: x }\n`;
    expectAt(cond, 'exist:');
  });

  it('wrong types', () => {
    expectAt(`format: mapped\nversion: 1\nrules: { a: 1 }\n`, '{ a: 1 }');
    expectAt(`format: mapped\nversion: 1\nrules:\n  - fields: [event_type]\n`, '[event_type]');
    expectAt(withFields(`      actor.id: { path: who, required: "yes" }\n`), '"yes"');
    expectAt(withFields(`      actor.id: 42\n`), '42');
    expectAt(withFields(`      actor.id: { path: [] }\n`), '[]');
    expectAt(`format: mapped\nversion: 2\nrules:\n  - fields: { event_type: x }\n`, '2');
    expectAt(`format: otlp\nversion: 1\nrules:\n  - fields: { event_type: x }\n`, 'otlp');
    expectAt(`format: mapped\nversion: 1\nbatch: [data]\nrules:\n  - fields: { event_type: x }\n`, '[data]');
  });

  it('a target that is not a sealtrail field', () => {
    const err = expectAt(withFields(`      event_type2: { path: kind }\n`), 'event_type2');
    expect(err.message).toContain('not a sealtrail field');
    expectAt(withFields(`      actor: { path: who }\n`), 'actor:');
    expectAt(withFields(`      tool.name.first: { path: who }\n`), 'tool.name.first');
    expectAt(withFields(`      details.a.b.c.d.e.f.g.h.i: { path: who }\n`), 'details.a.b');
  });

  it('a target the sidecar owns', () => {
    for (const name of ['id', 'stream', 'seq', 'received_at', 'source', 'redaction']) {
      const err = expectAt(withFields(`      ${name}: { path: x }\n`), `${name}: { path`);
      expect(err.message).toContain('set by the sidecar');
    }
  });

  it('an unknown time unit, and time options where they do not belong', () => {
    const err = expectAt(withFields(`      time: { path: ts, time: epoch_minutes }\n`), 'epoch_minutes');
    expect(err.message).toContain('epoch_ms');
    expectAt(withFields(`      actor.id: { path: ts, assume_utc: true }\n`), 'true');
    expectAt(withFields(`      outcome: { path: ts, time: auto }\n`), 'auto');
  });

  it('a path with bad syntax, or too deep', () => {
    for (const bad of ['"a..b"', '"a[01]"', '"a[-1]"', `'a["b]'`, '"a b"', '".a"', `'a["]'`, '"a[]"', `'a[""]'`, `'a["\\q"]'`]) {
      const err = expectAt(withFields(`      actor.id: { path: ${bad} }\n`), bad);
      expect(err.message).toContain('invalid path');
    }
    const deep = Array.from({ length: 33 }, (_, i) => `m${i}`).join('.');
    expectAt(withFields(`      actor.id: { path: ${deep} }\n`), deep);
    const ok = Array.from({ length: 32 }, (_, i) => `m${i}`).join('.');
    expect(() => mappingFromYaml(withFields(`      actor.id: { path: ${ok} }\n`), FILE)).not.toThrow();
    expectAt(withFields(`      actor.id: { path: "${'a'.repeat(513)}" }\n`), `"${'a'.repeat(10)}`);
  });

  it('a huge template, too many placeholders, an unbalanced brace', () => {
    const huge = `"${'x'.repeat(1025)}"`;
    expectAt(withFields(`      action: { template: ${huge} }\n`), huge);
    const many = `"${Array.from({ length: 17 }, (_, i) => `{p${i}}`).join('')}"`;
    expectAt(withFields(`      action: { template: ${many} }\n`), many);
    expectAt(withFields(`      action: { template: "{a" }\n`), '"{a"');
    expectAt(withFields(`      action: { template: "a}b" }\n`), '"a}b"');
    expectAt(withFields(`      action: { template: "{a..b}" }\n`), '"{a..b}"');
    expectAt(withFields(`      time: { template: "{a}" }\n`), '"{a}"');
  });

  it('a constant, map output or default that does not fit its target', () => {
    expectAt(withFields(`      outcome: { value: maybe }\n`), 'maybe');
    expectAt(withFields(`      actor.id: a\n      actor.type: { value: robot }\n`), 'robot');
    expectAt(withFields(`      outcome: { path: s, map: { ok: success, meh: so-so } }\n`), 'so-so');
    expectAt(withFields(`      outcome: { path: s, default: ${CANARY} }\n`), CANARY);
    expectAt(withFields(`      time: { value: yesterday }\n`), 'yesterday');
    expectAt(withFields(`      action: { value: 5 }\n`), '5');
    expectAt(withFields(`      details: { value: [1] }\n`), '[1]');
    expectAt(withFields(`      action: { path: a, default: null }\n`), 'null');
  });

  it('a rule without event_type, a group without its required member, overlapping details', () => {
    const noType = `format: mapped\nversion: 1\nrules:\n  - fields: { action: a }\n`;
    expect(expectAt(noType, 'fields').message).toContain('event_type');
    expectAt(withFields(`      actor.type: { value: agent }\n`), 'actor.type');
    expectAt(withFields(`      tool.arguments: args\n`), 'tool.arguments');
    expectAt(withFields(`      details.a: x\n      details.a.b: y\n`), 'details.a.b');
  });

  it('a rule that can never be reached, conditions too deep, an unknown field set', () => {
    const unreachable = `format: mapped\nversion: 1\nrules:\n  - fields: { event_type: x }\n  - fields: { event_type: y }\n`;
    expect(expectAt(unreachable, 'fields: { event_type: y }').message).toContain('never reached');
    let cond = '{ exists: a }';
    for (let i = 0; i < 9; i++) cond = `{ not: ${cond} }`;
    // the ninth level is refused, where it starts
    expectAt(`format: mapped\nversion: 1\nrules:\n  - when: ${cond}\n    fields: { event_type: x }\n`, '{ not: { exists: a } }');
    expectAt(`format: mapped\nversion: 1\nrules:\n  - use: [nope]\n    fields: { event_type: x }\n`, 'nope');
    expectAt(`format: mapped\nversion: 1\nrules:\n  - when: { in: { a: [] } }\n    fields: { event_type: x }\n`, '[]');
    expectAt(`format: mapped\nversion: 1\nrules:\n  - when: { equals: { a: [1] } }\n    fields: { event_type: x }\n`, '[1]');
  });

  it('keep_rest that is not under details', () => {
    expectAt(`format: mapped\nversion: 1\nrules:\n  - fields: { event_type: x }\n    keep_rest: nowhere\n`, 'nowhere');
    expectAt(`format: mapped\nversion: 1\nrules:\n  - fields: { event_type: x }\n    keep_rest: details.a.b\n`, 'details.a.b');
  });

  it('YAML that does not parse, or is not a mapping', () => {
    expect(refuse(`format: mapped\nversion: 1\nrules:\n  - fields: { event_type: [x }\n`).code).toBe('config_yaml');
    expect(refuse(`- a\n- b\n`).code).toBe('config_schema');
    expect(refuse(`format: mapped\nformat: mapped\n`).code).toBe('config_yaml');
  });

  it('never quotes a value of the file in a message', () => {
    const err = refuse(withFields(`      outcome: { value: ${CANARY} }\n`));
    expect(err.message).toContain('outcome takes one of');
  });
});

describe('loadMapping: files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sealtrail-mapping-'));
  writeFileSync(join(dir, 'ok.yaml'), withFields('      actor.id: who\n'));
  writeFileSync(join(dir, 'bad.yaml'), withFields('      actor.idd: who\n'));

  it('resolves a relative path against the base directory and an absolute one as is', () => {
    expect(loadMapping('./ok.yaml', dir).decode({ kind: 'k' })[0]!.event).toEqual({ event_type: 'k' });
    expect(loadMapping('ok.yaml', dir).name).toBe('mapped');
    expect(loadMapping(join(dir, 'ok.yaml'), '/elsewhere').name).toBe('mapped');
  });

  it('names the file, line and column of a problem in it', () => {
    const err = thrown(() => loadMapping('bad.yaml', dir), ConfigError);
    expect([err.file, err.line, err.col, err.code]).toEqual([join(dir, 'bad.yaml'), 7, 7, 'config_schema']);
  });

  it('refuses a missing file with config_io naming it', () => {
    const err = thrown(() => loadMapping('./missing.yaml', dir), ConfigError);
    expect([err.code, err.file]).toEqual(['config_io', join(dir, 'missing.yaml')]);
    expect(err.message).toContain('ENOENT');
    expect(thrown(() => loadMapping('.', dir), ConfigError).code).toBe('config_io');
  });
});
