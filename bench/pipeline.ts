/**
 * Whole-path benchmark: agent events written to a trace file, tailed,
 * redacted, chained, sealed and shipped by a real sidecar process to a real
 * collector process (SQLite store, or Postgres with `--store postgres`),
 * measured until the collector's stored tree holds every record. Two corpora
 * (bench/corpus.ts), each in fresh processes: `light`, the ~580-byte event
 * with one email this benchmark has always used, and `pii`, ~530-byte tool
 * calls, model calls and results with ~2.8 items of personal data or
 * credentials each.
 *
 * Besides wall-clock throughput it reads each process's own CPU time (user +
 * system, /proc/<pid>/stat) over the measured window: on this shared 2-vCPU
 * machine records per CPU-second moves far less between runs than
 * records per second does.
 *
 *   npm run bench            (BENCH_EVENTS=N events a corpus, BENCH_CORPUS=light|pii for one corpus)
 *   npm run bench -- --store postgres            (collector on a fresh Postgres database; BENCH_PG_URL)
 *   npm run bench -- --baseline <git-ref>        (the same corpus file through that commit's stack and this
 *                                                 one, alternating, BENCH_ROUNDS rounds: bench/baseline.ts)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, copyFileSync, mkdirSync, mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { request } from 'undici';
import { createHmacKeyFile, createSigningKeyFiles } from '../src/keyfiles.js';
import {
  buildBaseline,
  compareWithBaseline,
  describeCheckout,
  exec,
  PostgresScratch,
  Scratch,
  STORES,
  type Measured,
  type Stack,
  type StoreKind,
} from './baseline.js';
import { CORPORA, DEFAULT_SEED, describeCorpus, PACKS_FOR_CORPUS, writeCorpus, type CorpusName, type CorpusStats } from './corpus.js';
import { assertAlive, cpuSeconds, freePort, peakRssMiB, sidecarMetrics, sleep, stopProcesses } from './proc-stats.js';

const N = Number(process.env.BENCH_EVENTS ?? 100_000);
const LATENCY_SAMPLES = 20;
const ROOT = resolve(fileURLToPath(new URL('../../', import.meta.url)));
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const PACKS_DIR = fileURLToPath(new URL('../../config/redaction/', import.meta.url));
const SOURCE = 'traces';

const COLLECTOR_STREAM = 'collector-bench';

/**
 * With --baseline both versions get these written out rather than their
 * defaults (f6a2ee4's values), so a change of default is not mistaken for
 * a change of cost.
 */
const PINNED = {
  collector: '  max_body_bytes: 16MiB\n',
  source: ', format: auto, start_at: beginning',
  sidecar: `  seal: { max_records: 1000, max_interval: 1s, heartbeat_interval: 30s }
  buffer: { max_bytes: 1GiB, max_records: 1000000 }
`,
  shipExtra: ', max_batch_bytes: 8MiB',
  words: 'seal 1,000 records or 1 s, heartbeat 30 s; buffer 1 GiB / 1,000,000 records; ship batches up to 8 MiB; collector bodies up to 16 MiB; file source format auto',
};

async function treeSize(url: string, token: string): Promise<number> {
  const res = await request(`${url}/v1/streams`, { headers: { authorization: `Bearer ${token}` } });
  const body = (await res.body.json()) as { streams?: Array<{ stream: string; tree_size: number }> };
  return (body.streams ?? []).filter((s) => s.stream !== COLLECTOR_STREAM).reduce((n, s) => n + s.tree_size, 0);
}

function run(cli: string, args: string[]): ChildProcess {
  return spawn(process.execPath, [...(process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(' ') : []), cli, ...args], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, SEALTRAIL_LOG_LEVEL: 'warn' } });
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

interface ConfigInput {
  dir: string;
  keys: string;
  cport: number;
  tport: number;
  token: string;
  packs: readonly string[];
  /** YAML of collector.store */
  store: string;
  /** give the collector its read-audit key (Postgres requires one; on SQLite it makes one beside the store) */
  collectorKeys: boolean;
  pinned: boolean;
}

