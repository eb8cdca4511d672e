import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteAuditStore } from '../../src/collector/store/sqlite.js';
import { startCollector, type RunningCollector } from '../../src/collector/app.js';
import type { CollectorOptions } from '../../src/collector/options.js';
import {
  BATCH_ENVELOPE_BYTES,
  canonicalWireBytes,
  MAX_RECORD_WIRE_BYTES,
  MIN_BODY_BYTES,
  MIN_MAX_RECORD_BYTES,
  RECORD_ENVELOPE_BYTES,
} from '../../src/core/wire-limits.js';
import { AuditBuffer } from '../../src/sidecar/buffer/buffer.js';
import { Ingest, type IngestLine } from '../../src/sidecar/ingest.js';
import { loadRuleset, type Ruleset } from '../../src/sidecar/redact/index.js';
import { memoryLogger } from '../helpers/collector-server.js';
import { prng } from '../helpers/prng.js';
import { HMAC_KEY, KEY_ID, makeKeys, nextRecords, tempDir, type Keys, type TempDir } from '../helpers/sidecar-fixtures.js';

/**
 * "Nothing the sidecar accepts can be refused by its collector": random and
 * hostile events go through the real Ingest (redaction, normalising, size
 * limits), the real buffer's seal, and every sealed batch is posted as the
 * shipper posts it to a real collector configured with the same body limit.
 * Every batch must be acknowledged; what the collector would refuse must have
 * been quarantined at ingest instead.
 */

const PII_RULES = fileURLToPath(new URL('../../config/redaction/pii-basic.yaml', import.meta.url));
const MiB = 1024 * 1024;

type Rnd = () => number;
const pick = <T,>(rnd: Rnd, xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
const int = (rnd: Rnd, lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1));

/** Characters by what they cost on the wire: plain, escaped twice, multi-byte, astral, control. */
const CHAR_CLASSES: ReadonlyArray<{ text: string; wire: number }> = [
  { text: 'a', wire: 1 },
  { text: '"', wire: 4 }, // canonical \" is escaped again inside the batch: \\\"
  { text: '\\', wire: 4 },
  { text: '中', wire: 3 },
  { text: '😀', wire: 4 },
  { text: '\u0001', wire: 7 }, // canonical \u0001, then \\u0001
  { text: 'é', wire: 2 },
];

function randomString(rnd: Rnd, max = 40): string {
  let s = '';
  const n = int(rnd, 0, max);
  for (let i = 0; i < n; i++) {
    const r = rnd();
    if (r < 0.6) s += String.fromCharCode(int(rnd, 0x20, 0x7e));
    else if (r < 0.7) s += pick(rnd, CHAR_CLASSES).text;
    else if (r < 0.75) s += pick(rnd, ['bob@example.com', '123-45-6789', '4111 1111 1111 1111', '+1 415 555 0100', '10.0.0.1']);
    else if (r < 0.8) s += String.fromCharCode(int(rnd, 0xd800, 0xdfff)); // lone surrogate, escaped by JSON.stringify
    else s += String.fromCodePoint(int(rnd, 0xa0, 0x2ffff));
  }
  return s;
}

function randomValue(rnd: Rnd, depth: number): unknown {
  const r = rnd();
  if (depth > 4 || r < 0.45) {
    return pick(rnd, [
      () => null,
      () => rnd() < 0.5,
      () => pick(rnd, [0, -0, 1e308, -1e308, 5e-324, 2 ** 53 + 2, 1e21, 123.456, -1]),
      () => randomString(rnd),
    ])();
  }
  if (r < 0.7) return Array.from({ length: int(rnd, 0, 5) }, () => randomValue(rnd, depth + 1));
  const o: Record<string, unknown> = {};
  for (let i = int(rnd, 0, 5); i > 0; i--) o[randomString(rnd, 8)] = randomValue(rnd, depth + 1);
  return o;
}

function nested(depth: number): unknown {
  let v: unknown = 'leaf';
  for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { k: v };
  return v;
}

const TIMES = [
  undefined,
  '2026-01-01T00:00:00Z',
  '0000-03-01T00:30:00+01:00', // Feb 29 of year 0 in UTC
  '9999-12-31T23:30:00-01:00', // year 10000 in UTC: must be refused, not shipped
  '0000-01-01T00:30:00+01:00',
  '9999-12-31T23:59:59.999999999+00:00',
  1_700_000_000_000,
  253402300799999,
  '2024-02-30T00:00:00Z',
  'yesterday',
];

