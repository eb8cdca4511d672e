/**
 * `format: mapped`: a YAML mapping file (spec.ts, docs/formats.md) turns JSON
 * values of any shape into sealtrail events. Presets ship in
 * config/mappings/ (`mapping: agentmesh`); a source may name its own file.
 *
 * Contracts:
 * - loadMapping is the only function here that does I/O: it reads the YAML
 *   file once, when the source is configured. Every problem in it is a
 *   ConfigError at file:line:col; a missing or unreadable file is
 *   'config_io' naming the file.
 * - The LineFormat it returns is pure (format.ts): a value that is one
 *   object gives one event; a JSON array gives one per element (path
 *   `[i]`); with `batch: <name>`, an object whose only member is that array
 *   does too (path `<name>[i]`). At most MAX_BATCH_EVENTS per value.
 */
import { existsSync, readdirSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, InputError } from '../../../core/errors.js';
import { parseYamlString, readYamlFile, toPlainData, type YamlSource } from '../../../config/yaml.js';
import type { DecodedEvent, LineFormat } from '../format.js';
import { applyMapping } from './apply.js';
import { parseMapping, type Mapping } from './spec.js';

export const MAX_MAPPING_BYTES = 256 * 1024;
export const MAX_BATCH_EVENTS = 10_000;
const PRESET_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;

let presetDirCache: string | undefined;

/**
 * config/mappings of the sealtrail package: the first directory above this
 * module that holds it, which works from the sources (src/sidecar/formats/
 * mapped) and from the build (dist/src/sidecar/formats/mapped).
 */
function presetDirectory(): string | undefined {
  if (presetDirCache !== undefined) return presetDirCache;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'config', 'mappings');
    if (existsSync(candidate)) return (presetDirCache = candidate);
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/** The preset names shipped in config/mappings/ (file name without .yaml). */
export function mappingPresets(): string[] {
  const dir = presetDirectory();
  if (dir === undefined) return [];
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith('.yaml') && PRESET_NAME.test(f.slice(0, -5)))
      .map((f) => f.slice(0, -5))
      .sort();
  } catch {
    return [];
  }
}

/**
 * Loads a mapping: `ref` is a preset name (no slash, no .yaml) or a path to a
 * YAML file, a relative one resolved against `baseDir` (the config file's
 * directory).
 */
export function loadMapping(ref: string, baseDir: string): LineFormat {
  return formatOf(readMappingSource(ref, baseDir));
}

/** Same, from YAML text already read (for tests and for the CLI); `file` names it in errors. */
export function mappingFromYaml(text: string, file: string): LineFormat {
  return formatOf(parseYamlString(text, file, MAX_MAPPING_BYTES, 'mapping file'));
}

function readMappingSource(ref: string, baseDir: string): YamlSource {
  const isPreset = !ref.includes('/') && !ref.includes('\\') && !ref.endsWith('.yaml') && !ref.endsWith('.yml');
  if (!isPreset) return readYamlFile(isAbsolute(ref) ? ref : resolve(baseDir, ref), MAX_MAPPING_BYTES, 'mapping file');
  const dir = presetDirectory();
  const presets = mappingPresets();
  if (dir === undefined || !PRESET_NAME.test(ref) || !presets.includes(ref)) {
    throw new ConfigError(
      'config_io',
      `no such mapping preset (presets: ${presets.join(', ') || 'none found'}; a file path needs a / or the .yaml suffix)`,
      { file: dir === undefined ? 'config/mappings' : join(dir, `${PRESET_NAME.test(ref) ? ref : '<preset>'}.yaml`) },
    );
  }
  return readYamlFile(join(dir, `${ref}.yaml`), MAX_MAPPING_BYTES, 'mapping file');
}

function formatOf(src: YamlSource): LineFormat {
  const mapping = parseMapping(src, toPlainData(src) as Record<string, unknown>);
  return { name: 'mapped', decode: (value) => decodeMapped(mapping, value) };
}

function decodeMapped(mapping: Mapping, value: unknown): DecodedEvent[] {
  let items: unknown[] | undefined;
  let prefix = '';
  if (Array.isArray(value)) {
    items = value;
  } else if (mapping.batch !== undefined && isBatchWrapper(value, mapping.batch)) {
    items = value[mapping.batch] as unknown[];
    prefix = mapping.batch;
  }
  if (items === undefined) return [{ event: applyMapping(mapping, value), path: '' }];
  if (items.length > MAX_BATCH_EVENTS) {
    throw new InputError('record_invalid', `a batch holds at most ${MAX_BATCH_EVENTS} events`, prefix || undefined);
  }
  return items.map((item, i) => {
    const path = `${prefix}[${i}]`;
    return { event: applyMapping(mapping, item, path), path };
  });
}

/** An object whose only member is the batch array: nothing but the wrapper is left out. */
function isBatchWrapper(value: unknown, member: string): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  return keys.length === 1 && keys[0] === member && Array.isArray((value as Record<string, unknown>)[member]);
}
