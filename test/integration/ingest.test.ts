import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { canonicalize } from '../../src/core/canonical.js';
import { CHAIN_GENESIS, chainNext } from '../../src/core/chain.js';
import { leafHash } from '../../src/core/merkle.js';
import type { AuditRecord } from '../../src/core/types.js';
import { AuditBuffer, type PositionRow } from '../../src/sidecar/buffer/buffer.js';
import { Ingest, type IngestChunk, type IngestLine } from '../../src/sidecar/ingest.js';
import { compileRuleset, EMPTY_RULESET, loadRuleset, type Ruleset } from '../../src/sidecar/redact/index.js';
import { containsText, fileBytesOf, HMAC_KEY, KEY_ID, sqliteFileBytes, tempDir, type TempDir } from '../helpers/sidecar-fixtures.js';

const PII_RULES = fileURLToPath(new URL('../../config/redaction/pii-basic.yaml', import.meta.url));
const STREAM = 'ingest-stream';

let tmp: TempDir;
let buffer: AuditBuffer;
let ruleset: Ruleset;
let ingest: Ingest;

beforeEach(() => {
  tmp = tempDir('sealtrail-ingest-');
  buffer = AuditBuffer.open(tmp.file('buffer.db'), { newStreamId: () => STREAM });
  ruleset = loadRuleset([PII_RULES]);
  ingest = new Ingest(buffer, { hmacKey: HMAC_KEY, keyId: KEY_ID, ruleset: () => ruleset });
});

afterEach(() => {
  buffer.close();
  tmp.cleanup();
});

type LineSpec = string | { error: string; bytes?: number };

/** Lays lines out as a file would: each takes its UTF-8 length plus a newline. */
function chunkOf(specs: readonly LineSpec[], start = 0, key = 'file-1'): IngestChunk & { lines: IngestLine[] } {
  let offset = start;
  const lines: IngestLine[] = [];
  for (const s of specs) {
    if (typeof s === 'string') {
      const length = Buffer.byteLength(s, 'utf8') + 1;
      lines.push({ offset, length, text: s });
      offset += length;
    } else {
      const length = s.bytes ?? 100;
      lines.push({ offset, length, error: { code: s.error, message: `line at offset ${offset}: ${s.error}` } });
      offset += length;
    }
  }
  const position: PositionRow = { source: 'agent', key, path: '/var/log/agent.jsonl', offset, fingerprint: `fp-${key}` };
  return { source: 'agent', path: '/var/log/agent.jsonl', fileKey: key, lines, position };
}

function ev(i: number, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ event_type: 'tool_invoked', time: '2026-01-01T00:00:00Z', tool: { name: 'search', arguments: { i } }, ...extra });
}

interface Row {
  seq: number;
  id: string;
  canonical: string;
  leaf: Buffer;
  mac: Buffer;
  key_id: string;
  bytes: number;
  received_at: string;
}

function rows(): Row[] {
  return buffer.db.prepare('SELECT * FROM records ORDER BY seq').all() as Row[];
}

function recordsOf(): AuditRecord[] {
  return rows().map((r) => JSON.parse(r.canonical) as AuditRecord);
}

interface QRow {
  source: string;
  path: string;
  file_key: string;
  offset: number;
  length: number;
  reason: string;
  message: string;
  field: string | null;
}

function quarantine(): QRow[] {
  return buffer.db.prepare('SELECT source, path, file_key, offset, length, reason, message, field FROM quarantine ORDER BY id').all() as QRow[];
}

/** Every stored row is canonical, hashed and chained exactly as the spec says. */
function expectChainFromGenesis(): void {
  let prev = CHAIN_GENESIS;
  rows().forEach((r, i) => {
    expect(r.seq).toBe(i);
    const parsed = JSON.parse(r.canonical) as AuditRecord;
    expect(canonicalize(parsed)).toBe(r.canonical);
    expect(parsed.seq).toBe(r.seq);
    expect(parsed.stream).toBe(STREAM);
    expect(parsed.id).toBe(r.id);
    expect(r.bytes).toBe(Buffer.byteLength(r.canonical, 'utf8'));
    const leaf = leafHash(Buffer.from(r.canonical, 'utf8'));
    expect(r.leaf.equals(leaf)).toBe(true);
    const mac = chainNext(HMAC_KEY, prev, leaf);
    expect(r.mac.equals(mac)).toBe(true);
    expect(r.key_id).toBe(KEY_ID);
    prev = mac;
  });
  expect(buffer.chainCursor().prevMac.equals(prev)).toBe(true);
}

