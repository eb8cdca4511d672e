import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditClient, EventRejectedError, modelCall, type EmitResult } from '../../src/client/index.js';
import type { ConnectionError } from '../../src/client/errors.js';
import { ClientSidecar, type StoredRecord } from '../helpers/client-sidecar.js';
import { freePort, waitFor } from '../helpers/procs.js';

/**
 * AuditClient's HTTP transport against the http source of a real sidecar
 * process (POST /v1/events): emits made before the sidecar listens are
 * retried until it does; batches are mapped back to per-event seqs; an
 * event the pipeline refuses rejects alone with the sidecar's code.
 */

let sc: ClientSidecar;
let telemetryUrl: string;

beforeAll(async () => {
  sc = await ClientSidecar.create({ prefix: 'sealtrail-client-http-', stream: 'client-http', sources: () => ['{ id: api, type: http, max_events: 100 }'] });
  telemetryUrl = sc.telemetryUrl;
});

afterAll(async () => {
  await sc?.dispose();
});

/** Every record the sidecar stored: shipped to the collector, or still in its buffer. */
function allRecords(): Map<number, StoredRecord> {
  return new Map(sc.allRecords().map((r) => [r.seq, r]));
}

const ev = (i: number) => modelCall({ event_type: 'http_event', model: { provider: 'p', name: 'm' }, details: { i } });

describe('AuditClient over POST /v1/events', () => {
  it('retries while the sidecar is not listening, then maps each batched event to its seq', async () => {
    const failures: string[] = [];
    const client = new AuditClient({
      http: telemetryUrl,
      maxBatchEvents: 64,
      reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
      onConnectionError: (e: ConnectionError) => failures.push(e.reason),
    });
    const emits: Array<Promise<EmitResult>> = Array.from({ length: 250 }, (_, i) => client.emit(ev(i)));
    await waitFor('a refused connection', () => failures.length > 0, 10_000, 10);
    expect(failures[0]).toBe('ECONNREFUSED');
    await sc.start();
    const results = await Promise.all(emits);
    await client.close();
    const seqs = results.map((r) => r.seq!);
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBe(seqs[i - 1]! + 1);
    const records = allRecords();
    for (const r of results) expect(records.get(r.seq!)).toMatchObject({ event_id: r.event_id, event_type: 'http_event' });
  });

  it("rejects only the event the pipeline refused, with the sidecar's code; the rest of its request is stored", async () => {
    // maxDepth above the ruleset's max_depth (64): the client lets it through, the sidecar refuses it
    const client = new AuditClient({ http: telemetryUrl, maxDepth: 1000 });
    const deep = JSON.parse(`${'['.repeat(80)}${']'.repeat(80)}`) as unknown;
    const [a, refused, b] = await Promise.allSettled([client.emit(ev(1)), client.emit({ event_type: 'deep', details: { v: deep } }), client.emit(ev(2))]);
    await client.close();
    expect(refused.status).toBe('rejected');
    const err = (refused as PromiseRejectedResult).reason as EventRejectedError;
    expect(err).toBeInstanceOf(EventRejectedError);
    expect(err).toMatchObject({ code: 'client_event_refused', reason: 'redact_too_deep' });
    expect(a.status === 'fulfilled' && b.status === 'fulfilled').toBe(true);
    const [ra, rb] = [(a as PromiseFulfilledResult<EmitResult>).value, (b as PromiseFulfilledResult<EmitResult>).value];
    expect(rb.seq).toBe(ra.seq! + 1);
    expect([...allRecords().values()].filter((r) => r.event_type === 'deep')).toEqual([]);
  });

  it('halves its batches when the source refuses one as too large (413), losing nothing', async () => {
    // max_events is 100 at the source; the client starts at 300.
    const client = new AuditClient({ http: telemetryUrl, maxBatchEvents: 300 });
    const results = await Promise.all(Array.from({ length: 300 }, (_, i) => client.emit(ev(i))));
    await client.close();
    const records = allRecords();
    for (const r of results) expect(records.get(r.seq!)?.event_id).toBe(r.event_id);
    // The sidecar saw the refusals the client recovered from.
    const metrics = await (await fetch(`${telemetryUrl}/metrics`)).text();
    expect(metrics).toMatch(/sealtrail_http_requests_total\{[^}]*code="too_many_events"[^}]*\} [1-9]/);
  });

  it('failClosed: rejects with client_ack_timeout when nothing answers in time', async () => {
    const client = new AuditClient({ http: `http://127.0.0.1:${await freePort()}`, failClosed: true, ackTimeoutMs: 300, reconnect: { initialDelayMs: 20, maxDelayMs: 100 } });
    const t0 = Date.now();
    await expect(client.emit(ev(0))).rejects.toMatchObject({ code: 'client_ack_timeout' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    await client.close();
  });
});
