import { startCollectorFromConfig } from '../collector/from-config.js';
import { createLogger } from '../log.js';
import { onStopSignal } from './signals.js';
import { configSectionFromArgs } from './config-arg.js';

export async function collectorCommand(argv: string[]): Promise<number> {
  const section = configSectionFromArgs(argv, 'collector', 'collector');
  const logger = createLogger('collector');
  const collector = await startCollectorFromConfig(section, logger);
  return onStopSignal(async (signal) => {
    logger.info({ signal }, 'stopping');
    await collector.shutdown();
  });
}
