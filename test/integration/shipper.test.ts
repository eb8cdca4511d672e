import { getEventListeners } from 'node:events';
import { sleep, waitFor } from '../harness/wait.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { AuditBuffer, type BatchRow } from '../../src/sidecar/buffer/buffer.js';
import { Shipper, type ShipperOptions } from '../../src/sidecar/ship/shipper.js';
import { SidecarMetrics } from '../../src/sidecar/telemetry/metrics.js';
import { ackFor, deadPort, FakeCollector, type Answer } from '../helpers/sidecar-collector.js';
import { makeKeys, nextRecords, tempDir, type Keys, type TempDir } from '../helpers/sidecar-fixtures.js';

const STREAM = 'ship-stream';

let tmp: TempDir;
let keys: Keys;
let buffer: AuditBuffer;
let collector: FakeCollector;
let metrics: SidecarMetrics;
const shippers: Shipper[] = [];
const closed = new Set<Shipper>();

beforeEach(async () => {
  tmp = tempDir('sealtrail-ship-');
  keys = makeKeys('ship-test');
  buffer = AuditBuffer.open(tmp.file('buffer.db'), { newStreamId: () => STREAM });
  collector = await new FakeCollector().start();
  metrics = new SidecarMetrics();
});

afterEach(async () => {
  try {
    for (const s of shippers.splice(0)) if (!closed.has(s)) await s.close();
    closed.clear();
    await collector.stop();
  } finally {
    buffer.close();
    tmp.cleanup();
  }
});

/** Commits `records` records and seals them into batches of `per`. */
function fill(records: number, per: number): BatchRow[] {
  buffer.commit(nextRecords(buffer, records));
  const rows: BatchRow[] = [];
  for (let r = buffer.seal(keys.signer, per, 1e9); r; r = buffer.seal(keys.signer, per, 1e9)) rows.push(r);
  return rows;
}

function shipper(over: Partial<ShipperOptions> = {}): Shipper {
  const s = new Shipper(buffer, {
    url: collector.url,
    timeoutMs: 10_000,
    backoffInitialMs: 20,
    backoffMaxMs: 200,
    vkey: keys.vkey,
    logger: createLogger('test', 'silent'),
    metrics,
    ...over,
  });
  shippers.push(s);
  return s;
}

/** Value of a metric sample from the registry's text exposition. */
async function metric(name: string, labels = ''): Promise<number | undefined> {
  const text = await metrics.registry.getSingleMetricAsString(name);
  const want = labels ? `${name}{${labels}}` : name;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    if (line.slice(0, sp) === want) return Number(line.slice(sp + 1));
  }
  return undefined;
}

function storedSeqs(): number[] {
  return (buffer.db.prepare('SELECT seq FROM records ORDER BY seq').all() as Array<{ seq: number }>).map((r) => r.seq);
}

/** Scripted answers by request index, falling back to a proper ack. */
function script(...answers: Answer[]): (req: Parameters<typeof ackFor>[0], i: number) => Answer {
  return (req, i) => answers[i] ?? ackFor(req);
}

