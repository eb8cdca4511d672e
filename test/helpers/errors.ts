import { expect } from 'vitest';
import { SealtrailError } from '../../src/core/errors.js';

type ErrorClass<E> = abstract new (...args: never[]) => E;

/**
 * Runs `fn`, asserts it throws an instance of `cls` and returns that error;
 * fails the test when it does not throw.
 */
export function thrown<E extends Error>(fn: () => unknown, cls: ErrorClass<E>, expected = `expected a ${cls.name}`): E {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(cls);
    return err as E;
  }
  throw new Error(expected);
}

/** The code of the typed error `fn` throws (asserting its class), or undefined when it does not throw. */
export function codeOf(fn: () => unknown, cls: ErrorClass<SealtrailError> = SealtrailError): string | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(cls);
    return (err as SealtrailError).code;
  }
  return undefined;
}
