/**
 * Whole-path benchmark: agent events written to a trace file, tailed,
 * redacted, chained, sealed and shipped by a real sidecar process to a real
 * collector process (SQLite store), measured until the collector's stored
 * tree holds every record. Two corpora (bench/corpus.ts), each in fresh
 * processes: `light`, the ~580-byte event with one email this benchmark has
 * always used, and `pii`, ~530-byte tool calls, model calls and results with
 * ~2.8 items of personal data or credentials each.
 *
 * Besides wall-clock throughput it reads each process's own CPU time (user +
 * system, /proc/<pid>/stat) over the measured window: on this shared 2-vCPU
 * machine records per CPU-second moves far less between runs than
 * records per second does.
 *
 *   npm run bench            (BENCH_EVENTS=N events a corpus, BENCH_CORPUS=light|pii for one corpus)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { createHmacKeyFile, createSigningKeyFiles } from '../src/keyfiles.js';
import { CORPORA, DEFAULT_SEED, describeCorpus, PACKS_FOR_CORPUS, writeCorpus, type CorpusName, type CorpusStats } from './corpus.js';
import { cpuSeconds, freePort, peakRssMiB, sidecarMetrics } from './proc-stats.js';

const N = Number(process.env.BENCH_EVENTS ?? 100_000);
const LATENCY_SAMPLES = 20;
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const PACKS_DIR = fileURLToPath(new URL('../../config/redaction/', import.meta.url));
const SOURCE = 'traces';

const COLLECTOR_STREAM = 'collector-bench';

async function treeSize(url: string, token: string): Promise<number> {
  const res = await request(`${url}/v1/streams`, { headers: { authorization: `Bearer ${token}` } });
  const body = (await res.body.json()) as { streams?: Array<{ stream: string; tree_size: number }> };
  return (body.streams ?? []).filter((s) => s.stream !== COLLECTOR_STREAM).reduce((n, s) => n + s.tree_size, 0);
}

function run(args: string[]): ChildProcess {
  return spawn(process.execPath, [...(process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(' ') : []), CLI, ...args], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, SEALTRAIL_LOG_LEVEL: 'warn' } });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waiting on a process that has died would never end. */
function alive(...procs: ChildProcess[]): void {
  for (const p of procs) if (p.exitCode !== null || p.signalCode !== null) throw new Error(`${p.spawnargs.slice(-3).join(' ')} exited (${p.exitCode ?? p.signalCode})`);
}

interface Result {
  stats: CorpusStats;
  packs: readonly string[];
  hits: number;
  seconds: number;
  cpuSidecar: number;
  cpuCollector: number;
  rssSidecar: number;
  rssCollector: number;
  latencies: number[];
}

async function runCorpus(corpus: CorpusName, children: Set<ChildProcess>, dirs: Set<string>): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), 'sealtrail-bench-'));
  dirs.add(dir);
  const keys = join(dir, 'keys');
  createSigningKeyFiles(join(keys, 'bench.skey'), join(keys, 'bench.vkey'), 'bench');
  createHmacKeyFile(join(keys, 'hmac.key'));
  mkdirSync(join(dir, 'traces'));
  const staged = join(dir, 'staged.jsonl');
  const trace = join(dir, 'traces', 'agent.jsonl');
  const stats = writeCorpus(staged, corpus, N);
  const packs = PACKS_FOR_CORPUS[corpus];
  const [cport, tport] = [await freePort(), await freePort()];
  const token = 'bench-admin-token-0123456789';
  const config = join(dir, 'bench.yaml');
  writeFileSync(
    config,
    `collector:
  listen: 127.0.0.1:${cport}
  store: { type: sqlite, path: ${join(dir, 'collector.db')} }
  auth: { admin_tokens: ["${token}"] }
  streams: [{ match: "*", vkey_file: ${join(keys, 'bench.vkey')} }]
  hmac_keys: [{ id: k1, file: ${join(keys, 'hmac.key')} }]
  read_audit: { stream: ${COLLECTOR_STREAM} }
sidecar:
  stream: { name: bench }
  data_dir: ${join(dir, 'sidecar')}
  sources: [{ id: ${SOURCE}, type: file, include: ["${join(dir, 'traces', '*.jsonl')}"] }]
  redaction: { rules: [${packs.map((p) => join(PACKS_DIR, `${p}.yaml`)).join(', ')}] }
  keys: { signing_key_file: ${join(keys, 'bench.skey')}, hmac_key_file: ${join(keys, 'hmac.key')} }
  ship: { url: "http://127.0.0.1:${cport}" }
  telemetry: { listen: 127.0.0.1:${tport} }
`,
  );
  const collector = run(['collector', '--config', config]);
  children.add(collector);
  const url = `http://127.0.0.1:${cport}`;
  for (;;) {
    alive(collector);
    try {
      await treeSize(url, token);
      break;
    } catch {
      await sleep(50);
    }
  }
  const sidecar = run(['sidecar', '--config', config]);
  children.add(sidecar);
  for (;;) {
    alive(collector, sidecar);
    try {
      await sidecarMetrics(tport, SOURCE);
      break;
    } catch {
      await sleep(50);
    }
  }
  // The clock starts when the file appears to a running sidecar, so its
  // start-up is in neither the wall time nor the CPU time.
  const cpu0 = { sidecar: cpuSeconds(sidecar.pid), collector: cpuSeconds(collector.pid) };
  const t0 = process.hrtime.bigint();
  renameSync(staged, trace);
  // The sidecar's metrics are polled until everything is in its buffer, and
  // only then the collector: each collector read commits a read-audit
  // record, which would be counted as the collector's work.
  let hits = 0;
  for (;;) {
    await sleep(25);
    alive(collector, sidecar);
    const m = await sidecarMetrics(tport, SOURCE);
    hits = m.hits;
    if (m.ingested >= N) break;
  }
  while ((await treeSize(url, token)) < N) {
    alive(collector, sidecar);
    await sleep(25);
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpuSidecar = cpuSeconds(sidecar.pid) - cpu0.sidecar;
  const cpuCollector = cpuSeconds(collector.pid) - cpu0.collector;
  const rssSidecar = peakRssMiB(sidecar.pid);
  const rssCollector = peakRssMiB(collector.pid);

  // Latency of one event on an idle pipeline: appended to the file until the
  // collector's query API returns it (default seal.max_interval of 1 s).
  const latencies: number[] = [];
  for (let i = 0; i < LATENCY_SAMPLES; i++) {
    const marker = `latency-${i}`;
    const start = process.hrtime.bigint();
    appendFileSync(trace, `${JSON.stringify({ event_type: 'agent_response_generated', session_id: marker })}\n`);
    for (;;) {
      const res = await request(`${url}/v1/audit?session_id=${marker}`, { headers: { authorization: `Bearer ${token}` } });
      const body = (await res.body.json()) as { items?: unknown[] };
      if (body.items?.length) break;
      await sleep(10);
    }
    latencies.push(Number(process.hrtime.bigint() - start) / 1e6);
    await sleep(137);
  }
  latencies.sort((a, b) => a - b);
  await stop([sidecar, collector], children);
  rmSync(dir, { recursive: true, force: true });
  dirs.delete(dir);
  return { stats, packs, hits, seconds, cpuSidecar, cpuCollector, rssSidecar, rssCollector, latencies };
}