describe('Shipper: delivery', () => {
  it('ships batches in order; each ack deletes exactly that batch', async () => {
    const rows = fill(7, 3); // batches 0..2
    const acked: number[] = [];
    const seqsAtAck: number[][] = [];
    const s = shipper({ token: 'tok-123', onAck: (row) => {
      acked.push(row.batch);
      seqsAtAck.push(storedSeqs());
    } });
    s.start();
    await waitFor('all batches shipped', () => buffer.nextToShip() === undefined, 30_000, 10);
    expect(collector.batches()).toEqual([0, 1, 2]);
    expect(collector.accepted).toEqual([0, 1, 2]);
    expect(acked).toEqual([0, 1, 2]);
    expect(seqsAtAck).toEqual([[3, 4, 5, 6], [6], []]);
    expect(buffer.stats()).toMatchObject({ records: 0, bytes: 0 });
    const [first, second] = collector.received;
    expect(first!.body.vkey).toBe(keys.vkey);
    expect(second!.body.vkey).toBeUndefined();
    expect(first!.headers.authorization).toBe('Bearer tok-123');
    expect(first!.headers['content-type']).toBe('application/json');
    expect(first!.body).toMatchObject({ v: 1, stream: STREAM, batch: 0, first_seq: 0, last_seq: 2, checkpoint: rows[0]!.checkpoint, prev_checkpoint: null });
    expect(first!.body.records.map((r) => r.seq)).toEqual([0, 1, 2]);
    expect(await metric('sealtrail_batches_shipped_total')).toBe(3);
    expect(await metric('sealtrail_shipping_halted')).toBe(0);
  });

  it('sends no authorization header without a token', async () => {
    fill(1, 1);
    shipper().start();
    await waitFor('one batch', () => collector.accepted.length === 1, 30_000, 10);
    expect(collector.received[0]!.headers.authorization).toBeUndefined();
  });

  it('ships a batch sealed after start when woken', async () => {
    const s = shipper();
    s.start();
    await sleep(50);
    expect(collector.received).toHaveLength(0);
    fill(2, 10);
    s.wake();
    await waitFor('woken batch shipped', () => collector.accepted.length === 1, 30_000, 10);
    await waitFor('records deleted', () => buffer.stats().records === 0, 30_000, 10);
  });

  it('503 then 200: the batch is delivered once and the next one only after it', async () => {
    fill(4, 2);
    collector.responder = script(
      { status: 503, body: { error: { code: 'store_unavailable', message: 'x' } }, headers: { 'retry-after': '0' } },
      { status: 503 },
    );
    shipper().start();
    await waitFor('all shipped', () => buffer.nextToShip() === undefined, 30_000, 10);
    expect(collector.batches()).toEqual([0, 0, 0, 1]);
    expect(collector.accepted).toEqual([0, 1]);
    expect(storedSeqs()).toEqual([]);
    expect(await metric('sealtrail_batches_failed_total', 'reason="store_unavailable"')).toBe(1);
    expect(await metric('sealtrail_batches_failed_total', 'reason="http_503"')).toBe(1);
    expect(await metric('sealtrail_shipping_halted')).toBe(0);
  });

  it('408 and 5xx are retried, never skipped', async () => {
    fill(2, 1);
    collector.responder = script({ status: 408 }, { status: 500 }, { status: 502 }, { status: 504 });
    shipper().start();
    await waitFor('all shipped', () => buffer.nextToShip() === undefined, 30_000, 10);
    expect(collector.batches()).toEqual([0, 0, 0, 0, 0, 1]);
  });

  it('429 with Retry-After: 1 waits about a second before retrying', async () => {
    fill(1, 1);
    collector.responder = script({ status: 429, headers: { 'retry-after': '1' } });
    shipper({ backoffInitialMs: 1, backoffMaxMs: 5 }).start();
    await waitFor('delivered after 429', () => collector.accepted.length === 1, 30_000, 10);
    expect(collector.received).toHaveLength(2);
    const gap = collector.received[1]!.at - collector.received[0]!.at;
    expect(gap).toBeGreaterThanOrEqual(900);
    expect(await metric('sealtrail_batches_failed_total', 'reason="http_429"')).toBe(1);
  });

  it('a dropped connection is a network error: retried, then delivered', async () => {
    fill(3, 3);
    collector.responder = script('destroy', 'destroy');
    shipper().start();
    await waitFor('delivered after network errors', () => buffer.nextToShip() === undefined, 30_000, 10);
    expect(collector.batches()).toEqual([0, 0, 0]);
    expect(storedSeqs()).toEqual([]);
    expect(await metric('sealtrail_batches_failed_total', 'reason="network"')).toBe(2);
  });

  it('a collector that is down and comes back on the same port gets the batch', async () => {
    fill(2, 1);
    await collector.stop();
    shipper({ backoffInitialMs: 10, backoffMaxMs: 50 }).start();
    await waitFor('network failures while down', async () => ((await metric('sealtrail_batches_failed_total', 'reason="network"')) ?? 0) >= 2, 30_000, 10);
    expect(buffer.stats().records).toBe(2);
    await collector.restart();
    await waitFor('delivered after restart', () => buffer.nextToShip() === undefined, 30_000, 10);
    expect(collector.accepted).toEqual([0, 1]);
    expect(storedSeqs()).toEqual([]);
  });
});

