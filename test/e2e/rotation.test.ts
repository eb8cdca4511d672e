/**
 * The file source against real rotations, end to end: a collector and a
 * sidecar as separate processes, writers rotating files under them, and the
 * collector's SQLite store read at the end to check that every line became
 * exactly one record (each line carries a unique id in details.uid).
 *
 * The deployment's file source includes traces/*.jsonl and traces/*.jsonl.*,
 * so rotated names (app.jsonl.1, app.jsonl.<timestamp>) stay in the glob.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, copyFileSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { sleep } from '../harness/wait.js';
import { COLLECTOR_STREAM, makeDeployment, startCollectorProc, startSidecarProc, stop, treeSize, type Deployment } from '../helpers/deployment.js';
import { waitFor, type Proc } from '../helpers/procs.js';


function event(uid: string, n: number): string {
  return `${JSON.stringify({
    event_type: 'tool_invoked',
    details: { uid },
    actor: { id: `u${n % 13}`, type: 'agent' },
    tool: { name: 'lookup', arguments: { k: n } },
    outcome: 'success',
  })}\n`;
}

function events(prefix: string, from: number, count: number): string {
  let s = '';
  for (let i = from; i < from + count; i++) s += event(`${prefix}-${i}`, i);
  return s;
}

function ids(prefix: string, from: number, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}-${from + i}`);
}

/** details.uid of every record in the collector store, read directly (read-only). */
interface Stored {
  uids: string[];
  /** the sidecar's own records (source "sealtrail"): its ingest_rejected reports */
  own: Array<{ event_type: string; details: { positions: Array<{ path: string; offset: number; reason: string }> } }>;
  minSeq: number;
  maxSeq: number;
}

function storedUids(d: Deployment): Stored {
  const db = new Database(d.collectorDb, { readonly: true, fileMustExist: true });
  try {
    const uids: string[] = [];
    const own: Stored['own'] = [];
    // The sidecar's records only: the collector's read-audit stream is in the same store.
    for (const row of db.prepare('SELECT canonical FROM records WHERE stream != ?').iterate(COLLECTOR_STREAM) as Iterable<{ canonical: string }>) {
      const rec = JSON.parse(row.canonical) as { source: string; details: { uid: string } };
      if (rec.source === 'sealtrail') own.push(rec as unknown as Stored['own'][number]);
      else uids.push(rec.details.uid);
    }
    const r = db.prepare('SELECT MIN(seq) AS lo, MAX(seq) AS hi FROM records WHERE stream != ?').get(COLLECTOR_STREAM) as { lo: number; hi: number };
    return { uids, own, minSeq: r.lo, maxSeq: r.hi };
  } finally {
    db.close();
  }
}

function quarantined(d: Deployment): Array<{ path: string; offset: number; length: number; reason: string }> {
  const db = new Database(d.bufferDb, { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT path, offset, length, reason FROM quarantine ORDER BY id').all() as Array<{
      path: string;
      offset: number;
      length: number;
      reason: string;
    }>;
  } finally {
    db.close();
  }
}

/** Every wanted uid exactly once, nothing else; seq unbroken from 0. */
function expectExactlyOnce(d: Deployment, want: readonly string[]): Stored['own'] {
  const { uids, own, minSeq, maxSeq } = storedUids(d);
  const counts = new Map<string, number>();
  for (const u of uids) counts.set(u, (counts.get(u) ?? 0) + 1);
  const dup = [...counts].filter(([, n]) => n > 1).map(([u]) => u);
  const missing = want.filter((u) => !counts.has(u));
  const wanted = new Set(want);
  const extra = [...counts.keys()].filter((u) => !wanted.has(u));
  expect({ dup: dup.slice(0, 20), missing: missing.slice(0, 20), extra: extra.slice(0, 20) }).toEqual({ dup: [], missing: [], extra: [] });
  expect(uids.length).toBe(want.length);
  expect([minSeq, maxSeq]).toEqual([0, want.length + own.length - 1]);
  return own;
}

async function atCollector(d: Deployment, n: number, timeoutMs = 120_000): Promise<void> {
  await waitFor(`${n} records at the collector`, async () => (await treeSize(d)) >= n, timeoutMs, 200);
}

let deployments: Deployment[] = [];
let procs: Proc[] = [];

async function deploy(opts: Parameters<typeof makeDeployment>[0] = {}): Promise<Deployment> {
  const d = await makeDeployment({ prefix: 'sealtrail-rotation-', ...opts });
  deployments.push(d);
  return d;
}

function track(p: Proc): Proc {
  procs.push(p);
  return p;
}

