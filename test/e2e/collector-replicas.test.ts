import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair } from '../../src/core/note.js';
import type { SealedBatch } from '../../src/core/types.js';
import { BatchBuilder } from '../helpers/collector-batches.js';
import { ADMIN_TOKEN, getJson, postJson, type JsonResponse } from '../helpers/collector-server.js';
import { createTestDatabase, type TestDatabase, postgresCollectorYaml } from '../helpers/postgres.js';
import { freePort, runCli, sleep, spawnCli, stop, waitFor, type Proc } from '../helpers/procs.js';
import { prng } from '../helpers/prng.js';

/**
 * Two collector processes (the built CLI) on one Postgres database, started
 * together (so their migrations race too), fed the same and competing
 * batches at the same moment. Whatever the interleaving, each batch number
 * is stored once, the loser hears "duplicate" or 409, and neither replica
 * ever shows a stream's tree shrinking or two different trees of one size.
 */

const HMAC_KEY = Buffer.alloc(32, 7);
const STREAMS = ['rep-a', 'rep-b', 'rep-c'];
const ROUNDS = 16;

interface Collector {
  proc: Proc;
  url: string;
}

describe('collector replicas on one Postgres', () => {
  let db: TestDatabase;
  let dir: string;
  let vkeyFile: string;
  let hmacFile: string;
  let skey: string;
  let vkey: string;
  const collectors: Collector[] = [];

  async function startCollector(i: number): Promise<Collector> {
    const port = await freePort();
    const config = join(dir, `collector-${i}.yaml`);
    writeFileSync(
      config,
      `${postgresCollectorYaml(db, port)}  auth: { admin_tokens: ["${ADMIN_TOKEN}"] }
  streams: [{ match: "rep-*", vkey_file: ${vkeyFile} }]
  hmac_keys: [{ id: k1, file: ${hmacFile} }]
  # This suite counts and verifies the sidecar streams only; read auditing
  # (each replica's own stream) is covered by test/integration/collector-read-audit.test.ts.
  read_audit: { enabled: false }
`,
    );
    const proc = spawnCli(['collector', '--config', config]);
    return { proc, url: `http://127.0.0.1:${port}` };
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    dir = mkdtempSync(join(tmpdir(), 'sealtrail-replicas-'));
    ({ skey, vkey } = generateKeyPair('replicas'));
    vkeyFile = join(dir, 'sidecar.vkey');
    hmacFile = join(dir, 'hmac.key');
    writeFileSync(vkeyFile, `${vkey}\n`);
    writeFileSync(hmacFile, `${HMAC_KEY.toString('hex')}\n`, { mode: 0o600 });
    // Both at once: their migrations meet at the advisory lock.
    collectors.push(...(await Promise.all([startCollector(1), startCollector(2)])));
    for (const c of collectors) {
      await waitFor('collector /healthz', async () => {
        if (c.proc.child.exitCode !== null) throw new Error(`collector exited: ${c.proc.stderr()}`);
        return (await getJson(c.url, '/healthz', null)).status === 200;
      });
    }
  });

  afterAll(async () => {
    for (const c of collectors) await stop(c.proc);
    await db?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('stores each batch number once and never forks or rolls back a stream', async () => {
    const [c1, c2] = collectors as [Collector, Collector];
    const rnd = prng(7);
    const builders = new Map(STREAMS.map((s) => [s, new BatchBuilder({ stream: s, skey, hmacKey: HMAC_KEY })]));
    /** the canonical text of every stored seq, per stream, from the winners */
    const stored = new Map<string, string[]>(STREAMS.map((s) => [s, []]));

    // Watches both replicas throughout: per replica and stream the tree
    // size may only grow, and one tree size always has one checkpoint.
    const observations: { collector: number; stream: string; size: number; checkpoint: string | null }[] = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        for (const [i, c] of [c1, c2].entries()) {
          const res = await getJson(c.url, '/v1/streams');
          if (res.status !== 200) continue;
          for (const s of res.body.streams as { stream: string; tree_size: number; last_checkpoint: string | null }[]) {
            observations.push({ collector: i, stream: s.stream, size: s.tree_size, checkpoint: s.last_checkpoint });
          }
        }
        await sleep(5);
      }
    })();

    const statuses = { same: new Map<string, number>(), competing: new Map<string, number>() };
    const count = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);

    for (let round = 0; round < ROUNDS; round++) {
      await Promise.all(
        STREAMS.map(async (stream) => {
          const b = builders.get(stream)!;
          const n = 1 + Math.floor(rnd() * 40);
          const swap = rnd() < 0.5;
          if (round % 2 === 0) {
            // The same batch to both replicas at once (a sidecar retry racing its first attempt).
            const batch = b.next(n);
            const res = await Promise.all([postJson(c1.url, batch), postJson(c2.url, batch)]);
            for (const r of res) count(statuses.same, `${r.status}${r.body?.duplicate ? ' duplicate' : ''}`);
            expect(res.map((r) => r.status), res.map((r) => r.text).join('\n')).toEqual([200, 200]);
            expect(res.filter((r) => r.body.duplicate === true)).toHaveLength(1);
            for (const r of res) expect(r.body.ack).toEqual({ stream, batch: batch.batch, tree_size: batch.last_seq + 1 });
            stored.get(stream)!.push(...batch.records.map((r) => r.canonical));
          } else {
            // Competing batches with the same number: same key, different records.
            const alt = b.clone();
            const mine = b.next(n);
            const theirs = alt.next(1 + Math.floor(rnd() * 40), { fields: () => ({ outcome: 'failure', tenant: 'other' }) });
            const [toC1, toC2] = swap ? [theirs, mine] : [mine, theirs];
            const res = await Promise.all([postJson(c1.url, toC1), postJson(c2.url, toC2)]);
            for (const r of res) count(statuses.competing, `${r.status}`);
            const won = res.filter((r) => r.status === 200);
            const lost = res.filter((r) => r.status !== 200);
            expect(won, res.map((r) => r.text).join('\n')).toHaveLength(1);
            expect(lost[0]!.status).toBe(409);
            expect(lost[0]!.body.error.code).toBe('batch_fork');
            expect(won[0]!.body.duplicate).toBeUndefined();
            const winnerIsMine = (res[0]!.status === 200) === (toC1 === mine);
            const winner: SealedBatch = winnerIsMine ? mine : theirs;
            const loser: SealedBatch = winnerIsMine ? theirs : mine;
            if (!winnerIsMine) builders.set(stream, alt);
            stored.get(stream)!.push(...winner.records.map((r) => r.canonical));
            // Afterwards both replicas agree: the winner is a duplicate, the loser a fork.
            for (const c of [c1, c2]) {
              const again = await postJson(c.url, winner);
              expect([again.status, again.body.duplicate]).toEqual([200, true]);
              expect((await postJson(c.url, loser)).status).toBe(409);
            }
          }
        }),
      );
    }
    watching = false;
    await watcher;

    // Both kinds of race happened, each answered as specified.
    expect(statuses.same.get('200')).toBe((ROUNDS / 2) * STREAMS.length);
    expect(statuses.same.get('200 duplicate')).toBe((ROUNDS / 2) * STREAMS.length);
    expect(statuses.competing.get('200')).toBe((ROUNDS / 2) * STREAMS.length);
    expect(statuses.competing.get('409')).toBe((ROUNDS / 2) * STREAMS.length);

    // Never rolled back, never two trees of one size.
    expect(observations.length).toBeGreaterThan(STREAMS.length * 4);
    const lastSize = new Map<string, number>();
    const checkpointAt = new Map<string, string | null>();
    for (const o of observations) {
      const k = `${o.collector}/${o.stream}`;
      expect(o.size, `${k} went from ${lastSize.get(k)} to ${o.size}`).toBeGreaterThanOrEqual(lastSize.get(k) ?? 0);
      lastSize.set(k, o.size);
      const at = `${o.stream}@${o.size}`;
      if (checkpointAt.has(at)) expect(o.checkpoint, at).toBe(checkpointAt.get(at));
      checkpointAt.set(at, o.checkpoint);
    }

    // Both replicas serve the same, complete, unforked streams.
    for (const stream of STREAMS) {
      const want = stored.get(stream)!;
      for (const c of [c1, c2]) {
        const got: string[] = [];
        let from: number | null = 0;
        while (from !== null) {
          const res: JsonResponse = await getJson(c.url, `/v1/streams/${stream}/records?from_seq=${from}&limit=500`);
          expect(res.status).toBe(200);
          got.push(...(res.body.records as { seq: number; canonical: string }[]).map((r) => r.canonical));
          from = res.body.next_from_seq;
        }
        expect(got).toEqual(want);
        const cps = await getJson(c.url, `/v1/streams/${stream}/checkpoints`);
        expect(cps.body.checkpoints).toHaveLength(ROUNDS);
      }
    }

    // An auditor's check from the outside passes against either replica.
    for (const c of [c1, c2]) {
      const r = await runCli(['verify', '--url', c.url, '--token', ADMIN_TOKEN, '--vkey', vkeyFile, '--hmac-key', hmacFile]);
      expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
      for (const s of STREAMS) expect(r.stdout).toContain(s);
    }

    // The fork alerts were raised, and no log line holds a record body or the database URL's secrets.
    const logs = c1.proc.stderr() + c2.proc.stderr();
    expect(logs).toContain('"alert":"batch_fork"');
    expect(logs).not.toContain('"tenant":"other"');
    expect(logs).toMatch(/postgres schema is current/);
  });

  it('the second collector without migrate_url starts on the migrated schema; a fresh database refuses it clearly', async () => {
    const port = await freePort();
    const config = join(dir, 'no-migrate.yaml');
    const other = await createTestDatabase();
    try {
      writeFileSync(
        config,
        `collector:\n  listen: 127.0.0.1:${port}\n  store: { type: postgres, url: "${other.appUrl}" }\n  auth: { admin_tokens: ["${ADMIN_TOKEN}"] }\n  read_audit: { enabled: false }\n`,
      );
      const r = await runCli(['collector', '--config', config]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/store_schema_missing/);
      expect(r.stderr).toMatch(/migrate_url/);
    } finally {
      await other.drop();
    }

    writeFileSync(
      config,
      `collector:\n  listen: 127.0.0.1:${port}\n  store: { type: postgres, url: "${db.appUrl}" }\n  auth: { admin_tokens: ["${ADMIN_TOKEN}"] }\n  read_audit: { enabled: false }\n`,
    );
    const p = spawnCli(['collector', '--config', config]);
    try {
      const url = `http://127.0.0.1:${port}`;
      await waitFor('third collector /healthz', async () => {
        if (p.child.exitCode !== null) throw new Error(`collector exited: ${p.stderr()}`);
        return (await getJson(url, '/healthz', null)).status === 200;
      });
      const streams = await getJson(url, '/v1/streams');
      expect((streams.body.streams as { stream: string }[]).map((s) => s.stream)).toEqual(STREAMS);
    } finally {
      expect((await stop(p)).code).toBe(0);
    }
  });
});
