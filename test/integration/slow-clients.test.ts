import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { sleep } from '../harness/wait.js';
import { startCollector } from '../../src/collector/app.js';
import { startCollectorFromConfig } from '../../src/collector/from-config.js';
import { openNullStore } from '../../src/collector/store/null.js';
import { defaultCollectorConfig, defaultSidecarConfig } from '../../src/config/load.js';
import type { HttpLimitsInput, SidecarConfigInput } from '../../src/config/types.js';
import { createHmacKeyFile, createSigningKeyFiles } from '../../src/keyfiles.js';
import { createLogger } from '../../src/log.js';
import { startSidecar } from '../../src/sidecar/sidecar.js';
import { SidecarMetrics } from '../../src/sidecar/telemetry/metrics.js';
import { startTelemetryServer } from '../../src/sidecar/telemetry/server.js';
import { rawConnect, rawJsonBody, rawStatus, type RawConnection } from '../helpers/raw-http.js';

/**
 * Slow and idle clients against both HTTP listeners, each started from
 * config (collector.http, sidecar.telemetry.http), over real sockets.
 * Bounds are the configured values plus slack for two noisy shared cores
 * (Node checks the header and request timeouts on a timer, and closes an
 * idle kept-alive connection about a second after keep_alive_timeout).
 */
const SLACK_MS = 3000;
const logger = createLogger('test', 'silent');

interface Listener {
  url: string;
  /** a route that reads a JSON body */
  bodyPath: string;
  close(): Promise<void>;
}

async function startCollectorListener(http: HttpLimitsInput): Promise<Listener> {
  const cfg = defaultCollectorConfig({ listen: '127.0.0.1:0', store: { type: 'null' }, http });
  const handle = await startCollectorFromConfig(cfg, logger);
  return { url: handle.running.url, bodyPath: '/v1/batches', close: () => handle.shutdown() };
}

