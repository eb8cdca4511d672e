import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalize } from '../../src/core/canonical.js';
import { parseVerifierKey } from '../../src/core/note.js';
import { exportBundle, type BundleKey } from '../../src/evidence/build.js';
import { MANIFEST, MANIFEST_SUM, manifestSumText, sha256Hex } from '../../src/evidence/format.js';
import { verifyBundle } from '../../src/evidence/verify.js';
import { BatchBuilder } from '../helpers/collector-batches.js';
import { ADMIN_TOKEN, postJson, startTestCollector, type TestCollector } from '../helpers/collector-server.js';

/**
 * Evidence bundles built from a real collector (HTTP + SQLite), then damaged
 * byte by byte: every single-bit flip of every file must make verifyBundle
 * fail, with and without the manifest re-sealed after the flip.
 */

const BASE = Date.UTC(2026, 4, 1, 8, 0, 0);
let c: TestCollector;
let tmp: string;
let bundle: string;
let keys: BundleKey[];
let a: BatchBuilder;
let b: BatchBuilder;

function files(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(relative(dir, p).split('\\').join('/'));
    }
  };
  walk(dir);
  return out.sort();
}

/** Rewrites manifest.json's entry for `path` (and manifest.sha256) as a tamperer who recomputes hashes would. */
function reseal(dir: string): void {
  const m = JSON.parse(readFileSync(join(dir, MANIFEST), 'utf8'));
  for (const f of m.files) {
    try {
      const data = readFileSync(join(dir, f.path));
      f.bytes = data.length;
      f.sha256 = sha256Hex(data);
    } catch {
      /* deleted: left as listed */
    }
  }
  const text = `${canonicalize(m)}\n`;
  writeFileSync(join(dir, MANIFEST), text);
  writeFileSync(join(dir, MANIFEST_SUM), manifestSumText(Buffer.from(text)));
}

function copy(): string {
  const d = mkdtempSync(join(tmp, 'copy-'));
  cpSync(bundle, d, { recursive: true });
  return d;
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'sealtrail-evidence-'));
  // A key whose base64 holds "+" (the separator of name+hash+key) must be read right.
  do a = new BatchBuilder({ stream: 'ev-a', baseTime: BASE });
  while (!a.vkey.split('+').slice(2).join('+').includes('+'));
  b = new BatchBuilder({ stream: 'ev-b', baseTime: BASE + 500 });
  c = await startTestCollector({
    streams: [
      { match: 'ev-a', vkey: a.vkey },
      { match: 'ev-b', vkey: b.vkey },
    ],
  });
  // ev-a: batches of 2, 1 and 2 records (3 checkpoints); ev-b: one record.
  for (const n of [2, 1, 2]) expect((await postJson(c.url, a.next(n))).status).toBe(200);
  expect((await postJson(c.url, b.next(1))).status).toBe(200);
  keys = [a.vkey, b.vkey].map((vkey) => ({ vkey, verifier: parseVerifierKey(vkey) }));
  bundle = join(tmp, 'bundle');
  // Records of ev-a's first two batches and ev-b: the newest ev-a checkpoint joins through consistency.
  const s = await exportBundle({
    url: c.url,
    token: ADMIN_TOKEN,
    query: { to: new Date(BASE + 2_500).toISOString() },
    keys,
    dir: bundle,
    now: new Date(BASE + 86_400_000),
  });
  expect(s).toEqual({ records: 4, checkpoints: 4, consistency: 2, keys: 2, streams: ['ev-a', 'ev-b'] });
});

