/**
 * Delays between reconnect (socket) or resend (HTTP) attempts: exponential,
 * bounded, jittered. Bounded so a sidecar that comes back is found within
 * maxDelayMs; jittered so the agents of a node, all cut off by one sidecar
 * restart, do not reconnect in lockstep.
 *
 * Durability: none; Backoff is an in-memory count of failures since the
 * last answer, starting over with each client.
 */

export interface BackoffPolicy {
  /** delay before the first retry, ms */
  initialDelayMs: number;
  /** no delay is longer than this, ms */
  maxDelayMs: number;
  /** growth per failed attempt */
  multiplier: number;
  /** share of the delay drawn at random, 0..1: the delay lies in [d·(1-jitter), d] */
  jitter: number;
}

export const DEFAULT_BACKOFF: Readonly<BackoffPolicy> = Object.freeze({
  initialDelayMs: 100,
  maxDelayMs: 5_000,
  multiplier: 2,
  jitter: 0.5,
});

/**
 * The delay before retry number `attempt` (0 for the first retry). `random`
 * returns [0, 1), as Math.random does; tests pass their own.
 */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  // Capped before the power can overflow to Infinity.
  const exp = Math.min(Math.max(0, attempt), 64);
  const ceiling = Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.multiplier ** exp);
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.round(ceiling * (1 - policy.jitter * r));
}

/** Counts failed attempts since the last success. */
export class Backoff {
  private attempt = 0;
  constructor(
    private readonly policy: BackoffPolicy,
    private readonly random: () => number = Math.random,
  ) {}

  /** The delay before the next attempt; counts this one as failed. */
  next(): number {
    return backoffDelay(this.attempt++, this.policy, this.random);
  }

  /** Failed attempts since the last reset. */
  get failures(): number {
    return this.attempt;
  }

  /** The sidecar answered: the next failure starts from initialDelayMs again. */
  reset(): void {
    this.attempt = 0;
  }
}
