/**
 * Runs `stop` once on SIGTERM or SIGINT (Ctrl-C) and resolves with its exit
 * code. A second signal while draining exits at once with 130, the way
 * operators expect a second Ctrl-C to behave.
 */
export function onStopSignal(stop: (signal: string) => Promise<void>): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const handler = (signal: NodeJS.Signals): void => {
      if (stopping) {
        process.exit(130);
      }
      stopping = true;
      stop(signal).then(
        () => resolve(0),
        (err: unknown) => {
          process.stderr.write(`shutdown failed: ${(err as Error).message}\n`);
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', handler);
    process.on('SIGINT', handler);
  });
}

/** Grace period for draining: SEALTRAIL_DRAIN_SECONDS, default 25 s (under Kubernetes' 30 s default). */
export function drainDeadline(env: NodeJS.ProcessEnv = process.env): number {
  const s = Number(env.SEALTRAIL_DRAIN_SECONDS ?? 25);
  return Date.now() + (Number.isFinite(s) && s >= 0 ? s : 25) * 1000;
}