afterAll(async () => {
  await c?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('evidence bundle', () => {
  it('has the documented layout and verifies offline', () => {
    expect(files(bundle)).toEqual([
      'checkpoints/ev-a/2.note',
      'checkpoints/ev-a/3.note',
      'checkpoints/ev-a/5.note',
      'checkpoints/ev-b/1.note',
      'consistency.jsonl',
      ...files(bundle).filter((f) => f.startsWith('keys/')),
      'manifest.json',
      'manifest.sha256',
      'proofs.jsonl',
      'records.jsonl',
    ]);
    expect(files(bundle).filter((f) => f.startsWith('keys/'))).toHaveLength(2);
    const r = verifyBundle(bundle);
    expect(r).toMatchObject({ ok: true, records: 4, checkpoints: 4, consistency: 2, keys: 2, keySource: 'bundle' });
    if (r.ok) expect(r.streams).toEqual(['ev-a', 'ev-b']);
    const recs = readFileSync(join(bundle, 'records.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(recs.map((x) => `${x.stream}/${x.seq}`)).toEqual(['ev-a/0', 'ev-b/0', 'ev-a/1', 'ev-a/2']);
    const cons = readFileSync(join(bundle, 'consistency.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(cons.map((x) => [x.stream, x.from_size, x.to_size])).toEqual([
      ['ev-a', 2, 3],
      ['ev-a', 3, 5],
    ]);
    const sum = readFileSync(join(bundle, MANIFEST_SUM), 'utf8');
    expect(sum).toBe(`${sha256Hex(readFileSync(join(bundle, MANIFEST)))}  manifest.json\n`);
  });

  it('pinned keys: verifies with the right ones, fails naming the checkpoint with others', () => {
    expect(verifyBundle(bundle, { trusted: keys.map((k) => k.verifier) })).toMatchObject({ ok: true, keySource: 'trusted' });
    const r = verifyBundle(bundle, { trusted: [keys[0]!.verifier] });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.failure.file).toBe('checkpoints/ev-b/1.note');
    const other = new BatchBuilder({ stream: 'other' });
    expect(verifyBundle(bundle, { trusted: [parseVerifierKey(other.vkey)] }).ok).toBe(false);
  });

  it('tamper sweep: flipping one bit of any byte of any file fails verification', () => {
    const d = copy();
    let flips = 0;
    const passed: string[] = [];
    for (const f of files(d)) {
      const path = join(d, f);
      const orig = readFileSync(path);
      for (let i = 0; i < orig.length; i++) {
        const bad = Buffer.from(orig);
        bad[i] = bad[i]! ^ (1 << i % 8);
        writeFileSync(path, bad);
        const r = verifyBundle(d);
        if (r.ok) passed.push(`${f}@${i}`);
        else expect(r.failure.file.length).toBeGreaterThan(0);
        flips++;
      }
      writeFileSync(path, orig);
    }
    expect(passed).toEqual([]);
    expect(flips).toBeGreaterThan(3000);
    expect(verifyBundle(d).ok).toBe(true);
  });

  it('tamper sweep with the manifest re-sealed: every bit of every evidence byte is still bound', () => {
    const d = copy();
    const passed: string[] = [];
    let flips = 0;
    for (const f of files(d).filter((x) => x !== MANIFEST && x !== MANIFEST_SUM)) {
      const path = join(d, f);
      const orig = readFileSync(path);
      for (let i = 0; i < orig.length; i++) {
        for (const bit of [i % 8, (i + 3) % 8]) {
          const bad = Buffer.from(orig);
          bad[i] = bad[i]! ^ (1 << bit);
          writeFileSync(path, bad);
          reseal(d);
          const r = verifyBundle(d);
          if (r.ok) passed.push(`${f}@${i}.${bit}`);
          else expect(r.failure.file).not.toMatch(/^manifest/);
          flips++;
        }
      }
      writeFileSync(path, orig);
      reseal(d);
    }
    expect(passed).toEqual([]);
    expect(flips).toBeGreaterThan(3000);
    expect(verifyBundle(d).ok).toBe(true);
  });

  it('deleting any file, adding one, or truncating one fails; naming the file', () => {
    for (const f of files(bundle)) {
      for (const resealed of [false, true]) {
        const d = copy();
        rmSync(join(d, f));
        if (resealed && f !== MANIFEST && f !== MANIFEST_SUM) reseal(d);
        const r = verifyBundle(d);
        expect(r.ok, `${f} deleted`).toBe(false);
        rmSync(d, { recursive: true });
      }
    }
    for (const extra of ['notes.txt', 'checkpoints/ev-a/9.note', 'keys/0000000000000000.vkey', 'records.jsonl.bak']) {
      const d = copy();
      mkdirSync(join(d, extra, '..'), { recursive: true });
      writeFileSync(join(d, extra), 'x\n');
      const r = verifyBundle(d);
      expect(r.ok, extra).toBe(false);
      if (!r.ok) expect(r.failure.file).toBe(extra);
      rmSync(d, { recursive: true });
    }
    // A dropped record (both its lines) with the manifest re-sealed: the consistency chain still binds the
    // rest, so the bundle is a valid smaller selection, but the manifest counts were not rewritten.
    const d = copy();
    for (const name of ['records.jsonl', 'proofs.jsonl']) {
      const lines = readFileSync(join(d, name), 'utf8').split('\n');
      lines.splice(1, 1);
      writeFileSync(join(d, name), lines.join('\n'));
    }
    reseal(d);
    const r = verifyBundle(d);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.failure).toMatchObject({ file: 'manifest.json' });
  });

  it('a query in the manifest that the records do not satisfy fails', () => {
    const d = copy();
    const m = JSON.parse(readFileSync(join(d, MANIFEST), 'utf8'));
    m.query.tenant = 'globex';
    writeFileSync(join(d, MANIFEST), `${canonicalize(m)}\n`);
    writeFileSync(join(d, MANIFEST_SUM), manifestSumText(readFileSync(join(d, MANIFEST))));
    const r = verifyBundle(d);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.failure).toMatchObject({ file: 'records.jsonl', item: 'line 1' });
  });

  it('huge files (sparse, 1.5 GiB) are refused by size without being read', () => {
    const d = copy();
    const big = 1.5 * 1024 * 1024 * 1024;
    truncateSync(join(d, 'records.jsonl'), big);
    const started = Date.now();
    let r = verifyBundle(d);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.failure).toMatchObject({ file: 'records.jsonl', reason: expect.stringMatching(/^size \d+ is not the \d+ bytes listed/) });
    truncateSync(join(d, MANIFEST), big);
    r = verifyBundle(d);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.failure).toMatchObject({ file: MANIFEST, reason: expect.stringMatching(/^larger than \d+ bytes$/) });
    expect(Date.now() - started).toBeLessThan(5000);
    rmSync(d, { recursive: true });
  });

  it('refuses to write into a non-empty directory', async () => {
    await expect(exportBundle({ url: c.url, token: ADMIN_TOKEN, query: {}, keys, dir: bundle })).rejects.toThrow(/not empty/);
  });
});
