/**
 * The sidecar's footprint at the rates an agent really emits, not at full
 * speed: a real collector and a real sidecar process, the sidecar
 * configured as `sealtrail dev` configures it (trace files, OTLP/HTTP and
 * the socket; pii-basic; default seal, buffer and ship settings), then
 * phases of FOOTPRINT_SECONDS each (default 60): idle, 100 events/s,
 * 1,000 events/s, and full speed (FOOTPRINT_FULL=0 leaves it out).
 *
 * Events are pii corpus lines (bench/corpus.ts) appended to a trace file in
 * the sidecar's watched directory every 10 ms, as many as the rate makes
 * due by then, so the load is even rather than one burst a second. Every
 * second the sidecar's CPU time (user + system, /proc/<pid>/stat) and
 * VmRSS are sampled.
 *
 * Latency is from a line's write to two moments, both observed without
 * asking the sidecar or the collector anything (a /metrics scrape or an
 * API read would cost them the CPU being measured, and every collector read
 * commits a read-audit record):
 * - durable: the sidecar committed the line's record together with the
 *   file position after it (one transaction, WAL with synchronous=FULL), seen
 *   as that position in its buffer.db, read-only, every 5 ms;
 * - stored: the collector verified and stored the record, seen as its row
 *   (by the line's trace_id) in the collector's SQLite store, every 20 ms.
 *
 * FOOTPRINT_LATENCY=0 reads the buffer once a second and the store never,
 * to check that watching does not change the CPU figures. FOOTPRINT_NODE_ARGS
 * (space-separated) go to the sidecar's node, e.g. "--cpu-prof
 * --cpu-prof-dir=/tmp/prof"; the profile is written when it stops.
 *
 *   npm run bench:footprint          (FOOTPRINT_SECONDS=5 for a quick look)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { request } from 'undici';
import { createHmacKeyFile, createSigningKeyFiles } from '../src/keyfiles.js';
import { corpusGenerator, DEFAULT_SEED } from './corpus.js';
import { assertAlive, cpuSeconds, freePort, peakRssMiB, percentile, rssMiB, sleep, stopProcesses } from './proc-stats.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const PACKS_DIR = fileURLToPath(new URL('../../config/redaction/', import.meta.url));
const SOURCE = 'traces';
const STREAM = 'footprint';
const TICK_MS = 10;
const SAMPLE_MS = 1000;
const DURABLE_POLL_MS = 5;
/** with FOOTPRINT_LATENCY=0: the buffer is read only this often (for full speed's backlog), the store not at all */
const UNOBSERVED_POLL_MS = 1000;
const STORED_POLL_MS = 20;
/** after the sidecar answers /healthz, so its start-up (rule compilation, first checkpoint) is in no phase */
const SETTLE_MS = 3000;
/** full speed: lines kept written but not yet durable, so the sidecar never waits for the writer */
const FULL_BACKLOG = 20_000;
const FULL_CHUNK = 500;

/** The issue's targets for the sidecar, printed beside the figures; nothing is asserted. */
export const TARGETS = { idleRssMiB: 60, cpuAt100: 2, cpuAt1000: 10, peakRssMiB: 120 } as const;

export interface Phase {
  name: string;
  /** events a second; 0 idle; 'full' as fast as the sidecar makes them durable */
  rate: number | 'full';
}

export function phases(full: boolean): Phase[] {
  return [{ name: 'idle', rate: 0 }, { name: '100 events/s', rate: 100 }, { name: '1,000 events/s', rate: 1000 }, ...(full ? [{ name: 'full speed', rate: 'full' as const }] : [])];
}

/** Lines due `elapsedMs` into a phase at `rate` a second: writing up to this on every tick paces the phase evenly and exactly. */
export function linesDue(rate: number, elapsedMs: number): number {
  return Math.floor((rate * Math.max(0, elapsedMs)) / 1000);
}

export interface Sample {
  /** ms, performance.now() */
  t: number;
  /** CPU seconds so far */
  cpu: number;
  rss: number;
}

