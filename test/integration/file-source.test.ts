import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GlobSet, globToRegExp } from '../../src/sidecar/sources/file-glob.js';
import { FileSource, type FileSourceOptions } from '../../src/sidecar/sources/file-source.js';
import { Harness, keyOf, waitFor } from '../helpers/file-source-harness.js';

// ---- helpers ----------------------------------------------------------------

function line(seq: number, tag = 'x'): string {
  return JSON.stringify({ seq, tag, pad: 'p'.repeat(seq % 37) }) + '\n';
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

function sha256hex(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Per file: offsets contiguous from 0 (or from `startAt`), i.e. in order, no gap, no repeat. */
function expectContiguousPerFile(h: Harness, startAt: Record<string, number> = {}): void {
  const next = new Map<string, number>();
  for (const g of h.got) {
    const want = next.get(g.key) ?? startAt[g.key] ?? 0;
    expect(g.offset, `offset in ${g.key}`).toBe(want);
    next.set(g.key, g.offset + g.length);
  }
}

let dir: string;
const sources: FileSource[] = [];

function track(s: FileSource): FileSource {
  sources.push(s);
  return s;
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sealtrail-file-source-'));
});

afterEach(async () => {
  for (const s of sources.splice(0)) await s.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

// ---- glob -------------------------------------------------------------------

describe('glob matching', () => {
  it('supports * ? [..] and ** and keeps * inside one segment', () => {
    const g = new GlobSet(['/logs/*.jsonl'], [], '/');
    expect(g.matches('/logs/x.jsonl')).toBe(true);
    expect(g.matches('/logs/x.jsonl.1')).toBe(false);
    expect(g.matches('/logs/sub/x.jsonl')).toBe(false);
    expect(globToRegExp('/a/**/b.log').test('/a/b.log')).toBe(true);
    expect(globToRegExp('/a/**/b.log').test('/a/x/y/b.log')).toBe(true);
    expect(globToRegExp('/a/**').test('/a/x/y/z')).toBe(true);
    expect(globToRegExp('/a/?.log').test('/a/1.log')).toBe(true);
    expect(globToRegExp('/a/?.log').test('/a/12.log')).toBe(false);
    expect(globToRegExp('/a/[0-3].log').test('/a/2.log')).toBe(true);
    expect(globToRegExp('/a/[!0-3].log').test('/a/2.log')).toBe(false);
    expect(globToRegExp('/a/[!0-3].log').test('/a/7.log')).toBe(true);
    expect(globToRegExp('/a/x+(y).log').test('/a/x+(y).log')).toBe(true);
    const ex = new GlobSet(['/logs/**/*.jsonl'], ['/logs/**/skip-*.jsonl'], '/');
    expect(ex.matches('/logs/a/b/keep.jsonl')).toBe(true);
    expect(ex.matches('/logs/a/skip-1.jsonl')).toBe(false);
    expect(ex.bases()).toEqual([{ dir: '/logs', depth: undefined }]);
    expect(new GlobSet(['/logs/*/*.jsonl'], [], '/').bases()).toEqual([{ dir: '/logs', depth: 1 }]);
  });

  it('does not read x.jsonl.1 with *.jsonl', async () => {
    const h = new Harness();
    fs.writeFileSync(path.join(dir, 'x.jsonl.1'), lines(0, 5, 'rotated'));
    fs.writeFileSync(path.join(dir, 'x.jsonl'), lines(0, 3, 'live'));
    const s = track(new FileSource(h.options(dir)));
    await s.start();
    await waitFor('3 lines', () => h.got.length >= 3, 30_000, 10);
    await s.drain(Date.now() + 5000);
    expect(seqs(h, 'live')).toEqual([0, 1, 2]);
    expect(seqs(h, 'rotated')).toEqual([]);
    expect(s.files().map((f) => path.basename(f.path))).toEqual(['x.jsonl']);
  });

  it('finds files created later in nested directories with **', async () => {
    const h = new Harness();
    const s = track(new FileSource(h.options(dir, { include: [path.join(dir, '**/*.jsonl')] })));
    await s.start();
    expect(s.ready).toBe(true);
    fs.mkdirSync(path.join(dir, 'a', 'b'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'a', 'b', 'deep.jsonl'), lines(0, 4));
    fs.writeFileSync(path.join(dir, 'top.jsonl'), lines(100, 2));
    await waitFor('6 lines', () => h.got.length >= 6, 30_000, 10);
    expect(seqs(h).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 100, 101]);
  });

  it('picks up a base directory that only appears after start', async () => {
    const h = new Harness();
    const sub = path.join(dir, 'later');
    const s = track(new FileSource(h.options(dir, { include: [path.join(sub, '*.jsonl')] })));
    await s.start();
    fs.mkdirSync(sub);
    fs.writeFileSync(path.join(sub, 'a.jsonl'), lines(0, 3));
    await waitFor('3 lines', () => h.got.length >= 3, 30_000, 10);
    expect(seqs(h)).toEqual([0, 1, 2]);
  });
});

// ---- line framing -----------------------------------------------------------

describe('line framing', () => {
  it('waits for the newline of a partial line written in two pieces', async () => {
    const h = new Harness();
    const f = path.join(dir, 'agent.jsonl');
    fs.writeFileSync(f, '');
    const s = track(new FileSource(h.options(dir)));
    await s.start();
    // The complete line and the fragment are read together; only the line may come out.
    fs.appendFileSync(f, '{"first":1}\n{"sec');
    await waitFor('first line', () => h.got.length >= 1, 30_000, 10);
    await waitFor('size seen', () => s.files()[0]?.size === 17, 30_000, 10);
    expect(h.texts()).toEqual(['{"first":1}']);
    fs.appendFileSync(f, 'ond":2}\r\n');
    await waitFor('second line', () => h.got.length >= 2, 30_000, 10);
    expect(h.texts()).toEqual(['{"first":1}', '{"second":2}']);
    expect(h.got[1]).toMatchObject({ offset: 12, length: 14 });
    expect(h.violations).toEqual([]);
  });

  it('reports a 3 MiB line over a 1 MiB limit as line_too_long and goes on', async () => {
    const h = new Harness();
    const f = path.join(dir, 'agent.jsonl');
    const huge = 3 * 1024 * 1024;
    fs.writeFileSync(f, line(0));
    const s = track(new FileSource(h.options(dir, { maxLineBytes: 1024 * 1024 })));
    await s.start();
    await waitFor('first line', () => h.got.length >= 1, 30_000, 10);
    // Written in pieces so the source sees it grow past the limit before its newline.
    const fd = fs.openSync(f, 'a');
    const piece = Buffer.alloc(512 * 1024, 0x61);
    for (let n = 0; n < huge; n += piece.length) fs.writeSync(fd, piece);
    fs.writeSync(fd, '\n' + lines(1, 3));
    fs.closeSync(fd);
    // A line exactly at the limit is still fine.
    fs.appendFileSync(f, 'b'.repeat(1024 * 1024) + '\r\n');
    await waitFor('6 lines', () => h.got.length >= 6, 30_000, 10);
    const first = Buffer.byteLength(line(0));
    expect(h.got[1]).toEqual({ key: keyOf(f), path: f, offset: first, length: huge + 1, text: undefined, error: 'line_too_long' });
    expect(h.texts().slice(2, 5).map((t) => JSON.parse(t).seq)).toEqual([1, 2, 3]);
    expect(h.got[5]!.text).toBe('b'.repeat(1024 * 1024));
    expect(h.chunks.some((c) => c.lines.some((l) => l.error && l.text !== undefined))).toBe(false);
    expectContiguousPerFile(h);
  });

  it('reports invalid UTF-8 without text and keeps valid lines around it', async () => {
    const h = new Harness();
    const f = path.join(dir, 'agent.jsonl');
    fs.writeFileSync(
      f,
      Buffer.concat([
        Buffer.from('\ufeff{"a":"é"}\n'),
        Buffer.from([0x7b, 0xff, 0xfe, 0x7d, 0x0a]),
        Buffer.from([0xc0, 0xaf, 0x0a]), // overlong "/"
        Buffer.from('{"b":"✓"}\r\n'),
      ]),
    );
    const s = track(new FileSource(h.options(dir)));
    await s.start();
    await waitFor('4 lines', () => h.got.length >= 4, 30_000, 10);
    expect(h.texts()).toEqual(['{"a":"é"}', '!invalid_utf8', '!invalid_utf8', '{"b":"✓"}']);
    expect(h.got.map((g) => g.length)).toEqual([Buffer.byteLength('\ufeff{"a":"é"}\n'), 5, 3, Buffer.byteLength('{"b":"✓"}\r\n')]);
    expectContiguousPerFile(h);
  });
});

// ---- rotation, truncation, deletion ----------------------------------------

describe('rotation', () => {
  it('delivers 1,000 lines exactly once across 5 rename rotations', async () => {
    const h = new Harness();
    const f = path.join(dir, 'agent.jsonl');
    fs.writeFileSync(f, '');
    const s = track(new FileSource(h.options(dir, { maxChunkLines: 37 })));
    await s.start();
    let seq = 0;
    let rotations = 0;
    while (seq < 1000) {
      const burst = 1 + ((seq * 7) % 45);
      const n = Math.min(burst, 1000 - seq);
      fs.appendFileSync(f, lines(seq, n));
      seq += n;
      if (rotations < 5 && seq >= (rotations + 1) * 160) {
        // A file has to be seen under a matching name before it is renamed away, or no
        // tailer could know of it; the lines need not have been read yet.
        const key = keyOf(f);
        await waitFor('current file followed', () => s.files().some((x) => x.key === key), 30_000, 10);
        rotations++;
        fs.renameSync(f, `${f}.${rotations}`);
      }
      if (seq % 3 === 0) await new Promise((r) => setImmediate(r));
    }
    expect(rotations).toBe(5);
    await waitFor('1000 lines', () => h.got.length >= 1000, 30_000, 10);
    await s.drain(Date.now() + 10_000);
    const got = seqs(h);
    expect(got.length).toBe(1000);
    expect([...got].sort((a, b) => a - b)).toEqual([...Array(1000).keys()]);
    const keys = new Set(h.got.map((g) => g.key));
    expect(keys.size).toBe(6);
    for (const k of keys) {
      const mine = h.got.filter((g) => g.key === k).map((g) => JSON.parse(g.text!).seq as number);
      expect(mine).toEqual([...mine].sort((a, b) => a - b));
    }
    expectContiguousPerFile(h);
    expect(h.violations).toEqual([]);
    expect(h.maxInSink).toBe(1);
  });

  it('finishes a renamed file the writer still appends to, then releases it', async () => {
    const h = new Harness();
    const f = path.join(dir, 'agent.jsonl');
    const fd = fs.openSync(f, 'a');
    fs.writeSync(fd, lines(0, 10));
    const s = track(new FileSource(h.options(dir)));
    await s.start();
    await waitFor('10 lines', () => h.got.length >= 10, 30_000, 10);
    const oldKey = keyOf(f);
    fs.renameSync(f, `${f}.1`);
    // the writer has not reopened yet
    fs.writeSync(fd, lines(10, 5));
    fs.writeFileSync(f, lines(15, 5));
    fs.writeSync(fd, lines(20, 2) + '{"cut');
    fs.closeSync(fd);
    await waitFor('old file released', () => !s.files().some((x) => x.key === oldKey), 30_000, 10);
    await waitFor('22 lines and the fragment', () => h.got.length >= 23, 30_000, 10);
    expect([...seqs(h)].sort((a, b) => a - b)).toEqual([...Array(22).keys()]);
    const old = h.got.filter((g) => g.key === oldKey);
    expect(old.map((g) => g.text && JSON.parse(g.text).seq)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 20, 21, undefined]);
    const size = fs.statSync(`${f}.1`).size;
    expect(old[old.length - 1]).toMatchObject({ error: 'unterminated', offset: size - 5, length: 5 });
    expectContiguousPerFile(h);
  });

  it('does not read a rotated file twice when its new name matches the glob', async () => {
    const h = new Harness();
    const f = path.join(dir, 'agent.jsonl');
    fs.writeFileSync(f, lines(0, 20));
    const s = track(new FileSource(h.options(dir, { rotateWaitMs: 50 })));
    await s.start();
    await waitFor('20 lines', () => h.got.length >= 20, 30_000, 10);
    const k1 = keyOf(f);
    fs.appendFileSync(f, lines(20, 5));
    fs.renameSync(f, path.join(dir, 'agent-1.jsonl'));
    fs.writeFileSync(f, lines(25, 10));
    fs.appendFileSync(path.join(dir, 'agent-1.jsonl'), lines(35, 3)); // late writes to the rotated file
    await waitFor('38 lines', () => h.got.length >= 38, 30_000, 10);
    await waitFor('rotated file re-associated', () => s.files().some((x) => x.key === k1 && x.path.endsWith('agent-1.jsonl')), 30_000, 10);
    await s.drain(Date.now() + 5000);
    expect([...seqs(h)].sort((a, b) => a - b)).toEqual([...Array(38).keys()]);
    expect(h.got.filter((g) => g.key === k1).length).toBe(28);
    expectContiguousPerFile(h);
    // and after a restart the rotated file resumes by inode, not by name
    const s2 = track(new FileSource(h.options(dir)));
    await s2.start();
    fs.appendFileSync(path.join(dir, 'agent-1.jsonl'), lines(38, 2));
    await waitFor('40 lines', () => h.got.length >= 40, 30_000, 10);
    await s2.drain(Date.now() + 5000);
    expect([...seqs(h)].sort((a, b) => a - b)).toEqual([...Array(40).keys()]);
    expectContiguousPerFile(h);
  });

  it('after a restart, finishes a file that was renamed to a non-matching name while stopped', async () => {
    const h = new Harness();
    const f = path.join(dir, 'agent.jsonl');
    fs.writeFileSync(f, lines(0, 10));
    const s1 = track(new FileSource(h.options(dir)));
    await s1.start();
    await waitFor('10 lines', () => h.got.length >= 10, 30_000, 10);
    await s1.close();
    fs.appendFileSync(f, lines(10, 5));
    fs.renameSync(f, `${f}.1`);
    fs.writeFileSync(f, lines(15, 5));
    fs.writeFileSync(`${f}.2`, lines(100, 5)); // an older archive we never read: left alone
    const s2 = track(new FileSource(h.options(dir)));
    await s2.start();
    await waitFor('20 lines', () => h.got.length >= 20, 30_000, 10);
    await waitFor('rotated file released', () => s2.files().length === 1, 30_000, 10);
    await s2.drain(Date.now() + 5000);
    expect(seqs(h)).toEqual(expect.arrayContaining([...Array(20).keys()]));
    expect(seqs(h).length).toBe(20);
    expectContiguousPerFile(h);
  });

  it('drains a deleted file through its fd, including the unterminated fragment', async () => {
    const h = new Harness();
    const f = path.join(dir, 'agent.jsonl');
    const fd = fs.openSync(f, 'a');
    fs.writeSync(fd, lines(0, 5));
    const s = track(new FileSource(h.options(dir)));
    await s.start();
    await waitFor('5 lines', () => h.got.length >= 5, 30_000, 10);
    const key = keyOf(f);
    fs.unlinkSync(f);
    fs.writeSync(fd, lines(5, 5) + 'tail-without-newline');
    fs.closeSync(fd);
    await waitFor('10 lines and the fragment', () => h.got.length >= 11, 30_000, 10);
    await waitFor('released', () => s.files().length === 0, 30_000, 10);
    expect(seqs(h)).toEqual([...Array(10).keys()]);
    expect(h.got[10]).toMatchObject({ key, error: 'unterminated', length: 'tail-without-newline'.length });
    expect(h.got[10]!.text).toBeUndefined();
    expectContiguousPerFile(h);
  });

  it('copytruncate: 200 lines, truncate to 0, 100 lines -> exactly 300', async () => {
    const h = new Harness();
    const f = path.join(dir, 'agent.jsonl');
    fs.writeFileSync(f, lines(0, 200, 'before'));
    const s = track(new FileSource(h.options(dir)));
    await s.start();
    await waitFor('200 lines', () => h.got.length >= 200, 30_000, 10);
    fs.copyFileSync(f, `${f}.1`);
    fs.truncateSync(f, 0);
    fs.appendFileSync(f, lines(0, 100, 'after'));
    await waitFor('300 lines', () => h.got.length >= 300, 30_000, 10);
    await s.drain(Date.now() + 5000);
    expect(h.got.length).toBe(300);
    expect(seqs(h, 'before')).toEqual([...Array(200).keys()]);
    expect(seqs(h, 'after')).toEqual([...Array(100).keys()]);
    expect(h.violations).toEqual([]);
    // restart: the committed position belongs to the new content
    const s2 = track(new FileSource(h.options(dir)));
    await s2.start();
    fs.appendFileSync(f, lines(100, 1, 'after'));
    await waitFor('301 lines', () => h.got.length >= 301, 30_000, 10);
    await s2.drain(Date.now() + 5000);
    expect(seqs(h, 'after')).toEqual([...Array(101).keys()]);
  });

  it('notices truncation even when the new content is already longer', async () => {
    const h = new Harness();
    const f = path.join(dir, 'agent.jsonl');
    fs.writeFileSync(f, lines(0, 5, 'before'));
    const s = track(new FileSource(h.options(dir)));
    await s.start();
    await waitFor('5 lines', () => h.got.length >= 5, 30_000, 10);
    fs.writeFileSync(f, lines(0, 50, 'after')); // truncate + rewrite in one go, before any poll
    await waitFor('50 new lines', () => seqs(h, 'after').length >= 50, 30_000, 10);
    await s.drain(Date.now() + 5000);
    expect(seqs(h, 'after')).toEqual([...Array(50).keys()]);
    expect(h.got.length).toBe(55);
  });
});

// ---- positions and restarts -------------------------------------------------

describe('positions', () => {
  it('resumes exactly after the last committed line across restarts, partial lines and a rotation', async () => {
    const h = new Harness();
    const f = path.join(dir, 'agent.jsonl');
    fs.writeFileSync(f, '');
    let seq = 0;
    for (let round = 0; round < 6; round++) {
      const s = track(new FileSource(h.options(dir, { maxChunkLines: 7 })));
      await s.start();
      fs.appendFileSync(f, lines(seq, 30));
      seq += 30;
      const split = round % 2 === 1 ? line(seq) : '';
      // an unfinished line when we stop; its end arrives while we are down
      fs.appendFileSync(f, split.slice(0, 9));
      if (round === 3) {
        await waitFor('everything before the rotation', () => h.got.length >= seq, 30_000, 10);
        fs.renameSync(f, `${f}.1`);
        fs.appendFileSync(`${f}.1`, split.slice(9));
        fs.writeFileSync(f, lines(seq + 1, 5));
        seq += 6;
        await waitFor('the rotated file finished', () => h.got.length >= seq, 30_000, 10);
      } else {
        // stop somewhere in the middle of the stream
        await waitFor(`${seq - 20} lines`, () => h.got.length >= seq - 20, 30_000, 10);
      }
      await s.close();
      if (split && round !== 3) {
        fs.appendFileSync(f, split.slice(9));
        seq += 1;
      }
    }
    const s = track(new FileSource(h.options(dir)));
    await s.start();
    await waitFor('all lines', () => h.got.length >= seq, 30_000, 10);
    await s.drain(Date.now() + 5000);
    expect(seqs(h)).toEqual([...Array(seq).keys()]);
    expect(h.violations).toEqual([]);
    expectContiguousPerFile(h);
  });

  it('continues exactly after the last commit when the process is SIGKILLed', async () => {
    // A child process tails the file and "commits" each chunk as one appended
    // record (lines + position together, like the SQLite transaction would).
    const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
    const script = path.join(dir, 'child.mts');
    const log = path.join(dir, 'commits.log');
    const traces = path.join(dir, 'traces');
    fs.mkdirSync(traces);
    fs.writeFileSync(
      script,
      `import fs from 'node:fs';
import { FileSource } from ${JSON.stringify(path.join(root, 'src/sidecar/sources/file-source.ts'))};
const log = process.env.COMMIT_LOG;
const store = new Map();
if (fs.existsSync(log)) {
  for (const l of fs.readFileSync(log, 'utf8').split('\\n')) {
    try { const r = JSON.parse(l); store.set(r.position.key, r.position); } catch {}
  }
}
const s = new FileSource({
  id: 'k', include: [process.env.TRACE_DIR + '/*.jsonl'], maxLineBytes: 65536, startAt: 'beginning',
  positions: { get: (_s, k) => store.get(k) }, maxChunkLines: 3, pollIntervalMs: 20,
  sink: async (c) => {
    fs.appendFileSync(log, JSON.stringify({ position: c.position, lines: c.lines.map((l) => l.text) }) + '\\n');
    store.set(c.position.key, c.position);
    await new Promise((r) => setTimeout(r, 2));
  },
});
await s.start();
`,
    );
    const committed = (): number[] => {
      if (!fs.existsSync(log)) return [];
      const out: number[] = [];
      for (const l of fs.readFileSync(log, 'utf8').split('\n')) {
        if (!l) continue;
        for (const t of (JSON.parse(l) as { lines: string[] }).lines) out.push((JSON.parse(t) as { seq: number }).seq);
      }
      return out;
    };
    const run = (): ChildProcess =>
      spawn(path.join(root, 'node_modules/.bin/vite-node'), [script], {
        cwd: root,
        env: { ...process.env, COMMIT_LOG: log, TRACE_DIR: traces },
        stdio: 'ignore',
      });
    const f = path.join(traces, 'agent.jsonl');
    fs.writeFileSync(f, lines(0, 200));
    let seq = 200;
    for (let round = 0; round < 3; round++) {
      const child = run();
      const exited = new Promise((r) => child.once('exit', r));
      const before = committed().length;
      await waitFor('the child to commit something', () => committed().length >= before + 20, 30_000, 10);
      fs.appendFileSync(f, lines(seq, 100));
      seq += 100;
      child.kill('SIGKILL');
      await exited;
    }
    const child = run();
    const exited = new Promise((r) => child.once('exit', r));
    try {
      await waitFor('all lines committed', () => committed().length >= seq, 30_000, 10);
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
    expect(committed()).toEqual([...Array(seq).keys()]);
  });

  it('commits only what the sink accepted: a restart mid-stream neither loses nor repeats', async () => {
    const h = new Harness();
    const f = path.join(dir, 'agent.jsonl');
    fs.writeFileSync(f, '');
    let seq = 0;
    for (let round = 0; round < 5; round++) {
      const s = track(new FileSource(h.options(dir, { maxChunkLines: 13 })));
      await s.start();
      fs.appendFileSync(f, lines(seq, 100));
      seq += 100;
      await waitFor('some lines', () => h.got.length >= seq - 60, 30_000, 10);
      await s.close();
      fs.appendFileSync(f, lines(seq, 10));
      seq += 10;
    }
    const s = track(new FileSource(h.options(dir)));
    await s.start();
    await waitFor('all lines', () => h.got.length >= seq, 30_000, 10);
    await s.drain(Date.now() + 5000);
    expect(seqs(h)).toEqual([...Array(seq).keys()]);
    expectContiguousPerFile(h);
    expect(h.violations).toEqual([]);
  });

  it('re-reads from 0 when the stored fingerprint does not match (inode reuse) or the file is shorter', async () => {
    const h = new Harness();
    const a = path.join(dir, 'a.jsonl');
    const b = path.join(dir, 'b.jsonl');
    const c = path.join(dir, 'c.jsonl');
    for (const p of [a, b, c]) fs.writeFileSync(p, lines(0, 50, path.basename(p, '.jsonl')));
    const at = Buffer.byteLength(lines(0, 10, 'a'));
    const headA = fs.readFileSync(a).subarray(0, Math.min(at, 256));
    // a: a correct position -> resume after line 10
    h.store.set(`traces|${keyOf(a)}`, { key: keyOf(a), path: a, offset: at, fingerprint: sha256hex(headA) });
    // b: same offset, but the head was different when it was committed -> another file on this inode
    h.store.set(`traces|${keyOf(b)}`, { key: keyOf(b), path: b, offset: at, fingerprint: sha256hex(Buffer.from('something else')) });
    // c: stored offset beyond its end -> truncated while we were away
    h.store.set(`traces|${keyOf(c)}`, { key: keyOf(c), path: c, offset: 10_000_000, fingerprint: sha256hex(Buffer.alloc(0)) });
    const s = track(new FileSource(h.options(dir, { startAt: 'end' })));
    await s.start();
    await waitFor('140 lines', () => h.got.length >= 140, 30_000, 10);
    await s.drain(Date.now() + 5000);
    expect(seqs(h, 'a')).toEqual([...Array(40).keys()].map((i) => i + 10));
    expect(seqs(h, 'b')).toEqual([...Array(50).keys()]);
    expect(seqs(h, 'c')).toEqual([...Array(50).keys()]);
    expect(h.notices.some((n) => n.includes('b.jsonl') && n.includes('fingerprint'))).toBe(true);
    expectContiguousPerFile(h, { [keyOf(a)]: at });
  });

  it('startAt end skips existing lines, keeps a line in progress, and reads new files from 0', async () => {
    const h = new Harness();
    const f = path.join(dir, 'agent.jsonl');
    fs.writeFileSync(f, lines(0, 10, 'old') + '{"seq":100,');
    const s = track(new FileSource(h.options(dir, { startAt: 'end' })));
    await s.start();
    fs.appendFileSync(f, '"tag":"new"}\n' + lines(101, 2, 'new'));
    fs.writeFileSync(path.join(dir, 'later.jsonl'), lines(0, 3, 'later'));
    await waitFor('6 lines', () => h.got.length >= 6, 30_000, 10);
    await s.drain(Date.now() + 5000);
    expect(seqs(h, 'old')).toEqual([]);
    expect(seqs(h, 'new')).toEqual([100, 101, 102]);
    expect(seqs(h, 'later')).toEqual([0, 1, 2]);
  });
  it('startAt end commits where it started: a restart before a file grows still skips its old lines', async () => {
    const h = new Harness();
    const f = path.join(dir, 'agent.jsonl');
    const quiet = path.join(dir, 'quiet.jsonl');
    fs.writeFileSync(f, lines(0, 10, 'old'));
    fs.writeFileSync(quiet, lines(0, 20, 'old'));
    const s1 = track(new FileSource(h.options(dir, { startAt: 'end' })));
    await s1.start();
    fs.appendFileSync(f, lines(0, 2, 'new'));
    await waitFor('2 lines', () => h.got.length >= 2, 30_000, 10);
    // both skips are committed, the quiet file's with no lines at all
    await waitFor('quiet file position', () => h.store.has(`traces|${keyOf(quiet)}`), 30_000, 10);
    expect(h.store.get(`traces|${keyOf(quiet)}`)!.offset).toBe(fs.statSync(quiet).size);
    await s1.close();
    // the sidecar passes 'beginning' after the first start
    const s2 = track(new FileSource(h.options(dir, { startAt: 'beginning' })));
    await s2.start();
    fs.appendFileSync(quiet, lines(2, 1, 'new'));
    await waitFor('3 lines', () => h.got.length >= 3, 30_000, 10);
    await s2.drain(Date.now() + 5000);
    expect(seqs(h, 'old')).toEqual([]);
    expect(seqs(h, 'new').sort((a, b) => a - b)).toEqual([0, 1, 2]);
    expect(h.violations).toEqual([]);
  });
});

// ---- flow control -----------------------------------------------------------

describe('flow control', () => {
  it('retries a rejected chunk unchanged and does not duplicate it', async () => {
    const h = new Harness();
    h.rejectNext = 1;
    const f = path.join(dir, 'agent.jsonl');
    fs.writeFileSync(f, lines(0, 25));
    const s = track(new FileSource(h.options(dir, { maxChunkLines: 10 })));
    await s.start();
    await waitFor('25 lines', () => h.got.length >= 25, 30_000, 10);
    await s.drain(Date.now() + 5000);
    expect(seqs(h)).toEqual([...Array(25).keys()]);
    expect(h.rejected.length).toBe(1);
    expect(h.chunks[0]).toEqual(h.rejected[0]);
    expect(h.errors.some((e) => (e as { code?: string }).code === 'source_sink_failed')).toBe(true);
    expect(h.errors.every((e) => !e.message.includes('"seq"'))).toBe(true);
  });

  it('starts no sink call while paused', async () => {
    const h = new Harness();
    const f = path.join(dir, 'agent.jsonl');
    fs.writeFileSync(f, lines(0, 3));
    const s = track(new FileSource(h.options(dir)));
    await s.start();
    await waitFor('3 lines', () => h.got.length >= 3, 30_000, 10);
    s.pause();
    fs.appendFileSync(f, lines(3, 40));
    const size = fs.statSync(f).size;
    // The source has polled the file at its new size, yet delivered nothing.
    await waitFor('growth noticed', () => s.files()[0]?.size === size, 30_000, 10);
    expect(h.got.length).toBe(3);
    s.resume();
    await waitFor('43 lines', () => h.got.length >= 43, 30_000, 10);
    expect(seqs(h)).toEqual([...Array(43).keys()]);
  });

  it('is fair across files: a big file does not starve a small one', async () => {
    const h = new Harness();
    fs.writeFileSync(path.join(dir, 'big.jsonl'), lines(0, 5000, 'big'));
    fs.writeFileSync(path.join(dir, 'small.jsonl'), lines(0, 10, 'small'));
    const s = track(new FileSource(h.options(dir, { maxChunkLines: 100 })));
    await s.start();
    await waitFor('both files', () => seqs(h, 'big').length === 5000 && seqs(h, 'small').length === 10, 30_000, 10);
    // round-robin: the small file's only chunk comes right after the big file's first
    const firstSmall = h.chunks.findIndex((c) => c.file.path.endsWith('small.jsonl'));
    expect(firstSmall).toBeLessThanOrEqual(1);
    expect(h.chunks.every((c) => c.lines.length <= 100)).toBe(true);
  });

  it('refuses bad options with a typed error', () => {
    const h = new Harness();
    const bad = (over: Partial<FileSourceOptions>): unknown => {
      try {
        new FileSource(h.options(dir, over));
      } catch (err) {
        return (err as { code?: string }).code;
      }
      return undefined;
    };
    expect(bad({ maxLineBytes: 0 })).toBe('source_config_invalid');
    expect(bad({ include: [] })).toBe('source_config_invalid');
    expect(bad({ maxChunkLines: 1.5 })).toBe('source_config_invalid');
    expect(bad({})).toBeUndefined();
  });

  it('drain delivers what is there and stops; files() reports lag', async () => {
    const h = new Harness();
    const f = path.join(dir, 'agent.jsonl');
    fs.writeFileSync(f, lines(0, 1000) + '{"partial"');
    const s = track(new FileSource(h.options(dir, { maxChunkLines: 50 })));
    await s.start();
    expect(s.ready).toBe(true);
    await s.drain(Date.now() + 10_000);
    expect(seqs(h)).toEqual([...Array(1000).keys()]);
    const [info] = s.files();
    expect(info).toMatchObject({ key: keyOf(f), path: f, size: fs.statSync(f).size, offset: Buffer.byteLength(lines(0, 1000)) });
    await s.close();
    expect(s.ready).toBe(false);
  });
});
