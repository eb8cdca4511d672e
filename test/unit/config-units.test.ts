import { describe, expect, it } from 'vitest';
import { parseDuration, parseSize, splitHostPort } from '../../src/config/index.js';
import { UnitError } from '../../src/config/units.js';

describe('parseDuration', () => {
  it.each([
    [0, 0],
    [250, 250],
    ['250', 250],
    ['250ms', 250],
    ['1s', 1000],
    ['1.5s', 1500],
    ['1.1s', 1100],
    ['0.001s', 1],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1.25h', 4_500_000],
    [' 10s ', 10_000],
    ['10 s', 10_000],
  ] as const)('%j → %d ms', (input, ms) => {
    expect(parseDuration(input)).toBe(ms);
  });

  it.each([
    ['10 parsecs'],
    ['1.5ms'],
    ['0.0001s'],
    ['-1s'],
    ['1d'],
    ['1S'],
    ['s'],
    [''],
    ['1e3'],
    ['1_000'],
    ['.5s'],
    [-1],
    [1.5],
    [Number.NaN],
    [true],
    [null],
    ['9'.repeat(16)],
    ['999999999999999h'],
  ] as const)('%j is refused', (input) => {
    expect(() => parseDuration(input)).toThrow(UnitError);
  });
});

describe('parseSize', () => {
  it.each([
    [0, 0],
    [512, 512],
    ['512', 512],
    ['512B', 512],
    ['1KB', 1000],
    ['10MB', 10_000_000],
    ['1GB', 1e9],
    ['64KiB', 65_536],
    ['1MiB', 1_048_576],
    ['1GiB', 1_073_741_824],
    ['1.5KiB', 1536],
    ['1TiB', 1024 ** 4],
  ] as const)('%j → %d bytes', (input, bytes) => {
    expect(parseSize(input)).toBe(bytes);
  });

  it.each([['1.5B'], ['1kb'], ['1mib'], ['1 parsec'], ['1K'], ['-1B'], [1.5], ['0.0001KB'], ['1PB']] as const)(
    '%j is refused',
    (input) => {
      expect(() => parseSize(input)).toThrow(UnitError);
    },
  );

  it('is linear on hostile input', () => {
    expect(() => parseSize(`${'1'.repeat(100_000)}x`)).toThrow(UnitError);
    expect(() => parseSize(`1${' '.repeat(100_000)}x`)).toThrow(UnitError);
  });
});

describe('splitHostPort', () => {
  it('splits names, IPv4 and bracketed IPv6', () => {
    expect(splitHostPort('127.0.0.1:9470')).toEqual({ host: '127.0.0.1', port: 9470 });
    expect(splitHostPort('collector.svc:7470')).toEqual({ host: 'collector.svc', port: 7470 });
    expect(splitHostPort('[::1]:80')).toEqual({ host: '::1', port: 80 });
  });

  it.each([['localhost'], [':80'], ['host:65536'], ['::1:80'], ['a b:1'], ['host:']])('%j is refused', (s) => {
    expect(() => splitHostPort(s)).toThrow(UnitError);
  });
});
