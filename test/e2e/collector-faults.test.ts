import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  makeDeployment,
  queryAll,
  startCollectorProc,
  startSidecarProc,
  stop,
  treeSize,
  type Deployment,
  type DeploymentOptions,
} from '../helpers/deployment.js';
import {
  appendLines,
  bufferSeqs,
  delivery,
  FaultProxy,
  interpose,
  logLines,
  metric,
  peakRssMiB,
  range,
  sleep,
  type FaultMode,
  type ParsedBatch,
} from '../helpers/faults.js';
import { runCli, waitFor, type Proc } from '../helpers/procs.js';

/**
 * Collector faults, with real processes: a real sidecar ships to a real
 * collector, directly or through a FaultProxy that answers what a broken,
 * refusing, slow or lying collector would. Every line carries a unique id
 * (details.line) and the checks count those ids, never the tree size alone.
 */

const procs: Proc[] = [];
const proxies: FaultProxy[] = [];

afterAll(async () => {
  for (const p of procs.splice(0)) await stop(p, 'SIGKILL');
  for (const p of proxies.splice(0)) await p.stop();
});

async function expectExactlyOnceInOrder(real: Deployment, total: number): Promise<void> {
  await waitFor(`${total} lines at the collector`, async () => (await treeSize(real)) >= total, 120_000, 250);
  const got = delivery(await queryAll(real), total);
  expect(got.missing).toEqual([]);
  expect(got.duplicated).toEqual([]);
  expect(got.seqs).toEqual(range(total));
  expect(got.idsBySeq).toEqual(range(total));
}

async function readyz(d: Deployment): Promise<{ status: number; text: string }> {
  const res = await request(`${d.telemetryUrl}/readyz`);
  return { status: res.statusCode, text: await res.body.text() };
}

async function verifyUrl(real: Deployment): Promise<void> {
  const r = await runCli(['verify', '--url', real.collectorUrl, '--keys', real.keys, '--token', real.token]);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
}

interface Proxied {
  /** the sidecar's view: it ships to the proxy at d.collectorUrl */
  d: Deployment;
  /** the real collector, for queries and verify */
  real: Deployment;
  proxy: FaultProxy;
  collector: Proc;
  sidecar: Proc;
  /** an empty traces/agent.jsonl the sidecar follows */
  live: string;
}

/** A collector behind a FaultProxy (in `mode` before the sidecar starts), a sidecar shipping through it, and an empty live file. */
async function throughProxy(opts: DeploymentOptions, setup: { mode?: FaultMode; config?: (yaml: string) => string } = {}): Promise<Proxied> {
  const d = await makeDeployment(opts);
  if (setup.config) writeFileSync(d.config, setup.config(readFileSync(d.config, 'utf8')));
  const { real, shipPort } = await interpose(d);
  const collector = await startCollectorProc(real);
  procs.push(collector);
  const proxy = await new FaultProxy(shipPort, real.collectorUrl).start();
  proxies.push(proxy);
  if (setup.mode) proxy.mode = setup.mode;
  const sidecar = await startSidecarProc(d);
  procs.push(sidecar);
  const live = join(d.traces, 'agent.jsonl');
  writeFileSync(live, '');
  return { d, real, proxy, collector, sidecar, live };
}

