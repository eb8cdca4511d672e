import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditClient, ClientError, EventRejectedError, toolCall, type EmitResult } from '../../src/client/index.js';
import type { ConnectionError } from '../../src/client/errors.js';
import { ClientSidecar, type StoredRecord } from '../helpers/client-sidecar.js';
import { stop, type Proc } from '../helpers/procs.js';

/**
 * AuditClient over the socket source of a real sidecar process
 * (`sealtrail sidecar --config`), its buffer read back with better-sqlite3:
 * acks are durable and carry the record's seq; a refused line rejects its
 * emit with the sidecar's code; a SIGKILLed sidecar loses nothing the
 * client was not told about (every event is acked after the restart, every
 * event_id is in the buffer); failClosed rejects in time; a full queue
 * rejects at once.
 */

let sc: ClientSidecar;
let dir: string;
let sock: string;
let sidecar: Proc | undefined;

beforeAll(async () => {
  sc = await ClientSidecar.create({
    prefix: 'sealtrail-client-socket-',
    stream: 'client-it',
    sources: (d) => [`{ id: sock, type: socket, path: ${join(d, 'events.sock')} }`],
    ready: () => existsSync(sock),
  });
  dir = sc.dir;
  sock = join(dir, 'events.sock');
  sidecar = await startSidecar();
});

afterAll(async () => {
  // dispose() sends SIGCONT first: a test may have left the sidecar stopped
  await sc?.dispose();
});

const startSidecar = (): Promise<Proc> => sc.start();
/** Every record the sidecar stored: those shipped to the collector and those still in the buffer, by seq. */
const allRecords = (): StoredRecord[] => sc.allRecords();
const quarantine = () => sc.quarantine<{ source: string; reason: string }>('source, reason');

const fast = { initialDelayMs: 20, maxDelayMs: 200 };
const ev = (i: number, type = 'tool_invoked') => toolCall({ event_type: type, tool: { name: 'lookup', arguments: { i } }, actor: { id: 'agent-1', type: 'agent' }, session_id: 's-1' });

/** Nested arrays deeper than the redaction max_depth (64): only the sidecar refuses them. */
const tooDeep = () => JSON.parse(`${'['.repeat(80)}${']'.repeat(80)}`) as unknown;

