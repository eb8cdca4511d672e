import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestPki, type TestPki } from '../helpers/certs.js';
import { BatchBuilder } from '../helpers/collector-batches.js';
import { ADMIN_TOKEN, startTestCollector, type TestCollector } from '../helpers/collector-server.js';
import { runCli } from '../helpers/procs.js';
import { tlsRequest } from '../helpers/tls-requests.js';

/**
 * The commands that ask a collector (query, report --url, verify --url,
 * export) reach one that wants mTLS, as the shipped Kubernetes manifests
 * configure it, with --ca-file / --cert-file / --key-file; without them, or
 * with bad files, they stop with a message naming the flag, never a stack.
 */

const HMAC_KEY = Buffer.alloc(32, 3);
let dir: string;
let pki: TestPki;
let c: TestCollector;
let b: BatchBuilder;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sealtrail-cli-tls-'));
  pki = makeTestPki(dir);
  b = new BatchBuilder({ stream: 'pod-cli', hmacKey: HMAC_KEY });
  c = await startTestCollector({
    tls: { cert_file: pki.server.cert, key_file: pki.server.key, client_ca_file: pki.ca.cert },
    streams: [{ match: 'pod-cli', vkey: b.vkey }],
    hmac_keys: [{ id: 'k1', key: HMAC_KEY }],
  });
  const posted = await tlsRequest(`${c.url}/v1/batches`, { ca: pki.ca.cert, cert: pki.podA.cert, key: pki.podA.key }, { method: 'POST', body: JSON.stringify(b.next(3)) });
  expect(posted.status).toBe(200);
  writeFileSync(join(dir, 'pod-cli.vkey'), `${b.vkey}\n`, { mode: 0o600 });
});

afterAll(async () => {
  await c?.close();
  rmSync(dir, { recursive: true, force: true });
});

const env = { SEALTRAIL_ADMIN_TOKEN: ADMIN_TOKEN };
const tls = () => ['--ca-file', pki.ca.cert, '--cert-file', pki.podA.cert, '--key-file', pki.podA.key];
const noStack = (text: string) => expect(text).not.toMatch(/\n\s+at .+:\d+:\d+\)?\n/);

describe('CLI against a collector that wants mTLS', () => {
  it('query, report and verify answer with the CA and a client certificate', async () => {
    const q = await runCli(['query', '--url', c.url, '--stream', 'pod-cli', ...tls()], { env });
    expect(q.code, q.stderr).toBe(0);
    expect(q.stdout.trim().split('\n')).toHaveLength(3);

    const now = Date.now();
    const from = new Date(now - 86_400_000).toISOString();
    const to = new Date(now + 86_400_000).toISOString();
    const r = await runCli(['report', '--url', c.url, '--from', from, '--to', to, ...tls()], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(expect.any(Object));

    const v = await runCli(['verify', '--url', c.url, '--vkey', join(dir, 'pod-cli.vkey'), ...tls()], { env });
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect(v.stdout).toContain('pod-cli');

    const bundle = join(dir, 'bundle');
    const e = await runCli(['export', '--url', c.url, '--bundle', bundle, '--vkey', join(dir, 'pod-cli.vkey'), ...tls()], { env });
    expect(e.code, e.stderr).toBe(0);
    expect(e.stdout).toContain('3 records');
  });

  it('without a client certificate the collector refuses, and the CLI says so', async () => {
    const q = await runCli(['query', '--url', c.url, '--ca-file', pki.ca.cert], { env });
    expect(q.code).toBe(1);
    expect(q.stderr).toContain('client_certificate_refused');
    noStack(q.stderr);
  });

  it("without --ca-file the collector's certificate is not trusted", async () => {
    const q = await runCli(['query', '--url', c.url, '--cert-file', pki.podA.cert, '--key-file', pki.podA.key], { env });
    expect(q.code).toBe(1);
    expect(q.stderr).toMatch(/collector_unreachable|certificate/);
    noStack(q.stderr);
  });

  it.each([
    [['--cert-file', 'X'], 2, /--cert-file and --key-file go together: give --key-file too/],
    [['--key-file', 'X'], 2, /--cert-file and --key-file go together: give --cert-file too/],
    [['--ca-file', '/nonexistent/ca.crt'], 1, /file_missing.*\(--ca-file\) \/nonexistent\/ca\.crt/],
    [['--ca-file', '$KEY'], 1, /tls_pem_invalid|BEGIN CERTIFICATE/],
    [['--cert-file', '$CERT', '--key-file', '$OTHERKEY'], 1, /tls_key_mismatch|--key-file\) is not the key of certificate/],
  ] as const)('%j: a clear refusal naming the flag, exit %i', async (flags, code, message) => {
    const args = flags.map((f) => (f === '$KEY' ? pki.podA.key : f === '$CERT' ? pki.podA.cert : f === '$OTHERKEY' ? pki.podB.key : f));
    const q = await runCli(['query', '--url', c.url, ...args], { env });
    expect(q.code).toBe(code);
    expect(q.stderr).toMatch(message);
    noStack(q.stderr);
  });

  it('refuses the TLS flags where they would not be used (an http:// URL, --db, --bundle), so no token goes out in clear unnoticed', async () => {
    const plain = c.url.replace('https://', 'http://');
    for (const args of [
      ['query', '--url', plain, '--ca-file', pki.ca.cert],
      ['report', '--db', join(dir, 'x.db'), '--from', '2026-01-01T00:00:00Z', '--to', '2026-01-02T00:00:00Z', '--cert-file', pki.podA.cert, '--key-file', pki.podA.key],
      ['verify', '--db', join(dir, 'x.db'), '--ca-file', pki.ca.cert],
      ['verify', '--bundle', join(dir, 'bundle'), '--ca-file', pki.ca.cert],
    ]) {
      const r = await runCli(args, { env });
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/--(ca|cert)-file.*only for an https:\/\/ --url/);
      noStack(r.stderr);
    }
  });
});
