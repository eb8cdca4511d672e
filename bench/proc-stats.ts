/**
 * What the benchmarks read of the processes they measure: a free port to
 * give one, its CPU time and resident set from /proc (its own, so the
 * driver's work is not counted), and a sidecar's ingest counters from its
 * /metrics; and the few things every benchmark does with such processes
 * (check they still run, stop them) and with the figures (percentiles).
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { request } from 'undici';

/** clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on Linux) */
const CLK_TCK = 100;

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

/** user + system CPU seconds of a process (NaN once it is gone) */
export function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
}

function statusMiB(pid: number | undefined, field: 'VmHWM' | 'VmRSS'): number {
  if (pid === undefined) return NaN;
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** peak resident set (VmHWM) of a process, MiB (NaN once it is gone) */
export function peakRssMiB(pid: number | undefined): number {
  return statusMiB(pid, 'VmHWM');
}

/** resident set now (VmRSS) of a process, MiB (NaN once it is gone) */
export function rssMiB(pid: number | undefined): number {
  return statusMiB(pid, 'VmRSS');
}

/** a sidecar's records ingested from `source`, and its redaction hits over all rules, from its /metrics */
export async function sidecarMetrics(tport: number, source: string): Promise<{ ingested: number; hits: number }> {
  const res = await request(`http://127.0.0.1:${tport}/metrics`);
  const text = await res.body.text();
  const m = new RegExp(`^sealtrail_records_ingested_total\\{source="${source}"\\} (\\d+)`, 'm').exec(text);
  let hits = 0;
  for (const h of text.matchAll(/^sealtrail_redaction_hits_total\{[^}]*\} (\d+)/gm)) hits += Number(h[1]);
  return { ingested: m ? Number(m[1]) : 0, hits };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waiting on a process that has died would never end. */
export function assertAlive(...procs: ChildProcess[]): void {
  for (const p of procs) if (p.exitCode !== null || p.signalCode !== null) throw new Error(`${p.spawnargs.slice(-3).join(' ')} exited (${p.exitCode ?? p.signalCode})`);
}

/** SIGTERM (a sidecar drains on it), then SIGKILL after 10 s: a process that does not stop must still not outlive the benchmark. */
export async function stopProcesses(procs: ChildProcess[], children?: Set<ChildProcess>): Promise<void> {
  await Promise.all(
    procs.map(
      (c) =>
        new Promise<void>((resolve) => {
          children?.delete(c);
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
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

/** Nearest-rank percentile (q in 0..1) of ascending values: always one of the samples, never an interpolation. */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil(q * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** Median of values in any order (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
