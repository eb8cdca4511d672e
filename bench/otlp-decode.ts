/**
 * The OTLP receiver's per-span work in one process, beside the file
 * source's on the same spans (bench/otlp-corpus.ts), for iterating on it in
 * seconds; `npm run bench:otlp` (real processes, HTTP, files) remains the
 * figure to quote.
 *
 * Two measures, each the median of BENCH_ROUNDS rounds (default 5), the
 * paths alternating within a round, CPU from process.cpuUsage:
 * - decode: a request body → its events (decodeBody and its lines, as the
 *   receiver does), against a file line → its events (decodeLine, as ingest
 *   does for the file source): sealtrail lines and OTLP/JSON lines;
 * - ingest: the same, on through Ingest (redaction with pii-basic,
 *   normalisation, canonical text, hashes, chain) into a real SQLite buffer,
 *   one commit a request for the receiver, chunks of 100 lines (the file
 *   source's default) for sealtrail lines, one line a commit for OTLP/JSON
 *   lines.
 *
 *   npm run build && node dist/bench/otlp-decode.js
 *   BENCH_SPANS=20000 BENCH_BATCH=512 BENCH_ROUNDS=5 BENCH_INGEST=0 node dist/bench/otlp-decode.js
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AuditBuffer } from '../src/sidecar/buffer/buffer.js';
import { otlpEvents, otlpJsonFormat } from '../src/sidecar/formats/otlp/index.js';
import { sealtrailFormat } from '../src/sidecar/formats/sealtrail.js';
import type { LineFormat } from '../src/sidecar/formats/format.js';
import { Ingest, type IngestLine } from '../src/sidecar/ingest.js';
import { decodeLine } from '../src/sidecar/line-events.js';
import { loadRuleset, type Ruleset } from '../src/sidecar/redact/index.js';
import { decodeBody } from '../src/sidecar/sources/otlp-request.js';
import { protobufOf, requestOf } from './otlp-corpus.js';
import { median } from './proc-stats.js';

const N = Number(process.env.BENCH_SPANS ?? 20_000);
const BATCH = Number(process.env.BENCH_BATCH ?? 512);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const INGEST = process.env.BENCH_INGEST !== '0';
const FILE_CHUNK = 100;
const RULES = fileURLToPath(new URL('../../config/redaction/pii-basic.yaml', import.meta.url));

interface Inputs {
  protobuf: Buffer[];
  json: Buffer[];
  sealtrail: string[];
  otlpLines: string[];
}

function inputs(): Inputs {
  const requests = [];
  for (let from = 0; from < N; from += BATCH) requests.push(requestOf(from, Math.min(BATCH, N - from)));
  const otlpLines = requests.map((r) => JSON.stringify(r));
  return {
    protobuf: requests.map((r) => Buffer.from(protobufOf(r))),
    json: otlpLines.map((l) => Buffer.from(l, 'utf8')),
    sealtrail: requests.flatMap((r) => otlpEvents('traces', r).map((e) => JSON.stringify(e.event))),
    otlpLines,
  };
}

function cpu<T>(f: () => T): number {
  const t = process.cpuUsage();
  f();
  const u = process.cpuUsage(t);
  return (u.user + u.system) / 1e6;
}

/** Every event of every line, to be sure each is made; the count is checked. */
function decodeFile(lines: readonly string[], format: LineFormat): number {
  let n = 0;
  for (const text of lines) {
    const d = decodeLine({ text }, format);
    if (d === 'blank' || 'failure' in d) throw new Error('a bench line did not decode');
    n += d.events.length;
  }
  return n;
}

function decodeRequests(bodies: readonly Buffer[], encoding: 'protobuf' | 'json'): number {
  let n = 0;
  for (const body of bodies) for (const _ of decodeBody('traces', body, encoding, 1_000_000).lines) n++;
  return n;
}

type PathName = 'OTLP/HTTP protobuf' | 'OTLP/HTTP JSON' | 'file, sealtrail lines' | 'file, OTLP/JSON lines';
const PATHS: readonly PathName[] = ['OTLP/HTTP protobuf', 'OTLP/HTTP JSON', 'file, sealtrail lines', 'file, OTLP/JSON lines'];

