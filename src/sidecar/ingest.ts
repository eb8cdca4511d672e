import { canonicalize } from '../core/canonical.js';
import { chainNext } from '../core/chain.js';
import { SealtrailError } from '../core/errors.js';
import { leafHashOfText } from '../core/merkle.js';
import { buildRecord, normaliseEvent, repairLoneSurrogates } from '../core/record.js';
import type { RedactionProvenance } from '../core/types.js';
import { uuidv7 } from '../core/uuid.js';
import { canonicalWireBytes, recordSizeProblem } from '../core/wire-limits.js';
import type { AuditBuffer, PositionRow, PreparedRecord, QuarantineRow } from './buffer/buffer.js';
import type { RedactContext, Ruleset } from './redact/index.js';
import type { IngestLine, LineOutcome } from './sources/types.js';

export type { IngestLine, LineOutcome } from './sources/types.js';

export interface IngestChunk {
  source: string;
  /** path and identity of the input, for quarantine rows */
  path: string;
  fileKey: string;
  lines: readonly IngestLine[];
  position?: PositionRow;
}

export interface IngestResult {
  records: number;
  quarantined: Array<{ reason: string }>;
  blank: number;
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
 * redact decoded keys and values → normalise → add sidecar fields →
 * canonicalise → size check → leaf hash → chain MAC → persist. Nothing
 * derived from the raw line reaches the buffer, an error message or a log
 * before redaction; a line that cannot be parsed is quarantined by position
 * and reason only.
 *
 * Nothing committed here can be refused by a collector: the record's time
 * must have a time key (core/time-key.ts, via normaliseEvent) and its size
 * the wire limits (core/wire-limits.ts); a record that breaks them is
 * quarantined (`record_too_large`, `record_invalid`) and its source told so.
 */
export class Ingest {
  private readonly buffer: AuditBuffer;
  private readonly opts: IngestOptions;

  constructor(buffer: AuditBuffer, opts: IngestOptions) {
    this.buffer = buffer;
    this.opts = opts;
  }

  ingest(chunk: IngestChunk): IngestResult {
    const cursor = this.buffer.chainCursor();
    let seq = cursor.nextSeq;
    let prevMac = cursor.prevMac;
    const ruleset = this.opts.ruleset();
    const records: PreparedRecord[] = [];
    const quarantine: QuarantineRow[] = [];
    const result: IngestResult = { records: 0, quarantined: [], blank: 0, hits: {}, firstSeq: undefined, lines: [] };
    const stream = this.buffer.stream;

    const reject = (line: IngestLine, reason: string, message: string): void => {
      quarantine.push({
        source: chunk.source,
        path: chunk.path,
        fileKey: chunk.fileKey,
        offset: line.offset,
        length: line.length,
        reason,
        message,
      });
      result.quarantined.push({ reason });
      result.lines.push({ error: { code: reason, message } });
    };

    for (const line of chunk.lines) {
      if (line.error) {
        reject(line, line.error.code, line.error.message);
        continue;
      }
      const text = line.text ?? '';
      if (text.trim().length === 0) {
        result.blank++;
        result.lines.push({ blank: true });
        continue;
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        // V8's SyntaxError quotes the input, which may be PII: keep only a fixed message.
        reject(line, 'json_invalid', 'line is not valid JSON');
        continue;
      }
      const receivedMs = Date.now();
      const receivedAt = new Date(receivedMs).toISOString();
      const hits: Record<string, number> = {};
      const id = uuidv7(receivedMs);
      let recordText: string;
      let bytes: number;
      let wireBytes: number;
      try {
        const { value: clean, repaired } = repairLoneSurrogates(parsed, text);
        // The tenant is read before redaction: per-tenant pseudonyms depend on it.
        const tenant = (clean as { tenant?: unknown } | null)?.tenant;
        // The line itself lets a clean record skip the walk, but only when it is
        // exactly what `clean` was parsed from (not after a repair).
        const ctx: RedactContext = clean === parsed ? { text } : {};
        if (typeof tenant === 'string') ctx.tenant = tenant;
        const redacted = ruleset.redact(clean, hits, ctx);
        const event = normaliseEvent(redacted, receivedAt);
        const redaction: RedactionProvenance = { ruleset: ruleset.hash, hits };
        if (repaired.lone_surrogates > 0) {
          redaction.repaired = { lone_surrogates: repaired.lone_surrogates };
          if (repaired.keys_renamed > 0) redaction.repaired.keys_renamed = repaired.keys_renamed;
        }
        const record = buildRecord(event, { id, stream, seq, received_at: receivedAt, source: chunk.source, redaction });
        recordText = canonicalize(record);
        bytes = Buffer.byteLength(recordText, 'utf8');
        wireBytes = canonicalWireBytes(recordText, bytes);
        const tooLarge = recordSizeProblem(wireBytes);
        if (tooLarge !== undefined) {
          reject(line, 'record_too_large', tooLarge);
          continue;
        }
      } catch (err) {
        if (err instanceof SealtrailError) {
          reject(line, err.code, err.message);
        } else {
          // Anything else (a RangeError, a bug in a rule) must not fail the whole
          // chunk: the source would offer the same lines again forever. The
          // message of a foreign error may quote the input, so only its name is kept.
          const name = err instanceof Error ? err.name : typeof err;
          reject(line, 'record_failed', `line could not be turned into a record (${name})`);
        }
        continue;
      }
      const leaf = leafHashOfText(recordText);
      const mac = chainNext(this.opts.hmacKey, prevMac, leaf);
      records.push({
        seq,
        id,
        canonical: recordText,
        leaf,
        mac,
        keyId: this.opts.keyId,
        receivedAt,
        bytes,
        wireBytes,
      });
      for (const [rule, n] of Object.entries(hits)) result.hits[rule] = (result.hits[rule] ?? 0) + n;
      result.lines.push({ seq });
      prevMac = mac;
      seq++;
    }
    this.buffer.commit(records, chunk.position, quarantine);
    result.records = records.length;
    result.firstSeq = records[0]?.seq;
    return result;
  }
}
