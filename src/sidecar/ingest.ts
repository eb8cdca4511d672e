import { createSecretKey, type KeyObject } from 'node:crypto';
import { chainNext } from '../core/chain.js';
import { isPlainObject } from '../core/plain-object.js';
import { eventIdOf } from '../core/record.js';
import { leafHashOfText } from '../core/merkle.js';
import { uuidv7 } from '../core/uuid.js';
import type { AuditBuffer, PositionRow, PreparedRecord, QuarantineRow } from './buffer/buffer.js';
import type { LineFormat } from './formats/format.js';
import { sealtrailFormat } from './formats/sealtrail.js';
import { decodeLine, eventToRecord, failureOf, under, type LineFailure } from './line-events.js';
import { eventKey } from './event-key.js';
import type { Ruleset } from './redact/index.js';
import type { IngestLine, LineOutcome } from './sources/types.js';

export type { IngestLine, LineOutcome } from './sources/types.js';

export interface IngestChunk {
  source: string;
  /** path and identity of the input, for quarantine rows */
  path: string;
  fileKey: string;
  /**
   * Read once, in order. A source may produce them lazily; if reading one
   * throws, nothing of the chunk is committed and the error is passed on.
   */
  lines: Iterable<IngestLine>;
  position?: PositionRow;
  /** how each line becomes events; sealtrail's own shape when absent */
  format?: LineFormat;
}

export interface IngestResult {
  records: number;
  quarantined: Array<{ reason: string }>;
  blank: number;
  /** events not stored because an event with their event_id was (client resends) */
  duplicates: number;
  hits: Record<string, number>;
  /** seq of the first record written, when any */
  firstSeq: number | undefined;
  /**
   * One entry per input line, in order: the seq it was stored as, the
   * reason it was quarantined, or blank. Lets a socket or HTTP client be
   * told exactly what became of each line it sent.
   */
  lines: LineOutcome[];
}

export interface IngestOptions {
  hmacKey: Buffer;
  keyId: string;
  /** read on every chunk so a reload (SIGHUP) applies from the next line on */
  ruleset: () => Ruleset;
}

/**
 * Turns input lines into chained records and commits them with the position
 * they were read up to, in one transaction.
 *
 * Order per line (DESIGN invariant 1): JSON.parse → well-formed strings →
 * format decode (one line may hold several events: an OTLP/JSON line one per
 * span) → per event: redact decoded keys and values → normalise → add
 * sidecar fields → canonicalise → size check → leaf hash → chain MAC →
 * persist. Nothing derived from the raw line reaches the buffer, an error
 * message or a log before redaction; a line that cannot be parsed is
 * quarantined by position, reason and field path only.
 *
 * A line is one unit: all of its events become records, committed with its
 * position in one transaction, or none do and the line is quarantined with
 * the reason of the first event that failed.
 *
 * An event whose event_id a record of the stream already carries (a client
 * resending what it got no answer for) is not stored again: its line is
 * answered with the seq of the first send, marked `duplicate`. The id is
 * read before redaction, so rules cannot make a resend look new.
 *
 * Nothing committed here can be refused by a collector: the record's time
 * must have a time key (core/time-key.ts, via normaliseEvent) and its size
 * the wire limits (core/wire-limits.ts); a record that breaks them is
 * quarantined (`record_too_large`, `record_invalid`) and its source told so.
 */
export class Ingest {
  private readonly buffer: AuditBuffer;
  private readonly opts: IngestOptions;
  /** the chain key imported once: an HMAC from raw bytes imports the key on every record */
  private readonly key: KeyObject;

  constructor(buffer: AuditBuffer, opts: IngestOptions) {
    this.buffer = buffer;
    this.opts = opts;
    this.key = createSecretKey(opts.hmacKey);
  }

