/**
 * `sealtrail redact --rules F [--rules F2 ...] [--pseudonym-key ID=FILE ...] [--format F [--mapping M]] [--explain] [--tenant T] [INPUT]`
 *
 * Runs a JSONL file (or stdin) through the sidecar's own steps
 * (src/sidecar/line-events.ts: JSON.parse → well-formed strings → format
 * decode → redact → normalise → size check) and writes one redacted JSON
 * line per event to stdout: what the record will hold before normalisation.
 * A line refused here is exactly a line a sidecar with the same format
 * would quarantine. Meant for trying rules and formats on sample traces
 * before they are deployed. `--format` defaults to `auto`, a file source's
 * default.
 *
 * Streaming: the input is split into lines by bytes with the sidecar's own
 * LineSplitter, so memory stays bounded by the 1 MiB line limit however big
 * the input is, and stdout backpressure pauses reading.
 *
 * A line that cannot become records (not JSON, not UTF-8, too long, nested
 * too deep, not of its format, an event the sidecar would refuse) is refused:
 * it is NOT written to stdout, since its content may be
 * unredacted PII; stderr names it by line number and reason only. Exit code:
 * 0 when every line was accepted, 1 when any was refused (or on a rule file
 * error), 2 for usage errors.
 *
 * Rules with `operator: hash, per_tenant: true` use `--tenant T` when given,
 * else each line's top-level `tenant` string.
 */
import { closeSync, createReadStream, existsSync, statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { uuidv7 } from '../core/uuid.js';
import { FORMAT_NAMES, type FormatName, type LineFormat } from '../sidecar/formats/format.js';
import { formatFor } from '../sidecar/formats/for-source.js';
import { openForReading } from '../fs/read-file.js';
import { decodeLine, eventToRecord, under } from '../sidecar/line-events.js';
import { loadRuleset, type Ruleset } from '../sidecar/redact/index.js';
import { LineSplitter } from '../sidecar/sources/file-lines.js';
import type { SourceLine } from '../sidecar/sources/types.js';
import { readPseudonymKeyOptions } from './pseudonym-keys.js';
import { EXIT_FAIL, EXIT_OK, parse, UsageError } from './usage.js';

/** The sidecar's default `max_line_bytes`. */
export const REDACT_MAX_LINE_BYTES = 1024 * 1024;

/** stdout is written in chunks of about this many UTF-16 units */
const OUT_CHUNK = 256 * 1024;
/** at most this many refused lines are reported one by one; the rest are counted */
const MAX_REPORTED = 1000;

export interface RedactStats {
  lines: number;
  /** events written (a line may hold several) */
  written: number;
  refused: number;
  blank: number;
  hits: Record<string, number>;
  reasons: Record<string, number>;
}

export async function redactCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      rules: { type: 'string', multiple: true },
      'pseudonym-key': { type: 'string', multiple: true },
      explain: { type: 'boolean' },
      tenant: { type: 'string' },
      format: { type: 'string' },
      mapping: { type: 'string' },
    },
    true,
  );
  const formatName = (values.format ?? (values.mapping !== undefined ? 'mapped' : 'auto')) as FormatName;
  if (!FORMAT_NAMES.includes(formatName)) throw new UsageError(`--format ${values.format}: expected one of ${FORMAT_NAMES.join(', ')}`);
  if (formatName === 'mapped' && values.mapping === undefined) throw new UsageError('--format mapped needs --mapping PRESET|FILE');
  if (formatName !== 'mapped' && values.mapping !== undefined) throw new UsageError(`--mapping applies to --format mapped only (not ${formatName})`);
  const rules = values.rules ?? [];
  if (rules.length === 0) throw new UsageError('redact needs --rules FILE (repeatable)');
  for (const f of rules) if (!existsSync(f)) throw new UsageError(`--rules ${f}: no such file`);
  if (positionals.length > 1) throw new UsageError('redact takes at most one INPUT (default: stdin)');
  const inputPath = positionals[0];
  let inputFd: number | undefined;
  if (inputPath !== undefined && inputPath !== '-') {
    if (!existsSync(inputPath)) throw new UsageError(`${inputPath}: no such file`);
    if (statSync(inputPath).isDirectory()) throw new UsageError(`${inputPath}: is a directory`);
    // Opened now: an unreadable INPUT is a FileError before any rule is loaded, not a stream error later.
    inputFd = openForReading(inputPath, 'INPUT');
  }

  let ruleset: Ruleset;
  let format: LineFormat;
  try {
    const pseudonymKeys = readPseudonymKeyOptions(values['pseudonym-key']);
    // A bad rule or mapping file is a ConfigError naming file:line:col; main prints it and exits 1.
    ruleset = loadRuleset(rules, { pseudonymKeys });
    format = formatName === 'mapped' ? formatFor({ format: 'mapped', mapping: values.mapping! }, process.cwd()) : formatFor({ format: formatName }, process.cwd());
  } catch (err) {
    if (inputFd !== undefined) closeSync(inputFd);
    throw err;
  }

  const input: Readable =
    inputFd === undefined ? process.stdin : createReadStream(inputPath!, { fd: inputFd, highWaterMark: 1024 * 1024 });
  const out = new StdoutWriter(process.stdout);
  const stats = await redactStream(input, ruleset, format, {
    tenant: values.tenant,
    write: (s) => out.write(s),
    stopped: () => out.broken,
    refuse: (line, nth, reason, message) => {
      if (nth <= MAX_REPORTED) process.stderr.write(`line ${line}: ${reason}: ${message}\n`);
    },
  }).finally(() => out.flush());

  if (out.broken) {
    // The reader went away (`| head`): not an error worth a message.
    return EXIT_FAIL;
  }
  if (stats.refused > MAX_REPORTED) {
    process.stderr.write(`(${stats.refused - MAX_REPORTED} more refused lines not listed)\n`);
  }
  if (values.explain) process.stderr.write(explain(ruleset, stats));
  else if (stats.refused > 0) {
    process.stderr.write(`sealtrail redact: ${stats.refused} of ${stats.lines} line(s) refused and not written\n`);
  }
  return stats.refused > 0 ? EXIT_FAIL : EXIT_OK;
}