describe('Shipper: refusals halt shipping without losing anything', () => {
  it.each([422, 409, 401, 400, 403, 404, 413])('%i halts, keeps the records, keeps re-probing, resumes when fixed', async (status) => {
    fill(4, 2);
    let fixed = false;
    collector.responder = (req) => (fixed ? ackFor(req) : { status, body: { error: { code: `refused_${status}`, message: 'no' } } });
    shipper({ backoffInitialMs: 10, backoffMaxMs: 100 }).start();
    await waitFor('re-probes', async () => ((await metric('sealtrail_batches_failed_total', `reason="refused_${status}"`)) ?? 0) >= 3, 30_000, 10);
    expect(collector.received.length).toBeGreaterThanOrEqual(3);
    expect(await metric('sealtrail_shipping_halted')).toBe(1);
    expect(new Set(collector.batches())).toEqual(new Set([0]));
    expect(storedSeqs()).toEqual([0, 1, 2, 3]);
    expect(buffer.nextToShip()?.batch).toBe(0);
    expect(await metric('sealtrail_batches_failed_total', `reason="refused_${status}"`)).toBeGreaterThanOrEqual(3);
    fixed = true;
    await waitFor('delivered once fixed', () => buffer.nextToShip() === undefined, 30_000, 10);
    expect(collector.accepted).toEqual([0, 1]);
    expect(await metric('sealtrail_shipping_halted')).toBe(0);
  });

  it('labels an unusable error code by status', async () => {
    fill(1, 1);
    collector.responder = script({ status: 422, body: { error: { code: 'Not A Code!' } } }, { status: 422, body: 'not json' });
    shipper({ backoffInitialMs: 10, backoffMaxMs: 30 }).start();
    await waitFor('delivered', () => collector.accepted.length === 1, 30_000, 10);
    expect(await metric('sealtrail_batches_failed_total', 'reason="http_422"')).toBe(2);
  });

  it.each<[string, (req: Parameters<typeof ackFor>[0]) => Answer]>([
    ['another batch number', (req) => ({ status: 200, body: { ack: { stream: req.stream, batch: req.batch + 1, tree_size: 1 } } })],
    ['another stream', (req) => ({ status: 200, body: { ack: { stream: 'other', batch: req.batch, tree_size: 1 } } })],
    ['batch as a string', (req) => ({ status: 200, body: { ack: { stream: req.stream, batch: String(req.batch) } } })],
    ['no ack at all', () => ({ status: 200, body: { ok: true } })],
    ['an empty body', () => ({ status: 200 })],
    ['a non-JSON body', () => ({ status: 200, body: 'OK' })],
    ['201 without ack', () => ({ status: 201, body: {} })],
  ])('a 2xx with %s is not an ack: records kept', async (_name, bad) => {
    fill(2, 2);
    let fixed = false;
    collector.responder = (req) => (fixed ? ackFor(req) : bad(req));
    shipper({ backoffInitialMs: 10, backoffMaxMs: 100 }).start();
    await waitFor('retries after a bad ack', async () => ((await metric('sealtrail_batches_failed_total', 'reason="bad_ack"')) ?? 0) >= 2, 30_000, 10);
    expect(storedSeqs()).toEqual([0, 1]);
    expect(buffer.nextToShip()?.batch).toBe(0);
    expect(await metric('sealtrail_batches_shipped_total')).toBe(0);
    expect(await metric('sealtrail_batches_failed_total', 'reason="bad_ack"')).toBeGreaterThanOrEqual(2);
    expect(await metric('sealtrail_shipping_halted')).toBe(1);
    fixed = true;
    await waitFor('delivered after a proper ack', () => buffer.nextToShip() === undefined, 30_000, 10);
    expect(storedSeqs()).toEqual([]);
    expect(await metric('sealtrail_shipping_halted')).toBe(0);
  });
});

