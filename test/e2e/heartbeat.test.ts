import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep } from '../harness/wait.js';
import {
  getJson,
  makeDeployment,
  queryAll,
  startCollectorProc,
  startSidecarProc,
  stop,
  treeSize,
  type Deployment,
  sidecarItems,
} from '../helpers/deployment.js';
import { runCli, waitFor, type Proc } from '../helpers/procs.js';
import { sidecarMetrics } from '../helpers/redaction-deployment.js';


function ev(k: string): string {
  return JSON.stringify({ event_type: 'tool_invoked', actor: { id: 'agent-1', type: 'agent' }, tool: { name: 'lookup' }, details: { k } });
}

async function streamId(d: Deployment): Promise<string> {
  const { body } = await getJson(`${d.collectorUrl}/v1/streams`, d.token);
  const streams = sidecarItems(body.streams as Array<{ stream: string }>);
  expect(streams).toHaveLength(1);
  return streams[0]!.stream;
}

async function checkpoints(d: Deployment): Promise<Array<{ batch: number; tree_size: number }>> {
  const s = await streamId(d);
  const { status, body } = await getJson(`${d.collectorUrl}/v1/streams/${encodeURIComponent(s)}/checkpoints`, d.token);
  expect(status).toBe(200);
  expect(body.next_from_batch).toBeNull();
  return body.checkpoints;
}

async function heartbeatsAtCollector(d: Deployment): Promise<any[]> {
  return queryAll(d, '&event_type=heartbeat');
}

async function metric(d: Deployment, name: string): Promise<number> {
  return (await sidecarMetrics(d)).get(name) ?? 0;
}

/** The stream as a whole: seqs 0..n-1, each once; returns the items in seq order. */
async function contiguous(d: Deployment): Promise<any[]> {
  const size = await treeSize(d); // heartbeats may add records meanwhile, never remove any
  const items = (await queryAll(d)).sort((a, b) => a.seq - b.seq);
  expect(items.map((i) => i.seq)).toEqual(items.map((_, i) => i));
  expect(items.length).toBeGreaterThanOrEqual(size);
  return items;
}