interface StreamHooks {
  tenant: string | undefined;
  /** returns a promise while the consumer wants the producer to wait */
  write(s: string): Promise<void> | undefined;
  /** true once nothing more can be written (stdout closed): stop reading */
  stopped(): boolean;
  /** `line` is 1-based; `nth` counts refused lines so far, this one included */
  refuse(line: number, nth: number, reason: string, message: string): void;
}

/** Split, parse, redact and write; resolves with the counts once the input ends. */
async function redactStream(input: Readable, ruleset: Ruleset, format: LineFormat, hooks: StreamHooks): Promise<RedactStats> {
  const stats: RedactStats = { lines: 0, written: 0, refused: 0, blank: 0, hits: {}, reasons: {} };
  const splitter = new LineSplitter(REDACT_MAX_LINE_BYTES);
  let pending: string[] = [];
  let pendingLength = 0;

  const refuse = (reason: string, message: string): void => {
    stats.refused++;
    stats.reasons[reason] = (stats.reasons[reason] ?? 0) + 1;
    hooks.refuse(stats.lines, stats.refused, reason, message);
  };

  const onLine = (line: SourceLine): boolean => {
    stats.lines++;
    if (line.error) {
      refuse(line.error.code, describeSourceError(line));
      return true;
    }
    const decoded = decodeLine(line, format);
    if (decoded === 'blank' || ('events' in decoded && decoded.events.length === 0)) {
      stats.blank++;
      return true;
    }
    if ('failure' in decoded) {
      refuse(decoded.failure.code, describe(decoded.failure));
      return true;
    }
    // All of a line's events, or none: a sidecar commits them together.
    const out: string[] = [];
    let outLength = 0;
    const lineHits: Record<string, number> = {};
    for (const { event, path } of decoded.events) {
      const now = Date.now();
      const made = eventToRecord(event, ruleset, { id: uuidv7(now), stream: 'sealtrail-redact', seq: 0, receivedAt: new Date(now).toISOString(), source: 'redact' }, {
        text: decoded.text,
        repaired: decoded.repaired,
        ...(hooks.tenant !== undefined ? { tenant: hooks.tenant } : {}),
      });
      if ('failure' in made) {
        refuse(made.failure.code, describe(under(path, made.failure)));
        return true;
      }
      const json = `${JSON.stringify(made.redacted)}\n`;
      out.push(json);
      outLength += json.length;
      for (const [rule, n] of Object.entries(made.hits)) countInto(lineHits, rule, n);
    }
    for (const [rule, n] of Object.entries(lineHits)) countInto(stats.hits, rule, n);
    for (const piece of out) pending.push(piece);
    pendingLength += outLength;
    stats.written += out.length;
    return true;
  };

  const flush = async (): Promise<void> => {
    if (pending.length === 0) return;
    const s = pending.join('');
    pending = [];
    pendingLength = 0;
    await hooks.write(s);
  };

  for await (const chunk of input) {
    const block = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : (chunk as Buffer);
    splitter.feed(block, onLine);
    if (pendingLength >= OUT_CHUNK) await flush();
    if (hooks.stopped()) {
      input.destroy();
      return stats;
    }
  }
  // A last line without a newline is still a line of a finite input.
  if (splitter.partialBytes > 0) splitter.feed(Buffer.from('\n'), onLine);
  await flush();
  return stats;
}

