/**
 * OTLP receiver benchmark: GenAI spans sent by OTLP/HTTP (protobuf and JSON)
 * to a real sidecar process, measured until every span is a record in its
 * durable buffer; and, for comparison, the same spans as trace-file lines
 * (sealtrail's own shape, and OTLP/JSON lines) tailed by a file source.
 * Each variant runs in a fresh sidecar process; its CPU time is read from
 * /proc (user + system), so the client's work is not counted. Shipping
 * points at a closed port: only the path into the buffer is measured.
 *
 * The variants run BENCH_ROUNDS times, in a rotated order each round, and
 * the medians are reported: this machine's speed drifts by more than the
 * differences measured.
 *
 *   npm run bench:otlp      (BENCH_SPANS=N, BENCH_BATCH=spans per request, BENCH_INFLIGHT=requests at once, BENCH_ROUNDS=rounds)
 *
 * BENCH_VARIANTS (comma-separated source ids: otlp_pb, otlp_json,
 * file_sealtrail, file_otlp) runs only those. BENCH_NODE_ARGS passes flags
 * to the sidecar processes (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"); a
 * profiled sidecar is then stopped with SIGTERM, so that it writes its
 * profile, rather than killed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { createHmacKeyFile, createSigningKeyFiles } from '../src/keyfiles.js';
import { otlpEvents } from '../src/sidecar/formats/otlp/index.js';
import type { OtlpRequest } from '../src/sidecar/formats/otlp/types.js';
import { protobufOf, requestOf } from './otlp-corpus.js';
import { cpuSeconds, freePort, peakRssMiB } from './proc-stats.js';

const N = Number(process.env.BENCH_SPANS ?? 100_000);
const BATCH = Number(process.env.BENCH_BATCH ?? 512);
const INFLIGHT = Number(process.env.BENCH_INFLIGHT ?? 2);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const NODE_ARGS = process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(' ').filter((a) => a !== '') : [];
const ONLY = process.env.BENCH_VARIANTS ? new Set(process.env.BENCH_VARIANTS.split(',').map((v) => v.trim())) : undefined;
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const RULES = fileURLToPath(new URL('../../config/redaction/pii-basic.yaml', import.meta.url));

async function ingested(tport: number, source: string): Promise<number> {
  const res = await request(`http://127.0.0.1:${tport}/metrics`);
  const text = await res.body.text();
  const m = new RegExp(`^sealtrail_records_ingested_total\\{source="${source}"\\} (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

interface Result {
  name: string;
  seconds: number;
  cpu: number;
  rss: number;
}

type Variant = { name: string; source: string; kind: 'otlp'; encoding: 'protobuf' | 'json' } | { name: string; source: string; kind: 'file'; format: 'sealtrail' | 'otlp-json'; lines: string };

async function runVariant(dir: string, keys: string, v: Variant, bodies: { protobuf: Uint8Array[]; json: string[] }): Promise<Result> {
  const work = mkdtempSync(join(dir, `${v.source}-`));
  const traces = join(work, 'traces');
  mkdirSync(traces);
  const [oport, tport] = [await freePort(), await freePort()];
  const source =
    v.kind === 'otlp'
      ? `{ id: ${v.source}, type: otlp, listen: "127.0.0.1:${oport}" }`
      : `{ id: ${v.source}, type: file, include: ["${join(traces, '*.jsonl')}"], format: ${v.format} }`;
  const config = join(work, 'sidecar.yaml');
  writeFileSync(
    config,
    `sidecar:
  stream: { name: bench-otlp }
  data_dir: ${join(work, 'data')}
  sources: [${source}]
  redaction: { rules: [${RULES}] }
  keys: { signing_key_file: ${join(keys, 'bench.skey')}, hmac_key_file: ${join(keys, 'hmac.key')} }
  ship: { url: "http://127.0.0.1:${await freePort()}", backoff_max: 30s }
  buffer: { max_records: ${Math.max(N * 2, 1_000_000)} }
  telemetry: { listen: 127.0.0.1:${tport} }
`,
  );
  const log = openSync(join(work, 'sidecar.log'), 'w');
  const child: ChildProcess = spawn(process.execPath, [...NODE_ARGS, CLI, 'sidecar', '--config', config], { stdio: ['ignore', 'ignore', log], env: { ...process.env, SEALTRAIL_LOG_LEVEL: 'error' } });
  const pid = child.pid!;
  for (;;) {
    try {
      await ingested(tport, v.source);
      if (v.kind === 'otlp') await request(`http://127.0.0.1:${oport}/`).then((r) => r.body.dump());
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const cpu0 = cpuSeconds(pid);
  const t0 = process.hrtime.bigint();
  if (v.kind === 'otlp') {
    const list = v.encoding === 'protobuf' ? bodies.protobuf : bodies.json;
    const type = v.encoding === 'protobuf' ? 'application/x-protobuf' : 'application/json';
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < list.length) {
        const body = list[next++]!;
        for (;;) {
          const res = await request(`http://127.0.0.1:${oport}/v1/traces`, { method: 'POST', headers: { 'content-type': type }, body });
          await res.body.dump();
          if (res.statusCode === 200) break;
          if (res.statusCode !== 503) throw new Error(`the receiver answered ${res.statusCode}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    };
    await Promise.all(Array.from({ length: INFLIGHT }, worker));
  } else {
    const staged = join(work, 'agent.jsonl');
    writeFileSync(staged, v.lines);
    renameSync(staged, join(traces, 'agent.jsonl'));
  }
  while ((await ingested(tport, v.source)) < N) await new Promise((r) => setTimeout(r, 20));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = cpuSeconds(pid) - cpu0;
  const rss = peakRssMiB(pid);
  const exited = new Promise((r) => child.once('exit', r));
  if (NODE_ARGS.length > 0) {
    // a profile is written at a clean exit only; shutdown's ship attempts end at its deadline
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    await exited;
    clearTimeout(timer);
  } else {
    child.kill('SIGKILL');
    await exited;
  }
  return { name: v.name, seconds, cpu, rss };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sealtrail-bench-otlp-'));
  const keys = join(dir, 'keys');
  createSigningKeyFiles(join(keys, 'bench.skey'), join(keys, 'bench.vkey'), 'bench');
  createHmacKeyFile(join(keys, 'hmac.key'));

  const requests: OtlpRequest[] = [];
  for (let from = 0; from < N; from += BATCH) requests.push(requestOf(from, Math.min(BATCH, N - from)));
  const bodies = { protobuf: requests.map(protobufOf), json: requests.map((r) => JSON.stringify(r)) };
  // The same spans as sealtrail events (what the receiver makes of them), one per line, and as OTLP/JSON lines.
  const sealtrailLines = requests.flatMap((r) => otlpEvents('traces', r).map((e) => JSON.stringify(e.event))).join('\n') + '\n';
  const otlpLines = bodies.json.join('\n') + '\n';
  const mib = (n: number): string => (n / 1024 / 1024).toFixed(1);

  const variants: Variant[] = (
    [
      { name: 'OTLP/HTTP protobuf', source: 'otlp_pb', kind: 'otlp', encoding: 'protobuf' },
      { name: 'OTLP/HTTP JSON', source: 'otlp_json', kind: 'otlp', encoding: 'json' },
      { name: 'file, sealtrail lines', source: 'file_sealtrail', kind: 'file', format: 'sealtrail', lines: sealtrailLines },
      { name: 'file, OTLP/JSON lines', source: 'file_otlp', kind: 'file', format: 'otlp-json', lines: otlpLines },
    ] satisfies Variant[]
  ).filter((v) => !ONLY || ONLY.has(v.source));
  const rounds: Result[][] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const order = variants.map((_, i) => variants[(i + r) % variants.length]!);
    const results: Result[] = [];
    for (const v of order) results.push(await runVariant(dir, keys, v, bodies));
    rounds.push(results);
  }
  rmSync(dir, { recursive: true, force: true });

  const median = (xs: number[]): number => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  const of = (name: string): Result[] => rounds.map((rs) => rs.find((r) => r.name === name)!);
  const ran = (name: string): boolean => variants.some((v) => v.name === name);
  /** this variant's records per CPU-second over the other's, per round, median */
  const ratio = (name: string, base: string): string =>
    ran(name) && ran(base) ? `${median(rounds.map((_, i) => of(base)[i]!.cpu / of(name)[i]!.cpu)).toFixed(2)}x` : '(not run)';
  const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
  const lines = [
    `bench:otlp — ${N.toLocaleString('en-US')} GenAI spans (execute_tool, one email each), ${BATCH} spans per request, ${INFLIGHT} requests in flight, pii-basic rules, into the sidecar's durable buffer; medians of ${ROUNDS} rounds`,
    `  input: protobuf ${mib(bodies.protobuf.reduce((n, b) => n + b.length, 0))} MiB, JSON ${mib(Buffer.byteLength(otlpLines))} MiB, sealtrail lines ${mib(Buffer.byteLength(sealtrailLines))} MiB`,
    ...variants.map((v) => {
      const rs = of(v.name);
      const perCpu = median(rs.map((r) => N / r.cpu));
      return `  ${v.name.padEnd(22)} ${fmt(median(rs.map((r) => N / r.seconds))).padStart(8)} spans/s   ${fmt(perCpu).padStart(8)} records per CPU-second (${median(rs.map((r) => r.cpu)).toFixed(2)} CPU s)   peak RSS ${Math.max(...rs.map((r) => r.rss)).toFixed(1)} MiB`;
    }),
    `  records per CPU-second, per round: ${variants.map((v) => `${v.source} ${of(v.name).map((r) => fmt(N / r.cpu)).join(', ')}`).join('; ')}`,
    `  records per CPU-second, per-round ratio (median):`,
    `    the same spans as a trace file (OTLP/JSON lines, one request per line):`,
    `      OTLP/HTTP protobuf / file, OTLP/JSON lines  ${ratio('OTLP/HTTP protobuf', 'file, OTLP/JSON lines')}`,
    `      OTLP/HTTP JSON     / file, OTLP/JSON lines  ${ratio('OTLP/HTTP JSON', 'file, OTLP/JSON lines')}`,
    `    the receiver's own events as sealtrail lines (no decoding or mapping in the file source):`,
    `      OTLP/HTTP protobuf / file, sealtrail lines  ${ratio('OTLP/HTTP protobuf', 'file, sealtrail lines')}`,
    `      OTLP/HTTP JSON     / file, sealtrail lines  ${ratio('OTLP/HTTP JSON', 'file, sealtrail lines')}`,
    `  rerun: npm run bench:otlp`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:otlp failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