async function stop(procs: ChildProcess[], children: Set<ChildProcess>): Promise<void> {
  await Promise.all(
    procs.map(
      (c) =>
        new Promise<void>((resolve) => {
          children.delete(c);
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          // A process that does not stop must still not outlive the benchmark.
          const timer = setTimeout(() => c.kill('SIGKILL'), 10_000);
          c.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          c.kill('SIGTERM');
        }),
    ),
  );
}

function report(r: Result): string {
  const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
  const { stats } = r;
  const p50 = r.latencies[Math.floor(r.latencies.length / 2)]!;
  const max = r.latencies[r.latencies.length - 1]!;
  return [
    `sealtrail whole-path benchmark, ${stats.corpus} corpus (file tail -> redact -> chain -> seal -> ship -> verify -> store)`,
    `  corpus:               ${describeCorpus(stats)}`,
    `  redaction rules:      ${r.packs.join(' + ')} (config/redaction/); ${fmt(r.hits)} replacements made, ${fmt(stats.pii)} items planted`,
    `  wall time:            ${r.seconds.toFixed(2)} s (trace file appearing to a running sidecar, to the last record stored at the collector)`,
    `  throughput:           ${fmt(N / r.seconds)} records/s`,
    `  input rate:           ${(stats.bytes / 1048576 / r.seconds).toFixed(2)} MB/s (MiB of JSONL input per second)`,
    `  sidecar:              ${fmt(N / r.cpuSidecar)} records per CPU-second (${r.cpuSidecar.toFixed(2)} CPU s), peak RSS ${r.rssSidecar.toFixed(1)} MiB`,
    `  collector:            ${fmt(N / r.cpuCollector)} records verified and stored per CPU-second (${r.cpuCollector.toFixed(2)} CPU s), peak RSS ${r.rssCollector.toFixed(1)} MiB`,
    `  append-to-queryable:  p50 ${p50.toFixed(0)} ms, max ${max.toFixed(0)} ms over ${r.latencies.length} single events (seal.max_interval 1 s)`,
  ].join('\n');
}

async function main(): Promise<void> {
  const only = process.env.BENCH_CORPUS;
  if (only !== undefined && !CORPORA.includes(only as CorpusName)) throw new Error(`BENCH_CORPUS must be one of ${CORPORA.join(', ')}, not ${JSON.stringify(only)}`);
  if (!Number.isInteger(N) || N < 1) throw new Error(`BENCH_EVENTS must be a positive integer, not ${JSON.stringify(process.env.BENCH_EVENTS)}`);
  const corpora = only ? [only as CorpusName] : CORPORA;
  const children = new Set<ChildProcess>();
  const dirs = new Set<string>();
  const cleanup = (): void => {
    for (const c of children) c.kill('SIGKILL');
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  try {
    for (const corpus of corpora) process.stdout.write(`${report(await runCorpus(corpus, children, dirs))}\n`);
  } finally {
    cleanup();
  }
  const env = [only ? `BENCH_CORPUS=${only}` : '', process.env.BENCH_EVENTS ? `BENCH_EVENTS=${N}` : ''].filter(Boolean).join(' ');
  process.stdout.write(`  node ${process.version}, ${process.platform}/${process.arch}; corpus seed ${DEFAULT_SEED}\n  rerun: ${env ? `${env} ` : ''}npm run bench\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