function describeSourceError(line: SourceLine): string {
  switch (line.error?.code) {
    case 'line_too_long':
      return `${line.length} bytes, over the ${REDACT_MAX_LINE_BYTES}-byte line limit`;
    case 'invalid_utf8':
      return 'not valid UTF-8';
    default:
      return line.error?.message ?? 'unreadable line';
  }
}

/** A refusal's message, with the field at fault when it is not already named. */
function describe(f: { message: string; field?: string }): string {
  return f.field !== undefined && !f.message.includes(f.field) ? `${f.message} (at ${f.field})` : f.message;
}

function countInto(hits: Record<string, number>, rule: string, n: number): void {
  if (Object.hasOwn(hits, rule)) hits[rule] = (hits[rule] ?? 0) + n;
  else Object.defineProperty(hits, rule, { value: n, writable: true, enumerable: true, configurable: true });
}

/** The `--explain` report: ruleset hash, line counts, then hits per rule. */
export function explain(ruleset: { hash: string; ruleIds: readonly string[] }, stats: RedactStats): string {
  const ids = [...ruleset.ruleIds];
  for (const id of Object.keys(stats.hits)) if (!ids.includes(id)) ids.push(id);
  const width = Math.max(4, ...ids.map((id) => id.length));
  const rows = ids.map((id) => `${id.padEnd(width)}  ${stats.hits[id] ?? 0}`);
  const total = Object.values(stats.hits).reduce((a, b) => a + b, 0);
  const reasons = Object.entries(stats.reasons)
    .map(([r, n]) => `${r} ${n}`)
    .join(', ');
  return (
    `ruleset  ${ruleset.hash}\n` +
    `lines    ${stats.lines} read, ${stats.written} event(s) written, ${stats.refused} refused${reasons ? ` (${reasons})` : ''}, ${stats.blank} blank\n` +
    `${'rule'.padEnd(width)}  hits\n` +
    rows.map((r) => `${r}\n`).join('') +
    `${'total'.padEnd(width)}  ${total}\n`
  );
}

/**
 * stdout with backpressure: write() returns a promise while the pipe is full.
 * An EPIPE (the reader exited) marks the writer broken and drops the rest.
 */
class StdoutWriter {
  broken = false;
  private waiting: Promise<void> | undefined;

  constructor(private readonly stream: NodeJS.WriteStream) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') this.broken = true;
      else throw err;
    });
  }

  write(s: string): Promise<void> | undefined {
    if (this.broken) return undefined;
    if (this.stream.write(s)) return undefined;
    this.waiting ??= new Promise<void>((resolve) => {
      const done = (): void => {
        this.stream.off('drain', done);
        this.stream.off('error', done);
        this.stream.off('close', done);
        this.waiting = undefined;
        resolve();
      };
      this.stream.on('drain', done);
      this.stream.on('error', done);
      this.stream.on('close', done);
    });
    return this.waiting;
  }

  /** Wait until everything written so far has left the process's buffer. */
  async flush(): Promise<void> {
    if (this.waiting) await this.waiting;
  }
}
