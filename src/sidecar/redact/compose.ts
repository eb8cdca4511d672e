/**
 * Composing rule files (docs/redaction.md, "Rule file"): `include:` pulls in
 * other files (paths relative to the including file, or `pack:NAME` for
 * config/redaction/NAME.yaml shipped with sealtrail), depth first, so a
 * file's rules come after those of the files it includes. `disable:` may name
 * a rule from anywhere in the composition. `decode:` keys and `max_depth`
 * are settings: the last file (in that order) that sets one wins, so the
 * top-level file overrides its packs.
 */
import { existsSync, readdirSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../../core/errors.js';
import type { Place } from '../../config/yaml.js';
import { MAX_RULES, readRuleFileFull, type DecodeSettings, type RuleFile, type RuleSpec } from './rules.js';

/** Files read for one ruleset, counting repeats: stops include explosions (a includes b twice, b includes c twice, ...). */
export const MAX_RULE_FILES = 256;
const PACK_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;

export interface Composition {
  specs: RuleSpec[];
  disabled: Set<string>;
  decode: { -readonly [K in keyof DecodeSettings]?: boolean };
  maxDepth: number | undefined;
  /** every file read, in order */
  files: string[];
}

let packDirCache: string | undefined;

/**
 * config/redaction of the sealtrail package: found by walking up from this
 * module to the first directory with a package.json, which works from the
 * sources (src/sidecar/redact) and from the build (dist/src/sidecar/redact).
 */
export function packDirectory(): string {
  if (packDirCache !== undefined) return packDirCache;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'config', 'redaction'))) break;
    const up = dirname(dir);
    if (up === dir) {
      dir = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
      break;
    }
    dir = up;
  }
  packDirCache = join(dir, 'config', 'redaction');
  return packDirCache;
}

/** The names `pack:NAME` accepts. */
export function packNames(): string[] {
  try {
    return readdirSync(packDirectory())
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => f.slice(0, -5))
      .sort();
  } catch {
    return [];
  }
}

export function composeRuleFiles(paths: readonly string[]): Composition {
  const out: Composition = { specs: [], disabled: new Set(), decode: {}, maxDepth: undefined, files: [] };
  const disables: { id: string; place: Place }[] = [];
  /** the include chain being read, as [real path, display path] */
  const stack: [string, string][] = [];
  /** files already composed: a second include of the same file (a diamond, e.g. hipaa + gdpr both including pii-basic) adds nothing */
  const done = new Set<string>();

  const load = (path: string, via: Place | undefined, target: string | undefined): void => {
    if (out.files.length >= MAX_RULE_FILES) {
      throw new ConfigError('redaction_too_many_files', `more than ${MAX_RULE_FILES} rule files read (includes repeat too often)`, via ?? { file: path });
    }
    const real = realPath(path);
    const open = stack.findIndex(([r]) => r === real);
    if (open !== -1) {
      const chain = [...stack.slice(open).map(([, shown]) => shown), path].join(' -> ');
      throw new ConfigError('redaction_include_cycle', `include cycle: ${chain}`, via ?? { file: path });
    }
    if (done.has(real)) return;
    done.add(real);
    let file: RuleFile;
    try {
      file = readRuleFileFull(path);
    } catch (err) {
      // "cannot open": name the include that asked for the file, not only the file.
      if (via && err instanceof ConfigError && err.code === 'config_io' && err.file === path && err.line === undefined) {
        const reason = err.message.startsWith(`${path}: `) ? err.message.slice(path.length + 2) : err.message;
        throw new ConfigError('config_io', `include "${target}" (${path}): ${reason}`, via, { cause: err });
      }
      throw err;
    }
    out.files.push(path);
    stack.push([real, path]);
    for (const inc of file.include) {
      load(includePath(inc.target, path, inc.place), inc.place, inc.target);
    }
    stack.pop();

    if (out.specs.length + file.rules.length > MAX_RULES) {
      const over = file.rules[MAX_RULES - out.specs.length];
      throw new ConfigError(
        'redaction_too_many_rules',
        `more than ${MAX_RULES} redaction rules across the loaded files`,
        over?.origin?.rule ?? { file: path },
      );
    }
    out.specs.push(...file.rules);
    disables.push(...file.disable);
    for (const [k, v] of Object.entries(file.decode)) out.decode[k as keyof DecodeSettings] = v.value;
    if (file.maxDepth) out.maxDepth = file.maxDepth.value;
  };

  for (const p of paths) load(p, undefined, undefined);

  const ids = new Set(out.specs.map((s) => s.id));
  for (const d of disables) {
    if (!ids.has(d.id)) {
      throw new ConfigError('redaction_unknown_rule', `disable: no rule "${d.id}" is defined in the loaded rule files`, d.place);
    }
    out.disabled.add(d.id);
  }
  return out;
}

function includePath(target: string, from: string, place: Place): string {
  if (target.startsWith('pack:')) {
    const name = target.slice(5);
    const file = join(packDirectory(), `${name}.yaml`);
    if (!PACK_NAME.test(name) || !existsSync(file)) {
      const known = packNames();
      throw new ConfigError(
        'redaction_unknown_pack',
        `unknown rule pack "${name.slice(0, 64)}"${known.length ? `; packs: ${known.join(', ')}` : ''}`,
        place,
      );
    }
    return file;
  }
  return isAbsolute(target) ? target : resolve(dirname(from), target);
}

function realPath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}

