import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'pg-connection-string';
import { afterAll, describe, expect, it } from 'vitest';
import { poolConfig } from '../../src/collector/store/postgres-connection.js';
import { makeCa } from '../helpers/certs.js';

/**
 * What TLS the collector's Postgres connections get for each sslmode: the
 * store hands collector.store.url to node-postgres unchanged
 * (connectionString), and these are the `ssl` options node-postgres derives
 * from it. docs/postgres.md states exactly this; a driver upgrade that
 * changes it fails here.
 */
const dir = mkdtempSync(join(tmpdir(), 'sealtrail-pgtls-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const BASE = 'postgres://app:pw@db.internal:5432/sealtrail';

function sslOf(url: string): unknown {
  const cfg = poolConfig(url, 1, 1000, 1000);
  expect(cfg.connectionString).toBe(url);
  return parse(cfg.connectionString!).ssl;
}

describe('sslmode as node-postgres reads collector.store.url', () => {
  it('disable: no TLS; no-verify: TLS without any check', () => {
    expect(sslOf(`${BASE}?sslmode=disable`)).toBe(false);
    expect(sslOf(`${BASE}?sslmode=no-verify`)).toEqual({ rejectUnauthorized: false });
  });

  it('prefer, require, verify-ca and verify-full all verify the CA and the host name (stricter than libpq for the first three)', () => {
    // `true` and `{}` both reach tls.connect as Node's defaults: rejectUnauthorized and the host name check.
    for (const mode of ['prefer', 'require', 'verify-ca', 'verify-full']) expect([true, {}]).toContainEqual(sslOf(`${BASE}?sslmode=${mode}`));
  });

  it('uselibpqcompat=true: require encrypts without verifying, verify-full verifies', () => {
    expect(sslOf(`${BASE}?sslmode=require&uselibpqcompat=true`)).toEqual({ rejectUnauthorized: false });
    expect(sslOf(`${BASE}?sslmode=verify-full&uselibpqcompat=true`)).toEqual({});
  });

  it('sslrootcert: the CA file is read into ssl.ca (verify-full against a private CA)', () => {
    const ca = makeCa(dir, 'pg-ca');
    const ssl = sslOf(`${BASE}?sslmode=verify-full&sslrootcert=${encodeURIComponent(ca.cert)}`) as { ca?: string };
    expect(ssl.ca).toBe(readFileSync(ca.cert, 'utf8'));
  });
});
