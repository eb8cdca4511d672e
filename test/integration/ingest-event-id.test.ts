import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditBuffer } from '../../src/sidecar/buffer/buffer.js';
import { Ingest, type IngestChunk } from '../../src/sidecar/ingest.js';
import { EMPTY_RULESET, type Ruleset } from '../../src/sidecar/redact/index.js';
import { HMAC_KEY, KEY_ID, makeKeys, tempDir, type TempDir } from '../helpers/sidecar-fixtures.js';

/**
 * event_id: a client resending an event whose answer it lost is answered
 * with the first send's seq, and nothing is stored twice, across chunks, in
 * one chunk and across a reopened buffer; the ids are kept for a window of
 * records only, and never as text.
 */
const STREAM = 'event-id-stream';
const ID = '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b';

let tmp: TempDir;
let buffer: AuditBuffer;
let ingest: Ingest;
const ruleset: Ruleset = EMPTY_RULESET;

function open(eventKeysKept?: number): void {
  buffer = AuditBuffer.open(tmp.file('buffer.db'), { newStreamId: () => STREAM, ...(eventKeysKept !== undefined ? { eventKeysKept } : {}) });
  ingest = new Ingest(buffer, { hmacKey: HMAC_KEY, keyId: KEY_ID, ruleset: () => ruleset });
}

beforeEach(() => {
  tmp = tempDir('sealtrail-event-id-');
  open();
});

afterEach(() => {
  buffer.close();
  tmp.cleanup();
});

let nextOffset = 0;
function chunk(...events: Array<Record<string, unknown> | string>): IngestChunk {
  const lines = events.map((e) => {
    const text = typeof e === 'string' ? e : JSON.stringify(e);
    const line = { offset: nextOffset, length: Buffer.byteLength(text) + 1, text };
    nextOffset += line.length;
    return line;
  });
  return { source: 'agent', path: '/agent.sock', fileKey: 'conn-1', lines };
}

const ev = (eventId: string | undefined, i = 0): Record<string, unknown> => ({ event_type: 'tool_invoked', tool: { name: 'search' }, details: { i }, ...(eventId !== undefined ? { event_id: eventId } : {}) });

function storedCount(): number {
  return (buffer.db.prepare('SELECT COUNT(*) AS n FROM records').get() as { n: number }).n;
}

describe('Ingest: event_id', () => {
  it('answers a resend in a later chunk with the first seq, marked duplicate, and stores nothing', () => {
    const first = ingest.ingest(chunk(ev(ID)));
    expect(first.lines).toEqual([{ seq: 0 }]);
    const again = ingest.ingest(chunk(ev(ID.toUpperCase(), 1)));
    expect(again.lines).toEqual([{ seq: 0, duplicate: true }]);
    expect(again.records).toBe(0);
    expect(again.duplicates).toBe(1);
    expect(storedCount()).toBe(1);
    const record = JSON.parse((buffer.db.prepare('SELECT canonical FROM records').get() as { canonical: string }).canonical) as Record<string, unknown>;
    expect(record.event_id).toBe(ID);
  });

  it('drops a resend within one chunk, and keeps events without an id or with another id', () => {
    const other = '0193a1b2-c3d4-7e5f-8a9b-000000000001';
    const r = ingest.ingest(chunk(ev(ID), ev(undefined), ev(ID), ev(other), ev(undefined)));
    expect(r.lines).toEqual([{ seq: 0 }, { seq: 1 }, { seq: 0, duplicate: true }, { seq: 2 }, { seq: 3 }]);
    expect(storedCount()).toBe(4);
  });

  it('does not remember the id of a line that was quarantined', () => {
    const bad = { ...ev(ID), tool: 'not an object' };
    const r = ingest.ingest(chunk(bad, ev(ID)));
    expect('error' in r.lines[0]! && r.lines[0].error.code).toBe('record_invalid');
    expect(r.lines[1]).toEqual({ seq: 0 });
  });

  it('refuses an event_id that is not a UUID, naming the field, and stores nothing of it', () => {
    for (const id of ['abc', 42, '0193a1b2c3d47e5f8a9b0c1d2e3f4a5b', `${ID} `, 'jane.doe@example.com']) {
      const r = ingest.ingest(chunk({ ...ev(undefined), event_id: id }));
      const o = r.lines[0]!;
      expect('error' in o && o.error).toMatchObject({ code: 'record_invalid', field: 'event_id' });
      expect('error' in o && o.error.message).not.toContain('jane');
    }
    expect(storedCount()).toBe(0);
  });

  it('finds the first send after the buffer is closed and reopened (a crash between commit and answer)', () => {
    ingest.ingest(chunk(ev(undefined), ev(ID)));
    buffer.close();
    open();
    expect(ingest.ingest(chunk(ev(ID))).lines).toEqual([{ seq: 1, duplicate: true }]);
    expect(ingest.ingest(chunk(ev(undefined))).lines).toEqual([{ seq: 2 }]);
  });

  it('keeps only a keyed digest of the id in the buffer file', () => {
    ingest.ingest(chunk(ev(ID)));
    const keys = buffer.db.prepare('SELECT key FROM event_ids').pluck().all() as Buffer[];
    expect(keys).toHaveLength(1);
    expect(keys[0]!.length).toBe(16);
    expect(keys[0]!.toString('hex')).not.toContain(ID.replace(/-/g, '').slice(0, 8));
  });

  it('forgets ids once their records are more than the window behind an acknowledged batch', () => {
    buffer.close();
    open(3);
    const { signer } = makeKeys();
    const ids = Array.from({ length: 6 }, (_, i) => `0193a1b2-c3d4-7e5f-8a9b-00000000000${i}`);
    ingest.ingest(chunk(...ids.map((id, i) => ev(id, i))));
    buffer.ack(buffer.seal(signer, 100, 1e9)!);
    // seqs 0-5 acknowledged; the window keeps the last 3 (seqs 3, 4, 5)
    expect(ingest.ingest(chunk(ev(ids[5]!))).lines).toEqual([{ seq: 5, duplicate: true }]);
    expect(ingest.ingest(chunk(ev(ids[3]!))).lines).toEqual([{ seq: 3, duplicate: true }]);
    expect(ingest.ingest(chunk(ev(ids[2]!))).lines).toEqual([{ seq: 6 }]);
  });
});
