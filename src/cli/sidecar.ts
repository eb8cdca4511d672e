import { createLogger } from '../log.js';
import { startSidecar } from '../sidecar/sidecar.js';
import { drainDeadline, onStopSignal } from './signals.js';
import { configSectionFromArgs } from './config-arg.js';

export async function sidecarCommand(argv: string[]): Promise<number> {
  const section = configSectionFromArgs(argv, 'sidecar', 'sidecar');
  const logger = createLogger('sidecar');
  const sidecar = await startSidecar(section, { logger });
  process.on('SIGHUP', () => sidecar.reload());
  return onStopSignal(async (signal) => {
    logger.info({ signal }, 'draining');
    await sidecar.shutdown(drainDeadline());
  });
}
