import net from 'node:net';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditClient, toolCall, type EmitResult } from '../../src/client/index.js';
import { makeDeployment, queryAll, startCollectorProc, startSidecarProc, stop, treeSize, type Deployment } from '../helpers/deployment.js';
import { waitFor, type Proc } from '../helpers/procs.js';

/**
 * The sidecar is SIGKILLed after committing an AuditClient's events but
 * before any answer reached the client: a Unix-socket proxy between them
 * passes the lines on and holds the answers back. The client sees its
 * connection drop, reconnects to the restarted sidecar and resends; every
 * resend is answered as a duplicate with its first seq, and the real
 * collector holds each event exactly once.
 */
class AnswerHoldingProxy {
  holdAnswers = true;
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();

  constructor(readonly path: string, upstream: string) {
    this.server = net.createServer((down) => {
      const up = net.connect(upstream);
      for (const s of [down, up]) {
        this.sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => {
          this.sockets.delete(s);
          down.destroy();
          up.destroy();
        });
      }
      down.on('data', (d) => up.write(d));
      up.on('data', (d) => {
        if (!this.holdAnswers) down.write(d);
      });
    });
  }

  listen(): Promise<void> {
    return new Promise((resolve) => this.server.listen(this.path, resolve));
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

describe('AuditClient when the answers are lost with the sidecar', () => {
  let d: Deployment;
  let collector: Proc | undefined;
  let sidecar: Proc | undefined;
  let proxy: AnswerHoldingProxy;

  beforeAll(async () => {
    d = await makeDeployment({ extraSources: (dir) => [`{ id: sock, type: socket, path: ${join(dir, 's.sock')} }`], prefix: 'st-lost-' });
    collector = await startCollectorProc(d);
    sidecar = await startSidecarProc(d);
    proxy = new AnswerHoldingProxy(join(d.dir, 'proxy.sock'), join(d.dir, 's.sock'));
    await proxy.listen();
  });

  afterAll(async () => {
    await proxy?.close();
    if (sidecar) await stop(sidecar, 'SIGKILL');
    if (collector) await stop(collector, 'SIGKILL');
  });

  async function ingested(): Promise<number> {
    const text = await (await request(`${d.telemetryUrl}/metrics`)).body.text();
    return Number(/^sealtrail_records_ingested_total\{source="sock"\} (\d+)/m.exec(text)?.[1] ?? 0);
  }

  it('resends after reconnecting; each resend is a duplicate with its first seq; the collector holds every event once', async () => {
    const client = new AuditClient({ socket: proxy.path, reconnect: { initialDelayMs: 20, maxDelayMs: 200 } });
    const ev = (i: number) => toolCall({ tool: { name: 'lookup', arguments: { i } }, actor: { id: 'agent-1', type: 'agent' }, session_id: 'lost-acks' });
    const settled: EmitResult[] = [];
    const emits = Array.from({ length: 20 }, (_, i) => client.emit(ev(i)).then((r) => (settled[i] = r)));

    await waitFor('20 records committed by the sidecar', async () => (await ingested()) >= 20, 30_000, 20);
    expect(settled.filter(Boolean)).toHaveLength(0); // no answer got through
    await stop(sidecar!, 'SIGKILL');
    sidecar = undefined;
    proxy.holdAnswers = false;
    sidecar = await startSidecarProc(d);

    const results = await Promise.all(emits);
    expect(results.every((r) => r.duplicate === true)).toBe(true);
    const seqs = results.map((r) => r.seq!);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(20);
    const fresh = await client.emit(ev(20));
    expect(fresh.duplicate).toBeUndefined();
    expect(fresh.seq).toBeGreaterThan(seqs[19]!);
    await client.close();

    await waitFor('the fresh event at the collector', async () => (await treeSize(d)) > fresh.seq!, 60_000, 250);
    const items = (await queryAll(d, '&event_type=tool_invoked')) as Array<{ seq: number; record: { event_id: string } }>;
    expect(items.map((x) => x.record.event_id)).toEqual([...results, fresh].map((r) => r.event_id));
    // each stored once, under the seq its first send was answered with
    expect(items.map((x) => x.seq)).toEqual([...seqs, fresh.seq]);
  });
});