describe('collector down for 60 s', () => {
  const OUTAGE_TICKS = 60; // one second each
  const PER_TICK = 100; // 6,000 lines written during the outage

  it('buffers everything while it is down and delivers it afterwards, in order, exactly once', async () => {
    const d = await makeDeployment({ sealInterval: '200ms', maxRecords: 500 });
    let collector = await startCollectorProc(d);
    procs.push(collector);
    const sidecar = await startSidecarProc(d);
    procs.push(sidecar);
    const live = join(d.traces, 'agent.jsonl');
    writeFileSync(live, '');
    appendLines(live, 0, 500);
    let written = 500;
    await expectExactlyOnceInOrder(d, written);

    collector.child.kill('SIGKILL');
    expect((await collector.exited).signal).toBe('SIGKILL');
    for (let t = 0; t < OUTAGE_TICKS; t++) {
      appendLines(live, written, PER_TICK);
      written += PER_TICK;
      await sleep(1000);
    }
    const during = written - 500;
    expect(during).toBeGreaterThanOrEqual(5000);
    // Everything written during the outage is in the sidecar's buffer, nothing was shipped or dropped.
    await waitFor('outage lines buffered', async () => (await metric(d.telemetryUrl, 'sealtrail_buffer_records')) === during, 30_000, 200);
    expect(bufferSeqs(d.bufferDb)).toEqual(range(during, 500));
    expect(await metric(d.telemetryUrl, 'sealtrail_batches_failed_total', 'reason="network"')).toBeGreaterThanOrEqual(2);
    expect(await metric(d.telemetryUrl, 'sealtrail_shipping_halted')).toBe(0);
    const warned = logLines(sidecar.stderr()).filter((l) => l.msg === 'collector unreachable; will retry');
    expect(warned.length).toBeGreaterThanOrEqual(1);
    // Backoff is capped at backoff_max (1 s) but never shortened by new seals: about one attempt per second at most.
    expect(warned.length).toBeLessThanOrEqual(OUTAGE_TICKS * 3);

    collector = await startCollectorProc(d);
    procs.push(collector);
    await expectExactlyOnceInOrder(d, written);
    await waitFor('buffer emptied', async () => (await metric(d.telemetryUrl, 'sealtrail_buffer_records')) === 0, 30_000, 200);
    expect(bufferSeqs(d.bufferDb)).toEqual([]);
    await verifyUrl(d);
    expect((await stop(sidecar)).code).toBe(0);
    expect((await stop(collector)).code).toBe(0);
  }, 240_000);
});

const err = (code: string): string => JSON.stringify({ error: { code, message: `refused by the test (${code})` } });

interface HaltCase {
  name: string;
  status: number;
  body: string | ((b: ParsedBatch) => string);
  reason: string;
}

const HALTS: HaltCase[] = [
  { name: '400 batch_invalid', status: 400, body: err('batch_invalid'), reason: 'batch_invalid' },
  { name: '413 without a body', status: 413, body: '', reason: 'http_413' },
  { name: '422 checkpoint_invalid', status: 422, body: err('checkpoint_invalid'), reason: 'checkpoint_invalid' },
  { name: '409 batch_conflict', status: 409, body: err('batch_conflict'), reason: 'batch_conflict' },
  { name: '401 unauthorized', status: 401, body: err('unauthorized'), reason: 'unauthorized' },
  { name: '403 with an HTML body', status: 403, body: '<html><body>Forbidden</body></html>', reason: 'http_403' },
  { name: '200 with a non-JSON body', status: 200, body: 'OK', reason: 'bad_ack' },
  {
    name: '200 acknowledging the next batch instead',
    status: 200,
    body: (b) => JSON.stringify({ ack: { stream: b.stream, batch: b.batch + 1, tree_size: b.last_seq + 2 } }),
    reason: 'bad_ack',
  },
  { name: '200 acknowledging another stream', status: 200, body: (b) => JSON.stringify({ ack: { stream: `${b.stream}x`, batch: b.batch } }), reason: 'bad_ack' },
  { name: '200 with a 4 MiB garbage body', status: 200, body: 'x'.repeat(4 * 1024 * 1024), reason: 'bad_ack' },
];

