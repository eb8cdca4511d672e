import { describe, expect, it } from 'vitest';
import { AuditClient, ClientError, EventRejectedError } from '../../src/client/index.js';
import { prepareEvent } from '../../src/client/prepare.js';
import { InputError } from '../../src/core/errors.js';
import { normaliseEvent } from '../../src/core/record.js';
import { join } from 'node:path';
import { CLIENT_DEFAULTS } from '../../src/client/options.js';
import { eventToRecord } from '../../src/sidecar/line-events.js';
import { loadRuleset, MAX_REDACT_DEPTH } from '../../src/sidecar/redact/index.js';
import { ROOT } from '../helpers/procs.js';

/**
 * An event the sidecar would refuse is refused by emit() before anything is
 * queued or sent, with the code and field the sidecar's own normaliser
 * (src/core/record.ts) gives: the client runs that very code, so the two
 * cannot drift. Accepted events get an event_id (UUIDv7) and a time.
 */

const OPTS = { maxEventBytes: 1 << 20 };
const UUIDV7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** What the sidecar's normaliser says of `raw`: code and field of its InputError. */
function sidecarVerdict(raw: unknown): { reason: string; field: string | undefined } {
  try {
    normaliseEvent(raw, '2026-01-01T00:00:00.000Z');
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    return { reason: (err as InputError).code, field: (err as InputError).field };
  }
  throw new Error('the sidecar would accept this event');
}

function clientVerdict(raw: unknown): EventRejectedError {
  try {
    prepareEvent(raw as never, OPTS);
  } catch (err) {
    expect(err).toBeInstanceOf(EventRejectedError);
    return err as EventRejectedError;
  }
  throw new Error('the client accepted this event');
}

const REFUSED: Array<[string, Record<string, unknown>]> = [
  ['no event_type', { actor: { id: 'u1' } }],
  ['empty event_type', { event_type: '' }],
  ['event_type not a string', { event_type: 5 }],
  ['event_type over 128 characters', { event_type: 'x'.repeat(129) }],
  ['unreadable time', { event_type: 't', time: 'yesterday' }],
  ['time out of range', { event_type: 't', time: -1 }],
  ['sidecar-owned id', { event_type: 't', id: 'x' }],
  ['sidecar-owned seq', { event_type: 't', seq: 1 }],
  ['sidecar-owned stream', { event_type: 't', stream: 's' }],
  ['sidecar-owned received_at', { event_type: 't', received_at: '2026-01-01T00:00:00Z' }],
  ['sidecar-owned source', { event_type: 't', source: 'x' }],
  ['sidecar-owned redaction', { event_type: 't', redaction: {} }],
  ['actor without id', { event_type: 't', actor: { type: 'agent' } }],
  ['actor.id a number', { event_type: 't', actor: { id: 5 } }],
  ['actor not an object', { event_type: 't', actor: 'u1' }],
  ['tool without name', { event_type: 't', tool: { arguments: {} } }],
  ['outcome an array', { event_type: 't', outcome: ['x'] }],
  ['details a string', { event_type: 't', details: 'x' }],
  ['model.name a number', { event_type: 't', model: { name: 4 } }],
  ['session_id an object', { event_type: 't', session_id: {} }],
  ['a string over 65,536 characters', { event_type: 't', action: 'a'.repeat(65_537) }],
  ['event_id not a UUID', { event_type: 't', event_id: 'my-id' }],
  ['event_id a number', { event_type: 't', event_id: 5 }],
  ['event_id empty', { event_type: 't', event_id: '' }],
];

