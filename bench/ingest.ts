/**
 * The sidecar's per-record work in one process, without files, HTTP or a
 * collector: corpus lines (bench/corpus.ts) → Ingest (parse, redact,
 * normalise, canonicalise, hash, chain) → a real SQLite buffer, committed
 * 500 lines at a time. It isolates the part of the sidecar's CPU that grows
 * with records (the rest is reading the file, sealing and shipping) and
 * takes seconds, so a change to redaction or ingest can be compared against
 * its parent quickly; `npm run bench` remains the figure to quote.
 *
 *   npm run bench:ingest                 (both corpora)
 *   BENCH_CORPUS=pii BENCH_EVENTS=30000 npm run bench:ingest
 *   BENCH_RE2_CALLS=1 npm run bench:ingest   also count RE2 calls per record (slower)
 *   BENCH_RULES=none npm run bench:ingest    no redaction rules: what the rest costs
 *
 * Prints, per corpus, records per CPU-second of this process (user + system
 * from process.cpuUsage over the ingest loop only; generating the corpus and
 * loading the rules are outside it) and microseconds of CPU per record, as
 * the median of BENCH_ROUNDS rounds (default 3), each into a fresh buffer.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import RE2 from 're2';
import { AuditBuffer } from '../src/sidecar/buffer/buffer.js';
import { Ingest, type IngestLine } from '../src/sidecar/ingest.js';
import { loadRuleset } from '../src/sidecar/redact/index.js';
import { CORPORA, corpusGenerator, PACKS_FOR_CORPUS, type CorpusName } from './corpus.js';
import { median } from './proc-stats.js';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 20_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CHUNK = 500;
const NO_RULES = process.env.BENCH_RULES === 'none';

interface CallStat {
  calls: number;
  ns: bigint;
}
const re2Calls = new Map<string, CallStat>();

/** Wraps RE2's matching methods to count calls and time per kind (BENCH_RE2_CALLS=1). */
function countRe2Calls(): void {
  const wrap = (proto: Record<string, unknown>, method: string, label: string): void => {
    const original = proto[method] as (...args: unknown[]) => unknown;
    proto[method] = function (this: unknown, ...args: unknown[]): unknown {
      const t = process.hrtime.bigint();
      const r = original.apply(this, args);
      const s = re2Calls.get(label) ?? { calls: 0, ns: 0n };
      s.calls++;
      s.ns += process.hrtime.bigint() - t;
      re2Calls.set(label, s);
      return r;
    };
  };
  const re2 = RE2.prototype as unknown as Record<string, unknown>;
  const set = RE2.Set.prototype as unknown as Record<string, unknown>;
  wrap(re2, 'exec', 'RE2 exec');
  wrap(re2, 'test', 'RE2 test');
  wrap(set, 'test', 'RE2.Set test');
  wrap(set, 'match', 'RE2.Set match');
}

function round(lines: readonly string[], corpus: CorpusName): number {
  const dir = mkdtempSync(join(tmpdir(), 'sealtrail-bench-ingest-'));
  const buffer = AuditBuffer.open(join(dir, 'buffer.db'), { newStreamId: () => 'bench-ingest' });
  try {
    const packs = NO_RULES ? [] : PACKS_FOR_CORPUS[corpus].map((p) => fileURLToPath(new URL(`../../config/redaction/${p}.yaml`, import.meta.url)));
    const ruleset = loadRuleset(packs);
    const ingest = new Ingest(buffer, { hmacKey: randomBytes(32), keyId: 'bench', ruleset: () => ruleset });
    let offset = 0;
    const start = process.cpuUsage();
    for (let i = 0; i < lines.length; i += CHUNK) {
      const chunk: IngestLine[] = [];
      for (const text of lines.slice(i, i + CHUNK)) {
        const length = Buffer.byteLength(text, 'utf8') + 1;
        chunk.push({ offset, length, text });
        offset += length;
      }
      const position = { source: 'bench', key: 'f', path: '/bench.jsonl', offset, fingerprint: 'f' };
      ingest.ingest({ source: 'bench', path: '/bench.jsonl', fileKey: 'f', lines: chunk, position });
    }
    const used = process.cpuUsage(start);
    return (used.user + used.system) / 1e6;
  } finally {
    buffer.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function main(): void {
  if (!Number.isInteger(EVENTS) || EVENTS < 1) throw new Error(`BENCH_EVENTS must be a positive integer, not ${process.env.BENCH_EVENTS}`);
  if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error(`BENCH_ROUNDS must be a positive integer, not ${process.env.BENCH_ROUNDS}`);
  const only = process.env.BENCH_CORPUS;
  if (only !== undefined && !CORPORA.includes(only as CorpusName)) throw new Error(`BENCH_CORPUS must be one of ${CORPORA.join(', ')}`);
  if (process.env.BENCH_RULES !== undefined && !NO_RULES) throw new Error(`BENCH_RULES can only be "none" (no redaction rules), not ${JSON.stringify(process.env.BENCH_RULES)}`);
  if (process.env.BENCH_RE2_CALLS === '1') countRe2Calls();
  for (const corpus of only ? [only as CorpusName] : CORPORA) {
    const gen = corpusGenerator(corpus);
    const lines = Array.from({ length: EVENTS }, (_, n) => gen(n).line);
    re2Calls.clear();
    const seconds = Array.from({ length: ROUNDS }, () => round(lines, corpus));
    const cpu = median(seconds);
    console.log(`sealtrail ingest, ${corpus} corpus: ${EVENTS.toLocaleString('en-US')} lines, ${NO_RULES ? 'no redaction rules' : PACKS_FOR_CORPUS[corpus].join(' + ')}`);
    console.log(`  records per CPU-second:  ${Math.round(EVENTS / cpu).toLocaleString('en-US')} (median of ${ROUNDS}; each: ${seconds.map((s) => Math.round(EVENTS / s).toLocaleString('en-US')).join(', ')})`);
    console.log(`  CPU per record:          ${((cpu * 1e6) / EVENTS).toFixed(1)} µs`);
    for (const [label, s] of re2Calls) {
      const perRecord = s.calls / (EVENTS * ROUNDS);
      const us = Number(s.ns) / 1e3 / (EVENTS * ROUNDS);
      console.log(`  ${label.padEnd(16)} ${perRecord.toFixed(2)} calls a record, ${us.toFixed(1)} µs a record (timed, so slower than unwatched)`);
    }
  }
  console.log(`  node ${process.version}; rerun: ${only ? `BENCH_CORPUS=${only} ` : ''}${NO_RULES ? 'BENCH_RULES=none ' : ''}npm run bench:ingest`);
}

main();
