/**
 * FileSource against real rotations on a real filesystem: copytruncate with
 * and without the copy in the glob, symlink re-pointing, inode reuse, deletion
 * while paused or behind a slow sink, partial lines, and fairness across 120
 * files with one flooding. Each test checks the exact set of delivered lines:
 * every line once, none missing, none repeated.
 *
 * The sink (test/helpers/file-source-harness.ts) stands in for the SQLite
 * buffer: lines and their position are "committed" together, and a restart
 * reads positions from the same map.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileSource, type FileSourceOptions, type StoredPosition } from '../../src/sidecar/sources/file-source.js';
import { relatedName } from '../../src/sidecar/sources/file-identity.js';
import { Harness, keyOf, sleep, waitFor } from '../helpers/file-source-harness.js';

/** One JSONL record with a unique id; `pad` makes lines long enough to cross the 256-byte fingerprint head. */
function rec(id: string, pad = 0): string {
  return JSON.stringify({ id, pad: 'p'.repeat(pad) }) + '\n';
}

function recs(prefix: string, from: number, count: number, pad = 0): string {
  let s = '';
  for (let i = from; i < from + count; i++) s += rec(`${prefix}-${i}`, pad);
  return s;
}

function range(prefix: string, from: number, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}-${from + i}`);
}

/** ids of the delivered records, in delivery order */
function idsOf(h: Harness): string[] {
  return h.got.filter((g) => g.text !== undefined).map((g) => (JSON.parse(g.text!) as { id: string }).id);
}

/** Every id exactly once: no duplicate, nothing missing, nothing extra. */
function expectExactlyOnce(got: string[], want: string[]): void {
  const seen = new Map<string, number>();
  for (const id of got) seen.set(id, (seen.get(id) ?? 0) + 1);
  const dup = [...seen].filter(([, n]) => n > 1).map(([id]) => id);
  const missing = want.filter((id) => !seen.has(id));
  const extra = [...seen.keys()].filter((id) => !want.includes(id));
  expect({ dup, missing, extra }).toEqual({ dup: [], missing: [], extra: [] });
  expect(got.length).toBe(want.length);
}

let dir: string;
const sources: FileSource[] = [];
const children: ChildProcess[] = [];

function track(s: FileSource): FileSource {
  sources.push(s);
  return s;
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sealtrail-file-rotation-'));
});

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const s of sources.splice(0)) await s.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

// ---- copytruncate -----------------------------------------------------------

describe('copytruncate', () => {
  const both = (): string[] => [path.join(dir, '*.jsonl'), path.join(dir, '*.jsonl.*')];

  /** app.jsonl with `lines` records a-0.., followed by a started source on both globs, every line read. */
  async function following(lines = 200, over: Partial<FileSourceOptions> = {}): Promise<{ h: Harness; f: string; s: FileSource }> {
    const h = new Harness();
    const f = path.join(dir, 'app.jsonl');
    fs.writeFileSync(f, recs('a', 0, lines, 20));
    const s = track(new FileSource(h.options(both(), over)));
    await s.start();
    await waitFor(`${lines} lines`, () => h.got.length >= lines, 30_000, 10);
    return { h, f, s };
  }

  it('with the copy in the glob: 200 lines, copy, truncate, 100 lines -> exactly 300, the copy adds nothing', async () => {
    const { h, f, s } = await following();
    fs.copyFileSync(f, `${f}.1`);
    fs.truncateSync(f, 0);
    fs.appendFileSync(f, recs('b', 0, 100, 20));
    await waitFor('300 lines', () => h.got.length >= 300, 30_000, 10);
    // the copy is followed (it matches the glob) but yields nothing
    await waitFor('copy seen', () => s.files().some((x) => x.path === `${f}.1`), 30_000, 10);
    fs.appendFileSync(f, recs('b', 100, 1, 20));
    await waitFor('301 lines', () => h.got.length >= 301, 30_000, 10);
    await s.drain(Date.now() + 5000);
    expectExactlyOnce(idsOf(h), [...range('a', 0, 200), ...range('b', 0, 101)]);
    expect(h.got.filter((g) => g.path === `${f}.1`)).toEqual([]);
    expect(h.notices.some((n) => n.includes('copy'))).toBe(true);
  });

  it('with the copy seen half-written after the truncation: decided once it is whole, nothing read twice', async () => {
    const { h, f, s } = await following();
    const whole = fs.readFileSync(f);
    // the truncation is seen first, then a copy holding only its first 300 bytes (under 2 x 256: too short to tell)
    fs.truncateSync(f, 0);
    fs.appendFileSync(f, recs('b', 0, 10, 20));
    await waitFor('10 more lines', () => h.got.length >= 210, 30_000, 10);
    fs.writeFileSync(`${f}.1`, whole.subarray(0, 300));
    await waitFor('the copy seen', () => s.files().some((x) => x.path === `${f}.1`), 30_000, 10);
    await sleep(100);
    fs.appendFileSync(`${f}.1`, whole.subarray(300));
    fs.appendFileSync(f, recs('b', 10, 1, 20));
    await waitFor('211 lines', () => h.got.length >= 211, 30_000, 10);
    await sleep(800);
    await s.drain(Date.now() + 5000);
    expectExactlyOnce(idsOf(h), [...range('a', 0, 200), ...range('b', 0, 11)]);
    expect(h.got.filter((g) => g.path === `${f}.1`)).toEqual([]);
  });

  it('with the copy in the glob and the reader behind: the unread rest comes from the copy, once', async () => {
    const { h, f, s } = await following(50, { maxChunkLines: 10 });
    // the buffer is full: the source reads nothing while 150 more lines arrive and the file is rotated
    s.pause();
    fs.appendFileSync(f, recs('a', 50, 150, 20));
    fs.copyFileSync(f, `${f}.1`);
    fs.truncateSync(f, 0);
    fs.appendFileSync(f, recs('b', 0, 100, 20));
    s.resume();
    await waitFor('300 lines', () => h.got.length >= 300, 30_000, 10);
    await sleep(500);
    await s.drain(Date.now() + 5000);
    expectExactlyOnce(idsOf(h), [...range('a', 0, 200), ...range('b', 0, 100)]);
    // a-50..a-199 were read from the copy, starting right where the original left off
    const fromCopy = h.got.filter((g) => g.path === `${f}.1`);
    expect(fromCopy.length).toBe(150);
    expect(fromCopy[0]!.offset).toBe(Buffer.byteLength(recs('a', 0, 50, 20)));
  });

  it('with the copy in the glob, seen only after the truncation was handled', async () => {
    const { h, f, s } = await following();
    // copied under a name the glob does not match, then renamed into it (same inode)
    const tmp = path.join(dir, 'app.copy-in-progress');
    fs.copyFileSync(f, tmp);
    fs.appendFileSync(f, recs('a', 200, 5, 20)); // written between copy and truncate: read from the original
    await waitFor('205 lines', () => h.got.length >= 205, 30_000, 10);
    fs.truncateSync(f, 0);
    fs.appendFileSync(f, recs('b', 0, 100, 20));
    await waitFor('305 lines', () => h.got.length >= 305, 30_000, 10);
    fs.renameSync(tmp, `${f}.1`);
    await waitFor('copy seen', () => s.files().some((x) => x.path === `${f}.1`), 30_000, 10);
    fs.appendFileSync(f, recs('b', 100, 1, 20));
    await waitFor('306 lines', () => h.got.length >= 306, 30_000, 10);
    await sleep(300);
    await s.drain(Date.now() + 5000);
    expectExactlyOnce(idsOf(h), [...range('a', 0, 205), ...range('b', 0, 101)]);
  });

  it('with the copy in the glob, rotated while the source was stopped', async () => {
    const h = new Harness();
    const f = path.join(dir, 'app.jsonl');
    fs.writeFileSync(f, recs('a', 0, 200, 20));
    const s1 = track(new FileSource(h.options(both())));
    await s1.start();
    await waitFor('200 lines', () => h.got.length >= 200, 30_000, 10);
    await s1.close();
    fs.appendFileSync(f, recs('a', 200, 30, 20)); // unread when the copy is made
    fs.copyFileSync(f, `${f}.1`);
    fs.truncateSync(f, 0);
    fs.appendFileSync(f, recs('b', 0, 100, 20));
    const s2 = track(new FileSource(h.options(both())));
    await s2.start();
    await waitFor('330 lines', () => h.got.length >= 330, 30_000, 10);
    await sleep(300);
    await s2.drain(Date.now() + 5000);
    expectExactlyOnce(idsOf(h), [...range('a', 0, 230), ...range('b', 0, 100)]);
  });

  it('a related name with the same first lines but other content is not taken for a copy', async () => {
    const h = new Harness();
    const f = path.join(dir, 'app.jsonl');
    const header = rec('header', 400); // identical first line, longer than the fingerprint head
    fs.writeFileSync(f, header + recs('a', 0, 100, 20));
    const s = track(new FileSource(h.options(both())));
    await s.start();
    await waitFor('101 lines', () => h.got.length >= 101, 30_000, 10);
    // same header, different records, name looks like a rotated copy
    fs.writeFileSync(`${f}.1`, header + recs('c', 0, 100, 20));
    fs.appendFileSync(f, recs('a', 100, 10, 20));
    await waitFor('212 lines', () => h.got.length >= 212, 30_000, 10);
    await s.drain(Date.now() + 5000);
    const ids = idsOf(h);
    expect(ids.filter((i) => i === 'header').length).toBe(2);
    expectExactlyOnce(
      ids.filter((i) => i !== 'header'),
      [...range('a', 0, 110), ...range('c', 0, 100)],
    );
  });

  it('a copy of a live file (cp backup) is not read while the original lives on, nor when the original goes', async () => {
    const { h, f, s } = await following();
    const bak = `${f}.bak`;
    fs.copyFileSync(f, bak);
    fs.appendFileSync(f, recs('a', 200, 50, 20));
    await waitFor('250 lines', () => h.got.length >= 250, 30_000, 10);
    // held: followed, accounted as read, and nothing delivered from it, for longer than the rotate wait
    await waitFor('backup held', () => s.files().some((x) => x.path === bak && x.offset === x.size), 30_000, 10);
    await sleep(600);
    expect(h.got.filter((g) => g.path === bak)).toEqual([]);
    // the original goes away: its reading ends, and the backup turns out to hold nothing unread
    fs.unlinkSync(f);
    await waitFor('original released', () => !s.files().some((x) => x.path === f), 30_000, 10);
    fs.appendFileSync(bak, recs('k', 0, 5, 20));
    await waitFor('255 lines', () => h.got.length >= 255, 30_000, 10);
    await sleep(300);
    await s.drain(Date.now() + 5000);
    expectExactlyOnce(idsOf(h), [...range('a', 0, 250), ...range('k', 0, 5)]);
    expect(h.got.filter((g) => g.path === bak).map((g) => g.offset)[0]).toBe(Buffer.byteLength(recs('a', 0, 200, 20)));
  });

  it('a copy that gains lines of its own while the original lives: only those lines are read from it', async () => {
    const { h, f, s } = await following();
    const bak = `${f}.bak`;
    fs.copyFileSync(f, bak);
    await waitFor('backup seen', () => s.files().some((x) => x.path === bak), 30_000, 10);
    fs.appendFileSync(f, recs('a', 200, 50, 20));
    fs.appendFileSync(bak, recs('k', 0, 5, 20));
    await waitFor('255 lines', () => h.got.length >= 255, 30_000, 10);
    await sleep(600);
    await s.drain(Date.now() + 5000);
    expectExactlyOnce(idsOf(h), [...range('a', 0, 250), ...range('k', 0, 5)]);
    expect(h.got.filter((g) => g.path === bak).map((g) => g.offset)[0]).toBe(Buffer.byteLength(recs('a', 0, 200, 20)));
  });

  it('one long header line two related files share does not make one a copy of the other', async () => {
    const h = new Harness();
    const f = path.join(dir, 'app.jsonl');
    const header = rec('header', 700); // a single line past 2 x 256 bytes
    fs.writeFileSync(f, header);
    const s = track(new FileSource(h.options(both())));
    await s.start();
    await waitFor('the header', () => h.got.length >= 1, 30_000, 10);
    fs.appendFileSync(f, recs('a', 0, 20, 20));
    await waitFor('21 lines', () => h.got.length >= 21, 30_000, 10);
    // the original is deleted; a new file starting with the same header line appears
    fs.unlinkSync(f);
    await waitFor('original released', () => s.files().length === 0, 30_000, 10);
    fs.writeFileSync(`${f}.2`, header + recs('n', 0, 20, 20));
    await waitFor('42 lines', () => h.got.length >= 42, 30_000, 10);
    await s.drain(Date.now() + 5000);
    const ids = idsOf(h);
    expect(ids.filter((i) => i === 'header').length).toBe(2);
    expectExactlyOnce(
      ids.filter((i) => i !== 'header'),
      [...range('a', 0, 20), ...range('n', 0, 20)],
    );
  });

  it('a related file too short to tell from a copy (under 512 bytes) is read after the hold', async () => {
    const { h, f, s } = await following();
    const small = recs('a', 0, 5, 20);
    expect(Buffer.byteLength(small)).toBeLessThan(512);
    fs.writeFileSync(`${f}.1`, small);
    await waitFor('205 lines', () => h.got.length >= 205, 30_000, 10);
    await s.drain(Date.now() + 5000);
    expect(h.got.filter((g) => g.path === `${f}.1`).length).toBe(5);
    expect(h.got.length).toBe(205);
  });

  it('names a copy is looked for under', () => {
    expect(relatedName('/l/app.jsonl.1', '/l/app.jsonl')).toBe(true);
    expect(relatedName('/l/app.jsonl-20260101', '/l/app.jsonl')).toBe(true);
    expect(relatedName('/l/app-20260101.jsonl', '/l/app.jsonl')).toBe(true);
    expect(relatedName('/old/app.jsonl.1', '/l/app.jsonl')).toBe(true); // logrotate olddir
    expect(relatedName('/l/app.jsonl', '/l/app.jsonl')).toBe(true); // a new file on the same path
    expect(relatedName('/pods/b/0.log', '/pods/a/0.log')).toBe(false);
    expect(relatedName('/l/apple.jsonl', '/l/app.jsonl')).toBe(false);
    expect(relatedName('/l/agent-b.jsonl', '/l/agent-a.jsonl')).toBe(false);
    expect(relatedName('/l/app.jsonl', '/l/app.jsonl.1')).toBe(true); // by stem: only ever a hint, content decides
  });

  it('files with unrelated names and identical content are both read', async () => {
    const h = new Harness();
    const body = recs('same', 0, 50, 20);
    fs.writeFileSync(path.join(dir, 'agent-a.jsonl'), body);
    const s = track(new FileSource(h.options(both())));
    await s.start();
    await waitFor('50 lines', () => h.got.length >= 50, 30_000, 10);
    fs.writeFileSync(path.join(dir, 'agent-b.jsonl'), body);
    await waitFor('100 lines', () => h.got.length >= 100, 30_000, 10);
    await s.drain(Date.now() + 5000);
    expect(h.got.filter((g) => g.path.endsWith('agent-b.jsonl')).length).toBe(50);
  });
});

// ---- symlinks ---------------------------------------------------------------

describe('symlinked path', () => {
  for (const how of ['atomic rename', 'unlink and relink'] as const) {
    it(`follows current.jsonl -> app-1 -> app-2 re-pointed by ${how}; every line of both once`, async () => {
      const h = new Harness();
      const data = path.join(dir, 'data');
      const traces = path.join(dir, 'traces');
      fs.mkdirSync(data);
      fs.mkdirSync(traces);
      const a1 = path.join(data, 'app-1.log');
      const a2 = path.join(data, 'app-2.log');
      const link = path.join(traces, 'current.jsonl');
      fs.writeFileSync(a1, recs('one', 0, 100));
      fs.symlinkSync(a1, link);
      const s = track(new FileSource(h.options([path.join(traces, '*.jsonl')])));
      await s.start();
      await waitFor('100 lines', () => h.got.length >= 100, 30_000, 10);
      fs.appendFileSync(a1, recs('one', 100, 50));
      fs.writeFileSync(a2, recs('two', 0, 20));
      if (how === 'atomic rename') {
        const tmp = path.join(traces, '.current.tmp');
        fs.symlinkSync(a2, tmp);
        fs.renameSync(tmp, link);
      } else {
        fs.unlinkSync(link);
        fs.symlinkSync(a2, link);
      }
      // the writer of app-1 finishes a few lines after the switch
      fs.appendFileSync(a1, recs('one', 150, 5));
      fs.appendFileSync(a2, recs('two', 20, 30));
      await waitFor('205 lines', () => h.got.length >= 205, 30_000, 10);
      await waitFor('app-1 released', () => s.files().length === 1, 30_000, 10);
      fs.appendFileSync(a2, recs('two', 50, 10));
      await waitFor('215 lines', () => h.got.length >= 215, 30_000, 10);
      await s.drain(Date.now() + 5000);
      expectExactlyOnce(idsOf(h), [...range('one', 0, 155), ...range('two', 0, 60)]);
      // all lines arrive under the name the glob matched
      expect(new Set(h.got.map((g) => g.path))).toEqual(new Set([link]));
      expect(new Set(h.got.map((g) => g.key))).toEqual(new Set([keyOf(a1), keyOf(a2)]));
    });
  }

  it('after a restart resumes the symlink target by inode', async () => {
    const h = new Harness();
    const traces = path.join(dir, 'traces');
    fs.mkdirSync(traces);
    const a1 = path.join(dir, 'app-1.log');
    const link = path.join(traces, 'current.jsonl');
    fs.writeFileSync(a1, recs('one', 0, 40));
    fs.symlinkSync(a1, link);
    const s1 = track(new FileSource(h.options([path.join(traces, '*.jsonl')])));
    await s1.start();
    await waitFor('40 lines', () => h.got.length >= 40, 30_000, 10);
    await s1.close();
    fs.appendFileSync(a1, recs('one', 40, 10));
    const s2 = track(new FileSource(h.options([path.join(traces, '*.jsonl')])));
    await s2.start();
    await waitFor('50 lines', () => h.got.length >= 50, 30_000, 10);
    await s2.drain(Date.now() + 5000);
    expectExactlyOnce(idsOf(h), range('one', 0, 50));
  });
});

// ---- inode reuse ------------------------------------------------------------

/**
 * Creates `target` on the inode `ino` was using, if the filesystem hands it
 * out again (ext4 and tmpfs usually do at once). Returns whether it did.
 */
function createOnInode(target: string, ino: number, content: string, tag: string): boolean {
  for (let i = 0; i < 64; i++) {
    // same directory (ext4 allocates near the parent), a name the globs do not match
    const tmp = path.join(path.dirname(target), `.try-${tag}-${i}`);
    fs.writeFileSync(tmp, content);
    if (fs.statSync(tmp).ino === ino) {
      fs.renameSync(tmp, target); // same inode, now under a matching name
      return true;
    }
    // kept, so the next try gets another inode
  }
  return false;
}

describe('inode reuse', () => {
  // Another process may take a freed inode first, so each test tries a few
  // times, with a new file each time, until the inode is recycled.
  const ATTEMPTS = 5;

  it('reads a new file on a recycled inode from its head, even when its first line equals the old one', async () => {
    const h = new Harness();
    const header = rec('header', 400); // same first 400+ bytes in both files: the head fingerprint alone cannot tell
    const s = track(new FileSource(h.options(dir)));
    await s.start();
    const want: string[] = [];
    let b: string | undefined;
    for (let attempt = 0; attempt < ATTEMPTS && !b; attempt++) {
      const a = path.join(dir, `app-${attempt}.jsonl`);
      fs.writeFileSync(a, header + recs(`a${attempt}`, 0, 30, 20));
      want.push('header', ...range(`a${attempt}`, 0, 30));
      await waitFor(`${want.length} lines`, () => h.got.length >= want.length, 30_000, 10);
      const key = keyOf(a);
      const ino = fs.statSync(a).ino;
      fs.unlinkSync(a);
      await waitFor('deleted file released', () => !s.files().some((x) => x.key === key), 30_000, 10); // its fd is closed: the inode is free
      const target = path.join(dir, `b-${attempt}.jsonl`);
      if (createOnInode(target, ino, header + recs('b', 0, 60, 20), String(attempt))) {
        expect(keyOf(target)).toBe(key);
        b = target;
      }
    }
    expect(b, 'the filesystem recycled an inode').toBeDefined();
    want.push('header', ...range('b', 0, 60));
    await waitFor(`${want.length} lines`, () => h.got.length >= want.length, 30_000, 10);
    await s.drain(Date.now() + 5000);
    const ids = idsOf(h);
    expect(ids.filter((i) => i === 'header').length).toBe(want.filter((i) => i === 'header').length);
    expectExactlyOnce(
      ids.filter((i) => i !== 'header'),
      want.filter((i) => i !== 'header'),
    );
    expect(h.got.filter((g) => g.path === b)[0]!.offset).toBe(0);
  });

  it('reads a recycled inode from its head after a restart, whatever its size', async () => {
    const h = new Harness();
    const want: string[] = [];
    let reused = false;
    for (let attempt = 0; attempt < ATTEMPTS && !reused; attempt++) {
      const a = path.join(dir, `app-${attempt}.jsonl`);
      fs.writeFileSync(a, recs(`a${attempt}`, 0, 30, 20));
      want.push(...range(`a${attempt}`, 0, 30));
      const s1 = track(new FileSource(h.options(dir)));
      await s1.start();
      await waitFor(`${want.length} lines`, () => h.got.length >= want.length, 30_000, 10);
      await s1.close();
      const ino = fs.statSync(a).ino;
      fs.unlinkSync(a);
      reused = createOnInode(path.join(dir, `b-${attempt}.jsonl`), ino, recs('b', 0, 100, 20), String(attempt));
    }
    expect(reused, 'the filesystem recycled an inode').toBe(true);
    want.push(...range('b', 0, 100));
    const s2 = track(new FileSource(h.options(dir)));
    await s2.start();
    await waitFor(`${want.length} lines`, () => h.got.length >= want.length, 30_000, 10);
    await s2.drain(Date.now() + 5000);
    expectExactlyOnce(idsOf(h), want);
  });
});

// ---- deletion ---------------------------------------------------------------

describe('deleted before it was read', () => {
  it('drains a file deleted while the source was paused', async () => {
    const h = new Harness();
    const f = path.join(dir, 'app.jsonl');
    fs.writeFileSync(f, recs('a', 0, 10));
    const s = track(new FileSource(h.options(dir, { maxChunkLines: 50 })));
    await s.start();
    await waitFor('10 lines', () => h.got.length >= 10, 30_000, 10);
    s.pause();
    fs.appendFileSync(f, recs('a', 10, 2000));
    fs.unlinkSync(f);
    fs.writeFileSync(path.join(dir, 'next.jsonl'), recs('n', 0, 5));
    // the deletion and the new file are noticed while paused; nothing is delivered
    await waitFor('both files known', () => s.files().length === 2, 30_000, 10);
    expect(h.got.length).toBe(10);
    s.resume();
    await waitFor('2015 lines', () => h.got.length >= 2015, 30_000, 10);
    await waitFor('deleted file released', () => s.files().length === 1, 30_000, 10);
    await s.drain(Date.now() + 5000);
    expectExactlyOnce(idsOf(h), [...range('a', 0, 2010), ...range('n', 0, 5)]);
  });

  it('drains a deleted file behind a slow sink', async () => {
    const h = new Harness();
    h.sinkDelayMs = 15;
    const f = path.join(dir, 'app.jsonl');
    fs.writeFileSync(f, '');
    const s = track(new FileSource(h.options(dir, { maxChunkLines: 100, rotateWaitMs: 50 })));
    await s.start();
    await waitFor('file followed', () => s.files().length === 1, 30_000, 10);
    fs.appendFileSync(f, recs('a', 0, 3000));
    await waitFor('first chunk', () => h.got.length >= 100, 30_000, 10);
    fs.unlinkSync(f);
    await waitFor('3000 lines', () => h.got.length >= 3000, 30_000, 10);
    await waitFor('released', () => s.files().length === 0, 30_000, 10);
    expectExactlyOnce(idsOf(h), range('a', 0, 3000));
  });
});

// ---- partial last line --------------------------------------------------------

describe('partial last line', () => {
  it('waits for its newline, delivers it once, and quarantines only a fragment rotated away unfinished', async () => {
    const h = new Harness();
    const f = path.join(dir, 'app.jsonl');
    fs.writeFileSync(f, recs('a', 0, 3) + '{"id":"a-3"');
    const s = track(new FileSource(h.options(dir)));
    await s.start();
    await waitFor('3 lines', () => h.got.length >= 3, 30_000, 10);
    await waitFor('fragment seen', () => s.files()[0]?.size === fs.statSync(f).size, 30_000, 10);
    // a poll later the fragment is still held back
    await sleep(150);
    expect(h.got.length).toBe(3);
    fs.appendFileSync(f, '}\n' + recs('a', 4, 1) + '{"id":"a-5","cut":');
    await waitFor('5 lines', () => h.got.length >= 5, 30_000, 10);
    const key = keyOf(f);
    const size = fs.statSync(f).size;
    fs.renameSync(f, path.join(dir, 'app.old'));
    fs.writeFileSync(f, recs('b', 0, 2));
    await waitFor('7 lines and the fragment', () => h.got.length >= 8, 30_000, 10);
    await waitFor('rotated file released', () => s.files().length === 1, 30_000, 10);
    await s.drain(Date.now() + 5000);
    expectExactlyOnce(idsOf(h), [...range('a', 0, 5), ...range('b', 0, 2)]);
    const frag = h.got.filter((g) => g.error === 'unterminated');
    expect(frag).toEqual([{ key, path: f, offset: size - '{"id":"a-5","cut":'.length, length: '{"id":"a-5","cut":'.length, text: undefined, error: 'unterminated' }]);
  });
});

// ---- fairness ---------------------------------------------------------------

describe('fairness', () => {
  it('120 files, one flooded without pause: every other file is read while the flood goes on', async () => {
    const traces = path.join(dir, 'traces');
    fs.mkdirSync(traces);
    const flood = path.join(traces, 'flood.jsonl');
    fs.writeFileSync(flood, '');
    const quiet = Array.from({ length: 119 }, (_, i) => path.join(traces, `quiet-${String(i).padStart(3, '0')}.jsonl`));
    for (const q of quiet) fs.writeFileSync(q, '');
    // Deliveries in order: which file each chunk came from, and the flood's lines so far.
    const order: Array<{ file: string; lines: number }> = [];
    const quietIds: string[] = [];
    let floodLines = 0;
    const store = new Map<string, StoredPosition>();
    const s = track(
      new FileSource({
        id: 'fair',
        include: [path.join(traces, '*.jsonl')],
        maxLineBytes: 4096,
        startAt: 'beginning',
        positions: { get: (_s, k) => store.get(k) },
        maxChunkLines: 200,
        pollIntervalMs: 40,
        rescanIntervalMs: 200,
        sink: async (chunk) => {
          await new Promise((r) => setImmediate(r));
          const name = path.basename(chunk.file.path);
          if (name === 'flood.jsonl') floodLines += chunk.lines.length;
          else for (const l of chunk.lines) quietIds.push((JSON.parse(l.text!) as { id: string }).id);
          order.push({ file: name, lines: chunk.lines.length });
          store.set(chunk.position.key, chunk.position);
        },
      }),
    );
    await s.start();
    // A separate process appends 1,000 lines every 50 ms to the flood file, more
    // than the source reads from it (about 8,000 lines/s here), until killed
    // (stops by itself after 2 minutes, so a failing test cannot fill the disk).
    const writer = spawn(
      process.execPath,
      [
        '-e',
        `const fs=require('fs');const fd=fs.openSync(process.argv[1],'a');let n=0;
         const pad='f'.repeat(40);const until=Date.now()+120000;
         const tick=()=>{let s='';for(let i=0;i<1000;i++)s+=JSON.stringify({id:'f-'+(n++),pad})+'\\n';fs.writeSync(fd,s);
           if(Date.now()<until)setTimeout(tick,50);};tick();`,
        flood,
      ],
      { stdio: 'ignore' },
    );
    children.push(writer);
    await waitFor('the flood to be read', () => floodLines >= 5000, 30_000, 10);
    // A standing backlog, so "the flood had unread lines" does not depend on the
    // writer process outrunning the reader on a busy machine.
    {
      const pad = 'f'.repeat(40);
      let block = '';
      for (let i = 0; i < 100_000; i++) block += `${JSON.stringify({ id: `b-${i}`, pad })}\n`;
      fs.appendFileSync(flood, block);
    }
    // Now every quiet file gets 3 bursts of 20 lines while the flood keeps coming.
    const want: string[] = [];
    const floodChunksPerBurst: number[] = [];
    const floodBacklog: number[] = [];
    for (let burst = 0; burst < 3; burst++) {
      // written synchronously: no read round runs in between
      for (const [i, q] of quiet.entries()) {
        fs.appendFileSync(q, recs(`q${i}`, burst * 20, 20));
        want.push(...range(`q${i}`, burst * 20, 20));
      }
      const from = order.length;
      await waitFor(`burst ${burst} of the quiet files`, () => quietIds.length >= want.length, 60_000, 10);
      const f = s.files().find((x) => x.path === flood)!;
      floodBacklog.push(f.size - f.offset);
      // the chunk that completed the burst
      let quietLines = want.length - 119 * 20;
      let to = from;
      while (quietLines < want.length) {
        const o = order[to++]!;
        if (o.file !== 'flood.jsonl') quietLines += o.lines;
      }
      floodChunksPerBurst.push(order.slice(from, to).filter((o) => o.file === 'flood.jsonl').length);
      expect(writer.exitCode, 'the flood is still being written').toBeNull();
    }
    const floodAtEnd = floodLines;
    // the flood was still being read after the last quiet line came in
    await waitFor('more flood lines', () => floodLines > floodAtEnd + 1000, 30_000, 10);
    expect(writer.exitCode).toBeNull();
    writer.kill('SIGKILL');
    expectExactlyOnce(quietIds, want);
    // Round-robin: one flood chunk per round, and each quiet file's burst fits in one chunk,
    // so a burst is delivered within a round or two of flood chunks, never behind the flood.
    for (const n of floodChunksPerBurst) expect(n).toBeLessThanOrEqual(4);
    // ... while the flood file had unread lines waiting each time
    for (const b of floodBacklog) expect(b).toBeGreaterThan(0);
    expect(order.every((o) => o.lines <= 200)).toBe(true);
  });
});