describe('validation before sending', () => {
  it.each(REFUSED)('%s: refused with the sidecar code and field', (_name, raw) => {
    const want = sidecarVerdict(raw);
    const got = clientVerdict(raw);
    expect(got.code).toBe('client_event_invalid');
    expect(got.reason).toBe(want.reason);
    expect(got.field).toBe(want.field);
    expect(got.field).toBeTruthy();
    expect(got.message).toContain(`field ${got.field}`);
    expect(got).toBeInstanceOf(ClientError);
  });

  it('refuses a non-object, an unserialisable event and an invalid Date', () => {
    for (const raw of [null, [], 'x', 5]) expect(clientVerdict(raw).reason).toBe('record_not_object');
    const cyclic: Record<string, unknown> = { event_type: 't' };
    cyclic.details = { self: cyclic };
    expect(clientVerdict(cyclic).message).toContain('cannot be written as JSON');
    expect(clientVerdict({ event_type: 't', details: { n: 10n } }).code).toBe('client_event_invalid');
    expect(clientVerdict({ event_type: 't', time: new Date(Number.NaN) }).field).toBe('time');
  });

  it('refuses an event over maxEventBytes, naming the option', () => {
    let err: unknown;
    try {
      prepareEvent({ event_type: 't', details: { blob: 'x'.repeat(2000) } }, { maxEventBytes: 1000 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EventRejectedError);
    expect((err as EventRejectedError).code).toBe('client_event_too_large');
    expect((err as EventRejectedError).message).toContain('maxEventBytes (1000)');
  });

  it('accepts what the sidecar accepts, adding a UUIDv7 event_id and the time of emit', () => {
    const now = Date.UTC(2026, 5, 1, 12, 0, 0);
    const { eventId, line } = prepareEvent(
      { event_type: 'tool_invoked', actor: { id: 'u1' }, tool: { name: 'search', arguments: { q: 1 }, call_id: 'c1' }, outcome: 'something_else', details: { a: 1 } },
      { ...OPTS, now: () => now },
    );
    expect(eventId).toMatch(UUIDV7);
    const text = line.toString('utf8');
    expect(text.endsWith('\n')).toBe(true);
    expect(text.indexOf('\n')).toBe(text.length - 1);
    const sent = JSON.parse(text) as Record<string, unknown>;
    expect(sent.event_id).toBe(eventId);
    expect(sent.time).toBe('2026-06-01T12:00:00.000Z');
    // The sidecar takes it, event_id included.
    const ev = normaliseEvent(sent, 'x');
    expect(ev.event_id).toBe(eventId);
    expect(ev.details).toEqual({ a: 1 });
  });

  it("keeps the caller's event_id (reported lowercase, as the sidecar keeps it) and time (a Date is sent as RFC 3339)", () => {
    const mine = '0190A5B2-7C4D-7E8F-9A0B-1C2D3E4F5A6B';
    const { eventId, line } = prepareEvent({ event_type: 't', event_id: mine, time: new Date(Date.UTC(2026, 0, 2)) }, OPTS);
    expect(eventId).toBe(mine.toLowerCase());
    expect(JSON.parse(line.toString())).toMatchObject({ event_id: mine, time: '2026-01-02T00:00:00.000Z' });
    const epoch = prepareEvent({ event_type: 't', time: 1_700_000_000_000 }, OPTS);
    expect(JSON.parse(epoch.line.toString()).time).toBe(1_700_000_000_000);
  });

  it('gives every event its own id', () => {
    const seen = new Set(Array.from({ length: 1000 }, () => prepareEvent({ event_type: 't' }, OPTS).eventId));
    expect(seen.size).toBe(1000);
  });
});

describe('emit() of an event the sidecar would refuse', () => {
  it('rejects without queueing or connecting', async () => {
    const connects: string[] = [];
    const client = new AuditClient({ socket: '/nonexistent/sealtrail-client-test.sock', onConnectionError: (e) => connects.push(e.reason) });
    await expect(client.emit({ event_type: 't', seq: 3 } as never)).rejects.toMatchObject({ code: 'client_event_invalid', reason: 'record_invalid', field: 'seq' });
    await expect(client.emit({} as never)).rejects.toMatchObject({ code: 'client_event_invalid', field: 'event_type' });
    expect(client.pending).toBe(0);
    expect(connects).toEqual([]);
    await client.close();
    await expect(client.emit({ event_type: 't' })).rejects.toMatchObject({ code: 'client_closed' });
  });
});

describe('nesting: refused by the client exactly where the sidecar quarantines it', () => {
  const ruleset = loadRuleset([join(ROOT, 'config/redaction/pii-basic.yaml')]);
  const fields = { id: 'r', stream: 's', seq: 0, receivedAt: '2026-01-01T00:00:00.000Z', source: 'sock' };

  /** an event whose `details` is the first of `levels` objects one inside the other (below the first, arrays) */
  function nested(levels: number, array: boolean): Record<string, unknown> {
    let v: unknown = 'leaf';
    for (let i = 1; i < levels; i++) v = array ? [v] : { k: v };
    return { event_type: 'tool_invoked', details: { k: v } };
  }

  const sidecarRefuses = (e: Record<string, unknown>): string | undefined => {
    const r = eventToRecord(JSON.parse(JSON.stringify(e)), ruleset, fields, { repaired: { lone_surrogates: 0, keys_renamed: 0 } });
    return 'failure' in r ? r.failure.code : undefined;
  };
  const clientRefuses = (e: Record<string, unknown>, maxDepth?: number): string | undefined => {
    try {
      prepareEvent(e as never, maxDepth === undefined ? OPTS : { ...OPTS, maxDepth });
      return undefined;
    } catch (err) {
      expect(err).toBeInstanceOf(EventRejectedError);
      return (err as EventRejectedError).reason;
    }
  };

  it('defaults to the sidecar default max_depth', () => {
    expect(CLIENT_DEFAULTS.maxDepth).toBe(MAX_REDACT_DEPTH);
  });

  it.each([false, true])('agrees with the sidecar at the boundary (arrays: %s)', (array) => {
    const verdicts = [60, 62, 63, 64, 65, 100].map((n) => {
      const e = nested(n, array);
      return [n, clientRefuses(e), sidecarRefuses(e)];
    });
    // the event is level 0 and details level 1: 63 nested levels under details is the deepest the sidecar takes
    expect(verdicts).toEqual([
      [60, undefined, undefined],
      [62, undefined, undefined],
      [63, undefined, undefined],
      [64, 'redact_too_deep', 'redact_too_deep'],
      [65, 'redact_too_deep', 'redact_too_deep'],
      [100, 'redact_too_deep', 'redact_too_deep'],
    ]);
  });

  it('takes a raised maxDepth (for a ruleset with a raised max_depth), and refuses hostile nesting without recursion', () => {
    expect(clientRefuses(nested(100, false), 200)).toBeUndefined();
    expect(clientRefuses(nested(200, false), 200)).toBe('redact_too_deep');
    const deep = `{"event_type":"t","details":{"k":${'['.repeat(1_000)}${']'.repeat(1_000)}}}`;
    expect(() => prepareEvent(JSON.parse(deep), OPTS)).toThrow(/deeper than 64 levels/);
    // deeper than JSON.stringify itself can go
    const deeper = `{"event_type":"t","details":{"k":${'['.repeat(200_000)}${']'.repeat(200_000)}}}`;
    expect(() => prepareEvent(JSON.parse(deeper), OPTS)).toThrow(/nests too deeply/);
    expect(() => new AuditClient({ socket: '/tmp/x.sock', maxDepth: 0 })).toThrow(/maxDepth/);
  });
});