function configYaml(c: ConfigInput): string {
  const p = c.pinned ? PINNED : { collector: '', source: '', sidecar: '', shipExtra: '' };
  return `collector:
  listen: 127.0.0.1:${c.cport}
${p.collector}  store: ${c.store}
  auth: { admin_tokens: ["${c.token}"] }
  streams: [{ match: "*", vkey_file: ${join(c.keys, 'bench.vkey')} }]
  hmac_keys: [{ id: k1, file: ${join(c.keys, 'hmac.key')} }]
  read_audit: { stream: ${COLLECTOR_STREAM} }
${c.collectorKeys ? `  keys: { signing_key_file: ${join(c.keys, 'collector.skey')}, hmac_key_file: ${join(c.keys, 'hmac.key')}, hmac_key_id: k1 }\n` : ''}sidecar:
  stream: { name: bench }
  data_dir: ${join(c.dir, 'sidecar')}
  sources: [{ id: ${SOURCE}, type: file, include: ["${join(c.dir, 'traces', '*.jsonl')}"]${p.source} }]
  redaction: { rules: [${c.packs.map((x) => join(PACKS_DIR, `${x}.yaml`)).join(', ')}] }
  keys: { signing_key_file: ${join(c.keys, 'bench.skey')}, hmac_key_file: ${join(c.keys, 'hmac.key')} }
  ship: { url: "http://127.0.0.1:${c.cport}"${p.shipExtra} }
  telemetry: { listen: 127.0.0.1:${c.tport} }
${p.sidecar}`;
}

function makeKeys(dir: string): string {
  const keys = join(dir, 'keys');
  createSigningKeyFiles(join(keys, 'bench.skey'), join(keys, 'bench.vkey'), 'bench');
  createHmacKeyFile(join(keys, 'hmac.key'));
  createSigningKeyFiles(join(keys, 'collector.skey'), join(keys, 'collector.vkey'), 'bench-collector');
  return keys;
}

interface RunOptions {
  cli: string;
  corpus: CorpusName;
  /** puts the corpus file at the given path, before the clock starts */
  stage: (path: string) => CorpusStats;
  store: StoreKind;
  pinned: boolean;
  latency: boolean;
}