/** CPU % of one core between consecutive samples. */
export function cpuPercents(samples: readonly Sample[]): number[] {
  const out: number[] = [];
  for (let i = 1; i < samples.length; i++) {
    const dt = (samples[i]!.t - samples[i - 1]!.t) / 1000;
    if (dt > 0) out.push(((samples[i]!.cpu - samples[i - 1]!.cpu) / dt) * 100);
  }
  return out;
}

export interface PhaseFigures {
  cpuMean: number;
  cpuP95: number;
  rssMean: number;
  rssMax: number;
}

/** A phase's figures from its samples, the first taken at its start and the last at its end. */
export function phaseFigures(samples: readonly Sample[]): PhaseFigures {
  const first = samples[0]!;
  const last = samples[samples.length - 1]!;
  const per = cpuPercents(samples).sort((a, b) => a - b);
  const rss = samples.map((s) => s.rss);
  return {
    cpuMean: ((last.cpu - first.cpu) / ((last.t - first.t) / 1000)) * 100,
    cpuP95: percentile(per, 0.95),
    rssMean: rss.reduce((a, b) => a + b, 0) / rss.length,
    rssMax: Math.max(...rss),
  };
}

function sample(pid: number | undefined): Sample {
  return { t: performance.now(), cpu: cpuSeconds(pid), rss: rssMiB(pid) };
}

/**
 * Where a process's CPU goes, to tell per-record work from per-wake-up cost:
 * user and system seconds (/proc/<pid>/stat, 10 ms ticks) and the voluntary
 * context switches of all its threads (each a sleep: an event-loop wake-up,
 * a thread-pool job, an fsync waited for). NaN once it is gone.
 */
export interface Split {
  user: number;
  system: number;
  switches: number;
}

