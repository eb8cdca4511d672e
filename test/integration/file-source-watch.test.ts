/**
 * The file source woken by change notifications alone (the stat poll and the
 * directory rescan set to a minute, so only a watch can explain a prompt
 * read), and appends grouped: lines written within GROUP_WINDOW_MS of each
 * other go into one chunk, i.e. one commit; positions move only after it.
 * Real files, real kernel notifications.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileSource, GROUP_WINDOW_MS, type FileSourceOptions } from '../../src/sidecar/sources/file-source.js';
import { Harness, sleep, waitFor } from '../helpers/file-source-harness.js';

const MINUTE = 60_000;
/** Well past one window and a commit, far below a poll: what "promptly" means here. */
const PROMPTLY = 3_000;

function line(seq: number, tag = 'x'): string {
  return `${JSON.stringify({ seq, tag })}\n`;
}

function lines(from: number, count: number, tag = 'x'): string {
  let s = '';
  for (let i = from; i < from + count; i++) s += line(i, tag);
  return s;
}

function seqs(h: Harness, tag?: string): number[] {
  return h.got
    .filter((g) => g.text !== undefined)
    .map((g) => JSON.parse(g.text!) as { seq: number; tag: string })
    .filter((o) => tag === undefined || o.tag === tag)
    .map((o) => o.seq);
}

let dir: string;
const sources: FileSource[] = [];

/** A started source that only notifications can wake (poll and rescan once a minute). */
async function start(h: Harness, include: string | string[], over: Partial<FileSourceOptions> = {}): Promise<FileSource> {
  const s = new FileSource(h.options(include, { pollIntervalMs: MINUTE, rescanIntervalMs: MINUTE, ...over }));
  sources.push(s);
  await s.start();
  return s;
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sealtrail-file-watch-'));
});

