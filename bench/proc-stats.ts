/**
 * What the benchmarks read of the processes they measure: a free port to
 * give one, its CPU time and peak RSS from /proc (its own, so the driver's
 * work is not counted), and a sidecar's ingest counters from its /metrics.
 */
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

/** peak resident set (VmHWM) of a process, MiB (NaN once it is gone) */
export function peakRssMiB(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
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
