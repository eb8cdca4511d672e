/**
 * Soak: SIGKILL the sidecar at random moments while a writer appends lines
 * (each with a unique id) to rotating trace files, restart it each time, and
 * check at the end that the collector holds every line exactly once, that the
 * stream's seqs are 0..n-1 with each file's lines in file order, and that
 * `sealtrail verify --url` and `verify --db` pass.
 *
 *   npm run build && npm run soak
 *
 * Environment: SOAK_KILLS (default 200), SOAK_SEED (default from the clock,
 * printed so a failure can be replayed), SOAK_RATE lines/s (default 1000),
 * SOAK_ROTATE lines per file (default 5000), SOAK_KEEP=1 keeps the temp dir.
 * Exits 1 on any loss, duplicate, gap, order or verification failure.
 */
import { appendFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { prng } from '../test/harness/prng.js';
import {
  forEachItem,
  makeSoakDeployment,
  runCli,
  sleep,
  startCollector,
  startSidecar,
  stopChild,
  treeSize,
  type Child,
  type SoakDeployment,
} from '../test/harness/deployment.js';

export interface SoakOptions {
  kills: number;
  seed: number;
  /** lines appended per second (in ticks of 50 ms) */
  rate?: number;
  /** lines per trace file before it is rotated (renamed to agent.jsonl.N) */
  rotateEvery?: number;
  /** a sidecar lives a uniformly random time in [minUpMs, maxUpMs] before its SIGKILL */
  minUpMs?: number;
  maxUpMs?: number;
  /** how long the final sidecar may go without delivering anything new */
  stallTimeoutMs?: number;
  keepDir?: boolean;
  progress?: (line: string) => void;
}

export interface SoakResult {
  ok: boolean;
  problems: string[];
  seed: number;
  kills: number;
  lines: number;
  rotations: number;
  /** records the collector holds */
  stored: number;
  missing: number;
  duplicated: number;
  /** records the collector holds that no writer line explains */
  foreign: number;
  seconds: number;
  killLoopSeconds: number;
  catchUpSeconds: number;
  recordsPerSecond: number;
  verifyUrl: number | null;
  verifyDb: number | null;
  dir: string;
}

function line(k: number): string {
  const args: Record<string, unknown> = { q: `order ${k % 1000}` };
  if (k % 10 === 0) args.contact = `person${k % 97}@example.com`; // exercised by the email rule
  return JSON.stringify({
    event_type: 'tool_invoked',
    actor: { id: `u${k % 13}`, type: 'agent' },
    tool: { name: 'lookup', arguments: args },
    details: { soak: k },
  });
}

export async function runSoak(opts: SoakOptions): Promise<SoakResult> {
  const log = opts.progress ?? (() => undefined);
  const random = prng(opts.seed);
  const rate = opts.rate ?? 1000;
  const perTick = Math.max(1, Math.round(rate / 20));
  const rotateEvery = opts.rotateEvery ?? 5000;
  const minUp = opts.minUpMs ?? 50;
  const maxUp = opts.maxUpMs ?? 1500;
  const problems: string[] = [];

  const d: SoakDeployment = await makeSoakDeployment();
  let collector: Child | undefined;
  let sidecar: Child | undefined;
  let written = 0;
  let rotations = 0;
  let kills = 0;
  let writing = true;
  let finished = false;
  const live = join(d.traces, 'agent.jsonl');
  writeFileSync(live, '');
  const t0 = Date.now();
  let killLoopEnd = t0;
  let catchUpEnd = t0;
  const result = (extra: Partial<SoakResult>): SoakResult => {
    const seconds = (catchUpEnd - t0) / 1000;
    return {
      ok: problems.length === 0,
      problems,
      seed: opts.seed,
      kills,
      lines: written,
      rotations,
      stored: 0,
      missing: 0,
      duplicated: 0,
      foreign: 0,
      seconds,
      killLoopSeconds: (killLoopEnd - t0) / 1000,
      catchUpSeconds: (catchUpEnd - killLoopEnd) / 1000,
      recordsPerSecond: seconds > 0 ? written / seconds : 0,
      verifyUrl: null,
      verifyDb: null,
      dir: d.dir,
      ...extra,
    };
  };

  // Lines of file f are exactly the ids [f * rotateEvery, (f + 1) * rotateEvery).
  const writer = (async () => {
    while (writing) {
      const n = Math.min(perTick, (rotations + 1) * rotateEvery - written);
      let chunk = '';
      for (let i = 0; i < n; i++) chunk += `${line(written + i)}\n`;
      appendFileSync(live, chunk);
      written += n;
      if (written === (rotations + 1) * rotateEvery) {
        renameSync(live, join(d.traces, `agent.jsonl.${++rotations}`));
        writeFileSync(live, '');
      }
      await sleep(50);
    }
  })();

  try {
    collector = await startCollector(d);
    for (let i = 0; i < opts.kills; i++) {
      sidecar = startSidecar(d);
      const up = minUp + Math.floor(random() * (maxUp - minUp));
      const early = await Promise.race([sidecar.exited, sleep(up).then(() => undefined)]);
      if (early) {
        throw new Error(`sidecar exited on its own (code ${early.code}, signal ${early.signal}) before kill ${i + 1}:\n${sidecar.stderr()}`);
      }
      sidecar.child.kill('SIGKILL');
      const { signal } = await sidecar.exited;
      if (signal === 'SIGKILL') kills++;
      sidecar = undefined;
      if (collector.child.exitCode !== null) throw new Error(`collector exited: ${collector.stderr()}`);
      if ((i + 1) % 20 === 0 || i + 1 === opts.kills) {
        log(`kills ${kills}/${opts.kills}, lines written ${written}, at the collector ${await treeSize(d)}`);
      }
    }
    writing = false;
    await writer;
    killLoopEnd = Date.now();
    if (kills !== opts.kills) problems.push(`only ${kills} of ${opts.kills} sidecars died by SIGKILL`);

    // The last sidecar runs to the end: everything written must arrive.
    sidecar = startSidecar(d);
    const stall = opts.stallTimeoutMs ?? 120_000;
    let stored = await treeSize(d);
    let progressAt = Date.now();
    while (stored < written) {
      if (sidecar.child.exitCode !== null) throw new Error(`final sidecar exited: ${sidecar.stderr()}`);
      if (Date.now() - progressAt > stall) {
        problems.push(`delivery stalled at ${stored} of ${written} records`);
        break;
      }
      await sleep(200);
      const now = await treeSize(d);
      if (now > stored) progressAt = Date.now();
      stored = now;
    }
    catchUpEnd = Date.now();
    log(`caught up: ${stored} of ${written} at the collector`);
    const stop = await stopChild(sidecar);
    sidecar = undefined;
    if (stop.code !== 0) problems.push(`final sidecar exited with ${stop.code ?? stop.signal} on SIGTERM`);

    // Exactly once, seqs 0..n-1, and each file's lines in the order they were written.
    const counts = new Uint8Array(written);
    const seqSeen = new Uint8Array(written + 1);
    const lastIdByFile = new Map<number, number>();
    let items = 0;
    let foreign = 0;
    let badSeq = 0;
    const fileOrder: Array<{ seq: number; id: number }> = [];
    await forEachItem(d, (it: { seq: number; record?: { details?: { soak?: unknown } } }) => {
      items++;
      const id = it.record?.details?.soak;
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= written) foreign++;
      else counts[id] = Math.min(255, counts[id]! + 1);
      if (Number.isInteger(it.seq) && it.seq >= 0 && it.seq <= written) seqSeen[it.seq] = 1;
      else badSeq++;
      if (typeof id === 'number') fileOrder.push({ seq: it.seq, id });
    });
    let missing = 0;
    let duplicated = 0;
    for (let k = 0; k < written; k++) {
      if (counts[k] === 0) missing++;
      else if (counts[k]! > 1) duplicated++;
    }
    for (let s = 0; s < items; s++) if (!seqSeen[s]) badSeq++;
    fileOrder.sort((a, b) => a.seq - b.seq);
    let outOfOrder = 0;
    for (const { id } of fileOrder) {
      const f = Math.floor(id / rotateEvery);
      const prev = lastIdByFile.get(f);
      if (prev !== undefined && prev > id) outOfOrder++;
      lastIdByFile.set(f, id);
    }
    if (missing) problems.push(`${missing} lines missing at the collector`);
    if (duplicated) problems.push(`${duplicated} lines stored more than once`);
    if (foreign) problems.push(`${foreign} records that no written line explains`);
    if (badSeq) problems.push(`seqs are not exactly 0..${items - 1} (${badSeq} off)`);
    if (outOfOrder) problems.push(`${outOfOrder} lines stored out of their file's order`);
    if (items !== stored) problems.push(`GET /v1/audit returned ${items} items but the tree holds ${stored}`);

    const vu = await runCli(['verify', '--url', d.collectorUrl, '--keys', d.keys, '--token', d.token]);
    if (vu.code !== 0) problems.push(`verify --url exited ${vu.code}: ${vu.stderr.slice(0, 500)}`);
    const vd = await runCli(['verify', '--db', d.collectorDb, '--keys', d.keys]);
    if (vd.code !== 0) problems.push(`verify --db exited ${vd.code}: ${vd.stderr.slice(0, 500)}`);
    finished = true;
    return result({ ok: problems.length === 0, stored: items, missing, duplicated, foreign, verifyUrl: vu.code, verifyDb: vd.code });
  } finally {
    writing = false;
    await writer;
    if (sidecar) await stopChild(sidecar, 'SIGKILL');
    if (collector) await stopChild(collector);
    if (finished && !opts.keepDir && problems.length === 0) rmSync(d.dir, { recursive: true, force: true });
  }
}