describe('answers that halt shipping: alert, keep everything, skip nothing, resume when fixed', () => {
  let d: Deployment;
  let real: Deployment;
  let proxy: FaultProxy;
  let sidecar: Proc;
  let live: string;
  let written = 0;

  beforeAll(async () => {
    ({ d, real, proxy, sidecar, live } = await throughProxy({ sealInterval: '200ms', maxRecords: 100 }));
    appendLines(live, 0, 200);
    written = 200;
    await expectExactlyOnceInOrder(real, written);
  });

  afterEach(() => {
    proxy.mode = { kind: 'proxy' };
  });

  afterAll(async () => {
    await verifyUrl(real);
    expect((await stop(sidecar)).code).toBe(0);
  });

  it.each(HALTS)('$name', async ({ status, body, reason }) => {
    const PHASE = 300;
    // each case starts from a delivered, unhalted stream (so one failure does not cascade)
    await expectExactlyOnceInOrder(real, written);
    const seqStart = written;
    const failedBefore = await metric(d.telemetryUrl, 'sealtrail_batches_failed_total', `reason="${reason}"`);
    const logMark = sidecar.stderr().length;
    const reqMark = proxy.requests.length;
    proxy.mode = { kind: 'answer', status, body };
    const t0 = Date.now();
    // Written over about two seconds, so several batches are sealed while the stream is halted.
    for (let i = 0; i < 6; i++) {
      appendLines(live, written, PHASE / 6);
      written += PHASE / 6;
      await sleep(300);
    }
    await waitFor('halted, every phase line buffered, re-probed', async () =>
      (await metric(d.telemetryUrl, 'sealtrail_shipping_halted')) === 1 &&
      (await metric(d.telemetryUrl, 'sealtrail_buffer_records')) === PHASE &&
      (await metric(d.telemetryUrl, 'sealtrail_batches_failed_total', `reason="${reason}"`)) >= failedBefore + 2,
    30_000, 100);
    const elapsed = Date.now() - t0;
    const probes = proxy.requests.slice(reqMark);
    // No record deleted, none skipped: the buffer holds the whole phase and every probe was the same, oldest batch.
    expect(bufferSeqs(d.bufferDb)).toEqual(range(PHASE, seqStart));
    expect(probes.every((r) => r.by === 'fault')).toBe(true);
    expect(new Set(probes.map((r) => r.batch)).size).toBe(1);
    const halted = probes[0]!.batch;
    // Re-probed every backoff_max (1 s), not at every newly sealed batch.
    expect(probes.length).toBeLessThanOrEqual(Math.ceil(elapsed / 1000) + 2);
    // An error log line that names the status.
    const logs = logLines(sidecar.stderr().slice(logMark)).filter((l) => l.level === 'error' && l.status === status);
    expect(logs.length).toBeGreaterThanOrEqual(1);
    expect(logs[0]!.batch).toBe(halted);
    expect(logs[0]!.reason).toBe(reason);
    expect(logs[0]!.runbook).toBe('docs/runbook.md#shipping-halted');
    expect(String(logs[0]!.msg)).toMatch(/halt/);
    // The halt names the batch and the reason in a metric and on /readyz, which stays 200: the sidecar still takes records in.
    expect(await metric(d.telemetryUrl, 'sealtrail_shipping_halt_info', `batch="${halted}",status="${status}",reason="${reason}"`)).toBe(1);
    const ready = await readyz(d);
    expect(ready.status).toBe(200);
    expect(ready.text).toMatch(new RegExp(`^ready\nshipping halted since \\S+: batch ${halted} \\(seq \\d+\\.\\.\\d+\\) is refused by the collector with ${status} ${reason}`));

    // The collector is fixed: the same batch goes first, then the rest, each line once, in order.
    proxy.mode = { kind: 'proxy' };
    await expectExactlyOnceInOrder(real, written);
    expect(proxy.requests.slice(reqMark).find((r) => r.by === 'proxy')!.batch).toBe(halted);
    await waitFor('halt cleared, buffer empty', async () =>
      (await metric(d.telemetryUrl, 'sealtrail_shipping_halted')) === 0 &&
      (await metric(d.telemetryUrl, 'sealtrail_buffer_records')) === 0,
    30_000, 100);
    expect(await metric(d.telemetryUrl, 'sealtrail_shipping_halt_info', `batch="${halted}",status="${status}",reason="${reason}"`)).toBe(0);
    expect((await readyz(d)).text).toBe('ready\n');
  });
});

