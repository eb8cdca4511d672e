/**
 * Config loading: bounded read → strict UTF-8/YAML parse → `${env:...}` on
 * scalars → schema → defaults and units. Every failure is a ConfigError whose
 * message starts with file:line:col and never quotes a value from the file.
 */
import { isScalar, type Scalar } from 'yaml';
import { ConfigError } from '../core/errors.js';
import { substituteEnv } from './env.js';
import { normalizeCollector, normalizeSidecar, type NormalizeContext } from './normalize.js';
import { collectorSchema, rootSchema, sidecarSchema, validatorsFor } from './schema.js';
import type { CollectorConfig, CollectorConfigInput, SealtrailConfig, SidecarConfig, SidecarConfigInput } from './types.js';
import { describeAjvError, formatDataPath, schemaError } from './schema-errors.js';
import {
  nodeAtPath,
  parseYamlString,
  placeOfNode,
  placeOfPath,
  readYamlFile,
  toPlainData,
  type DataPath,
  type Place,
  type YamlSource,
} from './yaml.js';

export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

export function loadConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): SealtrailConfig {
  return fromSource(readYamlFile(path, MAX_CONFIG_BYTES, 'config file'), env);
}

export function parseConfigText(text: string, file: string, env: NodeJS.ProcessEnv = process.env): SealtrailConfig {
  return fromSource(parseYamlString(text, file, MAX_CONFIG_BYTES, 'config file'), env);
}

function fromSource(src: YamlSource, env: NodeJS.ProcessEnv): SealtrailConfig {
  const file = src.file;
  const { substituted } = substituteEnv(src, env);
  const data = toPlainData(src) as Record<string, unknown>;
  validateWithEnvCoercion(src, data, substituted);

  if (data['sidecar'] === undefined && data['collector'] === undefined) {
    throw new ConfigError(
      'config_schema',
      'the config needs a "sidecar" or a "collector" section (or both)',
      placeOfNode(src, src.doc.contents),
    );
  }
  const ctx: NormalizeContext = { place: (path, preferKey) => placeOfPath(src, path, preferKey) };
  const out: SealtrailConfig = { file };
  if (data['sidecar'] !== undefined) out.sidecar = normalizeSidecar(data['sidecar'], ['sidecar'], ctx);
  if (data['collector'] !== undefined) out.collector = normalizeCollector(data['collector'], ['collector'], ctx);
  return out;
}

/**
 * A substituted value is always a string, yet `max_records: ${env:N}` should
 * work. Coerce only where the schema wants an integer or boolean AND the node
 * came from the environment: a literal "500" in quotes stays an error, and a
 * token that happens to be all digits stays a string because the schema asks
 * for a string there.
 */
function validateWithEnvCoercion(src: YamlSource, data: unknown, substituted: ReadonlySet<Scalar>): void {
  const coerced = new Set<string>();
  for (const validate of validatorsFor(rootSchema)) {
    // Each failed pass either coerces a path not coerced before or throws, so this ends.
    for (;;) {
      if (validate(data)) break;
      const err = validate.errors?.[0];
      if (!err) throw new ConfigError('config_schema', 'config does not match the schema', { file: src.file });
      const described = describeAjvError(err);
      const key = JSON.stringify(described.path);
      if (
        err.keyword === 'type' &&
        !coerced.has(key) &&
        coerce(src, data, described.path, String((err.params as { type: unknown }).type), substituted)
      ) {
        coerced.add(key);
        continue;
      }
      throw schemaError(src, err);
    }
  }
}

function coerce(src: YamlSource, data: unknown, path: DataPath, wanted: string, substituted: ReadonlySet<Scalar>): boolean {
  const at = nodeAtPath(src, path);
  if (!at.exact || !isScalar(at.node) || !substituted.has(at.node)) return false;
  const value = at.node.value;
  if (typeof value !== 'string') return false;
  const types = wanted.split(',');
  let next: unknown;
  if (types.includes('integer') && /^-?[0-9]{1,15}$/.test(value)) next = Number(value);
  else if (types.includes('boolean') && (value === 'true' || value === 'false')) next = value === 'true';
  else return false;
  const parentPath = path.slice(0, -1);
  const last = path[path.length - 1];
  let parent: unknown = data;
  for (const seg of parentPath) parent = (parent as Record<string | number, unknown>)[seg];
  if (last === undefined || parent === null || typeof parent !== 'object') return false;
  (parent as Record<string | number, unknown>)[last] = next;
  return true;
}

/**
 * Defaults for a sidecar config built in code (`sealtrail dev`): validated by
 * the same schema and normalised by the same code as a file. Errors name the
 * setting (`sidecar.ship.url: ...`) since there is no file.
 */
export function defaultSidecarConfig(partial: SidecarConfigInput): SidecarConfig {
  const data = validateInMemory(partial, sidecarSchema, ['sidecar']);
  return normalizeSidecar(data, ['sidecar'], IN_MEMORY);
}

export function defaultCollectorConfig(partial: CollectorConfigInput = {}): CollectorConfig {
  const data = validateInMemory(partial, collectorSchema, ['collector']);
  return normalizeCollector(data, ['collector'], IN_MEMORY);
}

const IN_MEMORY: NormalizeContext = { place: (): Place => ({}) };

function validateInMemory(partial: unknown, schema: object, base: DataPath): unknown {
  let data: unknown;
  try {
    // Drop undefined members (JSON has none) and decouple from the caller's object.
    data = JSON.parse(JSON.stringify(partial ?? null)) as unknown;
  } catch (err) {
    throw new ConfigError('config_schema', `${formatDataPath(base)}: must be plain JSON-like data`, {}, { cause: err });
  }
  for (const validate of validatorsFor(schema)) {
    if (!validate(data)) {
      const d = describeAjvError(validate.errors![0]!);
      throw new ConfigError('config_schema', `${formatDataPath([...base, ...d.path])}: ${d.message}`);
    }
  }
  return data;
}
