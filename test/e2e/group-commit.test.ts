/**
 * Grouped commits in a real sidecar process: lines an agent appends within
 * GROUP_WINDOW_MS become one buffer transaction (sealtrail_buffer_commits_total),
 * and a SIGKILL while lines wait in the window, written to the file but not
 * committed, loses and repeats nothing after the restart: their position was
 * never committed, so they are read again.
 */
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { GROUP_WINDOW_MS } from '../../src/sidecar/sources/file-source.js';
import { getJson, makeDeployment, queryAll, startCollectorProc, startSidecarProc, stop, treeSize, type Deployment } from '../helpers/deployment.js';
import { runCli, sleep, waitFor, type Proc } from '../helpers/procs.js';

function line(k: number): string {
  return `${JSON.stringify({ event_type: 'tool_invoked', actor: { id: `u${k % 5}`, type: 'agent' }, tool: { name: 'lookup' }, details: { n: k } })}\n`;
}

/** A sample of the sidecar's /metrics: exact label set, or summed over all when `labels` is omitted. */
async function metric(d: Deployment, name: string, labels?: string): Promise<number> {
  const { status, body } = await getJson(`${d.telemetryUrl}/metrics`);
  if (status !== 200) throw new Error(`/metrics answered ${status}`);
  let sum = 0;
  for (const l of String(body).split('\n')) {
    const hit = labels === undefined ? l.startsWith(`${name} `) || l.startsWith(`${name}{`) : l.startsWith(`${name}${labels} `);
    if (hit) sum += Number(l.slice(l.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** Records committed to the buffer so far, read through a separate read-only connection. */
function committed(d: Deployment): number {
  const db = new Database(d.bufferDb, { readonly: true, fileMustExist: true });
  try {
    const r = db.prepare('SELECT COALESCE(MAX(seq), -1) + 1 AS n FROM records').get() as { n: number };
    const b = db.prepare('SELECT COALESCE(MAX(last_seq), -1) + 1 AS n FROM batches').get() as { n: number };
    return Math.max(r.n, b.n);
  } finally {
    db.close();
  }
}

const procs: Proc[] = [];
function track(p: Proc): Proc {
  procs.push(p);
  return p;
}

afterEach(async () => {
  for (const p of procs.splice(0)) await stop(p, 'SIGKILL');
});

describe('grouped commits in a sidecar process', () => {
  it('commits lines appended in several wake-ups within the window in one transaction', async () => {
    const d = await makeDeployment();
    const collector = track(await startCollectorProc(d));
    const trace = join(d.traces, 'agent.jsonl');
    writeFileSync(trace, '');
    const sidecar = track(await startSidecarProc(d));
    const COMMITS = 'sealtrail_buffer_commits_total';
    const INGESTED = 'sealtrail_records_ingested_total';
    let next = 0;
    let grouped = false;
    // Timers can be late on a busy machine: an attempt counts only if its writes all landed
    // well within the window; one of a few must.
    for (let attempt = 0; attempt < 5 && !grouped; attempt++) {
      const commits0 = await metric(d, COMMITS, '{source="traces"}');
      const first = Date.now();
      let last = first;
      for (let i = 0; i < 4; i++) {
        appendFileSync(trace, line(next++) + line(next++) + line(next++));
        last = Date.now();
        if (i < 3) await sleep(5);
      }
      await waitFor('the lines of this attempt', async () => (await metric(d, INGESTED, '{source="traces"}')) === next, 10_000, 20);
      if (last - first > GROUP_WINDOW_MS / 2) continue;
      expect((await metric(d, COMMITS, '{source="traces"}')) - commits0).toBe(1);
      grouped = true;
    }
    expect(grouped).toBe(true);
    expect((await stop(sidecar)).code).toBe(0);
    expect((await stop(collector)).code).toBe(0);
  });

  it('a SIGKILL while appended lines wait in the window loses and repeats nothing', async () => {
    const d = await makeDeployment({ sealInterval: '100ms' });
    const collector = track(await startCollectorProc(d));
    const trace = join(d.traces, 'agent.jsonl');
    writeFileSync(trace, '');
    let written = 0;
    let caughtPending = 0;
    for (let round = 0; round < 4; round++) {
      const sidecar = track(await startSidecarProc(d));
      // A steady writer, then a kill right after an append: inside its window.
      for (let i = 0; i < 40; i++) {
        appendFileSync(trace, line(written++));
        await sleep(7);
      }
      appendFileSync(trace, line(written++) + line(written++));
      sidecar.child.kill('SIGKILL');
      expect((await sidecar.exited).signal).toBe('SIGKILL');
      // The last lines were in the file, not in the buffer: the kill came before their commit.
      if (committed(d) < written) caughtPending++;
    }
    expect(caughtPending).toBeGreaterThan(0);
    const sidecar = track(await startSidecarProc(d));
    await waitFor('every line at the collector', async () => (await treeSize(d)) >= written, 60_000, 100);
    const items = await queryAll(d);
    const counts = new Map<number, number>();
    for (const it of items) counts.set(it.record.details.n, (counts.get(it.record.details.n) ?? 0) + 1);
    expect([...Array(written).keys()].filter((k) => !counts.has(k))).toEqual([]);
    expect([...counts].filter(([, c]) => c > 1)).toEqual([]);
    expect(items).toHaveLength(written);
    const r = await runCli(['verify', '--url', d.collectorUrl, '--keys', d.keys, '--token', d.token]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect((await stop(sidecar)).code).toBe(0);
    expect((await stop(collector)).code).toBe(0);
  });
});