describe('a halt that lasts: ingest goes on up to the buffer limits, then backpressure, and nothing is lost', () => {
  it('keeps taking lines while halted, pauses at buffer.max_records, and delivers all of them once the collector accepts again', async () => {
    const { d, real, proxy, sidecar, live } = await throughProxy(
      { sealInterval: '200ms', maxRecords: 20, buffer: { max_records: 120 } },
      { mode: { kind: 'answer', status: 422, body: err('batch_malformed') } },
    );
    appendLines(live, 0, 3000);
    await waitFor('halted and paused at the buffer limit', async () =>
      (await metric(d.telemetryUrl, 'sealtrail_shipping_halted')) === 1 &&
      (await metric(d.telemetryUrl, 'sealtrail_backpressure')) === 1,
    30_000, 100);
    const held = await metric(d.telemetryUrl, 'sealtrail_buffer_records');
    expect(held).toBeGreaterThanOrEqual(120);
    // a file is read a chunk at a time, so the pause lands within a chunk of the limit
    expect(held).toBeLessThan(3000);
    await sleep(1_000);
    // paused: no more lines read while the collector refuses, none lost or skipped
    expect(await metric(d.telemetryUrl, 'sealtrail_buffer_records')).toBe(held);
    expect(bufferSeqs(d.bufferDb)).toEqual(range(held));
    const ready = await readyz(d);
    expect(ready.status).toBe(200);
    expect(ready.text).toMatch(/shipping halted since \S+: batch 0 \(seq 0\.\.19\) is refused by the collector with 422 batch_malformed/);

    proxy.mode = { kind: 'proxy' };
    await expectExactlyOnceInOrder(real, 3000);
    await waitFor('backpressure off, halt cleared', async () =>
      (await metric(d.telemetryUrl, 'sealtrail_backpressure')) === 0 &&
      (await metric(d.telemetryUrl, 'sealtrail_shipping_halted')) === 0,
    30_000, 100);
    await verifyUrl(real);
    expect((await stop(sidecar)).code).toBe(0);
  });
});

interface RetryCase {
  name: string;
  mode: FaultMode & { kind: 'answer' };
  reason: string;
}

const RETRIES: RetryCase[] = [
  { name: '500', mode: { kind: 'answer', status: 500, body: err('internal') }, reason: 'internal' },
  { name: '502 from a proxy, HTML body', mode: { kind: 'answer', status: 502, body: '<html>Bad Gateway</html>' }, reason: 'http_502' },
  { name: '503 with Retry-After: 1', mode: { kind: 'answer', status: 503, body: err('store_unavailable'), headers: { 'retry-after': '1' } }, reason: 'store_unavailable' },
  { name: '504', mode: { kind: 'answer', status: 504 }, reason: 'http_504' },
  { name: '408', mode: { kind: 'answer', status: 408 }, reason: 'http_408' },
  { name: '429 with Retry-After: 1', mode: { kind: 'answer', status: 429, headers: { 'retry-after': '1' } }, reason: 'http_429' },
];

describe('answers that are retried, never halted', () => {
  let d: Deployment;
  let real: Deployment;
  let proxy: FaultProxy;
  let sidecar: Proc;
  let live: string;
  let written = 0;

  beforeAll(async () => {
    ({ d, real, proxy, sidecar, live } = await throughProxy({ sealInterval: '200ms', maxRecords: 100 }));
  });

  afterEach(() => {
    proxy.mode = { kind: 'proxy' };
  });

  afterAll(async () => {
    await verifyUrl(real);
    expect((await stop(sidecar)).code).toBe(0);
  });

  it.each(RETRIES)('$name', async ({ mode, reason }) => {
    await expectExactlyOnceInOrder(real, written);
    const failedBefore = await metric(d.telemetryUrl, 'sealtrail_batches_failed_total', `reason="${reason}"`);
    const reqMark = proxy.requests.length;
    proxy.mode = mode;
    appendLines(live, written, 150);
    written += 150;
    const halted: number[] = [];
    await waitFor('three refused attempts', async () => {
      halted.push(await metric(d.telemetryUrl, 'sealtrail_shipping_halted'));
      return proxy.requests.length - reqMark >= 3;
    }, 30_000, 100);
    halted.push(await metric(d.telemetryUrl, 'sealtrail_shipping_halted'));
    expect(halted.every((h) => h === 0)).toBe(true);
    expect(await metric(d.telemetryUrl, 'sealtrail_batches_failed_total', `reason="${reason}"`)).toBeGreaterThanOrEqual(failedBefore + 3);
    const tried = proxy.requests.slice(reqMark);
    expect(new Set(tried.map((r) => r.batch)).size).toBe(1);
    expect(bufferSeqs(d.bufferDb)).toEqual(range(150, written - 150));
    proxy.mode = { kind: 'proxy' };
    await expectExactlyOnceInOrder(real, written);
    expect(await metric(d.telemetryUrl, 'sealtrail_shipping_halted')).toBe(0);
  });

  it('Retry-After is honoured even while new batches keep being sealed', async () => {
    await expectExactlyOnceInOrder(real, written);
    const reqMark = proxy.requests.length;
    proxy.mode = { kind: 'answer', status: 429, headers: { 'retry-after': '3' } };
    // keep appending so batches are sealed (and the shipper woken) every 200 ms
    let writing = true;
    const writer = (async () => {
      while (writing) {
        appendLines(live, written, 10);
        written += 10;
        await sleep(100);
      }
    })();
    try {
      await waitFor('a retry after the 429', async () => proxy.requests.length - reqMark >= 2, 30_000, 50);
    } finally {
      writing = false;
      await writer;
    }
    const [first, second] = proxy.requests.slice(reqMark);
    expect(second!.batch).toBe(first!.batch);
    // A lower bound the shipper guarantees (it waits at least Retry-After), not a speed figure.
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(2900);
    proxy.mode = { kind: 'proxy' };
    await expectExactlyOnceInOrder(real, written);
  });
});

