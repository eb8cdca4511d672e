import { existsSync } from 'node:fs';
import { startCollectorFromConfig } from '../collector/from-config.js';
import { loadConfigFile } from '../config/load.js';
import { createLogger } from '../log.js';
import { onStopSignal } from './signals.js';
import { parse, UsageError } from './usage.js';

export async function collectorCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, { config: { type: 'string' } });
  if (!values.config) throw new UsageError('collector needs --config FILE');
  if (!existsSync(values.config)) throw new UsageError(`--config ${values.config}: no such file`);
  const cfg = loadConfigFile(values.config);
  if (!cfg.collector) throw new UsageError(`${values.config} has no collector: section`);
  const logger = createLogger('collector');
  const collector = await startCollectorFromConfig(cfg.collector, logger);
  return onStopSignal(async (signal) => {
    logger.info({ signal }, 'stopping');
    await collector.shutdown();
  });
}