async function startSidecarListener(http: HttpLimitsInput): Promise<Listener> {
  const dir = mkdtempSync(join(tmpdir(), 'sealtrail-slow-'));
  createSigningKeyFiles(join(dir, 's.skey'), join(dir, 's.vkey'), 'slow');
  createHmacKeyFile(join(dir, 'hmac.key'));
  const cfg = defaultSidecarConfig({
    stream: { name: 'slow' },
    data_dir: join(dir, 'data'),
    sources: [{ id: 'api', type: 'http' }] as unknown as SidecarConfigInput['sources'],
    keys: { signing_key_file: join(dir, 's.skey'), hmac_key_file: join(dir, 'hmac.key') },
    // nothing listens there: shipping retries quietly, which this test does not look at
    ship: { url: 'http://127.0.0.1:9' },
    telemetry: { listen: '127.0.0.1:0', http },
  });
  const sidecar = await startSidecar(cfg, { logger });
  return {
    url: sidecar.telemetryUrl,
    bodyPath: '/v1/events',
    async close() {
      await sidecar.shutdown(Date.now() + 200);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}


describe.each([
  ['collector', startCollectorListener],
  ['sidecar telemetry server', startSidecarListener],
] as const)('%s: slow clients', (name, start) => {
  let listener: Listener | undefined;
  const conns: RawConnection[] = [];
  const connect = (): RawConnection => {
    const c = rawConnect(listener!.url);
    conns.push(c);
    return c;
  };

  afterEach(async () => {
    for (const c of conns.splice(0)) c.stop();
    await listener?.close();
    listener = undefined;
  });

  it('cuts off an idle connection, headers and a body sent one byte per second, within their bounds, answering others meanwhile', async () => {
    listener = await start({ header_timeout: '2s', request_timeout: '4s' });
    const idle = connect();
    const slowHead = connect();
    slowHead.trickle(`POST ${listener.bodyPath} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nX-Filler: ${'a'.repeat(200)}\r\n`);
    const slowBody = connect();
    slowBody.socket.write(`POST ${listener.bodyPath} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n`);
    slowBody.trickle(`{"event_type":"slow","pad":"${'b'.repeat(900)}"}`);

    // Real requests on other connections are answered while the three are held.
    let done = false;
    const all = Promise.all([idle.closed, slowHead.closed, slowBody.closed]).finally(() => (done = true));
    let answered = 0;
    while (!done) {
      const r = await rawStatus(listener.url, '/healthz');
      expect(r.status, r.text).toBe(200);
      answered++;
      await sleep(200);
    }
    const [idleMs, headMs, bodyMs] = await all;
    expect(answered).toBeGreaterThan(0);

    expect(idleMs).toBeLessThan(2000 + SLACK_MS);
    expect(headMs).toBeLessThan(2000 + SLACK_MS);
    expect(bodyMs).toBeLessThan(4000 + SLACK_MS);
    // the body, its headers complete, was held to the request timeout, not the header one
    expect(bodyMs).toBeGreaterThanOrEqual(2000);
    for (const c of [idle, slowHead, slowBody]) expect(c.received()).toMatch(/^HTTP\/1\.1 408 /);
    if (name === 'collector') {
      for (const c of [idle, slowHead, slowBody]) expect(rawJsonBody(c.received())?.error?.code).toBe('request_timeout');
    }
  });

  it('closes connections beyond max_connections at once, and answers again once below it', async () => {
    listener = await start({ max_connections: 3 });
    const held = [connect(), connect(), connect()];
    await Promise.all(held.map((c) => new Promise((r) => c.socket.once('connect', r))));
    // the server accepts in its own turn of the event loop
    await sleep(200);

    const extra = connect();
    extra.socket.write('GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n');
    const extraMs = await extra.closed;
    // closed unanswered, long before the 10 s header timeout would have sent a 408
    expect(extra.received()).toBe('');
    expect(extraMs).toBeLessThan(5000);

    // the held connections still work
    held[0]!.socket.write('GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n');
    await held[0]!.closed;
    expect(held[0]!.received()).toMatch(/^HTTP\/1\.1 200 /);

    // one fewer: a new connection is answered (the server counts the close in its own turn)
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      status = (await rawStatus(listener.url, '/healthz')).status;
      if (status !== 200) await sleep(100);
    }
    expect(status).toBe(200);
  });

  it('closes a kept-alive connection left idle for keep_alive_timeout', async () => {
    listener = await start({ keep_alive_timeout: '1s' });
    const c = connect();
    c.socket.write('GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n');
    await c.waitFor(/^HTTP\/1\.1 200 [\s\S]*\r\n\r\n/);
    // the configured value is what clients are told
    expect(c.received()).toMatch(/\r\nKeep-Alive: timeout=1\r\n/i);
    await sleep(300);
    c.socket.write('GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n');
    await c.waitFor(/^HTTP\/1\.1 200 [\s\S]*HTTP\/1\.1 200 /);
    const idleFrom = Date.now();
    await c.closed;
    // Node closes about a second after the advertised timeout
    expect(Date.now() - idleFrom).toBeLessThan(1000 + 1000 + SLACK_MS);
  });
});

describe('listeners built in code', () => {
  it('get the same limits as an empty http: block in YAML', async () => {
    const expected = { headersTimeout: 10_000, requestTimeout: 60_000, keepAliveTimeout: 5_000, maxConnections: 1024 };
    const pick = (srv: { headersTimeout: number; requestTimeout: number; keepAliveTimeout: number; maxConnections: number }) => ({
      headersTimeout: srv.headersTimeout,
      requestTimeout: srv.requestTimeout,
      keepAliveTimeout: srv.keepAliveTimeout,
      maxConnections: srv.maxConnections,
    });
    const store = openNullStore();
    const collector = await startCollector(
      { listen: { host: '127.0.0.1', port: 0 }, max_body_bytes: 1024 * 1024, admin_tokens: [], streams: [], trust_on_first_use: false, hmac_keys: [] },
      store,
      logger,
    );
    const telemetry = await startTelemetryServer('127.0.0.1:0', new SidecarMetrics(), { healthy: () => true, ready: () => true, refresh: () => undefined });
    try {
      expect(pick(collector.app.server)).toEqual(expected);
      expect(pick(telemetry.server)).toEqual(expected);
    } finally {
      await collector.close();
      await store.close();
      await telemetry.close();
    }
  });
});