afterEach(async () => {
  for (const p of procs.splice(0)) await stop(p, 'SIGKILL');
  for (const d of deployments.splice(0)) rmSync(d.dir, { recursive: true, force: true });
});

describe('rotation end to end', () => {
  it(
    '5 writers x 100,000 lines, each rotated by rename past 256 KB while the sidecar runs: every line exactly once',
    async () => {
      const WRITERS = 5;
      const LINES = 100_000;
      const d = await deploy({ maxRecords: 1000, sealInterval: '200ms' });
      track(await startCollectorProc(d));
      const sidecar = track(await startSidecarProc(d));
      const started = Date.now();
      // Each writer is its own process. Writers 0-2 rotate logrotate-style
      // (app.jsonl.1 -> .2 ..., then app.jsonl -> .1), odd writers keep writing
      // one burst to the renamed file before reopening (late writes); writers
      // 3-4 rotate to a timestamp suffix.
      const script = `
        const fs = require('fs');
        const [live, w, mode, total, rotateAt, burst, every] = process.argv.slice(1);
        const W = Number(w), TOTAL = Number(total), ROTATE = Number(rotateAt), BURST = Number(burst);
        let n = 0, size = 0, rotations = 0, fd = fs.openSync(live, 'a');
        const line = (k) => JSON.stringify({ event_type: 'tool_invoked', details: { uid: 'w' + W + '-' + k },
          actor: { id: 'w' + W, type: 'agent' }, tool: { name: 'lookup', arguments: { k } }, outcome: 'success' }) + '\\n';
        const chunk = () => { let s = ''; for (let i = 0; i < BURST && n < TOTAL; i++) s += line(n++); return s; };
        const rotate = () => {
          if (mode === 'numbered') {
            for (let i = rotations; i >= 1; i--) fs.renameSync(live + '.' + i, live + '.' + (i + 1));
            fs.renameSync(live, live + '.1');
          } else {
            fs.renameSync(live, live + '.' + new Date().toISOString().replace(/[:.]/g, '') + '-' + rotations);
          }
          rotations++;
          if (W % 2 === 1 && n < TOTAL) fs.writeSync(fd, chunk()); // the app has not reopened yet
          fs.closeSync(fd);
          fd = fs.openSync(live, 'a');
          size = 0;
        };
        const tick = () => {
          const s = chunk();
          fs.writeSync(fd, s);
          size += Buffer.byteLength(s);
          if (size >= ROTATE && n < TOTAL) rotate();
          if (n < TOTAL) setTimeout(tick, Number(every));
          else { fs.closeSync(fd); process.stdout.write(JSON.stringify({ rotations })); }
        };
        tick();`;
      const writers = Array.from({ length: WRITERS }, (_, w) => {
        const child = spawn(
          process.execPath,
          ['-e', script, join(d.traces, `app${w}.jsonl`), String(w), w < 3 ? 'numbered' : 'timestamp', String(LINES), String(256 * 1024), '120', '100'],
          { stdio: ['ignore', 'pipe', 'inherit'] },
        );
        let out = '';
        child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
        return new Promise<{ code: number | null; rotations: number }>((resolve) =>
          child.on('exit', (code) => resolve({ code, rotations: out ? (JSON.parse(out) as { rotations: number }).rotations : -1 })),
        );
      });
      const done = await Promise.all(writers);
      const written = Date.now();
      for (const w of done) {
        expect(w.code).toBe(0);
        // 100,000 lines of ~150 bytes, rotated past every 256 KB: about 57 rotations each
        expect(w.rotations).toBeGreaterThanOrEqual(50);
      }
      await atCollector(d, WRITERS * LINES, 480_000);
      const delivered = Date.now();
      // Stopped, nothing more can arrive: the store must hold exactly what was written.
      expect((await stop(sidecar)).code).toBe(0);
      const want: string[] = [];
      for (let w = 0; w < WRITERS; w++) want.push(...ids(`w${w}`, 0, LINES));
      expectExactlyOnce(d, want);
      expect(quarantined(d)).toEqual([]);
      console.log(
        `rotation e2e: ${WRITERS * LINES} lines, ${done.reduce((n, w) => n + w.rotations, 0)} rotations; ` +
          `writers done after ${((written - started) / 1000).toFixed(1)} s, all at the collector after ${((delivered - started) / 1000).toFixed(1)} s`,
      );
    },
    600_000,
  );

  it('copytruncate with the copy in the glob: caught up, and behind (sidecar stopped with SIGSTOP) -> exactly once', async () => {
    const d = await deploy();
    track(await startCollectorProc(d));
    let sidecar = track(await startSidecarProc(d));
    const live = join(d.traces, 'app.jsonl');
    writeFileSync(live, events('a', 0, 200));
    await atCollector(d, 200);
    // caught up: the copy holds only lines already read
    copyFileSync(live, `${live}.1`);
    truncateSync(live, 0);
    appendFileSync(live, events('b', 0, 100));
    await atCollector(d, 300);
    // behind: the sidecar is frozen while 1,000 lines arrive and the file is rotated again
    appendFileSync(live, events('b', 100, 200));
    await atCollector(d, 500);
    sidecar.child.kill('SIGSTOP');
    appendFileSync(live, events('b', 300, 1000));
    renameSync(`${live}.1`, `${live}.2`);
    copyFileSync(live, `${live}.1`);
    truncateSync(live, 0);
    appendFileSync(live, events('c', 0, 100));
    sidecar.child.kill('SIGCONT');
    await atCollector(d, 1600);
    // a restart does not read either copy again: the copies' positions were committed
    expect((await stop(sidecar)).code).toBe(0);
    sidecar = track(await startSidecarProc(d));
    appendFileSync(live, events('c', 100, 10));
    await atCollector(d, 1610);
    await sleep(1500); // a duplicate would need this long at most to show up
    expect((await stop(sidecar)).code).toBe(0);
    expectExactlyOnce(d, [...ids('a', 0, 200), ...ids('b', 0, 1300), ...ids('c', 0, 110)]);
    expect(quarantined(d)).toEqual([]);
  });

  it('symlinked path re-pointed from app-1 to app-2: every line of both once', async () => {
    const d = await deploy();
    track(await startCollectorProc(d));
    const sidecar = track(await startSidecarProc(d));
    const data = join(d.dir, 'data');
    mkdirSync(data);
    const a1 = join(data, 'app-1.log');
    const a2 = join(data, 'app-2.log');
    const link = join(d.traces, 'current.jsonl');
    writeFileSync(a1, events('one', 0, 300));
    symlinkSync(a1, link);
    await atCollector(d, 300);
    appendFileSync(a1, events('one', 300, 200));
    writeFileSync(a2, events('two', 0, 100));
    const tmp = join(d.traces, '.current.tmp');
    symlinkSync(a2, tmp);
    renameSync(tmp, link);
    appendFileSync(a1, events('one', 500, 20)); // the old writer finishes after the switch
    appendFileSync(a2, events('two', 100, 300));
    await atCollector(d, 920);
    await sleep(1000);
    expect((await stop(sidecar)).code).toBe(0);
    expectExactlyOnce(d, [...ids('one', 0, 520), ...ids('two', 0, 400)]);
  });

  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    it(`restart between rotations (${signal}): rotated twice while down, then restarted -> exactly once`, async () => {
      const d = await deploy({ maxRecords: 200, sealInterval: '100ms' });
      track(await startCollectorProc(d));
      let sidecar = track(await startSidecarProc(d));
      const live = join(d.traces, 'app.jsonl');
      writeFileSync(live, '');
      // written in bursts, so the sidecar is stopped in the middle of reading
      for (let i = 0; i < 3000; i += 100) {
        appendFileSync(live, events('a', i, 100));
        await sleep(5);
      }
      await atCollector(d, 500);
      const { code, signal: got } = await stop(sidecar, signal);
      if (signal === 'SIGKILL') expect(got).toBe('SIGKILL');
      else expect(code).toBe(0);
      // While down: more lines, rotation, late writes to the rotated file, a second rotation.
      appendFileSync(live, events('a', 3000, 500));
      renameSync(live, `${live}.1`);
      writeFileSync(live, events('b', 0, 500));
      appendFileSync(`${live}.1`, events('a', 3500, 100));
      renameSync(`${live}.1`, `${live}.2`);
      renameSync(live, `${live}.1`);
      writeFileSync(live, events('c', 0, 200) + '{"event_type":"tool_invoked","details":{"uid":"c-200"}');
      sidecar = track(await startSidecarProc(d));
      await atCollector(d, 4300);
      appendFileSync(live, '}\n'); // the unfinished line is completed after the restart
      await atCollector(d, 4301);
      await sleep(1000);
      expect((await stop(sidecar)).code).toBe(0);
      expectExactlyOnce(d, [...ids('a', 0, 3600), ...ids('b', 0, 500), ...ids('c', 0, 201)]);
      expect(quarantined(d)).toEqual([]);
    });
  }

  it('inode reused while the sidecar was down, new file starting with the same header: read from its head', async () => {
    const d = await deploy();
    track(await startCollectorProc(d));
    // a header line whose first 300+ bytes are the same in every file; its uid comes after them
    const headerOf = (uid: string): string =>
      `${JSON.stringify({ event_type: 'session_started', tool: { name: 'x'.repeat(300) }, details: { uid } })}\n`;
    expect(headerOf('h-b').slice(0, 256)).toBe(headerOf('h-a0').slice(0, 256));
    const want: string[] = [];
    let reused = false;
    // Another process may take the freed inode first: try again with a new file.
    for (let attempt = 0; attempt < 3 && !reused; attempt++) {
      const sidecar = track(await startSidecarProc(d));
      const live = join(d.traces, `app-${attempt}.jsonl`);
      writeFileSync(live, headerOf(`h-a${attempt}`) + events(`a${attempt}`, 0, 50));
      want.push(`h-a${attempt}`, ...ids(`a${attempt}`, 0, 50));
      await atCollector(d, want.length);
      expect((await stop(sidecar)).code).toBe(0);
      const ino = statSync(live).ino;
      unlinkSync(live);
      for (let i = 0; i < 64 && !reused; i++) {
        const tmp = join(d.traces, `.try-${attempt}-${i}`);
        // same first 300+ bytes as the deleted file, other records after them, and longer
        writeFileSync(tmp, headerOf('h-b') + events('b', 0, 80));
        if (statSync(tmp).ino === ino) {
          renameSync(tmp, join(d.traces, 'next.jsonl'));
          reused = true;
        }
      }
    }
    expect(reused, 'the filesystem recycled an inode').toBe(true);
    want.push('h-b', ...ids('b', 0, 80));
    const sidecar = track(await startSidecarProc(d));
    await atCollector(d, want.length);
    await sleep(1000);
    expect((await stop(sidecar)).code).toBe(0);
    expectExactlyOnce(d, want);
  });

  it('partial last line: held until its newline; quarantined as unterminated only when its file goes away unfinished', async () => {
    const d = await deploy();
    track(await startCollectorProc(d));
    const sidecar = track(await startSidecarProc(d));
    const live = join(d.traces, 'app.jsonl');
    writeFileSync(live, events('a', 0, 10) + '{"event_type":"tool_invoked","details":{"uid":"a-10"');
    await atCollector(d, 10);
    await sleep(700);
    expect(await treeSize(d)).toBe(10);
    appendFileSync(live, '}}\n' + events('a', 11, 5) + '{"event_type":"tool_invo');
    await atCollector(d, 16);
    const fragmentAt = statSync(live).size - '{"event_type":"tool_invo'.length;
    // the writer goes away with its last line unfinished and the file is deleted
    unlinkSync(live);
    writeFileSync(join(d.traces, 'next.jsonl'), events('n', 0, 5));
    await atCollector(d, 21);
    await waitFor('the fragment quarantined', () => quarantined(d).length > 0, 30_000, 200);
    expect((await stop(sidecar)).code).toBe(0);
    const own = expectExactlyOnce(d, [...ids('a', 0, 16), ...ids('n', 0, 5)]);
    expect(quarantined(d)).toEqual([{ path: live, offset: fragmentAt, length: '{"event_type":"tool_invo'.length, reason: 'unterminated' }]);
    // reported upstream once, by position and reason
    expect(own.map((r) => r.event_type)).toEqual(['ingest_rejected']);
    expect(own[0]!.details.positions).toMatchObject([{ path: live, offset: fragmentAt, reason: 'unterminated' }]);
  });

  it('start_at: end skips what exists at the first start only', async () => {
    const d = await deploy();
    const cfg = readFileSync(d.config, 'utf8');
    const withEnd = cfg.replace(/^(\s+include: \[.*\])$/m, '$1\n      start_at: end');
    expect(withEnd).not.toBe(cfg);
    writeFileSync(d.config, withEnd);
    const live = join(d.traces, 'app.jsonl');
    writeFileSync(live, events('old', 0, 100));
    writeFileSync(`${live}.1`, events('older', 0, 50));
    track(await startCollectorProc(d));
    let sidecar = track(await startSidecarProc(d));
    appendFileSync(live, events('new', 0, 20));
    await atCollector(d, 20);
    expect((await stop(sidecar)).code).toBe(0);
    // after the first start, everything is read: appended lines and files that appeared meanwhile
    appendFileSync(live, events('new', 20, 30));
    writeFileSync(join(d.traces, 'other.jsonl'), events('other', 0, 10));
    sidecar = track(await startSidecarProc(d));
    await atCollector(d, 60);
    await sleep(1000);
    expect((await stop(sidecar)).code).toBe(0);
    expectExactlyOnce(d, [...ids('new', 0, 50), ...ids('other', 0, 10)]);
  });
});
