/**
 * How the mapping loader reports a problem: a ConfigError ('config_schema')
 * at the file:line:col of the setting, whose message names the setting
 * (`rules[2].fields["actor.id"].time`) and what was expected. It never quotes
 * a value of the file, like every sealtrail config error.
 */
import { ConfigError } from '../../../core/errors.js';
import { formatDataPath } from '../../../config/schema-errors.js';
import { placeOfPath, type DataPath, type YamlSource } from '../../../config/yaml.js';
import { parsePath, PathSyntaxError, type PathExpr } from './paths.js';

export interface Reporter {
  /** Throws the ConfigError; `atKey` points at the key rather than its value (an unknown key). */
  fail(path: DataPath, message: string, atKey?: boolean): never;
}

export function reporterFor(src: YamlSource): Reporter {
  return {
    fail(path, message, atKey = false) {
      const name = formatDataPath(path);
      throw new ConfigError('config_schema', name ? `${name}: ${message}` : message, placeOfPath(src, path, atKey));
    },
  };
}

export function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Refuses keys outside `allowed`, at the first unknown key. */
export function onlyKeys(r: Reporter, o: Record<string, unknown>, at: DataPath, allowed: readonly string[]): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) r.fail([...at, k], `unknown key (allowed: ${allowed.join(', ')})`, true);
  }
}

/** A path expression written at `at`: a string of valid path syntax. */
export function pathAt(r: Reporter, v: unknown, at: DataPath): PathExpr {
  if (typeof v !== 'string') r.fail(at, 'must be a path (a string such as span_data.name)');
  try {
    return parsePath(v);
  } catch (err) {
    if (err instanceof PathSyntaxError) r.fail(at, `invalid path: ${err.message}`);
    throw err;
  }
}