describe('AuditClient over the socket source', () => {
  it('resolves each emit with its seq only once the record is in the buffer; seqs increase in emit order; close() flushes', async () => {
    const client = new AuditClient({ socket: sock });
    const settled: boolean[] = [];
    const emits = Array.from({ length: 300 }, (_, i) =>
      client.emit(ev(i, 'acked_in_order')).then((r) => {
        settled[i] = true;
        return r;
      }),
    );
    const first = await emits[0]!;
    // Durable when answered: the record is stored (in the buffer, or already shipped from it) the moment emit resolves.
    expect(allRecords().find((r) => r.seq === first.seq)?.event_id).toBe(first.event_id);
    await client.close();
    expect(settled.filter(Boolean)).toHaveLength(300);
    const results = await Promise.all(emits);
    const seqs = results.map((r) => r.seq!);
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBeGreaterThan(seqs[i - 1]!);
    expect(new Set(results.map((r) => r.event_id)).size).toBe(300);
    const bySeq = new Map(allRecords().map((r) => [r.seq, r]));
    for (const r of results) expect(bySeq.get(r.seq!)).toMatchObject({ event_id: r.event_id, event_type: 'acked_in_order' });
    await expect(client.emit(ev(0))).rejects.toMatchObject({ code: 'client_closed' });
  });

  it("rejects a refused line with the sidecar's code, does not resend it, and stores the lines around it", async () => {
    // maxDepth above the ruleset's max_depth (64): the client lets it through, the sidecar refuses it
    const client = new AuditClient({ socket: sock, maxDepth: 1000 });
    const before = client.emit(ev(1, 'around_refused'));
    const refused = client.emit({ event_type: 'deep', details: { v: tooDeep() } });
    const after = client.emit(ev(2, 'around_refused'));
    const err = await refused.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(EventRejectedError);
    expect(err).toMatchObject({ code: 'client_event_refused', reason: 'redact_too_deep' });
    expect((err as EventRejectedError).eventId).toMatch(/^[0-9a-f-]{36}$/);
    const [b, a] = await Promise.all([before, after]);
    expect(a.seq).toBe(b.seq! + 1);
    await client.close();
    expect(quarantine().filter((q) => q.source === 'sock' && q.reason === 'redact_too_deep')).toHaveLength(1);
    expect(allRecords().filter((r) => r.event_type === 'deep')).toEqual([]);
  });

  it('rejects at once with client_queue_full once maxQueue events wait, never dropping one silently', async () => {
    const client = new AuditClient({ socket: join(dir, 'nobody-listens.sock'), maxQueue: 3, reconnect: fast });
    const waiting = [0, 1, 2].map((i) => client.emit(ev(i)).catch((e: unknown) => e));
    const t0 = Date.now();
    const full = await client.emit(ev(3)).catch((e: unknown) => e);
    expect(Date.now() - t0).toBeLessThan(100);
    expect(full).toBeInstanceOf(ClientError);
    expect(full).toMatchObject({ code: 'client_queue_full' });
    expect((full as Error).message).toContain('maxQueue 3');
    expect(client.pending).toBe(3);
    // Giving up on close rejects the waiting emits as not known to be stored, and close says so.
    await expect(client.close({ timeoutMs: 0 })).rejects.toMatchObject({ code: 'client_flush_timeout' });
    for (const w of await Promise.all(waiting)) expect(w).toMatchObject({ code: 'client_closed' });
  });

  it('failClosed: with no sidecar listening, emit rejects with client_ack_timeout after ackTimeoutMs while reconnects go on', async () => {
    const failures: string[] = [];
    const client = new AuditClient({
      socket: join(dir, 'absent.sock'),
      failClosed: true,
      ackTimeoutMs: 400,
      reconnect: fast,
      onConnectionError: (e: ConnectionError) => failures.push(e.reason),
    });
    const t0 = Date.now();
    const err = await client.emit(ev(0)).catch((e: unknown) => e);
    const took = Date.now() - t0;
    expect(err).toMatchObject({ code: 'client_ack_timeout' });
    expect((err as Error).message).toContain('ackTimeoutMs (400 ms)');
    expect(took).toBeGreaterThanOrEqual(390);
    expect(took).toBeLessThan(2_000);
    expect(failures.length).toBeGreaterThan(0);
    expect(failures.every((f) => f === 'ENOENT')).toBe(true);
    expect(client.pending).toBe(0);
    await client.close();
  });

  it('failClosed: with the sidecar stopped (SIGSTOP) mid-connection, emit rejects in time; the client works again once it runs', async () => {
    const client = new AuditClient({ socket: sock, failClosed: true, ackTimeoutMs: 400, reconnect: fast });
    await client.emit(ev(0, 'fail_closed')); // connected
    sidecar!.child.kill('SIGSTOP');
    let timedOut: unknown;
    let id: string | undefined;
    try {
      const t0 = Date.now();
      timedOut = await client.emit(ev(1, 'fail_closed_unanswered')).catch((e: unknown) => e);
      const took = Date.now() - t0;
      expect(took).toBeGreaterThanOrEqual(390);
      expect(took).toBeLessThan(2_000);
      id = (timedOut as ClientError).eventId;
    } finally {
      sidecar!.child.kill('SIGCONT');
    }
    expect(timedOut).toMatchObject({ code: 'client_ack_timeout' });
    const next = await client.emit(ev(2, 'fail_closed'));
    expect(next.seq).toBeGreaterThan(0);
    await client.close();
    // The line was written before the timeout, so the sidecar may have stored it once; the client never resent it.
    expect(allRecords().filter((r) => r.event_id === id).length).toBeLessThanOrEqual(1);
  });

  it('an idle connection the sidecar closed (SIGTERM, restart) is replaced on the next emit', async () => {
    const client = new AuditClient({ socket: sock, reconnect: fast });
    const before = await client.emit(ev(0, 'across_restart'));
    await stop(sidecar!);
    sidecar = await startSidecar();
    const after = await client.emit(ev(1, 'across_restart'));
    expect(after.seq).toBeGreaterThan(before.seq!);
    await client.close();
  });

  it('SIGKILL with lines in flight: the client reconnects to the restarted sidecar and every event ends up acked and stored exactly once', async () => {
    const N = 3000;
    const drops: string[] = [];
    const client = new AuditClient({ socket: sock, reconnect: fast, onConnectionError: (e: ConnectionError) => drops.push(e.reason) });
    let pendingAtKill = -1;
    let killed!: () => void;
    const killedNow = new Promise<void>((r) => (killed = r));
    const emits: Array<Promise<EmitResult>> = [];
    for (let i = 0; i < N; i++) {
      const p = client.emit(ev(i, 'survives_kill'));
      if (i === 99) {
        // Killed the moment the 100th ack arrives: later lines are written, unanswered, or not yet sent.
        void p.then(() => {
          pendingAtKill = client.pending;
          sidecar!.child.kill('SIGKILL');
          killed();
        });
      }
      emits.push(p);
    }
    await killedNow;
    await sidecar!.exited;
    expect(pendingAtKill).toBeGreaterThan(0);
    sidecar = await startSidecar();
    const results = await Promise.all(emits);
    expect(drops.length).toBeGreaterThan(0);
    await client.close();

    const records = allRecords();
    // Gapless seqs 0..n-1: nothing the sidecar stored is missing from what is read here.
    expect(records.map((r) => r.seq)).toEqual(records.map((_, i) => i));
    const ids = new Set(records.map((r) => r.event_id));
    const missing = results.filter((r) => !ids.has(r.event_id));
    expect(missing).toEqual([]);
    // Each emit's seq holds that very event (a resent line resolves with the seq of the copy that was acked).
    const bySeq = new Map(records.map((r) => [r.seq, r]));
    for (const r of results) expect(bySeq.get(r.seq!)?.event_id).toBe(r.event_id);
    // Each event stored exactly once: a resent line the sidecar had committed is answered as a duplicate (by event_id).
    const ours = records.filter((r) => r.event_type === 'survives_kill');
    const counts = new Map<string, number>();
    for (const r of ours) counts.set(r.event_id!, (counts.get(r.event_id!) ?? 0) + 1);
    expect(counts.size).toBe(N);
    expect(ours).toHaveLength(N);
  });
});