describe('a collector that answers too slowly', () => {
  it('a response trickled past ship.timeout is abandoned and retried; nothing is lost', async () => {
    const { d, real, proxy, collector, sidecar, live } = await throughProxy(
      { sealInterval: '200ms', maxRecords: 100 },
      { mode: { kind: 'trickle', intervalMs: 300 }, config: (y) => y.replace('backoff_max: 1s }', 'backoff_max: 1s, timeout: 2s }') },
    );
    appendLines(live, 0, 250);
    await waitFor('two abandoned attempts', async () => (await metric(d.telemetryUrl, 'sealtrail_batches_failed_total', 'reason="timeout"')) >= 2, 60_000, 200);
    expect(bufferSeqs(d.bufferDb)).toEqual(range(250));
    proxy.mode = { kind: 'proxy' };
    await expectExactlyOnceInOrder(real, 250);
    expect((await stop(sidecar)).code).toBe(0);
    await verifyUrl(real);
    expect((await stop(collector)).code).toBe(0);
    await proxy.stop();
  });

  it('delays of 2 s per batch while 50,000 lines are written: memory stays bounded, everything arrives', async () => {
    const TOTAL = 50_000;
    const { d, real, proxy, collector, sidecar, live } = await throughProxy(
      { sealInterval: '1s', maxRecords: 2500, buffer: { max_records: 10_000 } },
      { mode: { kind: 'proxy', delayMs: 2000 } },
    );
    for (let w = 0; w < TOTAL; w += 5000) appendLines(live, w, 5000);
    let sawBackpressure = false;
    let maxBuffered = 0;
    await waitFor('every line through the slow collector', async () => {
      if ((await metric(d.telemetryUrl, 'sealtrail_backpressure')) === 1) sawBackpressure = true;
      maxBuffered = Math.max(maxBuffered, await metric(d.telemetryUrl, 'sealtrail_buffer_records'));
      return (await treeSize(real)) >= TOTAL;
    }, 300_000, 250);
    const rss = peakRssMiB(sidecar.child.pid!);
    console.log(`slow collector: sidecar peak RSS ${rss.toFixed(1)} MiB; at most ${maxBuffered} records buffered (limit 10,000 + one read chunk); ${proxy.requests.length} requests`);
    expect(sawBackpressure).toBe(true);
    // reading pauses at the buffer limit: at most one read chunk (500 lines) beyond it
    expect(maxBuffered).toBeLessThanOrEqual(10_000 + 500);
    expect(rss).toBeLessThan(400);
    await expectExactlyOnceInOrder(real, TOTAL);
    expect((await stop(sidecar)).code).toBe(0);
    await verifyUrl(real);
    expect((await stop(collector)).code).toBe(0);
    await proxy.stop();
  }, 400_000);
});