/** One line of input of a randomly chosen hostile kind. */
function hostileLine(rnd: Rnd): string {
  const kind = rnd();
  const base: Record<string, unknown> = { event_type: pick(rnd, ['tool_invoked', 'model_called', randomString(rnd, 10)]) };
  const time = pick(rnd, TIMES);
  if (time !== undefined) base.time = time;
  if (kind < 0.35) {
    base.tool = { name: 'search', arguments: randomValue(rnd, 0) };
    base.details = randomValue(rnd, 0);
    if (rnd() < 0.3) base[randomString(rnd, 6)] = randomValue(rnd, 0);
    if (rnd() < 0.1) base.outcome = pick(rnd, [5, 'exploded', null, 'success']);
    return JSON.stringify(base);
  }
  if (kind < 0.6) {
    // padded so that the record's wire size lands within a few hundred bytes of the limit
    const c = pick(rnd, CHAR_CLASSES);
    const n = Math.floor((MAX_RECORD_WIRE_BYTES - 420) / c.wire) + int(rnd, -120, 120);
    base.details = { pad: c.text.repeat(n) };
    return JSON.stringify(base);
  }
  if (kind < 0.75) {
    // PII that grows when redacted: 7 characters become 17
    const n = int(rnd, Math.floor((MAX_RECORD_WIRE_BYTES - 2000) / 17), Math.floor((MAX_RECORD_WIRE_BYTES + 2000) / 17));
    base.details = { text: 'a@b.io '.repeat(n) };
    return JSON.stringify(base);
  }
  if (kind < 0.85) {
    base.details = nested(pick(rnd, [10, 61, 62, 63, 64, 65, 200, 999, 1001]));
    return JSON.stringify(base);
  }
  if (kind < 0.92) {
    // escapes JSON.stringify would never write: lone surrogates in keys and values
    return `{"event_type":"x","details":{"\\udc00k":"v\\ud800","ok":"\\ud83d\\ude00"}}`;
  }
  return JSON.stringify(pick(rnd, [[1, 2], 'text', 42, null, { event_type: 7 }, { time: '2026-01-01T00:00:00Z' }]));
}

interface Harness {
  tmp: TempDir;
  buffer: AuditBuffer;
  ingest: Ingest;
  keys: Keys;
  collector: RunningCollector;
  store: SqliteAuditStore;
}

function collectorOptions(keys: Keys, over: Partial<CollectorOptions>): CollectorOptions {
  return {
    listen: { host: '127.0.0.1', port: 0 },
    max_body_bytes: 16 * MiB,
    admin_tokens: ['t'.repeat(32)],
    streams: [{ match: 'pod-hostile', vkey: keys.vkey }],
    trust_on_first_use: false,
    hmac_keys: [{ id: KEY_ID, key: HMAC_KEY }],
    ...over,
  };
}

/** A buffer and Ingest as the sidecar has them, and a real collector on its own store (the strictest a config allows unless `over` says otherwise). */
async function harness(maxBodyBytes: number, over: Partial<CollectorOptions> = { max_record_bytes: MIN_MAX_RECORD_BYTES }): Promise<Harness> {
  const tmp = tempDir('sealtrail-never-refused-');
  const buffer = AuditBuffer.open(tmp.file('buffer.db'), { newStreamId: () => 'pod-hostile' });
  const ruleset: Ruleset = loadRuleset([PII_RULES]);
  const ingest = new Ingest(buffer, { hmacKey: HMAC_KEY, keyId: KEY_ID, ruleset: () => ruleset });
  const keys = makeKeys('pod-hostile');
  const store = new SqliteAuditStore(tmp.file('audit.db'));
  const collector = await startCollector(collectorOptions(keys, { max_body_bytes: maxBodyBytes, ...over }), store, memoryLogger().logger);
  return { tmp, buffer, ingest, keys, collector, store };
}

