/**
 * Full disk under the sidecar's buffer (DESIGN invariant 2 on ENOSPC): the
 * sidecar pauses, says so once, keeps its lines and positions, resumes when
 * space returns, and loses, duplicates and corrupts nothing.
 *
 * The buffer's data_dir is a real tmpfs of 8 or 16 MiB (test/helpers/tmpfs.ts),
 * filled by a file of zeros or by the buffer itself, so the kernel really
 * answers ENOSPC: SQLite's seals and acks fail with SQLITE_FULL, and commits
 * are refused by the buffer (buffer_disk_low) before they would take the room
 * that checkpoints and acks need. Mounting needs root or CAP_SYS_ADMIN; without
 * it these tests fail with a message that says so, rather than pass without
 * having filled a disk. No substitute is used.
 */
import { appendFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { getJson, makeDeployment, queryAll, startCollectorProc, startSidecarProc, stop, treeSize, type Deployment } from '../helpers/deployment.js';
import { runCli, waitFor, type Proc } from '../helpers/procs.js';
import { mountTmpfs, type Tmpfs } from '../helpers/tmpfs.js';

const MiB = 1024 * 1024;

const DISK_FULL_MSG = 'disk full: the buffer cannot take more records; sources hold their lines and positions and retry; nothing is lost or skipped';
const RECOVERED_MSG = 'disk space available again: committing resumed';

/** One trace line; its canonical record is about 600 bytes. */
function line(k: number, via = 'file'): string {
  return `${JSON.stringify({
    event_type: 'tool_invoked',
    actor: { id: `agent-${k % 7}`, type: 'agent' },
    tool: { name: 'lookup', arguments: { k, q: 'q'.repeat(120) } },
    details: { n: k, via, pad: 'p'.repeat(150) },
  })}\n`;
}

function lines(from: number, to: number, via?: string): string {
  let s = '';
  for (let k = from; k < to; k++) s += line(k, via);
  return s;
}

/** One sample of a metric from the sidecar's /metrics, exact label set (e.g. '{reason="disk_full"}'), summed over label sets when `labels` is omitted. */
async function metric(d: Deployment, name: string, labels?: string): Promise<number> {
  const { status, body } = await getJson(`${d.telemetryUrl}/metrics`);
  if (status !== 200) throw new Error(`/metrics answered ${status}`);
  let sum = 0;
  let seen = false;
  for (const l of String(body).split('\n')) {
    const hit = labels === undefined ? l.startsWith(`${name} `) || l.startsWith(`${name}{`) : l.startsWith(`${name}${labels} `);
    if (!hit) continue;
    sum += Number(l.slice(l.lastIndexOf(' ') + 1));
    seen = true;
  }
  return seen ? sum : 0;
}

interface LogLine {
  level: string;
  msg: string;
  [k: string]: unknown;
}

function logs(p: Proc): LogLine[] {
  return p
    .stderr()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);
}

const countMsg = (p: Proc, msg: string): number => logs(p).filter((l) => l.msg === msg).length;

function alive(p: Proc): boolean {
  return p.child.exitCode === null && p.child.signalCode === null;
}

/** Highest seq sealed into a batch, read through a separate read-only connection. */
function sealedThrough(d: Deployment): number {
  const db = new Database(d.bufferDb, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare('SELECT COALESCE(MAX(last_seq), -1) AS s FROM batches').get() as { s: number }).s;
  } finally {
    db.close();
  }
}

/** Every record at the collector: each of `ids` exactly once, seqs 0..n-1 without a gap. */
async function expectExactlyOnce(d: Deployment, expected: ReadonlyArray<string>): Promise<void> {
  const items = await queryAll(d);
  const key = (r: { details: { via: string; n: number } }): string => `${r.details.via}:${r.details.n}`;
  const counts = new Map<string, number>();
  for (const it of items) counts.set(key(it.record), (counts.get(key(it.record)) ?? 0) + 1);
  expect(expected.filter((k) => !counts.has(k))).toEqual([]);
  expect([...counts].filter(([, c]) => c > 1).map(([k]) => k)).toEqual([]);
  expect(items).toHaveLength(expected.length);
  const seqs = items.map((it) => it.record.seq as number).sort((a, b) => a - b);
  expect(seqs).toEqual([...Array(expected.length).keys()]);
  expect(new Set(items.map((it) => it.record.stream)).size).toBe(1);
  expect(await treeSize(d)).toBe(expected.length);
}

async function verifyAll(d: Deployment): Promise<void> {
  const live = await runCli(['verify', '--url', d.collectorUrl, '--keys', d.keys, '--token', d.token]);
  expect(live.code, live.stdout + live.stderr).toBe(0);
}