describe('Shipper: drain and close', () => {
  it('drain(deadline) returns by the deadline with a dead collector and keeps the records', async () => {
    fill(4, 2);
    const s = shipper({ url: `http://127.0.0.1:${await deadPort()}`, backoffInitialMs: 50, backoffMaxMs: 60_000 });
    s.start();
    const t0 = Date.now();
    const deadline = t0 + 1500;
    await s.drain(deadline);
    const took = Date.now() - t0;
    expect(took).toBeLessThan(1500 + 5000); // loose: "by the deadline", never a speed assertion
    expect(storedSeqs()).toEqual([0, 1, 2, 3]);
    expect(buffer.nextToShip()?.batch).toBe(0);
    expect(await metric('sealtrail_batches_failed_total', 'reason="network"')).toBeGreaterThanOrEqual(1);
  });

  it('drain(deadline) returns by the deadline when the collector never answers, keeping the records', async () => {
    fill(2, 2);
    collector.responder = () => 'hang';
    const s = shipper({ timeoutMs: 120_000 });
    s.start();
    await waitFor('request in flight', () => collector.received.length === 1, 30_000, 10);
    const t0 = Date.now();
    await s.drain(t0 + 1000);
    expect(Date.now() - t0).toBeLessThan(1000 + 5000);
    expect(storedSeqs()).toEqual([0, 1]);
  });

  it('drain(deadline) with a past deadline ships nothing more and returns', async () => {
    fill(2, 1);
    collector.responder = () => ({ status: 503, headers: { 'retry-after': '600' } });
    const s = shipper();
    s.start();
    await waitFor('first attempt', () => collector.received.length === 1, 30_000, 10);
    await s.drain(Date.now() - 1);
    expect(storedSeqs()).toEqual([0, 1]);
  });

  it('drain ships everything there is and returns before the deadline when done', async () => {
    fill(6, 2);
    const s = shipper();
    s.start();
    const t0 = Date.now();
    await s.drain(t0 + 60_000);
    expect(Date.now() - t0).toBeLessThan(60_000);
    expect(collector.accepted).toEqual([0, 1, 2]);
    expect(storedSeqs()).toEqual([]);
  });

  it('close() stops an idle shipper', async () => {
    const s = shipper();
    s.start();
    await sleep(20);
    await s.close();
    closed.add(s);
    fill(1, 1);
    await sleep(100);
    expect(collector.received).toHaveLength(0);
  });

  it('drain() on a shipper that never started returns at once', async () => {
    fill(1, 1);
    const s = shipper();
    await s.drain(Date.now() + 60_000);
    expect(collector.received).toHaveLength(0);
  });

  // Regression: every backoff sleep used to leave an 'abort' listener on the
  // shipper's long-lived AbortSignal (unbounded growth, MaxListenersExceededWarning).
  it('does not accumulate abort listeners across retries', async () => {
    fill(1, 1);
    collector.responder = () => ({ status: 503 });
    const s = shipper({ backoffInitialMs: 4, backoffMaxMs: 8 });
    const warnings: string[] = [];
    const onWarning = (w: Error): void => {
      warnings.push(w.name);
    };
    process.on('warning', onWarning);
    try {
      s.start();
      await waitFor('40 retries', () => collector.received.length >= 40, 30_000, 10);
      // private field, read only to count its listeners
      const signal = (s as unknown as { abort: AbortController }).abort.signal;
      expect(getEventListeners(signal, 'abort').length).toBeLessThanOrEqual(3);
      expect(warnings).not.toContain('MaxListenersExceededWarning');
    } finally {
      process.off('warning', onWarning);
    }
  });
});

describe('Shipper: retries and local failures', () => {
  it('builds the wire body of a batch once, however often it is retried', async () => {
    fill(3, 3);
    let calls = 0;
    const orig = buffer.wireBatch.bind(buffer);
    buffer.wireBatch = (row, vkey) => {
      calls++;
      return orig(row, vkey);
    };
    collector.responder = (_req, i) => (i < 4 ? { status: 503 } : ackFor(_req));
    const s = shipper({ backoffInitialMs: 4, backoffMaxMs: 8 });
    s.start();
    await waitFor('batch accepted after retries', () => collector.accepted.length === 1, 30_000, 10);
    expect(collector.received.length).toBe(5);
    expect(calls).toBe(1);
    for (const r of collector.received) expect(r.body).toEqual(collector.received[0]!.body);
  });

  it('a batch the buffer cannot build halts shipping instead of rejecting the loop', async () => {
    fill(2, 1);
    const orig = buffer.wireBatch.bind(buffer);
    let fail = true;
    buffer.wireBatch = (row, vkey) => {
      if (fail) throw new Error('disk says no');
      return orig(row, vkey);
    };
    const s = shipper({ backoffInitialMs: 4, backoffMaxMs: 20 });
    s.start();
    await waitFor('halted', () => metrics.shippingHalted.get().then((g) => g.values[0]?.value === 1), 30_000, 10);
    expect(collector.received).toHaveLength(0);
    fail = false;
    await waitFor('both batches after recovery', () => collector.accepted.length === 2, 30_000, 10);
    // The collector has answered; the shipper deletes on reading the answer, a moment later.
    await waitFor('both batches acked and deleted', () => buffer.stats().records === 0, 30_000, 10);
    expect(buffer.stats().records).toBe(0);
  });
});