function decodeRound(inp: Inputs, path: PathName): number {
  const expect = (n: number): void => {
    if (n !== N) throw new Error(`${path}: ${n} events for ${N} spans`);
  };
  switch (path) {
    case 'OTLP/HTTP protobuf':
      return cpu(() => expect(decodeRequests(inp.protobuf, 'protobuf')));
    case 'OTLP/HTTP JSON':
      return cpu(() => expect(decodeRequests(inp.json, 'json')));
    case 'file, sealtrail lines':
      return cpu(() => expect(decodeFile(inp.sealtrail, sealtrailFormat)));
    case 'file, OTLP/JSON lines':
      return cpu(() => expect(decodeFile(inp.otlpLines, otlpJsonFormat)));
  }
}

function ingestRound(inp: Inputs, path: PathName, ruleset: Ruleset): number {
  const dir = mkdtempSync(join(tmpdir(), 'sealtrail-bench-otlp-decode-'));
  const buffer = AuditBuffer.open(join(dir, 'buffer.db'), { newStreamId: () => 'bench-otlp-decode' });
  try {
    const ingest = new Ingest(buffer, { hmacKey: randomBytes(32), keyId: 'bench', ruleset: () => ruleset });
    let records = 0;
    const commit = (lines: Iterable<IngestLine>, format?: LineFormat): void => {
      const r = ingest.ingest({ source: 'bench', path: 'bench', fileKey: 'bench', lines, ...(format ? { format } : {}) });
      records += r.records;
    };
    const fileLines = (texts: readonly string[], format: LineFormat, per: number): void => {
      for (let i = 0; i < texts.length; i += per) {
        commit(
          texts.slice(i, i + per).map((text, j) => ({ offset: i + j, length: text.length + 1, text })),
          format,
        );
      }
    };
    const seconds = cpu(() => {
      if (path === 'OTLP/HTTP protobuf') for (const b of inp.protobuf) commit(decodeBody('traces', b, 'protobuf', 1_000_000).lines);
      else if (path === 'OTLP/HTTP JSON') for (const b of inp.json) commit(decodeBody('traces', b, 'json', 1_000_000).lines);
      else if (path === 'file, sealtrail lines') fileLines(inp.sealtrail, sealtrailFormat, FILE_CHUNK);
      else fileLines(inp.otlpLines, otlpJsonFormat, 1);
    });
    if (records !== N) throw new Error(`${path}: ${records} records for ${N} spans`);
    return seconds;
  } finally {
    buffer.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function report(title: string, round: (path: PathName) => number): void {
  const times = new Map<PathName, number[]>(PATHS.map((p) => [p, []]));
  for (let r = 0; r < ROUNDS; r++) {
    for (let i = 0; i < PATHS.length; i++) {
      const path = PATHS[(i + r) % PATHS.length]!;
      times.get(path)!.push(round(path));
    }
  }
  console.log(title);
  const file = median(times.get('file, OTLP/JSON lines')!);
  const sealtrail = median(times.get('file, sealtrail lines')!);
  for (const path of PATHS) {
    const s = median(times.get(path)!);
    const us = ((s * 1e6) / N).toFixed(1).padStart(6);
    console.log(`  ${path.padEnd(22)} ${us} µs CPU a span   ${Math.round(N / s).toLocaleString('en-US').padStart(9)} spans per CPU-second   vs OTLP/JSON lines ${(file / s).toFixed(2)}x, vs sealtrail lines ${(sealtrail / s).toFixed(2)}x`);
  }
}

function main(): void {
  const inp = inputs();
  // warm-up: the first pass of each path compiles and sizes the heap
  for (const p of PATHS) decodeRound(inp, p);
  console.log(`bench:otlp-decode — ${N.toLocaleString('en-US')} spans, ${BATCH} a request; medians of ${ROUNDS} rounds; node ${process.version}`);
  report('  decode: body or line → events', (p) => decodeRound(inp, p));
  if (INGEST) {
    const ruleset = loadRuleset([RULES]);
    report('  ingest: … → records committed to a SQLite buffer (pii-basic)', (p) => ingestRound(inp, p, ruleset));
  }
  console.log(`  rerun: BENCH_SPANS=${N} BENCH_BATCH=${BATCH} BENCH_ROUNDS=${ROUNDS}${INGEST ? '' : ' BENCH_INGEST=0'} node dist/bench/otlp-decode.js (after npm run build)`);
}

main();
