import { describe, expect, it } from 'vitest';
import { COPY_RECORDS_SQL, recordCopyPieces } from '../../src/collector/store/postgres-copy.js';
import { copyBytea, copyInt, copyRow, copyText } from '../../src/collector/store/pg-copy-text.js';
import type { NewRecord } from '../../src/collector/store/types.js';
import { prng } from '../helpers/prng.js';

/**
 * recordCopyPieces writes each row's UTF-8 straight into the piece it sends;
 * the bytes must be exactly the rows as copyRow makes them, in order, for
 * any text (multi-byte characters, surrogate pairs, escapes) and wherever
 * the pieces happen to be cut.
 */

function record(seq: number, canonical: string, extra: Partial<NewRecord> = {}): NewRecord {
  return {
    seq,
    canonical,
    leaf: Buffer.alloc(32, seq & 0xff),
    mac: 'ab'.repeat(32),
    keyId: 'k1',
    id: `id-${seq}`,
    time: '2026-12-07T00:00:00.000Z',
    timeKey: 1_796_601_600_000_000 + seq,
    receivedAt: null,
    tenant: 'acme',
    actorId: null,
    agentId: 'agent-é',
    eventType: 'tool_invoked',
    tool: null,
    outcome: 'success',
    model: null,
    traceId: `trace\t${seq}`,
    sessionId: null,
    resourceId: null,
    resourceType: null,
    approval: null,
    dataClassification: null,
    ...extra,
  };
}

/** The rows as the string encoding made them, column for column in COPY_RECORDS_SQL's order. */
function expected(stream: string, batch: number, records: readonly NewRecord[]): string {
  return records
    .map((r) =>
      copyRow([
        copyText(stream),
        copyInt(batch),
        copyInt(r.seq),
        copyText(r.id),
        copyText(r.time),
        copyInt(r.timeKey),
        copyText(r.receivedAt),
        copyText(r.tenant),
        copyText(r.actorId),
        copyText(r.agentId),
        copyText(r.eventType),
        copyText(r.tool),
        copyText(r.outcome),
        copyText(r.model),
        copyText(r.traceId),
        copyText(r.sessionId),
        copyText(r.resourceId),
        copyText(r.resourceType),
        copyText(r.approval),
        copyText(r.dataClassification),
        copyText(r.canonical),
        copyBytea(r.leaf),
        copyText(r.mac),
        copyText(r.keyId),
      ]),
    )
    .join('');
}

describe('recordCopyPieces', () => {
  it('lists the columns in the order the expected rows above use', () => {
    expect(COPY_RECORDS_SQL).toBe(
      'COPY sealtrail.records (stream, batch, seq, id, time, time_key, received_at, tenant, actor_id, agent_id, event_type, ' +
        'tool, outcome, model, trace_id, session_id, resource_id, resource_type, approval, data_classification, ' +
        'canonical, leaf, mac, key_id) FROM STDIN',
    );
  });

  it('yields exactly the UTF-8 of the rows, in pieces of about 1 MiB, for any text', () => {
    const rand = prng(20261207);
    const alphabet = ['a', 'Z', '0', ' ', '"', '\\', '\t', '\n', '\r', 'é', 'ß', '€', '中', '😀', '\u{10FFFF}', '\u2028'];
    const text = (n: number): string => {
      let s = '';
      for (let i = 0; i < n; i++) s += alphabet[Math.floor(rand() * alphabet.length)]!;
      return s;
    };
    // Some 3,000 rows of up to ~3 KiB of mostly multi-byte text, and one of
    // ~1.5 MiB that fits no ordinary piece.
    const records: NewRecord[] = [];
    for (let seq = 0; seq < 3000; seq++) {
      const canonical = seq === 1234 ? text(400_000) : text(Math.floor(rand() * 1200));
      records.push(record(seq, canonical, seq % 7 === 0 ? { tool: text(20), sessionId: text(5) } : {}));
    }
    const pieces = [...recordCopyPieces('stream-é', 42, records)];
    expect(pieces.length).toBeGreaterThan(3);
    for (const p of pieces) expect(Buffer.isBuffer(p)).toBe(true);
    expect(Buffer.concat(pieces).equals(Buffer.from(expected('stream-é', 42, records), 'utf8'))).toBe(true);
    // Pieces end on row boundaries, so each is whole rows.
    for (const p of pieces) expect(p[p.length - 1]).toBe(0x0a);
  });

  it('yields nothing for no records, and one piece for a small batch', () => {
    expect([...recordCopyPieces('s', 0, [])]).toEqual([]);
    const rs = [record(0, '{"a":1}'), record(1, '{"b":"😀"}')];
    const pieces = [...recordCopyPieces('s', 0, rs)];
    expect(pieces).toHaveLength(1);
    expect(pieces[0]!.toString('utf8')).toBe(expected('s', 0, rs));
  });
});