async function post(url: string, body: string): Promise<{ status: number; text: string }> {
  const res = await request(`${url}/v1/batches`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  return { status: res.statusCode, text: await res.body.text() };
}

/** Seals and ships everything as the sidecar does; returns the batches' statuses. */
async function sealAndShip(h: Harness, maxRecords: number, maxBodyBytes: number): Promise<number> {
  let shipped = 0;
  for (let row = h.buffer.seal(h.keys.signer, maxRecords, maxBodyBytes); row; row = h.buffer.seal(h.keys.signer, maxRecords, maxBodyBytes)) {
    const body = JSON.stringify(h.buffer.wireBatch(row));
    expect(Buffer.byteLength(body)).toBeLessThanOrEqual(maxBodyBytes);
    const res = await post(h.collector.url, body);
    expect(res.status, `batch ${row.batch} (seq ${row.firstSeq}..${row.lastSeq}): ${res.text}`).toBe(200);
    h.buffer.ack(row);
    shipped++;
  }
  return shipped;
}

describe('nothing the sidecar accepts is refused by its collector', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    if (!h) return;
    await h.collector.close();
    await h.store.close();
    h.buffer.close();
    h.tmp.cleanup();
    h = undefined;
  });

  it.each([
    { seed: 0x5ea1, maxBody: MIN_BODY_BYTES, maxRecords: 1000 },
    { seed: 0x0b0d, maxBody: 8 * MiB, maxRecords: 37 },
  ])('random and hostile events (seed $seed, bodies of at most $maxBody bytes) all ship', async ({ seed, maxBody, maxRecords }) => {
    h = await harness(maxBody);
    const rnd = prng(seed);
    const reasons = new Map<string, number>();
    let accepted = 0;
    let largest = 0;
    for (let chunk = 0; chunk < 24; chunk++) {
      const lines: IngestLine[] = [];
      for (let i = int(rnd, 1, 12); i > 0; i--) {
        const text = hostileLine(rnd);
        lines.push({ offset: chunk * 100 + lines.length, length: Buffer.byteLength(text), text });
      }
      const before = h.buffer.chainCursor().nextSeq;
      const r = h.ingest.ingest({ source: 'agent', path: '/hostile.jsonl', fileKey: 'f', lines });
      expect(r.lines).toHaveLength(lines.length);
      for (const q of r.quarantined) reasons.set(q.reason, (reasons.get(q.reason) ?? 0) + 1);
      accepted += r.records;
      const rows = h.buffer.db.prepare('SELECT canonical, bytes, wire_bytes FROM records WHERE seq >= ?').all(before) as Array<{ canonical: string; bytes: number; wire_bytes: number }>;
      for (const row of rows) {
        // the stored wire size is exact, and within the limit
        expect(row.wire_bytes).toBe(Buffer.byteLength(JSON.stringify(row.canonical)));
        expect(row.wire_bytes).toBe(canonicalWireBytes(row.canonical, row.bytes));
        expect(row.wire_bytes).toBeLessThanOrEqual(MAX_RECORD_WIRE_BYTES);
        largest = Math.max(largest, row.wire_bytes);
      }
      // ship as the sidecar's seal timer would, between chunks
      if (rnd() < 0.5) await sealAndShip(h, maxRecords, maxBody);
    }
    await sealAndShip(h, maxRecords, maxBody);
    expect(h.buffer.stats().records).toBe(0);
    const state = await h.store.getStreamState('pod-hostile');
    expect(state?.treeSize).toBe(accepted);
    // the generator reached both sides of every limit
    expect(reasons.get('record_too_large') ?? 0).toBeGreaterThan(0);
    expect(reasons.get('record_invalid') ?? 0).toBeGreaterThan(0);
    expect(reasons.get('redact_too_deep') ?? 0).toBeGreaterThan(0);
    expect(largest).toBeGreaterThan(MAX_RECORD_WIRE_BYTES - 1000);
  });

  it('a record just over the wire limit is quarantined as record_too_large, one just under ships, and the good records beside it ship', async () => {
    h = await harness(MIN_BODY_BYTES);
    // Find the pad length at which the record crosses the limit, then take both sides of it.
    const line = (n: number): string => JSON.stringify({ event_type: 'tool_invoked', time: '2026-01-01T00:00:00Z', details: { pad: '"'.repeat(n) } });
    const probe = h.ingest.ingest({ source: 'agent', path: 'p', fileKey: 'f', lines: [{ offset: 0, length: 1, text: line(1000) }] });
    const row = h.buffer.db.prepare('SELECT wire_bytes FROM records WHERE seq = ?').get(probe.firstSeq) as { wire_bytes: number };
    const fixed = row.wire_bytes - 4 * 1000; // each '"' costs 4 bytes on the wire
    const fits = Math.floor((MAX_RECORD_WIRE_BYTES - fixed) / 4);
    const texts = [line(10), line(fits + 1), line(fits), line(20)];
    const r = h.ingest.ingest({ source: 'agent', path: 'p', fileKey: 'f', lines: texts.map((text, i) => ({ offset: i, length: text.length, text })) });
    expect(r.lines[0]).toHaveProperty('seq');
    expect(r.lines[1]).toMatchObject({ error: { code: 'record_too_large' } });
    expect((r.lines[1] as { error: { message: string } }).error.message).toMatch(/limit is 1048576/);
    expect(r.lines[2]).toHaveProperty('seq');
    expect(r.lines[3]).toHaveProperty('seq');
    const q = h.buffer.db.prepare('SELECT reason, offset FROM quarantine').all();
    expect(q).toEqual([{ reason: 'record_too_large', offset: 1 }]);
    expect(await sealAndShip(h, 1000, MIN_BODY_BYTES)).toBeGreaterThanOrEqual(1);
    expect((await h.store.getStreamState('pod-hostile'))?.treeSize).toBe(4);
  });

  it('a 5 MB record an older sidecar sealed halts a default collector, sealed alone, and ships once max_record_bytes is raised (the runbook step)', async () => {
    // a collector with the default max_record_bytes
    h = await harness(16 * MiB, {});
    const before = nextRecords(h.buffer, 2);
    h.buffer.commit(before);
    // what an older sidecar committed without the size check
    h.buffer.commit(nextRecords(h.buffer, 1, () => ({ details: { blob: 'x'.repeat(5_000_000) } })));
    h.buffer.commit(nextRecords(h.buffer, 2));
    const rows = [];
    for (let row = h.buffer.seal(h.keys.signer, 100, 16 * MiB); row; row = h.buffer.seal(h.keys.signer, 100, 16 * MiB)) rows.push(row);
    expect(rows.map((r) => [r.firstSeq, r.lastSeq])).toEqual([[0, 1], [2, 2], [3, 4]]);
    const bodies = rows.map((r) => JSON.stringify(h!.buffer.wireBatch(r)));
    // the good records sealed before it ship; the big one is refused for its size
    expect((await post(h.collector.url, bodies[0]!)).status).toBe(200);
    const refusedRes = await post(h.collector.url, bodies[1]!);
    expect(refusedRes.status).toBe(422);
    expect(refusedRes.text).toMatch(/max_record_bytes/);
    // the operator raises the collector's limit; the same signed batch is taken as it is
    await h.collector.close();
    h.collector = await startCollector(collectorOptions(h.keys, { max_record_bytes: 8 * MiB }), h.store, memoryLogger().logger);
    expect((await post(h.collector.url, bodies[1]!)).status).toBe(200);
    expect((await post(h.collector.url, bodies[2]!)).status).toBe(200);
    expect((await h.store.getStreamState('pod-hostile'))?.treeSize).toBe(5);
  });

  it('the envelopes bound what they claim to', () => {
    // a record's members besides its canonical string, at their longest
    const rec = { seq: Number.MAX_SAFE_INTEGER, canonical: '', mac: 'f'.repeat(64), key_id: 'k'.repeat(128) };
    expect(Buffer.byteLength(JSON.stringify(rec)) + 1 - 2).toBeLessThanOrEqual(RECORD_ENVELOPE_BYTES);
    // a batch's members besides its records, at their longest
    const note = '—\n'.repeat(8 * 1024); // 16 Ki characters, 3-byte dash and escaped newline
    const batch = {
      v: 1,
      stream: 's'.repeat(256),
      batch: Number.MAX_SAFE_INTEGER,
      first_seq: Number.MAX_SAFE_INTEGER,
      last_seq: Number.MAX_SAFE_INTEGER,
      records: [],
      chain_head: 'f'.repeat(64),
      prev_checkpoint: note,
      checkpoint: note,
      vkey: 'v'.repeat(1024),
    };
    expect(Buffer.byteLength(JSON.stringify(batch))).toBeLessThanOrEqual(BATCH_ENVELOPE_BYTES);
    expect(MAX_RECORD_WIRE_BYTES + RECORD_ENVELOPE_BYTES + BATCH_ENVELOPE_BYTES).toBeLessThanOrEqual(MIN_BODY_BYTES);
  });
});

describe('canonicalWireBytes', () => {
  let rnd: Rnd;
  beforeEach(() => {
    rnd = prng(0xc0de);
  });
  it('is the UTF-8 length of the canonical text as a JSON string', () => {
    for (let i = 0; i < 3000; i++) {
      const text = JSON.stringify(randomValue(rnd, 0))?.toWellFormed() ?? 'null';
      expect(canonicalWireBytes(text, Buffer.byteLength(text))).toBe(Buffer.byteLength(JSON.stringify(text)));
    }
  });
});