async function runStack(o: RunOptions, scratch: Scratch, pgs: PostgresScratch): Promise<Result> {
  const children = scratch.children;
  const dir = mkdtempSync(join(tmpdir(), 'sealtrail-bench-'));
  scratch.dirs.add(dir);
  const keys = makeKeys(dir);
  mkdirSync(join(dir, 'traces'));
  const staged = join(dir, 'staged.jsonl');
  const trace = join(dir, 'traces', 'agent.jsonl');
  const stats = o.stage(staged);
  const packs = PACKS_FOR_CORPUS[o.corpus];
  const [cport, tport] = [await freePort(), await freePort()];
  const token = 'bench-admin-token-0123456789';
  const config = join(dir, 'bench.yaml');
  const db = o.store === 'postgres' ? await pgs.database() : undefined;
  const store = db ? db.yaml : storeYaml(o.store, dir);
  writeFileSync(config, configYaml({ dir, keys, cport, tport, token, packs, store, collectorKeys: o.store === 'postgres', pinned: o.pinned }));
  const collector = run(o.cli, ['collector', '--config', config]);
  children.add(collector);
  const url = `http://127.0.0.1:${cport}`;
  for (;;) {
    assertAlive(collector);
    try {
      await treeSize(url, token);
      break;
    } catch {
      await sleep(50);
    }
  }
  const sidecar = run(o.cli, ['sidecar', '--config', config]);
  children.add(sidecar);
  for (;;) {
    assertAlive(collector, sidecar);
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
  // Until everything is in the sidecar's buffer, the buffer's file position
  // is read through a read-only connection of this process (a shared lock
  // for microseconds): scraping the sidecar's /metrics every 25 ms would
  // bill the sidecar for ~40 scrapes a second, which no deployment makes.
  // Only then is the collector asked, because each collector read commits a
  // read-audit record, which would be counted as the collector's work.
  const buffer = await openReadOnly(join(dir, 'sidecar', 'buffer.db'), [collector, sidecar]);
  try {
    const position = buffer.prepare('SELECT max(offset) AS offset FROM positions WHERE source = ?').pluck();
    for (;;) {
      await sleep(25);
      assertAlive(collector, sidecar);
      if (((position.get(SOURCE) as number | null) ?? 0) >= stats.bytes) break;
    }
  } finally {
    buffer.close();
  }
  while ((await treeSize(url, token)) < N) {
    assertAlive(collector, sidecar);
    await sleep(25);
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpuSidecar = cpuSeconds(sidecar.pid) - cpu0.sidecar;
  const cpuCollector = cpuSeconds(collector.pid) - cpu0.collector;
  const rssSidecar = peakRssMiB(sidecar.pid);
  const rssCollector = peakRssMiB(collector.pid);
  const { ingested, hits } = await sidecarMetrics(tport, SOURCE);
  if (ingested < N) throw new Error(`the sidecar's buffer reached the end of the file but it counts ${ingested} of ${N} lines ingested`);

  // Latency of one event on an idle pipeline: appended to the file until the
  // collector's query API returns it (default seal.max_interval of 1 s).
  const latencies: number[] = [];
  // The null store keeps no records to query.
  for (let i = 0; o.latency && o.store !== 'null' && i < LATENCY_SAMPLES; i++) {
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
  await stopProcesses([sidecar, collector], children);
  await db?.drop();
  scratch.clearDir(dir);
  return { stats, packs, hits, seconds, cpuSidecar, cpuCollector, rssSidecar, rssCollector, latencies };
}

/** The sidecar creates its buffer at start; it may not be on disk the instant /metrics first answers. */
async function openReadOnly(path: string, procs: ChildProcess[]): Promise<Database.Database> {
  for (let tries = 0; ; tries++) {
    assertAlive(...procs);
    try {
      return new Database(path, { readonly: true, fileMustExist: true });
    } catch (err) {
      if (tries >= 200) throw err;
      await sleep(25);
    }
  }
}

/** The collector's `store:` for a file store or none; Postgres gets a database of its own (PostgresScratch). */
function storeYaml(store: StoreKind, dir: string): string {
  return store === 'null' ? '{ type: "null" }' : `{ type: sqlite, path: ${join(dir, 'collector.db')} }`;
}

function report(r: Result, store: StoreKind): string {
  const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
  const { stats } = r;
  const p50 = r.latencies[Math.floor(r.latencies.length / 2)];
  const max = r.latencies[r.latencies.length - 1];
  return [
    `sealtrail whole-path benchmark, ${stats.corpus} corpus${store === 'sqlite' ? '' : `, ${store} store`} (file tail -> redact -> chain -> seal -> ship -> verify -> store)`,
    `  corpus:               ${describeCorpus(stats)}`,
    `  redaction rules:      ${r.packs.join(' + ')} (config/redaction/); ${fmt(r.hits)} replacements made, ${fmt(stats.pii)} items planted`,
    `  wall time:            ${r.seconds.toFixed(2)} s (trace file appearing to a running sidecar, to the last record stored at the collector)`,
    `  throughput:           ${fmt(N / r.seconds)} records/s`,
    `  input rate:           ${(stats.bytes / 1048576 / r.seconds).toFixed(2)} MB/s (MiB of JSONL input per second)`,
    `  sidecar:              ${fmt(N / r.cpuSidecar)} records per CPU-second (${r.cpuSidecar.toFixed(2)} CPU s), peak RSS ${r.rssSidecar.toFixed(1)} MiB`,
    `  collector:            ${fmt(N / r.cpuCollector)} records verified and ${store === 'null' ? 'discarded (null store)' : 'stored'} per CPU-second (${r.cpuCollector.toFixed(2)} CPU s), peak RSS ${r.rssCollector.toFixed(1)} MiB`,
    p50 === undefined || max === undefined
      ? `  append-to-queryable:  not measured (the null store keeps no records to query)`
      : `  append-to-queryable:  p50 ${p50.toFixed(0)} ms, max ${max.toFixed(0)} ms over ${r.latencies.length} single events (seal.max_interval 1 s)`,
  ].join('\n');
}

/** Both versions must load the very config the runs use; checked once with each one's own `sealtrail validate`. */
async function checkConfigLoads(stacks: Stack[], store: StoreKind, scratch: Scratch): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sealtrail-bench-probe-'));
  scratch.dirs.add(dir);
  const keys = makeKeys(dir);
  const storeText = store === 'postgres' ? '{ type: postgres, url: "postgres://app@127.0.0.1:5432/probe", migrate_url: "postgres://owner@127.0.0.1:5432/probe" }' : storeYaml(store, dir);
  const config = join(dir, 'bench.yaml');
  writeFileSync(config, configYaml({ dir, keys, cport: 1, tport: 2, token: 'bench-admin-token-0123456789', packs: PACKS_FOR_CORPUS.pii, store: storeText, collectorKeys: store === 'postgres', pinned: true }));
  for (const s of stacks) {
    await exec(process.execPath, [s.cli, 'validate', '--config', config], { cwd: dir, scratch }).catch((err: unknown) => {
      throw new Error(`the benchmark's config does not load in the ${s.name} stack (${s.cli}); make configYaml in bench/pipeline.ts write what both accept.\n${(err as Error).message}`);
    });
  }
  scratch.clearDir(dir);
}

function envPrefix(vars: Array<[string, string | undefined]>): string {
  const set = vars.filter(([, v]) => v !== undefined && v !== '').map(([k, v]) => `${k}=${v}`);
  return set.length ? `${set.join(' ')} ` : '';
}

async function main(scratch: Scratch): Promise<void> {
  const { values } = parseArgs({ options: { baseline: { type: 'string' }, store: { type: 'string' } }, strict: true });
  const only = process.env.BENCH_CORPUS;
  if (only !== undefined && !CORPORA.includes(only as CorpusName)) throw new Error(`BENCH_CORPUS must be one of ${CORPORA.join(', ')}, not ${JSON.stringify(only)}`);
  if (!Number.isInteger(N) || N < 1) throw new Error(`BENCH_EVENTS must be a positive integer, not ${JSON.stringify(process.env.BENCH_EVENTS)}`);
  const store = (values.store ?? process.env.BENCH_STORE ?? 'sqlite') as StoreKind;
  if (!STORES.includes(store)) throw new Error(`--store must be one of ${STORES.join(', ')}, not ${JSON.stringify(store)}`);
  const baselineRef = values.baseline ?? process.env.BENCH_BASELINE;
  const corpora = only ? [only as CorpusName] : CORPORA;
  const pgs = new PostgresScratch(scratch);
  const out = (s: string): void => void process.stdout.write(s);
  const storeArg = store === 'sqlite' ? '' : ` --store ${store}`;

  if (baselineRef === undefined) {
    for (const corpus of corpora) {
      const r = await runStack({ cli: CLI, corpus, stage: (p) => writeCorpus(p, corpus, N), store, pinned: false, latency: true }, scratch, pgs);
      out(`${report(r, store)}\n`);
    }
    const env = envPrefix([['BENCH_CORPUS', only], ['BENCH_EVENTS', process.env.BENCH_EVENTS ? String(N) : undefined]]);
    out(`  node ${process.version}, ${process.platform}/${process.arch}; corpus seed ${DEFAULT_SEED}\n  rerun: ${env}npm run bench${storeArg ? ` --${storeArg}` : ''}\n`);
    return;
  }

  const rounds = Number(process.env.BENCH_ROUNDS ?? 1);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`BENCH_ROUNDS must be a positive integer, not ${JSON.stringify(process.env.BENCH_ROUNDS)}`);
  const log = (s: string): void => void process.stderr.write(`${s}\n`);
  const baseline = await buildBaseline(baselineRef, ROOT, scratch, log);
  const current: Stack = { name: 'current', cli: CLI };
  await checkConfigLoads([baseline, current], store, scratch);
  const stageDir = mkdtempSync(join(tmpdir(), 'sealtrail-bench-corpus-'));
  scratch.dirs.add(stageDir);
  const staged = new Map<CorpusName, CorpusStats>();
  const packsWords = CORPORA.map((c) => `${c}: ${PACKS_FOR_CORPUS[c].join(' + ')}`).join(', ');
  await compareWithBaseline({
    baseline,
    current,
    currentDescription: await describeCheckout(ROOT, scratch),
    corpora,
    rounds,
    events: N,
    store,
    settings: `one config file per run, loaded by both (checked with each one's sealtrail validate); rules from ${PACKS_DIR} (${packsWords}); ${PINNED.words}`,
    rerun: (corpus) =>
      `${envPrefix([['BENCH_CORPUS', corpus], ['BENCH_EVENTS', process.env.BENCH_EVENTS ? String(N) : undefined], ['BENCH_ROUNDS', process.env.BENCH_ROUNDS ? String(rounds) : undefined]])}npm run bench -- --baseline ${baselineRef}${storeArg}`,
    stageCorpus: (corpus) => {
      const file = join(stageDir, `${corpus}.jsonl`);
      const stats = writeCorpus(file, corpus, N);
      staged.set(corpus, stats);
      return { file, description: describeCorpus(stats) };
    },
    runStack: async (stack, corpus, file): Promise<Measured> => {
      log(`  ${corpus}: running the ${stack.name} stack`);
      const stage = (p: string): CorpusStats => {
        copyFileSync(file, p);
        return staged.get(corpus)!;
      };
      const r = await runStack({ cli: stack.cli, corpus, stage, store, pinned: true, latency: false }, scratch, pgs);
      return { records: N, seconds: r.seconds, cpuSidecar: r.cpuSidecar, cpuCollector: r.cpuCollector, rssSidecar: r.rssSidecar, rssCollector: r.rssCollector };
    },
    out,
  });
  out(`  node ${process.version}, ${process.platform}/${process.arch}; corpus seed ${DEFAULT_SEED}\n`);
}

const scratch = new Scratch();
let interrupted = false;
process.once('SIGINT', () => {
  interrupted = true;
  process.stderr.write('interrupted: stopping processes, removing temp dirs\n');
  void scratch.clear().finally(() => process.exit(130));
});
main(scratch)
  .catch((err: unknown) => {
    // After SIGINT the run fails only because its processes were killed.
    if (interrupted) return;
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => scratch.clear());
