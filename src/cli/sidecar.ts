import { existsSync } from 'node:fs';
import { loadConfigFile } from '../config/load.js';
import { createLogger } from '../log.js';
import { startSidecar } from '../sidecar/sidecar.js';
import { drainDeadline, onStopSignal } from './signals.js';
import { parse, UsageError } from './usage.js';

export async function sidecarCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, { config: { type: 'string' } });
  if (!values.config) throw new UsageError('sidecar needs --config FILE');
  if (!existsSync(values.config)) throw new UsageError(`--config ${values.config}: no such file`);
  const cfg = loadConfigFile(values.config);
  if (!cfg.sidecar) throw new UsageError(`${values.config} has no sidecar: section`);
  const logger = createLogger('sidecar');
  const sidecar = await startSidecar(cfg.sidecar, { logger });
  process.on('SIGHUP', () => sidecar.reload());
  return onStopSignal(async (signal) => {
    logger.info({ signal }, 'draining');
    await sidecar.shutdown(drainDeadline());
  });
}