function split(pid: number | undefined): Split {
  const none = { user: NaN, system: NaN, switches: NaN };
  if (pid === undefined) return none;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    let switches = 0;
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const m = /voluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/task/${task}/status`, 'utf8'));
      switches += m ? Number(m[1]) : 0;
    }
    return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100, switches };
  } catch {
    return none;
  }
}

/** What the writer knows of every line it wrote: when, where it ends, and when it was seen durable and stored. */
class Lines {
  readonly written: number[] = [];
  readonly endOffset: number[] = [];
  readonly phase: number[] = [];
  readonly durableAt: number[] = [];
  readonly storedAt: number[] = [];
  /** trace_id -> line, for the paced phases' lines not yet seen at the collector */
  readonly byTrace = new Map<string, number>();
  durable = 0;
  private offset = 0;
  private n = 0;
  private readonly next = corpusGenerator('pii');

  constructor(private readonly fd: number) {}

  write(count: number, phase: number, track: boolean): void {
    const lines: string[] = [];
    for (let i = 0; i < count; i++) lines.push(this.next(this.n++).line);
    writeSync(this.fd, `${lines.join('\n')}\n`);
    const t = performance.now();
    for (const line of lines) {
      const i = this.written.length;
      this.written.push(t);
      this.offset += Buffer.byteLength(line) + 1;
      this.endOffset.push(this.offset);
      this.phase.push(phase);
      const trace = track ? /"trace_id":"([0-9a-f]{32})"/.exec(line)?.[1] : undefined;
      if (trace) this.byTrace.set(trace, i);
    }
  }

  /** Every line ending at or before `offset` is durable now. */
  durableUpTo(offset: number, now: number): void {
    while (this.durable < this.written.length && this.endOffset[this.durable]! <= offset) this.durableAt[this.durable++] = now;
  }

  latencies(phase: number, seen: readonly number[]): { ms: number[]; missing: number } {
    const ms: number[] = [];
    let missing = 0;
    for (let i = 0; i < this.written.length; i++) {
      if (this.phase[i] !== phase) continue;
      if (seen[i] === undefined) missing++;
      else ms.push(seen[i]! - this.written[i]!);
    }
    return { ms: ms.sort((a, b) => a - b), missing };
  }
}

function configYaml(dir: string, ports: { collector: number; telemetry: number; otlp: number }): string {
  const keys = join(dir, 'keys');
  // As src/cli/dev.ts builds it for `sealtrail dev`, as separate processes.
  return `collector:
  listen: 127.0.0.1:${ports.collector}
  store: { type: sqlite, path: ${join(dir, 'collector', 'audit.db')} }
  auth: { admin_tokens: ["footprint-admin-token-0123456789"] }
  streams: [{ match: "*", vkey_file: ${join(keys, 'sidecar.vkey')} }]
  trust_on_first_use: true
  hmac_keys: [{ id: k1, file: ${join(keys, 'hmac.key')} }]
  keys: { signing_key_file: ${join(keys, 'collector.skey')}, hmac_key_file: ${join(keys, 'hmac.key')}, hmac_key_id: k1 }
sidecar:
  stream: { name: ${STREAM} }
  data_dir: ${join(dir, 'sidecar')}
  sources:
    - { id: ${SOURCE}, type: file, include: ["${join(dir, 'traces', '*.jsonl')}"] }
    - { id: otlp, type: otlp, listen: "127.0.0.1:${ports.otlp}" }
    - { id: socket, type: socket, path: ${join(dir, 'events.sock')} }
  redaction: { rules: [${join(PACKS_DIR, 'pii-basic.yaml')}] }
  keys: { signing_key_file: ${join(keys, 'sidecar.skey')}, hmac_key_file: ${join(keys, 'hmac.key')}, hmac_key_id: k1 }
  ship: { url: "http://127.0.0.1:${ports.collector}" }
  telemetry: { listen: "127.0.0.1:${ports.telemetry}" }
`;
}

/** `nodeArgs`: FOOTPRINT_NODE_ARGS for the sidecar (e.g. --cpu-prof), so a profile is of the process being measured */
function run(args: string[], nodeArgs: string[] = []): ChildProcess {
  return spawn(process.execPath, [...nodeArgs, CLI, ...args], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, SEALTRAIL_LOG_LEVEL: 'warn' } });
}

async function waitHealthy(url: string, procs: ChildProcess[]): Promise<void> {
  for (let i = 0; ; i++) {
    assertAlive(...procs);
    try {
      if ((await request(url)).statusCode === 200) return;
    } catch {
      // not listening yet
    }
    if (i > 600) throw new Error(`${url} did not answer within a minute`);
    await sleep(100);
  }
}

const fmt = (n: number, digits = 0): string => (Number.isFinite(n) ? n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : 'n/a');
const verdict = (value: number, limit: number): string => (value <= limit ? 'within' : 'over');

function latencyLine(name: string, l: { ms: number[]; missing: number }): string {
  if (!l.ms.length) return `    ${name.padEnd(16)}no line seen${l.missing ? ` (${fmt(l.missing)} lines unseen)` : ''}`;
  return `    ${name.padEnd(16)}p50 ${fmt(percentile(l.ms, 0.5))} ms, p99 ${fmt(percentile(l.ms, 0.99))} ms, max ${fmt(l.ms[l.ms.length - 1]!)} ms over ${fmt(l.ms.length)} lines${l.missing ? `; ${fmt(l.missing)} not seen by the end` : ''}`;
}

async function main(): Promise<void> {
  const seconds = Number(process.env.FOOTPRINT_SECONDS ?? 60);
  if (!(seconds > 0)) throw new Error(`FOOTPRINT_SECONDS must be a positive number, not ${JSON.stringify(process.env.FOOTPRINT_SECONDS)}`);
  const full = process.env.FOOTPRINT_FULL !== '0';
  const observe = process.env.FOOTPRINT_LATENCY !== '0';
  const plan = phases(full);
  const dir = mkdtempSync(join(tmpdir(), 'sealtrail-footprint-'));
  const children = new Set<ChildProcess>();
  const timers = new Set<NodeJS.Timeout>();
  const dbs: Database.Database[] = [];
  const cleanup = (): void => {
    for (const t of timers) clearInterval(t);
    for (const d of dbs) if (d.open) d.close();
    for (const c of children) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  try {
    const keys = join(dir, 'keys');
    createSigningKeyFiles(join(keys, 'sidecar.skey'), join(keys, 'sidecar.vkey'), 'sealtrail-footprint');
    createSigningKeyFiles(join(keys, 'collector.skey'), join(keys, 'collector.vkey'), 'sealtrail-footprint-collector');
    createHmacKeyFile(join(keys, 'hmac.key'));
    mkdirSync(join(dir, 'traces'));
    const trace = join(dir, 'traces', 'agent.jsonl');
    writeFileSync(trace, '');
    const ports = { collector: await freePort(), telemetry: await freePort(), otlp: await freePort() };
    const config = join(dir, 'footprint.yaml');
    writeFileSync(config, configYaml(dir, ports));

    const collector = run(['collector', '--config', config]);
    children.add(collector);
    await waitHealthy(`http://127.0.0.1:${ports.collector}/healthz`, [collector]);
    const sidecar = run(['sidecar', '--config', config], (process.env.FOOTPRINT_NODE_ARGS ?? '').split(' ').filter(Boolean));
    children.add(sidecar);
    await waitHealthy(`http://127.0.0.1:${ports.telemetry}/healthz`, [collector, sidecar]);
    await sleep(SETTLE_MS);
    assertAlive(collector, sidecar);

    // Read-only connections of this process; a read takes a shared lock for
    // microseconds, so at most a sidecar WAL checkpoint waits that long.
    const buffer = new Database(join(dir, 'sidecar', 'buffer.db'), { readonly: true, fileMustExist: true });
    const store = new Database(join(dir, 'collector', 'audit.db'), { readonly: true, fileMustExist: true });
    dbs.push(buffer, store);
    // Prepared on first use, inside the pollers: tables this benchmark cannot read make "not observed", not a failed run.
    let position: Database.Statement | undefined;
    let rows: Database.Statement | undefined;
    let streamName: Database.Statement | undefined;

    const fd = openSync(trace, 'a');
    const lines = new Lines(fd);
    const every = (ms: number, fn: () => void): NodeJS.Timeout => {
      const t = setInterval(fn, ms);
      timers.add(t);
      return t;
    };
    let positionError: string | undefined;
    every(observe ? DURABLE_POLL_MS : UNOBSERVED_POLL_MS, () => {
      if (positionError) return;
      try {
        const now = performance.now();
        position ??= buffer.prepare('SELECT max(offset) AS offset FROM positions WHERE source = ?');
        lines.durableUpTo((position.get(SOURCE) as { offset: number | null }).offset ?? 0, now);
      } catch (err) {
        positionError = (err as Error).message;
      }
    });
    let stream: string | undefined;
    let lastSeq = -1;
    let storedError: string | undefined;
    every(STORED_POLL_MS, () => {
      if (storedError || !observe) return;
      const now = performance.now();
      try {
        // The sidecar names its stream `footprint-<start time>`; found once, then read by (stream, seq), which is indexed.
        streamName ??= store.prepare(`SELECT stream FROM records WHERE stream = '${STREAM}' OR stream LIKE '${STREAM}-%' LIMIT 1`);
        rows ??= store.prepare('SELECT seq, trace_id FROM records WHERE stream = ? AND seq > ? ORDER BY seq LIMIT 10000');
        stream ??= (streamName.get() as { stream: string } | undefined)?.stream;
        if (stream === undefined) return;
        for (const r of rows.all(stream, lastSeq) as Array<{ seq: number; trace_id: string | null }>) {
          lastSeq = r.seq;
          const i = r.trace_id === null ? undefined : lines.byTrace.get(r.trace_id);
          if (i === undefined) continue;
          lines.storedAt[i] = now;
          lines.byTrace.delete(r.trace_id!);
        }
      } catch (err) {
        storedError = (err as Error).message;
      }
    });

    const results: Array<{ phase: Phase; sidecar: PhaseFigures; collector: PhaseFigures; lines: number; durablePerSecond: number; split: Split }> = [];
    let pacedHwm = NaN;
    for (const [p, phase] of plan.entries()) {
      process.stderr.write(`footprint: ${phase.name} for ${seconds} s\n`);
      const s = [sample(sidecar.pid)];
      const c = [sample(collector.pid)];
      const split0 = split(sidecar.pid);
      const sampler = every(SAMPLE_MS, () => {
        s.push(sample(sidecar.pid));
        c.push(sample(collector.pid));
      });
      const t0 = performance.now();
      const first = lines.written.length;
      const durable0 = lines.durable;
      let writer: NodeJS.Timeout | undefined;
      const rate = phase.rate;
      if (rate === 'full') {
        writer = every(TICK_MS, () => {
          if (lines.written.length - lines.durable < FULL_BACKLOG) lines.write(FULL_CHUNK, p, false);
        });
      } else if (rate > 0) {
        writer = every(TICK_MS, () => {
          const due = linesDue(rate, performance.now() - t0) - (lines.written.length - first);
          if (due > 0) lines.write(due, p, true);
        });
      }
      await sleep(seconds * 1000);
      if (writer) clearInterval(writer);
      // The phase holds exactly rate x seconds lines, whatever the timer's drift.
      if (typeof rate === 'number' && rate > 0) {
        const left = linesDue(rate, seconds * 1000) - (lines.written.length - first);
        if (left > 0) lines.write(left, p, true);
      }
      clearInterval(sampler);
      s.push(sample(sidecar.pid));
      c.push(sample(collector.pid));
      const split1 = split(sidecar.pid);
      const wall = (s[s.length - 1]!.t - s[0]!.t) / 1000;
      const splitPerSecond = { user: (split1.user - split0.user) / wall, system: (split1.system - split0.system) / wall, switches: (split1.switches - split0.switches) / wall };
      assertAlive(collector, sidecar);
      const durablePerSecond = (lines.durable - durable0) / ((s[s.length - 1]!.t - t0) / 1000);
      results.push({ phase, sidecar: phaseFigures(s), collector: phaseFigures(c), lines: lines.written.length - first, durablePerSecond, split: splitPerSecond });
      if (rate !== 'full') pacedHwm = peakRssMiB(sidecar.pid);
    }
    const endHwm = peakRssMiB(sidecar.pid);
    // The paced lines' records reach the collector within a seal interval or two.
    for (let i = 0; i < 300 && observe && lines.byTrace.size > 0 && !storedError; i++) await sleep(100);
    for (const t of timers) clearInterval(t);
    closeSync(fd);
    for (const d of dbs) d.close();
    await stopProcesses([sidecar, collector], children);

    const out: string[] = [
      `sealtrail sidecar footprint, ${new Date().toISOString()}: sidecar configured as \`sealtrail dev\` configures it (file + OTLP/HTTP + socket sources, pii-basic, default seal/buffer/ship settings), shipping to a collector process (SQLite store) on the same machine`,
      `  input:    pii corpus lines (bench/corpus.ts, seed ${DEFAULT_SEED}, ~530 B), appended to one trace file every ${TICK_MS} ms; each phase ${seconds} s, after ${SETTLE_MS / 1000} s of settling once the sidecar was up`,
      `  measured: the sidecar's own CPU (user + system from /proc/<pid>/stat, 10 ms ticks) and VmRSS, sampled every ${SAMPLE_MS / 1000} s`,
      '',
      `  ${'phase'.padEnd(16)}${'lines'.padStart(9)}  ${'CPU % of a core'.padEnd(18)}${'RSS MiB'.padEnd(16)}target (issue 14)`,
      `  ${''.padEnd(16)}${''.padStart(9)}  ${'mean'.padStart(6)}${'p95 1s'.padStart(8)}    ${'mean'.padStart(6)}${'max'.padStart(8)}  `,
    ];
    for (const r of results) {
      const f = r.sidecar;
      let target = '';
      if (r.phase.rate === 0) target = `RSS <= ${TARGETS.idleRssMiB} MiB: ${verdict(f.rssMean, TARGETS.idleRssMiB)}`;
      if (r.phase.rate === 100) target = `CPU <= ${TARGETS.cpuAt100}% of a core: ${verdict(f.cpuMean, TARGETS.cpuAt100)}`;
      if (r.phase.rate === 1000) target = `CPU <= ${TARGETS.cpuAt1000}% of a core: ${verdict(f.cpuMean, TARGETS.cpuAt1000)}`;
      if (r.phase.rate === 'full') target = `(${fmt(r.durablePerSecond)} lines made durable a second)`;
      out.push(`  ${r.phase.name.padEnd(16)}${fmt(r.lines).padStart(9)}  ${fmt(f.cpuMean, 1).padStart(6)}${fmt(f.cpuP95, 0).padStart(8)}    ${fmt(f.rssMean, 1).padStart(6)}${fmt(f.rssMax, 1).padStart(8)}  ${target}`);
    }
    out.push(
      `  sidecar CPU by kind (% of a core, mean) and voluntary context switches a second, all threads: ${results
        .map((r) => `${r.phase.name} user ${fmt(r.split.user * 100, 1)} system ${fmt(r.split.system * 100, 1)} switches ${fmt(r.split.switches)}`)
        .join('; ')}`,
      `  peak RSS (VmHWM): ${fmt(pacedHwm, 1)} MiB after the paced phases (target <= ${TARGETS.peakRssMiB} MiB: ${verdict(pacedHwm, TARGETS.peakRssMiB)})${full ? `, ${fmt(endHwm, 1)} MiB after full speed` : ''}`,
    );
    const paced = [...plan.entries()].filter(([, ph]) => typeof ph.rate === 'number' && ph.rate > 0);
    out.push('');
    if (!observe) out.push('  latency: not observed (FOOTPRINT_LATENCY=0)');
    else if (positionError) out.push(`  written -> durable: not observed (reading the sidecar buffer's positions failed: ${positionError})`);
    else {
      out.push(`  written -> durable (committed by the sidecar with the file position after the line, seen in its buffer.db, read every ${DURABLE_POLL_MS} ms; up to ${DURABLE_POLL_MS} ms late):`);
      for (const [p, ph] of paced) out.push(latencyLine(ph.name, lines.latencies(p, lines.durableAt)));
    }
    if (observe && storedError) out.push(`  written -> stored at the collector: not observed (reading its store failed: ${storedError})`);
    else if (observe) {
      out.push(`  written -> verified and stored at the collector (its row in the collector's SQLite store, read every ${STORED_POLL_MS} ms; default seal.max_interval 1 s):`);
      for (const [p, ph] of paced) out.push(latencyLine(ph.name, lines.latencies(p, lines.storedAt)));
    }
    out.push(
      `  collector, for reference: CPU % of a core (mean) ${results.map((r) => `${r.phase.name} ${fmt(r.collector.cpuMean, 1)}`).join(', ')}; RSS max ${fmt(Math.max(...results.map((r) => r.collector.rssMax)), 1)} MiB`,
      `  node ${process.version}, ${process.platform}/${process.arch}`,
      `  rerun: ${process.env.FOOTPRINT_SECONDS ? `FOOTPRINT_SECONDS=${seconds} ` : ''}${full ? '' : 'FOOTPRINT_FULL=0 '}${observe ? '' : 'FOOTPRINT_LATENCY=0 '}npm run bench:footprint`,
    );
    process.stdout.write(`${out.join('\n')}\n`);
  } finally {
    cleanup();
  }
}

// Imported by its unit test for the helpers above; run only as the program.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`footprint failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
