import { existsSync } from 'node:fs';
import { loadConfigFile } from '../config/load.js';
import type { CollectorConfig, SidecarConfig } from '../config/types.js';
import { parse, UsageError } from './usage.js';

interface Sections {
  collector: CollectorConfig;
  sidecar: SidecarConfig;
}

/**
 * `--config FILE` of a command that needs one section of it: a missing flag,
 * a missing file or a missing section is a usage error (exit 2) naming it;
 * a bad file is the loader's ConfigError at file:line:col (exit 1).
 */
export function configSectionFromArgs<K extends keyof Sections>(argv: string[], command: string, section: K): Sections[K] {
  const { values } = parse(argv, { config: { type: 'string' } });
  if (!values.config) throw new UsageError(`${command} needs --config FILE`);
  if (!existsSync(values.config)) throw new UsageError(`--config ${values.config}: no such file`);
  const cfg = loadConfigFile(values.config);
  const found = cfg[section] as Sections[K] | undefined;
  if (!found) throw new UsageError(`${values.config} has no ${section}: section`);
  return found;
}