/** After the sidecar stopped: the buffer verifies and SQLite finds it intact. */
async function verifyBuffer(d: Deployment): Promise<void> {
  const r = await runCli(['verify', '--db', d.bufferDb, '--keys', d.keys]);
  expect(r.code, r.stdout + r.stderr).toBe(0);
  const db = new Database(d.bufferDb, { readonly: true, fileMustExist: true });
  try {
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
  } finally {
    db.close();
  }
}

async function postEvents(d: Deployment, body: string): Promise<{ status: number; retryAfter: unknown; body: any }> {
  const res = await request(`${d.telemetryUrl}/v1/events`, { method: 'POST', body, headers: { 'content-type': 'application/x-ndjson' } });
  const text = await res.body.text();
  return { status: res.statusCode, retryAfter: res.headers['retry-after'], body: JSON.parse(text) };
}

/** A socket client that collects the sidecar's answers. */
function socketClient(path: string): Promise<{ socket: Socket; answers: Array<{ ack?: number; seq?: number; line?: number; error?: unknown }> }> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    const answers: Array<{ ack?: number; seq?: number }> = [];
    let rest = '';
    socket.on('data', (b: Buffer) => {
      rest += b.toString('utf8');
      let i;
      while ((i = rest.indexOf('\n')) >= 0) {
        answers.push(JSON.parse(rest.slice(0, i)));
        rest = rest.slice(i + 1);
      }
    });
    socket.once('connect', () => resolve({ socket, answers }));
    socket.once('error', reject);
  });
}

