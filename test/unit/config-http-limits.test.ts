import { describe, expect, it } from 'vitest';
import { defaultCollectorConfig, defaultSidecarConfig, parseConfigText } from '../../src/config/index.js';
import { ConfigError, SealtrailError } from '../../src/core/errors.js';
import { thrown } from '../helpers/errors.js';
import { connectionsCheckingInterval, DEFAULT_HTTP_LIMITS, httpServerOptions, resolveHttpLimits } from '../../src/http-limits.js';

const DEFAULTS = { header_timeout: 10_000, request_timeout: 60_000, keep_alive_timeout: 5_000, max_connections: 1024 };

const SIDECAR = `sidecar:
  sources: [{ id: app, type: file, include: [/x/*.jsonl] }]
  keys: { signing_key_file: /k/s, hmac_key_file: /k/h }
  ship: { url: http://collector:7470 }
  telemetry:
    listen: 127.0.0.1:9470
    http:
`;

/** collector.http holding `lines` (each indented four spaces); line 3 is the first of them. */
function collectorHttp(...lines: string[]): string {
  return `collector:\n  http:\n${lines.map((l) => `    ${l}\n`).join('')}`;
}

function expectAt(text: string, code: string, line: number, col: number, message?: RegExp): void {
  const err = thrown(() => parseConfigText(text, 'limits.yaml', {}), ConfigError);
  expect(err.code, err.message).toBe(code);
  expect([err.file, err.line, err.col], err.message).toEqual(['limits.yaml', line, col]);
  if (message) expect(err.message).toMatch(message);
}

describe('collector.http and sidecar.telemetry.http', () => {
  it('default to the safe limits, the same as the programmatic defaults', () => {
    expect(parseConfigText('collector: {}\n', 'c.yaml', {}).collector!.http).toEqual(DEFAULTS);
    expect(parseConfigText(SIDECAR.replace('    http:\n', ''), 's.yaml', {}).sidecar!.telemetry.http).toEqual(DEFAULTS);
    expect(DEFAULT_HTTP_LIMITS).toEqual(DEFAULTS);
    expect(resolveHttpLimits(undefined, 'telemetry_options_invalid')).toEqual(DEFAULTS);
  });

  it('take durations in the project units and fill in what is left out', () => {
    const c = parseConfigText(collectorHttp('header_timeout: 250ms', 'request_timeout: 1.5s', 'max_connections: 64'), 'c.yaml', {}).collector!;
    expect(c.http).toEqual({ header_timeout: 250, request_timeout: 1500, keep_alive_timeout: 5000, max_connections: 64 });
    const s = parseConfigText(`${SIDECAR}      keep_alive_timeout: 2s\n      request_timeout: 5m\n`, 's.yaml', {}).sidecar!;
    expect(s.telemetry.http).toEqual({ header_timeout: 10_000, request_timeout: 300_000, keep_alive_timeout: 2000, max_connections: 1024 });
    expect(defaultCollectorConfig({ http: { header_timeout: '1s', request_timeout: 3000 } }).http.request_timeout).toBe(3000);
    const input = { sources: [{ id: 'a', type: 'file' as const, include: ['/x'] }], keys: { signing_key_file: '/s', hmac_key_file: '/h' }, ship: { url: 'http://c' } };
    expect(defaultSidecarConfig({ ...input, telemetry: { http: { max_connections: 8 } } }).telemetry.http.max_connections).toBe(8);
  });

  it('refuse unknown keys, bad units and out-of-range values at their file:line:col', () => {
    expectAt(collectorHttp('idle_timeout: 5s'), 'config_schema', 3, 5, /idle_timeout/);
    expectAt(collectorHttp('header_timeout: 10 parsecs'), 'config_unit', 3, 21, /collector\.http\.header_timeout/);
    expectAt(collectorHttp('header_timeout: 50ms'), 'config_schema', 3, 21, /at least 100ms/);
    expectAt(collectorHttp('request_timeout: 2h'), 'config_schema', 3, 22, /at most 1h/);
    expectAt(collectorHttp('keep_alive_timeout: 0'), 'config_schema', 3, 25, /at least 100ms/);
    expectAt(collectorHttp('keep_alive_timeout: 11m'), 'config_schema', 3, 25, /at most 10m/);
    expectAt(collectorHttp('max_connections: 0'), 'config_schema', 3, 22);
    expectAt(collectorHttp('max_connections: 100000'), 'config_schema', 3, 22);
    expectAt(collectorHttp('max_connections: "10"'), 'config_schema', 3, 22);
    expectAt('collector:\n  http: 5s\n', 'config_schema', 2, 9);
    expectAt(`${SIDECAR}      header_timout: 1s\n`, 'config_schema', 8, 7, /header_timout/);
    expectAt(`${SIDECAR}      request_timeout: 99ms\n`, 'config_schema', 8, 24, /sidecar\.telemetry\.http\.request_timeout/);
  });

  it('refuse a header timeout longer than the request timeout, at the key that was written', () => {
    expectAt(collectorHttp('header_timeout: 30s', 'request_timeout: 20s'), 'config_schema', 3, 21, /must not be longer than request_timeout/);
    // only the request timeout written: it is the one that conflicts with the default header timeout
    expectAt(collectorHttp('request_timeout: 5s'), 'config_schema', 3, 22, /header_timeout \(10s\)/);
    expectAt(`${SIDECAR}      header_timeout: 2m\n`, 'config_schema', 8, 23);
  });
});

describe('resolveHttpLimits (programmatic use)', () => {
  it('fills defaults and refuses what the config would refuse, naming the key', () => {
    expect(resolveHttpLimits({ header_timeout: 1000, request_timeout: 2000 }, 'telemetry_options_invalid')).toEqual({ ...DEFAULTS, header_timeout: 1000, request_timeout: 2000 });
    const refused = (given: object, key: RegExp): void => {
      try {
        resolveHttpLimits(given, 'collector_options_invalid');
        throw new Error('expected a refusal');
      } catch (err) {
        expect(err).toBeInstanceOf(SealtrailError);
        expect((err as SealtrailError).code).toBe('collector_options_invalid');
        expect((err as Error).message).toMatch(key);
      }
    };
    refused({ header_timeout: 0 }, /http\.header_timeout/);
    refused({ request_timeout: 1.5 }, /http\.request_timeout/);
    refused({ keep_alive_timeout: 24 * 3600_000 }, /http\.keep_alive_timeout/);
    refused({ max_connections: 0 }, /http\.max_connections/);
    refused({ header_timeout: 5000, request_timeout: 4000 }, /header_timeout must not be longer/);
  });

  it('checks the timeouts often enough that a connection outlives its bound by at most a quarter of it, or 1 s', () => {
    expect(connectionsCheckingInterval(DEFAULT_HTTP_LIMITS)).toBe(1000);
    expect(connectionsCheckingInterval({ ...DEFAULTS, header_timeout: 1000, request_timeout: 2000 })).toBe(250);
    expect(connectionsCheckingInterval({ ...DEFAULTS, header_timeout: 100, request_timeout: 100 })).toBe(25);
    expect(httpServerOptions(DEFAULT_HTTP_LIMITS)).toEqual({
      headersTimeout: 10_000,
      requestTimeout: 60_000,
      keepAliveTimeout: 5_000,
      connectionsCheckingInterval: 1000,
    });
  });
});