afterEach(async () => {
  for (const s of sources.splice(0)) await s.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('appends grouped into one commit', () => {
  it('reads lines written in several wake-ups within the window as one chunk, promptly', async () => {
    const file = path.join(dir, 'a.jsonl');
    fs.writeFileSync(file, '');
    const h = new Harness();
    await start(h, dir);
    // its first round (reading what was there at start) is over
    await sleep(100);
    let next = 0;
    // Timers can be late on a busy machine: an attempt counts only if its
    // writes all landed within the window; one of a few must.
    let grouped = false;
    for (let attempt = 0; attempt < 5 && !grouped; attempt++) {
      const before = h.chunks.length;
      const first = Date.now();
      let last = first;
      for (let i = 0; i < 4; i++) {
        fs.appendFileSync(file, lines(next, 3));
        next += 3;
        last = Date.now();
        if (i < 3) await sleep(5);
      }
      await waitFor('the lines of this attempt', () => seqs(h).length === next, PROMPTLY, 5);
      if (last - first > GROUP_WINDOW_MS / 2) continue;
      expect(h.chunks.slice(before).map((c) => c.lines.length)).toEqual([12]);
      expect(h.chunks[h.chunks.length - 1]!.lines).toHaveLength(12);
      grouped = true;
      await sleep(GROUP_WINDOW_MS * 3);
    }
    expect(grouped).toBe(true);
    expect(seqs(h)).toEqual([...Array(next).keys()]);
    expect(h.violations).toEqual([]);
  });

  it('a steady writer (one line every 5 ms) gets one chunk per window, not one per line', async () => {
    const file = path.join(dir, 'a.jsonl');
    fs.writeFileSync(file, '');
    const h = new Harness();
    await start(h, dir);
    const t0 = Date.now();
    let n = 0;
    while (Date.now() - t0 < 1_000) {
      fs.appendFileSync(file, line(n++));
      await sleep(5);
    }
    const elapsed = Date.now() - t0;
    await waitFor('every line', () => seqs(h).length === n, PROMPTLY, 5);
    expect(seqs(h)).toEqual([...Array(n).keys()]);
    // At most one chunk per window (plus the first and a late timer or two);
    // one per write would be about n.
    expect(h.chunks.length).toBeLessThanOrEqual(Math.ceil(elapsed / GROUP_WINDOW_MS) + 3);
    expect(h.chunks.length).toBeLessThan(n / 2);
    expect(h.violations).toEqual([]);
  });

  it('does not hold back chunks that filled up: a backlog is read chunk after chunk without waiting', async () => {
    const file = path.join(dir, 'a.jsonl');
    fs.writeFileSync(file, '');
    const h = new Harness();
    await start(h, dir, { maxChunkLines: 100 });
    const t0 = Date.now();
    fs.appendFileSync(file, lines(0, 6_000));
    await waitFor('6,000 lines', () => seqs(h).length === 6_000, 30_000, 5);
    const elapsed = Date.now() - t0;
    expect(h.chunks.length).toBe(60);
    // One window for the append that started it; 60 windows would be 3 s.
    expect(elapsed).toBeLessThan(60 * GROUP_WINDOW_MS);
    expect(h.violations).toEqual([]);
  });

  it('moves a position only after its commit: while the sink holds a chunk, files() still reports the last committed offset', async () => {
    const file = path.join(dir, 'a.jsonl');
    fs.writeFileSync(file, lines(0, 5));
    const first = fs.statSync(file).size;
    const h = new Harness();
    h.sinkDelayMs = 400;
    const s = await start(h, dir);
    await waitFor('first chunk committed', () => h.chunks.length === 1, PROMPTLY, 5);
    fs.appendFileSync(file, lines(5, 5));
    await waitFor('second chunk in the sink', () => h.inSink === 1, PROMPTLY, 5);
    expect(s.files()[0]!.offset).toBe(first);
    expect(h.store.get(`traces|${s.files()[0]!.key}`)?.offset).toBe(first);
    await waitFor('second chunk committed', () => h.chunks.length === 2, PROMPTLY, 5);
    expect(s.files()[0]!.offset).toBe(fs.statSync(file).size);
    expect(seqs(h)).toEqual([...Array(10).keys()]);
  });
});

describe('followed by notification, without polling', () => {
  it('finds a file created after start and reads its appends', async () => {
    const h = new Harness();
    await start(h, dir);
    const file = path.join(dir, 'late.jsonl');
    fs.writeFileSync(file, lines(0, 3));
    await waitFor('the new file', () => seqs(h).length === 3, PROMPTLY, 5);
    fs.appendFileSync(file, lines(3, 3));
    await waitFor('its append', () => seqs(h).length === 6, PROMPTLY, 5);
    expect(seqs(h)).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('a rename rotation: the rest of the old file and the new file, each line once', async () => {
    const file = path.join(dir, 'app.jsonl');
    fs.writeFileSync(file, lines(0, 10));
    const h = new Harness();
    await start(h, dir, { rotateWaitMs: 200 });
    await waitFor('first lines', () => seqs(h).length === 10, PROMPTLY, 5);
    // The writer adds to the old file after it was renamed away (to a name the glob does not match),
    // then opens the new one.
    fs.renameSync(file, path.join(dir, 'app.jsonl.1'));
    fs.appendFileSync(path.join(dir, 'app.jsonl.1'), lines(10, 5));
    fs.writeFileSync(file, lines(15, 5));
    await waitFor('the new file', () => seqs(h).filter((n) => n >= 15).length === 5, PROMPTLY, 5);
    // The renamed file is read to its end from its open fd: that name is not watched, so a
    // wake-up (here the new file's) or the poll reads it; nothing is lost either way.
    await waitFor('the rest of the renamed file', () => seqs(h).length === 20, PROMPTLY, 5);
    expect([...seqs(h)].sort((a, b) => a - b)).toEqual([...Array(20).keys()]);
    expect(h.violations).toEqual([]);
  });

  it('a file reached through a symlink: appends to its target wake the reader', async () => {
    const target = path.join(dir, 'store', 'app-1');
    fs.mkdirSync(path.dirname(target));
    fs.writeFileSync(target, lines(0, 2));
    fs.symlinkSync(target, path.join(dir, 'current.jsonl'));
    const h = new Harness();
    await start(h, [path.join(dir, 'current.jsonl')]);
    await waitFor('first lines', () => seqs(h).length === 2, PROMPTLY, 5);
    fs.appendFileSync(target, lines(2, 2));
    await waitFor('the append to the target', () => seqs(h).length === 4, PROMPTLY, 5);
    expect(seqs(h)).toEqual([0, 1, 2, 3]);
  });

  it('a new subdirectory under ** is watched after the rescan its name brings forward', async () => {
    const h = new Harness();
    // A name event the globs cannot place brings the rescan forward to one poll interval after the last.
    await start(h, [path.join(dir, '**', '*.jsonl')], { pollIntervalMs: 200 });
    const sub = path.join(dir, 'a', 'b');
    fs.mkdirSync(sub, { recursive: true });
    fs.writeFileSync(path.join(sub, 'x.jsonl'), lines(0, 2));
    await waitFor('the file in the new directory', () => seqs(h).length === 2, PROMPTLY, 5);
    await sleep(300);
    fs.appendFileSync(path.join(sub, 'x.jsonl'), lines(2, 2));
    await waitFor('its append', () => seqs(h).length === 4, PROMPTLY, 5);
    expect(seqs(h)).toEqual([0, 1, 2, 3]);
  });

  it('a truncated file (copytruncate without a copy in the glob) is read again from 0', async () => {
    const file = path.join(dir, 'a.jsonl');
    fs.writeFileSync(file, lines(0, 10));
    const h = new Harness();
    await start(h, dir);
    await waitFor('first lines', () => seqs(h).length === 10, PROMPTLY, 5);
    fs.truncateSync(file, 0);
    fs.appendFileSync(file, lines(100, 3));
    await waitFor('lines after the truncation', () => seqs(h).length === 13, PROMPTLY, 5);
    expect(seqs(h).slice(10)).toEqual([100, 101, 102]);
    expect(h.violations).toEqual([]);
  });
});