describe('heartbeats every 1s while idle', () => {
  let d: Deployment;
  let collector: Proc | undefined;
  let sidecar: Proc | undefined;
  let live: string;

  beforeAll(async () => {
    d = await makeDeployment({ heartbeat: '1s', prefix: 'st-hb-' });
    collector = await startCollectorProc(d);
    sidecar = await startSidecarProc(d);
    live = join(d.traces, 'agent.jsonl');
  });

  afterAll(async () => {
    if (sidecar) await stop(sidecar, 'SIGKILL');
    if (collector) await stop(collector, 'SIGKILL');
  });

  it('chains and seals a heartbeat record of its own while no event arrives', async () => {
    writeFileSync(live, Array.from({ length: 10 }, (_, i) => `${ev(`idle-${i}`)}\n`).join(''));
    await waitFor('10 events at the collector', async () => (await queryAll(d, '&event_type=tool_invoked')).length === 10, 30_000, 100);
    const events = await queryAll(d, '&event_type=tool_invoked');
    const lastEventSeq = Math.max(...events.map((e) => e.seq as number));

    // idle from here on: heartbeats keep coming, each sealed under a new checkpoint
    const h0 = (await heartbeatsAtCollector(d)).length;
    await waitFor('a heartbeat after the events', async () => (await heartbeatsAtCollector(d)).length >= h0 + 1, 30_000, 100);
    const cp1 = (await checkpoints(d)).length;
    await waitFor('two more heartbeats', async () => (await heartbeatsAtCollector(d)).length >= h0 + 3, 30_000, 100);
    const items = await contiguous(d);
    const cp2 = await checkpoints(d);
    expect(cp2.length).toBeGreaterThanOrEqual(cp1 + 2);

    const beats = items.filter((i) => i.record.event_type === 'heartbeat');
    expect(beats.length).toBeGreaterThanOrEqual(h0 + 3);
    const afterEvents = beats.filter((b) => b.seq > lastEventSeq);
    expect(afterEvents.length).toBeGreaterThanOrEqual(3);
    // the heartbeats right after the events continue the stream's seqs
    expect(afterEvents[0].seq).toBe(lastEventSeq + 1);
    const sizes = new Set(cp2.map((c) => c.tree_size));
    for (const b of beats) {
      expect(b.record.source).toBe('sealtrail');
      expect(b.record.stream).toBe(events[0].record.stream);
      expect(b.record.actor).toEqual({ id: 'sealtrail-sidecar', type: 'system' });
      expect(typeof b.record.details.idle_seconds).toBe('number');
      expect(b.record.details.idle_seconds).toBeGreaterThanOrEqual(1);
      expect(b.record.id).toMatch(/^[0-9a-f-]{36}$/);
      // sealed at once: a signed checkpoint ends exactly at the heartbeat
      expect(sizes.has(b.seq + 1)).toBe(true);
    }
    // nothing but the events and the heartbeats
    expect(items.filter((i) => i.record.event_type !== 'heartbeat').map((i) => i.record.details.k).sort()).toEqual(
      Array.from({ length: 10 }, (_, i) => `idle-${i}`).sort(),
    );
    const counted = await metric(d, 'sealtrail_heartbeats_total');
    expect(counted).toBeGreaterThan(0);
    expect(counted).toBeGreaterThanOrEqual(beats.length);

    const r = await runCli(['verify', '--url', d.collectorUrl, '--keys', d.keys, '--token', d.token]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/HMAC chain checked/);
  });

  it('writes no heartbeat while events keep arriving, and resumes when they stop', async () => {
    const N = 20;
    const fileRecords = async (): Promise<number> => {
      const { body } = await getJson(`${d.telemetryUrl}/metrics`);
      const m = /^sealtrail_records_ingested_total\{source="traces"\} (\S+)$/m.exec(String(body));
      return m ? Number(m[1]) : 0;
    };
    expect(await fileRecords()).toBe(10);
    let written = 0;
    const writer = (async () => {
      for (; written < N; written++) {
        appendFileSync(live, `${ev(`busy-${written}`)}\n`);
        await sleep(200);
      }
    })();
    await waitFor('the first busy event committed', async () => (await fileRecords()) >= 11, 30_000, 20);
    const beatsAtStart = await metric(d, 'sealtrail_heartbeats_total');
    await writer;
    await waitFor('every busy event committed', async () => (await fileRecords()) === 10 + N, 30_000, 20);
    expect(await metric(d, 'sealtrail_heartbeats_total')).toBe(beatsAtStart);

    await waitFor('the busy events at the collector', async () => (await queryAll(d, '&event_type=tool_invoked')).length === 10 + N, 30_000, 100);
    const items = await contiguous(d);
    const busy = items.filter((i) => String(i.record.details?.k).startsWith('busy-'));
    expect(busy.map((i) => i.record.details.k)).toEqual(Array.from({ length: N }, (_, i) => `busy-${i}`));
    const [first, last] = [busy[0].seq as number, busy[N - 1].seq as number];
    const between = items.filter((i) => i.seq > first && i.seq < last);
    expect(between.filter((i) => i.record.event_type === 'heartbeat')).toEqual([]);
    expect(between.every((i) => i.record.source === 'traces')).toBe(true);

    // idle again: heartbeats resume
    await waitFor('a heartbeat after the busy period', async () => (await metric(d, 'sealtrail_heartbeats_total')) > beatsAtStart, 30_000, 100);
    await waitFor(
      'that heartbeat at the collector, after the last busy event',
      async () => (await heartbeatsAtCollector(d)).some((h) => h.seq > last),
      30_000,
      100,
    );
    expect((await stop(sidecar!)).code).toBe(0);
    sidecar = undefined;
    const r = await runCli(['verify', '--url', d.collectorUrl, '--keys', d.keys, '--token', d.token]);
    expect(r.code).toBe(0);
  });
});

describe('heartbeat_interval 0', () => {
  let d: Deployment;
  let collector: Proc | undefined;
  let sidecar: Proc | undefined;

  afterAll(async () => {
    if (sidecar) await stop(sidecar, 'SIGKILL');
    if (collector) await stop(collector, 'SIGKILL');
  });

  it('writes no heartbeat and signs no new checkpoint while idle', async () => {
    d = await makeDeployment({ heartbeat: '0', prefix: 'st-hb0-' });
    collector = await startCollectorProc(d);
    sidecar = await startSidecarProc(d);
    writeFileSync(join(d.traces, 'agent.jsonl'), Array.from({ length: 10 }, (_, i) => `${ev(`quiet-${i}`)}\n`).join(''));
    await waitFor('10 events at the collector', async () => (await treeSize(d)) === 10, 30_000, 100);
    await waitFor('nothing left to ship', async () => (await metric(d, 'sealtrail_unanchored_records')) === 0, 30_000, 100);
    const before = await checkpoints(d);
    expect(before.length).toBeGreaterThan(0);
    expect(before[before.length - 1]!.tree_size).toBe(10);

    await sleep(3_000);
    expect(await metric(d, 'sealtrail_heartbeats_total')).toBe(0);
    expect(await heartbeatsAtCollector(d)).toEqual([]);
    expect(await checkpoints(d)).toEqual(before);
    const items = await contiguous(d);
    expect(items).toHaveLength(10);
    expect(items.every((i) => i.record.source === 'traces')).toBe(true);
    expect((await stop(sidecar)).code).toBe(0);
    sidecar = undefined;
  });
});
