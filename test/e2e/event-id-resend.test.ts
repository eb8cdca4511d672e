import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDeployment, queryAll, startCollectorProc, startSidecarProc, stop, treeSize, type Deployment } from '../helpers/deployment.js';
import { waitFor, type Proc } from '../helpers/procs.js';
import { SocketClient } from '../helpers/socket-client.js';

/**
 * A client that got no answer resends; with an event_id the resend is
 * answered with the first send's seq and the collector holds the event
 * once, even when the sidecar was SIGKILLed between the commit and the
 * answer reaching the client.
 */
describe('event_id: resends after a sidecar is killed are stored once', () => {
  let d: Deployment;
  let collector: Proc | undefined;
  let sidecar: Proc | undefined;
  let sockPath: string;

  beforeAll(async () => {
    d = await makeDeployment({ extraSources: (dir) => [`{ id: sock, type: socket, path: ${join(dir, 's.sock')} }`, '{ id: api, type: http }'], prefix: 'st-eid-' });
    sockPath = join(d.dir, 's.sock');
    collector = await startCollectorProc(d);
    sidecar = await startSidecarProc(d);
  });

  afterAll(async () => {
    if (sidecar) await stop(sidecar, 'SIGKILL');
    if (collector) await stop(collector, 'SIGKILL');
  });

  const id = (i: number): string => `0193a1b2-c3d4-7e5f-8a9b-${String(i).padStart(12, '0')}`;
  const line = (i: number): string => JSON.stringify({ event_type: 'tool_invoked', event_id: id(i), actor: { id: 'agent-7', type: 'agent' }, tool: { name: 'search' }, details: { i } });

  it('answers a resend over the socket and over HTTP with the first seq, after a SIGKILL and a restart', async () => {
    const first = await SocketClient.connect(sockPath);
    await first.sendLines([0, 1, 2, 3, 4].map(line));
    await first.waitAnswers(5);
    const seqs = [1, 2, 3, 4, 5].map((n) => first.acks.get(n)!);
    expect(seqs.every((s) => Number.isInteger(s))).toBe(true);
    first.destroy();

    // the answers were read, but as far as a client that crashed with them is concerned they were lost
    await stop(sidecar!, 'SIGKILL');
    sidecar = await startSidecarProc(d);

    const again = await SocketClient.connect(sockPath);
    await again.sendLines([0, 1, 2, 3, 4, 5].map(line));
    await again.waitAnswers(6);
    const answers = again.answers.filter((a) => a.ack !== undefined);
    expect(answers.slice(0, 5)).toEqual(seqs.map((seq, i) => ({ ack: i + 1, seq, duplicate: true })));
    expect(answers[5]).toEqual({ ack: 6, seq: expect.any(Number) });
    await again.end();

    // HTTP: an NDJSON batch resent whole
    const body = [2, 6].map(line).join('\n');
    const post = async () => {
      const res = await request(`${d.telemetryUrl}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body });
      return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
    };
    const one = await post();
    expect(one.status).toBe(202);
    expect(one.body).toMatchObject({ accepted: 2, records: 1, duplicates: [{ index: 0, seq: seqs[2] }] });
    const two = await post();
    expect(two.body).toMatchObject({ accepted: 2, records: 0, first_seq: null, duplicates: [{ index: 0, seq: seqs[2] }, { index: 1, seq: one.body.first_seq }] });

    // seven events, each stored once
    await waitFor('seven records at the collector', async () => (await treeSize(d)) >= 7, 60_000, 250);
    const items = (await queryAll(d, '&event_type=tool_invoked')) as Array<{ record: { event_id: string } }>;
    const ids = items.map((x) => x.record.event_id).sort();
    expect(ids).toEqual([0, 1, 2, 3, 4, 5, 6].map(id));
    const metrics = await (await request(`${d.telemetryUrl}/metrics`)).body.text();
    expect(metrics).toMatch(/sealtrail_events_duplicate_total\{source="sock"\} 5/);
    // the first POST resent one event, the second both
    expect(metrics).toMatch(/sealtrail_events_duplicate_total\{source="api"\} 3/);
  });
});