  ingest(chunk: IngestChunk): IngestResult {
    const cursor = this.buffer.chainCursor();
    const ruleset = this.opts.ruleset();
    const format = chunk.format ?? sealtrailFormat;
    const stream = this.buffer.stream;
    const records: PreparedRecord[] = [];
    const quarantine: QuarantineRow[] = [];
    const result: IngestResult = { records: 0, quarantined: [], blank: 0, duplicates: 0, hits: {}, firstSeq: undefined, lines: [] };
    let seq = cursor.nextSeq;
    let prevMac = cursor.prevMac;
    /** event keys of the records this chunk makes: a resend within one chunk is a duplicate too */
    const keysInChunk = new Map<string, number>();

    const reject = (line: IngestLine, f: LineFailure): void => {
      const row: QuarantineRow = { source: chunk.source, path: chunk.path, fileKey: chunk.fileKey, offset: line.offset, length: line.length, reason: f.code, message: f.message };
      if (f.field !== undefined) row.field = f.field;
      quarantine.push(row);
      result.quarantined.push({ reason: f.code });
      result.lines.push({ error: f });
    };

    for (const line of chunk.lines) {
      if (line.error) {
        reject(line, { code: line.error.code, message: line.error.message });
        continue;
      }
      const decoded = decodeLine(line, format);
      if (decoded === 'blank' || ('events' in decoded && decoded.events.length === 0)) {
        result.blank++;
        result.lines.push({ blank: true });
        continue;
      }
      if ('failure' in decoded) {
        reject(line, under(line.path ?? '', decoded.failure));
        continue;
      }
      // A line is one unit: all its events become records, or none do.
      const made: PreparedRecord[] = [];
      const lineHits: Record<string, number> = {};
      /** seqs earlier sends of this line's events were stored as (by event_id) */
      const resent: number[] = [];
      let failed: LineFailure | undefined;
      let mac = prevMac;
      for (const { event, path } of decoded.events) {
        let key: Buffer | undefined;
        try {
          const eventId = isPlainObject(event) ? eventIdOf(event) : undefined;
          if (eventId !== undefined) key = eventKey(this.key, eventId);
        } catch (err) {
          failed = under(path !== '' ? path : (line.path ?? ''), failureOf(err));
          break;
        }
        if (key) {
          const earlier = keysInChunk.get(key.toString('hex')) ?? this.buffer.seqOfEvent(key);
          if (earlier !== undefined) {
            resent.push(earlier);
            continue;
          }
        }
        const receivedMs = Date.now();
        const receivedAt = new Date(receivedMs).toISOString();
        const id = uuidv7(receivedMs);
        const r = eventToRecord(event, ruleset, { id, stream, seq: seq + made.length, receivedAt, source: chunk.source }, decoded);
        if ('failure' in r) {
          failed = under(path !== '' ? path : (line.path ?? ''), r.failure);
          break;
        }
        const leaf = leafHashOfText(r.canonical);
        mac = chainNext(this.key, mac, leaf);
        const prepared: PreparedRecord = { seq: seq + made.length, id, canonical: r.canonical, leaf, mac, keyId: this.opts.keyId, receivedAt, bytes: r.bytes, wireBytes: r.wireBytes };
        if (key) prepared.eventKey = key;
        made.push(prepared);
        for (const [rule, n] of Object.entries(r.hits)) lineHits[rule] = (lineHits[rule] ?? 0) + n;
      }
      if (failed) {
        reject(line, failed);
        continue;
      }
      for (const [rule, n] of Object.entries(lineHits)) result.hits[rule] = (result.hits[rule] ?? 0) + n;
      result.duplicates += resent.length;
      if (made.length === 0 && resent.length > 0) {
        // every event of the line was stored before: answered as it was then
        result.lines.push({ seq: resent[0]!, duplicate: true });
        continue;
      }
      for (const r of made) if (r.eventKey) keysInChunk.set(r.eventKey.toString('hex'), r.seq);
      result.lines.push(made.length === 1 ? { seq } : { seq, records: made.length });
      for (const r of made) records.push(r);
      seq += made.length;
      prevMac = mac;
    }
    this.buffer.commit(records, chunk.position, quarantine);
    result.records = records.length;
    result.firstSeq = records[0]?.seq;
    return result;
  }
}
