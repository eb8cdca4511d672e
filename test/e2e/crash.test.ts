import { appendFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sleep } from '../harness/wait.js';
import { makeDeployment, queryAll, startCollectorProc, startSidecarProc, stop, treeSize, type Deployment } from '../helpers/deployment.js';
import { runCli, waitFor, type Proc } from '../helpers/procs.js';
import { prng as mulberry32 } from '../helpers/prng.js';

const TOTAL = 20_000;
const KILLS = 12;



describe('SIGKILL of the sidecar mid-ingestion', () => {
  let d: Deployment;
  let collector: Proc | undefined;
  let sidecar: Proc | undefined;

  afterAll(async () => {
    if (sidecar) await stop(sidecar, 'SIGKILL');
    if (collector) await stop(collector, 'SIGKILL');
  });

  it(`loses and duplicates nothing across ${KILLS} kills and restarts, with rotations`, async () => {
    d = await makeDeployment({ sealInterval: '100ms', maxRecords: 300 });
    collector = await startCollectorProc(d);
    const random = mulberry32(20261122);
    const live = join(d.traces, 'agent.jsonl');
    writeFileSync(live, '');

    let written = 0;
    let rotations = 0;
    const writer = (async () => {
      while (written < TOTAL) {
        let chunk = '';
        const n = Math.min(120, TOTAL - written);
        for (let i = 0; i < n; i++) {
          const k = written + i;
          chunk += `${JSON.stringify({ event_type: 'tool_invoked', actor: { id: `u${k % 9}`, type: 'agent' }, tool: { name: 'lookup', arguments: { k } }, details: { n: k } })}\n`;
        }
        appendFileSync(live, chunk);
        written += n;
        if (written >= (rotations + 1) * 5_000 && written < TOTAL) {
          renameSync(live, join(d.traces, `agent.jsonl.${++rotations}`));
          writeFileSync(live, '');
        }
        await sleep(60);
      }
    })();

    let kills = 0;
    for (let i = 0; i < KILLS; i++) {
      sidecar = await startSidecarProc(d, false);
      await sleep(400 + Math.floor(random() * 900));
      sidecar.child.kill('SIGKILL');
      const { signal } = await sidecar.exited;
      if (signal === 'SIGKILL') kills++;
      sidecar = undefined;
    }
    await writer;
    expect(kills).toBeGreaterThanOrEqual(10);
    expect(rotations).toBe(3);

    sidecar = await startSidecarProc(d);
    await waitFor('every line at the collector', async () => (await treeSize(d)) >= TOTAL, 120_000, 250);
    const items = await queryAll(d);
    const counts = new Map<number, number>();
    for (const it of items) counts.set(it.record.details.n, (counts.get(it.record.details.n) ?? 0) + 1);
    const missing = [...Array(TOTAL).keys()].filter((k) => !counts.has(k));
    const dup = [...counts].filter(([, c]) => c > 1).map(([k]) => k);
    expect(missing).toEqual([]);
    expect(dup).toEqual([]);
    expect(items).toHaveLength(TOTAL);
    expect(await treeSize(d)).toBe(TOTAL);

    const r = await runCli(['verify', '--url', d.collectorUrl, '--keys', d.keys, '--token', d.token]);
    expect(r.code).toBe(0);
    expect((await stop(sidecar)).code).toBe(0);
    sidecar = undefined;
  });
});
