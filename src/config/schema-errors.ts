/**
 * Schema violations in words: a place in the data as a setting's name
 * (`sidecar.sources[0].include`), and the schema's first violation as a ConfigError at
 * its file:line:col with what was expected and, for a misspelt key, the key
 * that was probably meant. Never quotes a value: config files hold tokens.
 */
import { ConfigError } from '../core/errors.js';
import type { SchemaViolation } from './schema-check.js';
import { placeOfPath, type DataPath, type YamlSource } from './yaml.js';

/** `sidecar.sources[0].include` — how errors name a setting. */
export function formatDataPath(path: DataPath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(seg.length > 64 ? `${seg.slice(0, 64)}…` : seg)}]`;
  }
  return out;
}

export function jsonPointerToPath(pointer: string): (string | number)[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^(0|[1-9][0-9]*)$/.test(s) ? Number(s) : s));
}

/** A schema violation (ajv's first error) as a ConfigError at its file:line:col. */
export function schemaError(src: YamlSource, err: SchemaViolation): ConfigError {
  const d = describeAjvError(err);
  const name = formatDataPath(d.path);
  return new ConfigError('config_schema', name ? `${name}: ${d.message}` : d.message, placeOfPath(src, d.path, d.atKey));
}

/** Turn the first ajv error into a readable message and the data path it concerns. */
export function describeAjvError(err: SchemaViolation): { path: (string | number)[]; message: string; atKey: boolean } {
  const path = jsonPointerToPath(err.instancePath);
  const params = err.params as Record<string, unknown>;
  switch (err.keyword) {
    case 'additionalProperties': {
      const name = String(params['additionalProperty']);
      const allowed = Object.keys((err.parentSchema as { properties?: object } | undefined)?.properties ?? {});
      const hint = closest(name, allowed);
      const list = allowed.length > 0 ? `; allowed keys: ${allowed.join(', ')}` : '';
      return {
        path: [...path, name],
        message: `unknown key${hint ? ` (did you mean "${hint}"?)` : ''}${list}`,
        atKey: true,
      };
    }
    case 'required':
      return { path, message: `missing required key "${String(params['missingProperty'])}"`, atKey: false };
    case 'type': {
      const types = String(params['type']).split(',');
      return { path, message: `must be ${types.map(article).join(' or ')}`, atKey: false };
    }
    case 'enum': {
      const values = (params['allowedValues'] as unknown[] | undefined) ?? [];
      return { path, message: `must be one of: ${values.map((v) => JSON.stringify(v)).join(', ')}`, atKey: false };
    }
    case 'const':
      return { path, message: `must be ${JSON.stringify(params['allowedValue'])}`, atKey: false };
    default:
      return { path, message: err.message ?? `fails ${err.keyword}`, atKey: false };
  }
}

function article(t: string): string {
  switch (t) {
    case 'integer':
      return 'an integer';
    case 'object':
      return 'a mapping';
    case 'array':
      return 'a list';
    default:
      return `a ${t}`;
  }
}

function closest(word: string, candidates: readonly string[]): string | undefined {
  // "replacement" for "replace", "source" for "sources": prefixes are the commonest slip.
  const prefix = candidates.find((c) => Math.min(c.length, word.length) >= 4 && (c.startsWith(word) || word.startsWith(c)));
  if (prefix !== undefined) return prefix;
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(1, Math.floor(best.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  if (a.length > 64 || b.length > 64) return Infinity;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}