describe('disk full (ENOSPC) under the sidecar buffer, on a real tmpfs', () => {
  let cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    const todo = cleanups.reverse();
    cleanups = [];
    const errors: unknown[] = [];
    for (const c of todo) {
      try {
        await c();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length) throw errors[0];
  });

  /** A deployment whose sidecar data_dir is a fresh tmpfs of `size` bytes. */
  async function setup(size: number, extraSources?: (dir: string) => readonly string[]): Promise<{ d: Deployment; fs: Tmpfs; filler: string }> {
    const d = await makeDeployment({ prefix: 'sealtrail-diskfull-', sealInterval: '200ms', maxRecords: 100, ...(extraSources ? { extraSources } : {}) });
    cleanups.push(() => rmSync(d.dir, { recursive: true, force: true }));
    const fs = mountTmpfs(join(d.dir, 'sidecar'), size);
    cleanups.push(() => fs.unmount());
    return { d, fs, filler: join(fs.dir, 'filler') };
  }

  function track(p: Proc): Proc {
    cleanups.push(() => stop(p, 'SIGKILL'));
    return p;
  }

  it('pauses when the disk is full, logs it once, holds file, socket and HTTP lines, and resumes without loss when space returns', async () => {
    const sock = (dir: string): string => join(dir, 'events.sock');
    const { d, fs, filler } = await setup(8 * MiB, (dir) => [`{ id: sock, type: socket, path: ${JSON.stringify(sock(dir))} }`, '{ id: api, type: http }']);
    const sidecar = track(await startSidecarProc(d));
    const trace = join(d.traces, 'agent.jsonl');

    // Room for the first 100: committed and sealed before the disk fills.
    writeFileSync(trace, lines(0, 100));
    await waitFor('100 records sealed', async () => (await metric(d, 'sealtrail_records_ingested_total')) === 100 && sealedThrough(d) === 99);

    const filled = fs.fill(filler);
    expect(filled).toBeGreaterThan(0);
    expect(fs.free()).toBe(0);

    // 300 more file lines, in three writes, and 50 over the socket: none can be committed.
    for (let i = 1; i <= 3; i++) appendFileSync(trace, lines(i * 100, (i + 1) * 100));
    const client = await socketClient(sock(d.dir));
    cleanups.push(() => client.socket.destroy());
    client.socket.write(lines(0, 50, 'socket'));

    await waitFor('sealtrail_disk_full = 1', async () => (await metric(d, 'sealtrail_disk_full')) === 1);
    const failedAtFull = await metric(d, 'sealtrail_buffer_commits_failed_total', '{reason="disk_full"}');
    // Retried several times (the file source after ~1 s, the socket source likewise): still one log line.
    await waitFor('commits retried', async () => (await metric(d, 'sealtrail_buffer_commits_failed_total', '{reason="disk_full"}')) >= failedAtFull + 4, 30_000);

    expect(alive(sidecar)).toBe(true);
    expect((await getJson(`${d.telemetryUrl}/healthz`)).status).toBe(200);
    expect(countMsg(sidecar, DISK_FULL_MSG)).toBe(1);
    const fullLine = logs(sidecar).find((l) => l.msg === DISK_FULL_MSG)!;
    expect(fullLine.level).toBe('error');
    expect(['SQLITE_FULL', 'ENOSPC', 'buffer_disk_low']).toContain(fullLine.code);
    expect(fullLine.buffer).toBe(d.bufferDb);
    // Nothing else at error level: no line per retry, no source error, no seal error.
    expect(logs(sidecar).filter((l) => l.level === 'error' || l.level === 'fatal').map((l) => l.msg)).toEqual([DISK_FULL_MSG]);
    expect(countMsg(sidecar, RECOVERED_MSG)).toBe(0);
    // HTTP: refused with 503 and a Retry-After, nothing stored.
    const refused = await postEvents(d, lines(0, 10, 'http'));
    expect(refused.status).toBe(503);
    expect(refused.body.error.code).toBe('commit_failed');
    expect(Number(refused.retryAfter)).toBeGreaterThan(0);
    expect(await metric(d, 'sealtrail_records_ingested_total')).toBe(100);
    expect(await metric(d, 'sealtrail_buffer_records')).toBe(100);
    expect(await metric(d, 'sealtrail_records_quarantined_total')).toBe(0);
    // The socket client is told nothing until its lines are durable.
    expect(client.answers).toEqual([]);

    // Space returns; the collector comes up.
    rmSync(filler);
    const collector = track(await startCollectorProc(d));
    await waitFor('sealtrail_disk_full = 0', async () => (await metric(d, 'sealtrail_disk_full')) === 0, 30_000);
    // The HTTP client retries its refused request: now accepted, once.
    const accepted = await postEvents(d, lines(0, 10, 'http'));
    expect(accepted.status).toBe(202);
    expect(accepted.body.accepted).toBe(10);
    const expected = [
      ...[...Array(400).keys()].map((k) => `file:${k}`),
      ...[...Array(50).keys()].map((k) => `socket:${k}`),
      ...[...Array(10).keys()].map((k) => `http:${k}`),
    ];
    await waitFor('460 records at the collector', async () => (await treeSize(d)) >= 460, 60_000, 200);
    await waitFor('every socket line answered', () => client.answers.length >= 50, 30_000);
    await waitFor('buffer emptied by acks', async () => (await metric(d, 'sealtrail_unanchored_records')) === 0, 30_000);

    expect(countMsg(sidecar, RECOVERED_MSG)).toBe(1);
    expect(countMsg(sidecar, DISK_FULL_MSG)).toBe(1);
    expect(await metric(d, 'sealtrail_records_ingested_total')).toBe(460);
    expect(client.answers.map((a) => a.ack)).toEqual([...Array(50).keys()].map((k) => k + 1));
    await expectExactlyOnce(d, expected);
    // Each socket ack names the seq the collector holds that line under.
    const bySeq = new Map((await queryAll(d)).map((it) => [it.record.seq as number, it.record]));
    for (const a of client.answers) {
      const r = bySeq.get(a.seq!);
      expect(r?.details).toMatchObject({ via: 'socket', n: a.ack! - 1 });
    }
    await verifyAll(d);

    client.socket.end();
    expect((await stop(sidecar)).code).toBe(0);
    await verifyBuffer(d);
    expect((await stop(collector)).code).toBe(0);
  });

  it('un-wedges when the buffer itself filled the disk: new records wait, shipping frees space, reading resumes', async () => {
    // No filler: only the buffer (records, WAL) takes the 16 MiB. Once a WAL-mode
    // SQLite file fills its disk, neither a checkpoint nor the DELETE of an ack can
    // be written, so the buffer must stop taking records while it still has room.
    const { d, fs } = await setup(16 * MiB);
    const sidecar = track(await startSidecarProc(d));
    const trace = join(d.traces, 'agent.jsonl');
    writeFileSync(trace, '');
    let written = 0;
    for (let i = 0; i < 60 && (await metric(d, 'sealtrail_disk_full')) === 0; i++) {
      appendFileSync(trace, lines(written, written + 500));
      written += 500;
      await waitFor('ingested or disk full', async () =>
        (await metric(d, 'sealtrail_disk_full')) === 1 || (await metric(d, 'sealtrail_records_ingested_total')) === written,
      );
    }
    expect(await metric(d, 'sealtrail_disk_full')).toBe(1);
    const held = await metric(d, 'sealtrail_records_ingested_total');
    expect(held).toBeGreaterThan(1000);
    expect(held).toBeLessThan(written);
    // 500 more while it waits.
    appendFileSync(trace, lines(written, written + 500));
    written += 500;
    const failed = await metric(d, 'sealtrail_buffer_commits_failed_total', '{reason="disk_full"}');
    await waitFor('commits retried', async () => (await metric(d, 'sealtrail_buffer_commits_failed_total', '{reason="disk_full"}')) >= failed + 2, 30_000);
    expect(countMsg(sidecar, DISK_FULL_MSG)).toBe(1);
    // The buffer stopped taking records itself, with room left for checkpoints and acks.
    expect(logs(sidecar).find((l) => l.msg === DISK_FULL_MSG)?.code).toBe('buffer_disk_low');
    expect(fs.free()).toBeGreaterThan(0);
    expect(await metric(d, 'sealtrail_records_ingested_total')).toBe(held);
    expect(alive(sidecar)).toBe(true);

    const collector = track(await startCollectorProc(d));
    await waitFor(`${written} records at the collector`, async () => (await treeSize(d)) >= written, 90_000, 250);
    await waitFor('buffer emptied by acks', async () => (await metric(d, 'sealtrail_unanchored_records')) === 0, 30_000);
    expect(await metric(d, 'sealtrail_disk_full')).toBe(0);
    expect(countMsg(sidecar, RECOVERED_MSG)).toBeGreaterThanOrEqual(1);
    expect(countMsg(sidecar, DISK_FULL_MSG)).toBe(countMsg(sidecar, RECOVERED_MSG));
    expect(logs(sidecar).filter((l) => l.level === 'error' && l.msg !== DISK_FULL_MSG).map((l) => l.msg)).toEqual([]);
    await expectExactlyOnce(d, [...Array(written).keys()].map((k) => `file:${k}`));
    await verifyAll(d);

    expect((await stop(sidecar)).code).toBe(0);
    expect(fs.free()).toBeGreaterThan(0);
    await verifyBuffer(d);
    expect((await stop(collector)).code).toBe(0);
  });

  it('survives SIGKILL while the disk is full (acks failing too), restarts on the full disk, and resumes exactly once', async () => {
    const { d, fs, filler } = await setup(8 * MiB);
    let sidecar = track(await startSidecarProc(d));
    const trace = join(d.traces, 'agent.jsonl');

    // 200 records sealed into batches, not shipped: no collector yet.
    writeFileSync(trace, lines(0, 200));
    await waitFor('200 records sealed', async () => (await metric(d, 'sealtrail_records_ingested_total')) === 200 && sealedThrough(d) === 199);

    fs.fill(filler);
    appendFileSync(trace, lines(200, 300));
    await waitFor('sealtrail_disk_full = 1', async () => (await metric(d, 'sealtrail_disk_full')) === 1);

    // The collector stores the first sealed batch, but the sidecar cannot record its ack:
    // it retries only that local step (no resend), ships no other batch, and does not
    // raise shipping_halted (the collector refused nothing).
    const collector = track(await startCollectorProc(d));
    await waitFor('batch 0 at the collector', async () => (await treeSize(d)) === 100, 30_000, 200);
    await waitFor('local ack retried', async () => (await metric(d, 'sealtrail_batches_failed_total', '{reason="local_ack"}')) >= 2, 30_000);
    expect(await metric(d, 'sealtrail_unanchored_records')).toBe(200);
    expect(await metric(d, 'sealtrail_batches_shipped_total')).toBe(1);
    expect(await metric(d, 'sealtrail_shipping_halted')).toBe(0);
    expect(await treeSize(d)).toBe(100);
    expect(alive(sidecar)).toBe(true);

    sidecar.child.kill('SIGKILL');
    expect((await sidecar.exited).signal).toBe('SIGKILL');

    // Restart on the still-full disk: it comes up, serves probes, and reports the full disk.
    appendFileSync(trace, lines(300, 400));
    sidecar = track(await startSidecarProc(d));
    await waitFor('sealtrail_disk_full = 1 after restart', async () => (await metric(d, 'sealtrail_disk_full')) === 1, 30_000);
    const failed = await metric(d, 'sealtrail_buffer_commits_failed_total', '{reason="disk_full"}');
    await waitFor('commits retried after restart', async () => (await metric(d, 'sealtrail_buffer_commits_failed_total', '{reason="disk_full"}')) >= failed + 2, 30_000);
    expect((await getJson(`${d.telemetryUrl}/healthz`)).status).toBe(200);
    expect(countMsg(sidecar, DISK_FULL_MSG)).toBe(1);
    expect(await metric(d, 'sealtrail_records_ingested_total')).toBe(0);

    rmSync(filler);
    await waitFor('400 records at the collector', async () => (await treeSize(d)) >= 400, 60_000, 200);
    await waitFor('buffer emptied by acks', async () => (await metric(d, 'sealtrail_unanchored_records')) === 0, 30_000);
    expect(await metric(d, 'sealtrail_disk_full')).toBe(0);
    expect(countMsg(sidecar, RECOVERED_MSG)).toBe(1);
    await expectExactlyOnce(d, [...Array(400).keys()].map((k) => `file:${k}`));
    await verifyAll(d);

    expect((await stop(sidecar)).code).toBe(0);
    await verifyBuffer(d);
    expect((await stop(collector)).code).toBe(0);
  });
});
