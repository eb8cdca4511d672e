import { createHash } from 'node:crypto';
import { appendFileSync, copyFileSync, existsSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
  COLLECTOR_STREAM,
} from '../helpers/deployment.js';
import { runCli, waitFor, type Proc } from '../helpers/procs.js';

const TOTAL = 10_000;

function event(n: number): string {
  return JSON.stringify({
    event_type: n % 10 === 0 ? 'approval_requested' : 'tool_invoked',
    time: new Date(Date.UTC(2026, 10, 22, 12, 0, 0) + n).toISOString(),
    tenant: n % 2 ? 'acme' : 'globex',
    actor: { id: `user-${n % 50}`, type: 'user' },
    agent: { id: 'agent-1', name: 'support-bot' },
    tool: { name: 'send_email', arguments: { to: `person${n}@example.com`, subject: `ticket ${n}` } },
    outcome: n % 7 === 0 ? 'denied' : 'success',
    session_id: `s-${n % 100}`,
    details: { n, note: `contact me at canary${n}@mail.example.org` },
  });
}

describe('trace file to verified query, across real processes', () => {
  let d: Deployment;
  let collector: Proc;
  let sidecar: Proc;
  let checkpointFile: string;

  beforeAll(async () => {
    d = await makeDeployment();
    collector = await startCollectorProc(d);
    sidecar = await startSidecarProc(d);
  });

  afterAll(async () => {
    if (sidecar) await stop(sidecar, 'SIGKILL');
    if (collector) await stop(collector, 'SIGKILL');
  });

  it('delivers 10,000 events written across a rename rotation exactly once, redacted', async () => {
    const live = join(d.traces, 'agent.jsonl');
    for (let start = 0; start < TOTAL; start += 500) {
      let chunk = '';
      for (let n = start; n < start + 500; n++) chunk += `${event(n)}\n`;
      appendFileSync(live, chunk);
      if (start + 500 === TOTAL / 2) {
        renameSync(live, join(d.traces, 'agent.jsonl.1'));
        writeFileSync(live, '');
      }
    }
    await waitFor('all records at the collector', async () => (await treeSize(d)) >= TOTAL, 90_000, 250);
    const items = await queryAll(d);
    expect(items).toHaveLength(TOTAL);
    const seen = new Set<number>();
    for (const it of items) seen.add(it.record.details.n);
    expect(seen.size).toBe(TOTAL);
    const text = JSON.stringify(items);
    expect(text).not.toMatch(/@example\.com|@mail\.example\.org/);
    expect(items[0].record.tool.arguments.to).toBe('[REDACTED:email]');
    expect(items[0].record.redaction.hits.email).toBe(2);
    // filters reach the same data
    const denied = await queryAll(d, '&outcome=denied&tenant=acme');
    expect(denied.length).toBe(items.filter((i) => i.record.outcome === 'denied' && i.record.tenant === 'acme').length);
    expect(denied.length).toBeGreaterThan(0);
  });

  it('sealtrail verify --url passes against the live collector', async () => {
    const r = await runCli(['verify', '--url', d.collectorUrl, '--keys', d.keys, '--token', d.token]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`${TOTAL} records`));
    expect(r.stdout).toMatch(/HMAC chain checked/);
    // an auditor keeps the newest signed checkpoint
    const { body } = await getJson(`${d.collectorUrl}/v1/streams`, d.token);
    checkpointFile = join(d.dir, 'latest.checkpoint');
    writeFileSync(checkpointFile, sidecarItems(body.streams as Array<{ stream: string; last_checkpoint: string }>)[0]!.last_checkpoint);
  });

  it('stops both programs with exit 0 on SIGTERM, and verify --db passes on the store', async () => {
    expect((await stop(sidecar)).code).toBe(0);
    expect((await stop(collector)).code).toBe(0);
    const r = await runCli(['verify', '--db', d.collectorDb, '--keys', d.keys, '--hmac-key', join(d.keys, 'hmac.key')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/HMAC chain checked/);
    // the drained sidecar buffer verifies too (its newest checkpoint and frontier remain)
    const buffer = await runCli(['verify', '--db', d.bufferDb, '--keys', d.keys]);
    expect(buffer.code).toBe(0);
  });

  function tamperedCopy(name: string, sql: (db: Database.Database) => void): string {
    const copy = join(d.dir, name);
    copyFileSync(d.collectorDb, copy);
    for (const ext of ['-wal', '-shm']) if (existsSync(d.collectorDb + ext)) copyFileSync(d.collectorDb + ext, copy + ext);
    const db = new Database(copy);
    const triggers = db.prepare("SELECT name FROM sqlite_master WHERE type = 'trigger'").all() as { name: string }[];
    for (const t of triggers) db.exec(`DROP TRIGGER ${t.name}`);
    sql(db);
    db.close();
    return copy;
  }

  it('fails naming the seq when one byte of one stored record changes', async () => {
    const seq = 4321;
    const copy = tamperedCopy('one-byte.db', (db) => {
      const row = db.prepare('SELECT canonical FROM records WHERE seq = ?').get(seq) as { canonical: string };
      const i = row.canonical.indexOf('send_email') + 5;
      const changed = row.canonical.slice(0, i) + 'E' + row.canonical.slice(i + 1);
      expect(Buffer.byteLength(changed)).toBe(Buffer.byteLength(row.canonical));
      db.prepare('UPDATE records SET canonical = ? WHERE seq = ?').run(changed, seq);
    });
    const r = await runCli(['verify', '--db', copy, '--keys', d.keys]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`seq ${seq}`);
  });

  it('fails against the signed checkpoint when the changed record\'s stored leaf is forged too', async () => {
    const seq = 777;
    const copy = tamperedCopy('forged-leaf.db', (db) => {
      const row = db.prepare('SELECT canonical FROM records WHERE seq = ?').get(seq) as { canonical: string };
      const changed = row.canonical.replace('"name":"send_email"', '"name":"drop_tables"');
      expect(changed).not.toBe(row.canonical);
      const leaf = createHash('sha256').update(Buffer.from([0])).update(changed).digest();
      db.prepare('UPDATE records SET canonical = ?, leaf = ? WHERE seq = ?').run(changed, leaf, seq);
    });
    const r = await runCli(['verify', '--db', copy, '--keys', d.keys]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/root|chain/);
  });

  it('fails against the signed checkpoint when the last batch is dropped', async () => {
    const copy = tamperedCopy('dropped-records.db', (db) => {
      // The sidecar's stream (the collector's read-audit stream is in the store too).
      db.prepare('DELETE FROM records WHERE stream != ? AND batch = (SELECT MAX(batch) FROM batches WHERE stream != ?)').run(
        COLLECTOR_STREAM,
        COLLECTOR_STREAM,
      );
    });
    const r = await runCli(['verify', '--db', copy, '--keys', d.keys]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/records_missing|signs a tree of 10000 records/);
  });

  it('fails against an auditor-held checkpoint when the last batch and its checkpoint are both dropped', async () => {
    const copy = tamperedCopy('dropped-batch.db', (db) => {
      // The sidecar's stream (the collector's read-audit stream is in the store too).
      const C = COLLECTOR_STREAM;
      const last = db.prepare('SELECT MAX(batch) AS b FROM batches WHERE stream != ?').get(C) as { b: number };
      db.prepare('DELETE FROM records WHERE stream != ? AND batch = ?').run(C, last.b);
      db.prepare('DELETE FROM checkpoints WHERE stream != ? AND batch = ?').run(C, last.b);
      db.prepare('DELETE FROM batches WHERE stream != ? AND batch = ?').run(C, last.b);
      db.prepare('DELETE FROM stream_heads WHERE stream != ? AND next_batch = ?').run(C, last.b + 1);
    });
    const without = await runCli(['verify', '--db', copy, '--keys', d.keys]);
    expect(without.code).toBe(0); // a consistent truncation is only detectable against an outside checkpoint
    const r = await runCli(['verify', '--db', copy, '--keys', d.keys, '--checkpoint', checkpointFile]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/signs a tree of 10000 records but only \d+ are present/);
  });

  it('exits 2 for usage errors', async () => {
    expect((await runCli(['verify'])).code).toBe(2);
    expect((await runCli(['verify', '--db', join(d.dir, 'nope.db'), '--keys', d.keys])).code).toBe(2);
    expect((await runCli(['verify', '--bogus'])).code).toBe(2);
    expect((await runCli(['frobnicate'])).code).toBe(2);
  });
});
