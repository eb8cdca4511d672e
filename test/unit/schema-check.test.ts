import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ErrorObject } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { schemaValidator } from '../../src/config/schema-check.js';
import { collectorSchema, rootSchema, sidecarSchema, withoutRequired } from '../../src/config/schema.js';
import { ruleFileSchema } from '../../src/sidecar/redact/rules.js';

// The interpreter must report exactly what ajv reported when it compiled
// these schemas (same options as src/config/schema.ts had), so every config
// error message stays as it was. ajv stays the reference, here only.
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const ajv = new Ajv({ allErrors: false, strict: true, allowUnionTypes: true, verbose: true });


const SCHEMAS: Array<[string, object]> = [
  ['root', rootSchema],
  ['root without required', withoutRequired(rootSchema) as object],
  ['sidecar', sidecarSchema],
  ['collector', collectorSchema],
  ['rule file', ruleFileSchema],
  ['rule file without required', withoutRequired(ruleFileSchema) as object],
];

const WRONG_VALUES: unknown[] = [
  null, true, false, 0, -1, 1.5, 70_000, 2_000_000_000, Infinity, '', 'x', ' ', 'a'.repeat(300), 'b'.repeat(5000),
  '\u{1F600}'.repeat(64), '127.0.0.1:99', 'sealtrail', 'file', 'socket', 'http', 'otlp', '1s', '10MiB', [], ['x'], [1], {}, { bogus: 1 },
];

function yamlFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...yamlFiles(p));
    else if (e.name.endsWith('.yaml')) out.push(p);
  }
  return out;
}

function loadSamples(files: string[]): unknown[] {
  const out: unknown[] = [];
  for (const f of files) {
    try {
      const data = parse(readFileSync(f, 'utf8')) as unknown;
      if (data !== null && typeof data === 'object') out.push(data);
    } catch {
      // a fixture that is meant not to parse
    }
  }
  return out;
}

type Path = Array<string | number>;

function paths(data: unknown, at: Path = [], out: Path[] = []): Path[] {
  out.push(at);
  if (Array.isArray(data)) data.forEach((v, i) => paths(v, [...at, i], out));
  else if (data !== null && typeof data === 'object') for (const [k, v] of Object.entries(data)) paths(v, [...at, k], out);
  return out;
}

/** `data` with the value at `path` replaced (or, with `remove`, deleted); a deep copy. */
function mutate(data: unknown, path: Path, value: unknown, remove = false): unknown {
  if (path.length === 0) return value;
  const copy = structuredClone(data) as Record<string | number, unknown>;
  let parent = copy;
  for (const seg of path.slice(0, -1)) parent = parent[seg] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  if (remove && Array.isArray(parent)) parent.splice(last as number, 1);
  else if (remove) delete parent[last];
  else parent[last] = value;
  return copy;
}

function variants(sample: unknown): unknown[] {
  const out: unknown[] = [sample];
  for (const p of paths(sample)) {
    const here = p.reduce<unknown>((d, k) => (d as Record<string | number, unknown>)[k], sample);
    if (p.length > 0) out.push(mutate(sample, p, undefined, true));
    for (const v of WRONG_VALUES) out.push(mutate(sample, p, v));
    if (here !== null && typeof here === 'object' && !Array.isArray(here)) {
      out.push(mutate(sample, p, { ...here, bogus_key: 1 }));
      const keys = Object.keys(here);
      if (keys[0]) out.push(mutate(sample, p, { ...Object.fromEntries(Object.entries(here).slice(1)), [`${keys[0]}s`]: (here as Record<string, unknown>)[keys[0]] }));
    }
  }
  return out;
}

const first = (e: ErrorObject | { keyword: string; instancePath: string; params: unknown; message?: string; parentSchema?: unknown } | undefined) =>
  e && { keyword: e.keyword, instancePath: e.instancePath, params: e.params, message: e.message, parentSchema: e.parentSchema };

describe('schemaValidator reports what ajv reported', () => {
  const configs = loadSamples([...yamlFiles(join(ROOT, 'config')).filter((f) => !f.includes('redaction') && !f.includes('mappings')), ...yamlFiles(join(ROOT, 'test/fixtures/config'))]);
  const ruleFiles = loadSamples(yamlFiles(join(ROOT, 'config/redaction')));
  const sidecars = configs.map((c) => (c as Record<string, unknown>)['sidecar']).filter((s) => s !== undefined);
  const collectors = configs.map((c) => (c as Record<string, unknown>)['collector']).filter((s) => s !== undefined);
  const samples: Record<string, unknown[]> = {
    root: configs,
    'root without required': configs,
    sidecar: sidecars,
    collector: collectors,
    'rule file': ruleFiles,
    'rule file without required': ruleFiles,
  };

  it('has samples of every kind', () => {
    for (const [name, list] of Object.entries(samples)) expect(list.length, name).toBeGreaterThan(0);
  });

  for (const [name, schema] of SCHEMAS) {
    it(`${name}: the same verdict and first error on every mutation of the samples`, () => {
      const reference = ajv.compile(schema);
      const mine = schemaValidator(schema);
      let checked = 0;
      let failing = 0;
      for (const sample of samples[name]!) {
        for (const data of variants(sample)) {
          const want = reference(data);
          const got = mine(data);
          const label = JSON.stringify(data)?.slice(0, 400);
          expect(got, label).toBe(want);
          expect(first(mine.errors?.[0]), label).toEqual(first(reference.errors?.[0] ?? undefined));
          checked++;
          if (!want) failing++;
        }
      }
      expect(checked).toBeGreaterThan(100);
      expect(failing).toBeGreaterThan(50);
    });
  }

  it('refuses a keyword it does not implement, as strict ajv refuses unknown ones', () => {
    expect(() => schemaValidator({ type: 'object', properties: { a: { type: 'string', format: 'uri' } } })).toThrow(/"format".*not supported/);
    expect(() => schemaValidator({ oneOf: [{ type: 'string' }] })).toThrow(/"oneOf"/);
  });

  it('counts code points and honours the u flag as ajv does', () => {
    const v = schemaValidator({ type: 'string', maxLength: 2, pattern: '^\\p{L}+$' });
    expect(v('\u{1F600}\u{1F600}')).toBe(false);
    expect(v.errors?.[0]?.keyword).toBe('pattern');
    expect(v('éé')).toBe(true);
    expect(v('ééé')).toBe(false);
    expect(v.errors?.[0]?.message).toBe('must NOT have more than 2 characters');
  });
});