export function formatSoak(r: SoakResult): string {
  return [
    `sealtrail soak: SIGKILL of the sidecar at random moments during ingestion`,
    `  kills:            ${r.kills} (seed ${r.seed}; replay with SOAK_SEED=${r.seed})`,
    `  lines written:    ${r.lines} over ${r.rotations + 1} files (${r.rotations} rotations)`,
    `  at the collector: ${r.stored} records; missing ${r.missing}, duplicated ${r.duplicated}, foreign ${r.foreign}`,
    `  verify --url:     ${r.verifyUrl === 0 ? 'ok' : `FAILED (${r.verifyUrl})`}; verify --db: ${r.verifyDb === 0 ? 'ok' : `FAILED (${r.verifyDb})`}`,
    `  duration:         ${r.seconds.toFixed(1)} s (kill loop ${r.killLoopSeconds.toFixed(1)} s, catch-up ${r.catchUpSeconds.toFixed(1)} s)`,
    `  records/s:        ${Math.round(r.recordsPerSecond)} (lines written / duration, restarts included)`,
    `  result:           ${r.ok ? 'OK' : `FAILED: ${r.problems.join('; ')} (files kept in ${r.dir})`}`,
    `  node ${process.version}, ${process.platform}/${process.arch}`,
  ].join('\n');
}

async function main(): Promise<void> {
  const num = (name: string, fallback: number): number => {
    const raw = process.env[name];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer`);
    return n;
  };
  const r = await runSoak({
    kills: num('SOAK_KILLS', 200),
    seed: num('SOAK_SEED', Date.now() % 2 ** 31),
    rate: num('SOAK_RATE', 1000),
    rotateEvery: num('SOAK_ROTATE', 5000) || 5000,
    keepDir: process.env.SOAK_KEEP === '1',
    progress: (l) => process.stderr.write(`soak: ${l}\n`),
  });
  process.stdout.write(`${formatSoak(r)}\n`);
  process.exitCode = r.ok ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`soak failed: ${(err as Error).stack}\n`);
    process.exit(1);
  });
}