describe('Ingest: valid lines', () => {
  it('turns lines into records with contiguous seq and a reproducible MAC chain', () => {
    const r1 = ingest.ingest(chunkOf([ev(0), ev(1), ev(2)]));
    expect(r1).toEqual({ records: 3, quarantined: [], blank: 0, duplicates: 0, hits: {}, firstSeq: 0, lines: [{ seq: 0 }, { seq: 1 }, { seq: 2 }] });
    const r2 = ingest.ingest(chunkOf([ev(3), ev(4)], 1000));
    expect(r2.firstSeq).toBe(3);
    expect(r2.lines).toEqual([{ seq: 3 }, { seq: 4 }]);
    expect(r2.records).toBe(2);
    expect(buffer.chainCursor().nextSeq).toBe(5);
    expectChainFromGenesis();
    const recs = recordsOf();
    for (const r of recs) {
      expect(r.source).toBe('agent');
      expect(r.redaction.ruleset).toBe(ruleset.hash);
      expect(r.redaction.hits).toEqual({});
      expect(r.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(Number.isFinite(Date.parse(r.received_at))).toBe(true);
      expect(r.time).toBe('2026-01-01T00:00:00.000Z');
    }
    expect(recs.map((r) => (r.tool!.arguments as { i: number }).i)).toEqual([0, 1, 2, 3, 4]);
  });

  it('commits the position with the records', () => {
    const c = chunkOf([ev(0), ev(1)]);
    ingest.ingest(c);
    expect(buffer.getPosition('agent', 'file-1')).toEqual(c.position);
  });

  it('cannot be made to forge sidecar fields: a line that sets one is quarantined naming the field', () => {
    const r = ingest.ingest(chunkOf([ev(0, { seq: 99, stream: 'evil' }), ev(1)]));
    expect(r.records).toBe(1);
    expect(r.lines[0]).toEqual({ error: { code: 'record_invalid', message: expect.stringContaining('field stream:'), field: 'stream' } });
    const [rec] = recordsOf();
    expect(rec!.seq).toBe(0);
    expect(rec!.stream).toBe(STREAM);
    expect(rec!.source).toBe('agent');
    expect(rec!.redaction.ruleset).toBe(ruleset.hash);
  });

  it('a chunk with no records still commits its position and quarantine', () => {
    const c = chunkOf(['', 'not json']);
    const r = ingest.ingest(c);
    expect(r).toEqual({
      records: 0,
      quarantined: [{ reason: 'json_invalid' }],
      blank: 1,
      duplicates: 0,
      hits: {},
      firstSeq: undefined,
      lines: [{ blank: true }, { error: { code: 'json_invalid', message: 'line is not valid JSON' } }],
    });
    expect(buffer.getPosition('agent', 'file-1')?.offset).toBe(c.position!.offset);
    expect(buffer.chainCursor().nextSeq).toBe(0);
  });
});

describe('Ingest: bad lines go to quarantine, good neighbours still land', () => {
  it('sorts every kind of bad line with the right reason, offset and length', () => {
    const specs: LineSpec[] = [
      ev(0),
      '{"event_type": "x", "unterminated": ',
      ev(1),
      '\u0000\u0001\u00ff\ufffd\u0007garbage',
      '[{"event_type":"in an array"}]',
      '"just a string"',
      '42',
      'null',
      ev(2),
      '{"event_type": 5}',
      '{"event_type": "x", "outcome": ["maybe"]}',
      '{"event_type": "x", "actor": {"type": "user"}}',
      { error: 'line_too_long', bytes: 5_000_000 },
      ev(3),
      { error: 'invalid_utf8', bytes: 17 },
      '',
      '   ',
      '\t',
      ev(4),
      '{"event_type":"x","time":"2024-02-30T00:00:00Z"}',
    ];
    const c = chunkOf(specs, 4096);
    const r = ingest.ingest(c);
    expect(r.records).toBe(5);
    expect(r.blank).toBe(3);
    expect(r.firstSeq).toBe(0);
    const expected: Array<[number, string]> = [
      [1, 'json_invalid'],
      [3, 'json_invalid'],
      [4, 'record_not_object'],
      [5, 'record_not_object'],
      [6, 'record_not_object'],
      [7, 'record_not_object'],
      [9, 'record_invalid'],
      [10, 'record_invalid'],
      [11, 'record_invalid'],
      [12, 'line_too_long'],
      [14, 'invalid_utf8'],
      [19, 'record_invalid'],
    ];
    expect(r.quarantined).toEqual(expected.map(([, reason]) => ({ reason })));
    const q = quarantine();
    expect(q).toHaveLength(expected.length);
    q.forEach((row, i) => {
      const line = c.lines[expected[i]![0]]!;
      expect(row).toMatchObject({ source: 'agent', path: '/var/log/agent.jsonl', file_key: 'file-1', reason: expected[i]![1] });
      expect(row.offset).toBe(line.offset);
      expect(row.length).toBe(line.length);
    });
    expect(q[9]!.length).toBe(5_000_000);
    // the good lines are seq 0..4, in order, chained
    expect(recordsOf().map((x) => (x.tool!.arguments as { i: number }).i)).toEqual([0, 1, 2, 3, 4]);
    expectChainFromGenesis();
    expect(buffer.getPosition('agent', 'file-1')?.offset).toBe(c.position!.offset);
  });

  it('error messages in quarantine name fields, never values', () => {
    const canary = 'QVALUE-CANARY-31337';
    ingest.ingest(
      chunkOf([
        `{"event_type": "x", "outcome": {"v": "${canary}"}}`,
        `{"event_type": "x", "actor": {"id": "u", "type": ["${canary}"]}}`,
        `{"event_type": "x", "time": "${canary}"}`,
        `{"event_type": {"v": "${canary}"}}`,
        `{"event_type": "x", "tenant": ["${canary}"]}`,
        `{"event_type": "x", "secret": "${canary}"`,
      ]),
    );
    const q = quarantine();
    expect(q).toHaveLength(6);
    for (const row of q) expect(row.message).not.toContain(canary);
    expect(q.map((x) => x.message).join('\n')).toMatch(/outcome[\s\S]*actor\.type[\s\S]*time[\s\S]*event_type[\s\S]*tenant/);
    // the field at fault is kept apart, for ingest_rejected reports and `sealtrail quarantine`
    expect(q.slice(0, 5).map((x) => x.field)).toEqual(['outcome', 'actor.type', 'time', 'event_type', 'tenant']);
    expect(q[5]!.field).toBeNull();
  });

  it('refuses values nested too deep for redaction into quarantine, not a crash', () => {
    const deep = `{"event_type":"x","details":${'{"a":'.repeat(100)}1${'}'.repeat(100)}}`;
    const r = ingest.ingest(chunkOf([deep, ev(0)]));
    expect(r.records).toBe(1);
    expect(r.quarantined).toEqual([{ reason: 'redact_too_deep' }]);
  });

  it('survives extremely deep JSON without throwing', () => {
    const deep = `${'['.repeat(200_000)}${']'.repeat(200_000)}`;
    const r = ingest.ingest(chunkOf([deep, ev(0)]));
    expect(r.records).toBe(1);
    expect(r.quarantined).toHaveLength(1);
  });
});

describe('Ingest: redaction before persistence', () => {
  it('redacts a \\u0040-escaped canary email before it reaches SQLite or its WAL; quarantined content never persists', () => {
    const local = 'canary.zq9x';
    const email = `${local}@example.org`;
    const escaped = `${local}\\u0040example.org`;
    const qcanary = 'QUARANTINE-CANARY-77aa';
    const line = `{"event_type":"user_message_received","details":{"text":"write to ${escaped} please","${escaped}":"as a key"}}`;
    expect(line).not.toContain('@');
    const r = ingest.ingest(
      chunkOf([
        line,
        `{"event_type":"x","note":"${qcanary}", broken`,
        `\u0000${qcanary}\u0001`,
        `{"event_type":"x","outcome":["${qcanary}"]}`,
        `{"event_type":"x","actor":{"id":"u","${escaped}":1}}`,
      ]),
    );
    expect(r.records).toBe(2);
    expect(r.quarantined.map((q) => q.reason)).toEqual(['json_invalid', 'json_invalid', 'record_invalid']);
    expect(r.hits).toEqual({ email: 3 });
    const [rec, kept] = recordsOf();
    expect(rec!.redaction.hits).toEqual({ email: 2 });
    expect(JSON.stringify(rec)).toContain('[REDACTED:email]');
    expect(JSON.stringify(rec)).not.toContain(local);
    // the unknown actor member is kept, and its name was redacted like any key
    expect(kept!.redaction.hits).toEqual({ email: 1 });
    expect(JSON.stringify(kept!.actor)).toContain('[REDACTED:email]');
    expect(JSON.stringify(kept)).not.toContain(local);
    const msgs = quarantine().map((q) => q.message);
    expect(msgs.join('\n')).not.toContain(local);
    expect(msgs.join('\n')).not.toContain(qcanary);

    const check = (): void => {
      const main = fileBytesOf(buffer.path, '');
      const wal = fileBytesOf(buffer.path, '-wal');
      expect(main.length + wal.length).toBeGreaterThan(0);
      for (const bytes of [main, wal, sqliteFileBytes(buffer.path)]) {
        for (const needle of [local, email, escaped, qcanary]) expect(containsText(bytes, needle)).toBe(false);
      }
    };
    // before and after the WAL is checkpointed into the main file, and after close
    expect(fileBytesOf(buffer.path, '-wal').length).toBeGreaterThan(0);
    check();
    buffer.db.pragma('wal_checkpoint(FULL)');
    check();
    buffer.close();
    check();
  });

  it('counts hits per record and per chunk; a quarantined line\'s hits are not counted', () => {
    const r = ingest.ingest(
      chunkOf([
        ev(0, { details: { a: 'a@b.co and c@d.io', ssn: '123-45-6789' } }),
        ev(1, { details: { ip: '10.1.2.3' } }),
        ev(2),
        '{"event_type":"x","outcome":{"v":"e@f.gh"}}',
      ]),
    );
    expect(r.records).toBe(3);
    const recs = recordsOf();
    expect(recs[0]!.redaction.hits).toEqual({ email: 2, us_ssn: 1 });
    expect(recs[1]!.redaction.hits).toEqual({ ipv4: 1 });
    expect(recs[2]!.redaction.hits).toEqual({});
    expect(r.hits).toEqual({ email: 2, us_ssn: 1, ipv4: 1 });
  });

  it('reads the ruleset on every chunk (a reload applies from the next chunk)', () => {
    let current: Ruleset = EMPTY_RULESET;
    const ing = new Ingest(buffer, { hmacKey: HMAC_KEY, keyId: KEY_ID, ruleset: () => current });
    ing.ingest(chunkOf([ev(0, { details: { who: 'pat@example.com' } })]));
    current = compileRuleset([{ id: 'email', pattern: '[a-z]+@[a-z.]+' }]);
    ing.ingest(chunkOf([ev(1, { details: { who: 'pat@example.com' } })], 500));
    const recs = recordsOf();
    expect(recs[0]!.redaction.ruleset).toBe(EMPTY_RULESET.hash);
    expect(recs[0]!.details).toEqual({ who: 'pat@example.com' });
    expect(recs[1]!.redaction).toEqual({ ruleset: current.hash, hits: { email: 1 } });
    expect(recs[1]!.details).toEqual({ who: '[REDACTED:email]' });
    expectChainFromGenesis();
  });

  it('replaces lone surrogates with U+FFFD in values and keys', () => {
    ingest.ingest(
      chunkOf([
        '{"event_type":"x","details":{"s":"a\\ud800b","\\udc00k":"v","pair":"\\ud83d\\ude00"}}',
        `{"event_type":"x","details":{"raw":"c\ud800d"}}`,
      ]),
    );
    const [a, b] = rows();
    const ra = JSON.parse(a!.canonical) as AuditRecord;
    expect(ra.details).toEqual({ s: 'a\ufffdb', '\ufffdk': 'v', pair: '\ud83d\ude00' });
    expect((JSON.parse(b!.canonical) as AuditRecord).details).toEqual({ raw: 'c\ufffdd' });
    expect(a!.canonical.isWellFormed()).toBe(true);
    expect(b!.canonical.isWellFormed()).toBe(true);
    expectChainFromGenesis();
  });

  it('says inside the hashed record how many lone surrogates it replaced, and says nothing when none were', () => {
    ingest.ingest(
      chunkOf([
        '{"event_type":"x","details":{"s":"a\\ud800b\\udfff","\\udc00k":"v","pair":"\\ud83d\\ude00"}}',
        `{"event_type":"x","details":{"raw":"c\ud800d"}}`,
        '{"event_type":"x","details":{"pair":"\\ud83d\\ude00","plain":"ok"}}',
      ]),
    );
    const [a, b, c] = recordsOf();
    expect(a!.redaction.repaired).toEqual({ lone_surrogates: 3 });
    expect(b!.redaction.repaired).toEqual({ lone_surrogates: 1 });
    expect(c!.redaction).not.toHaveProperty('repaired');
    expect(rows()[0]!.canonical).toContain('"repaired":{"lone_surrogates":3}');
    expectChainFromGenesis();
  });

  it('loses no member when repaired keys collide: unrepaired keys keep their names, repaired ones take #2, #3, and are counted', () => {
    ingest.ingest(chunkOf(['{"event_type":"x","details":{"\\ud800":"first","\\udbff":"second","\uFFFD":"literal"}}']));
    const [r] = recordsOf();
    expect(r!.details).toEqual({ '\ufffd': 'literal', '\ufffd#2': 'first', '\ufffd#3': 'second' });
    expect(r!.redaction.repaired).toEqual({ lone_surrogates: 2, keys_renamed: 2 });
  });

  it('repairs a lone surrogate as deep as the ruleset lets a record nest', () => {
    const deepRules = compileRuleset([], { maxDepth: 600 });
    ingest = new Ingest(buffer, { hmacKey: HMAC_KEY, keyId: KEY_ID, ruleset: () => deepRules });
    const depth = 400;
    const line = `{"event_type":"x","details":${'{"k":'.repeat(depth)}"\\ud800"${'}'.repeat(depth)}}`;
    const r = ingest.ingest(chunkOf([line]));
    expect(r.quarantined).toEqual([]);
    expect(recordsOf()[0]!.redaction.repaired).toEqual({ lone_surrogates: 1 });
  });
});

describe('Ingest: nothing the line said is silently dropped', () => {
  it('keeps a "__proto__" key inside details', () => {
    ingest.ingest(chunkOf(['{"event_type":"x","details":{"__proto__":{"k":"KEEP-ME-1"},"s":"ok"}}']));
    expect(rows()[0]!.canonical).toContain('KEEP-ME-1');
  });

  // BUG (src/core/record.ts wellFormed): when any sibling needs a U+FFFD fix,
  // the object is rebuilt with `out[k] = v` and an own "__proto__" key is lost
  // (it becomes the prototype), so the sealed record silently misses data.
  it('keeps a "__proto__" key inside details when a sibling has a lone surrogate', () => {
    ingest.ingest(chunkOf(['{"event_type":"x","details":{"__proto__":{"k":"KEEP-ME-2"},"s":"\\ud800"}}']));
    expect(rows()[0]!.canonical).toContain('KEEP-ME-2');
  });

  // BUG (src/core/record.ts normaliseEvent): unknown top-level keys are copied
  // into _unmapped by assignment. A top-level "__proto__" key with an object
  // value becomes _unmapped's prototype, canonicalize() then refuses the
  // non-plain object and a valid event is quarantined as canonical_invalid;
  // with a primitive value the key is silently dropped.
  it('keeps an unknown top-level "__proto__" key (object value) under details._unmapped', () => {
    const r = ingest.ingest(chunkOf(['{"event_type":"x","__proto__":{"k":"KEEP-ME-3"}}']));
    expect(r.quarantined).toEqual([]);
    expect(rows()[0]!.canonical).toContain('KEEP-ME-3');
  });

  it('keeps an unknown top-level "__proto__" key (string value) under details._unmapped', () => {
    const r = ingest.ingest(chunkOf(['{"event_type":"x","__proto__":"KEEP-ME-4"}']));
    expect(r.records).toBe(1);
    expect(rows()[0]!.canonical).toContain('KEEP-ME-4');
  });
});

describe('Ingest: a failing commit leaves the chain cursor where it was', () => {
  it('a full disk (tiny max_page_count) fails the chunk; the next chunk continues without a gap', () => {
    ingest.ingest(chunkOf([ev(0), ev(1)]));
    const cursor = buffer.chainCursor();
    const pages = buffer.db.pragma('page_count', { simple: true }) as number;
    buffer.db.pragma(`max_page_count = ${pages}`);
    const big = Array.from({ length: 40 }, (_, i) => ev(100 + i, { details: { pad: 'x'.repeat(8000) } }));
    const bigChunk = chunkOf(big, 10_000);
    expect(() => ingest.ingest(bigChunk)).toThrow(/full/i);
    expect(buffer.chainCursor()).toEqual(cursor);
    expect(buffer.stats()).toMatchObject({ records: 2, nextSeq: 2 });
    expect(buffer.getPosition('agent', 'file-1')?.offset).not.toBe(bigChunk.position!.offset);
    expect(buffer.db.inTransaction).toBe(false);

    buffer.db.pragma('max_page_count = 1073741823');
    const r = ingest.ingest(chunkOf([ev(2), ev(3)], 20_000));
    expect(r.firstSeq).toBe(2);
    expect(rows().map((x) => x.seq)).toEqual([0, 1, 2, 3]);
    expectChainFromGenesis();
  });

  it('a closed database fails the chunk; reopening continues the chain without a gap', () => {
    ingest.ingest(chunkOf([ev(0), ev(1), ev(2)]));
    const cursor = buffer.chainCursor();
    buffer.db.close();
    expect(() => ingest.ingest(chunkOf([ev(3)], 300))).toThrow();
    expect(buffer.chainCursor()).toEqual(cursor);

    buffer = AuditBuffer.open(tmp.file('buffer.db'), { newStreamId: () => 'never-used' });
    expect(buffer.chainCursor()).toEqual(cursor);
    ingest = new Ingest(buffer, { hmacKey: HMAC_KEY, keyId: KEY_ID, ruleset: () => ruleset });
    const r = ingest.ingest(chunkOf([ev(3), ev(4)], 300));
    expect(r.firstSeq).toBe(3);
    expectChainFromGenesis();
  });
});

describe('Ingest: unexpected errors', () => {
  it('quarantines a line whose processing throws a foreign error, without its message, and keeps the rest of the chunk', () => {
    const canary = 'FOREIGN-ERROR-CANARY-51c2';
    const throwing: Ruleset = {
      ...EMPTY_RULESET,
      redact: (value: unknown, hits: Record<string, number>, ctx?: { tenant?: string }) => {
        if ((value as { boom?: unknown }).boom) throw new TypeError(`cannot read ${canary}`);
        return EMPTY_RULESET.redact(value, hits, ctx ?? {});
      },
    } as Ruleset;
    const ing = new Ingest(buffer, { hmacKey: HMAC_KEY, keyId: KEY_ID, ruleset: () => throwing });
    const r = ing.ingest(chunkOf([ev(0), `{"event_type":"x","boom":1}`, ev(1)]));
    expect(r.records).toBe(2);
    expect(r.quarantined).toEqual([{ reason: 'record_failed' }]);
    const q = quarantine();
    expect(q).toHaveLength(1);
    expect(q[0]!.message).not.toContain(canary);
    expect(q[0]!.message).toContain('TypeError');
  });
});
