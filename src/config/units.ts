/**
 * Durations and sizes as people write them in YAML. Parsing is exact decimal
 * arithmetic (no floating point), so "1.1s" is 1100 ms, and a value that is
 * not a whole number of the base unit is refused instead of rounded.
 * Errors here carry no place; the caller wraps them with file:line:col.
 */
import type { UnitCode } from '../core/error-codes.js';
import { SealtrailError } from '../core/errors.js';

/**
 * Its code is the ConfigError code the loader reports the value with
 * (config_unit for sizes and durations, config_schema for host:port).
 */
export class UnitError extends SealtrailError<UnitCode> {}

const DURATION_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

const SIZE_UNITS: Readonly<Record<string, number>> = {
  B: 1,
  KB: 1000,
  MB: 1000 ** 2,
  GB: 1000 ** 3,
  TB: 1000 ** 4,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
  TiB: 1024 ** 4,
};

// Anchored, no nested quantifiers: linear on any input.
const QUANTITY = /^\s*([0-9]{1,15})(?:\.([0-9]{1,9}))?\s*([A-Za-z]{0,3})\s*$/;

export const DURATION_HINT = 'a duration: integer milliseconds or a number with unit ms, s, m or h (e.g. "250ms", "1.5s", "5m")';
export const SIZE_HINT = 'a size: integer bytes or a number with unit B, KB, MB, GB, TB, KiB, MiB, GiB or TiB (e.g. "64KiB", "10MB")';

/** Milliseconds from an integer (ms) or a string like "250ms", "1.5s", "5m", "1h". A bare digit string means ms. */
export function parseDuration(value: unknown): number {
  return parseQuantity(value, DURATION_UNITS, 'ms', 'milliseconds', DURATION_HINT);
}

/** Bytes from an integer or a string like "512B", "64KiB", "10MB". A bare digit string means bytes. */
export function parseSize(value: unknown): number {
  return parseQuantity(value, SIZE_UNITS, 'B', 'bytes', SIZE_HINT);
}

function parseQuantity(
  value: unknown,
  units: Readonly<Record<string, number>>,
  bareUnit: string,
  base: string,
  hint: string,
): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw new UnitError('config_unit', `must be ${hint}`);
    return value;
  }
  if (typeof value !== 'string') throw new UnitError('config_unit', `must be ${hint}`);
  const m = QUANTITY.exec(value);
  if (!m) throw new UnitError('config_unit', `must be ${hint}`);
  const unit = m[3] === '' ? bareUnit : m[3]!;
  const mult = Object.hasOwn(units, unit) ? units[unit] : undefined;
  if (mult === undefined) throw new UnitError('config_unit', `must be ${hint}`);
  const whole = BigInt(m[1]!);
  const fracDigits = m[2] ?? '';
  const scale = 10n ** BigInt(fracDigits.length);
  const numerator = (whole * scale + BigInt(fracDigits === '' ? '0' : fracDigits)) * BigInt(mult);
  if (numerator % scale !== 0n) throw new UnitError('config_unit', `must be a whole number of ${base}`);
  const result = numerator / scale;
  if (result > BigInt(Number.MAX_SAFE_INTEGER)) throw new UnitError('config_unit', 'is too large');
  return Number(result);
}

/** Split "host:port" / "[::1]:port"; the port must be 0..65535. */
export function splitHostPort(listen: string): { host: string; port: number } {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):([0-9]{1,5})$/.exec(listen);
  if (!m) throw new UnitError('config_schema', 'must be "host:port" (e.g. "127.0.0.1:9470" or "[::1]:9470")');
  const port = Number(m[3]);
  if (port > 65535) throw new UnitError('config_schema', 'port must be between 0 and 65535');
  return { host: m[1] ?? m[2]!, port };
}
