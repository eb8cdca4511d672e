/**
 * The one sleep and the one waitFor of the tests and benchmarks. Compiled
 * with the benchmarks (tsconfig includes test/harness), so bench/ and
 * test/helpers/ share it without test helpers importing from bench/.
 */

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Polls `fn` every `intervalMs` until it returns something other than
 * undefined or false, and returns that; an exception counts as "not yet"
 * (the last one is named if time runs out).
 */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 60_000,
  intervalMs = 100,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await sleep(intervalMs);
  }
}
