/**
 * The file source reads synchronously (src/sidecar/sources/file-read.ts) and
 * takes a position's window (the 256 bytes before it) from the block it
 * read when the block holds them, from the file otherwise. Either way the
 * committed fingerprint must be the one computed from the file's own bytes,
 * so a restart resumes from it; and a backlog read without async reads must
 * still let timers run between chunks.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { positionFingerprint, WINDOW_BYTES } from '../../src/sidecar/sources/file-identity.js';
import { FileSource } from '../../src/sidecar/sources/file-source.js';
import { Harness, waitFor } from '../helpers/file-source-harness.js';

let dir: string;
const sources: FileSource[] = [];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sealtrail-file-read-'));
});

afterEach(async () => {
  for (const s of sources.splice(0)) await s.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Lines of uneven lengths (10 to ~700 bytes), so chunk ends fall anywhere in a read block. */
function unevenLines(n: number): string {
  let out = '';
  for (let i = 0; i < n; i++) out += `${JSON.stringify({ event_type: 'tool_invoked', i, pad: 'x'.repeat((i * 97) % 700) })}\n`;
  return out;
}

function expectedFingerprint(file: Buffer, offset: number): string {
  return positionFingerprint(file, offset, file.subarray(Math.max(0, offset - WINDOW_BYTES), offset));
}

describe('synchronous reads', () => {
  it.each([300, 1024, 64 * 1024])('commits the fingerprint of the file bytes with a read block of %i bytes', async (readBlockBytes) => {
    const h = new Harness();
    const file = path.join(dir, 'agent.jsonl');
    fs.writeFileSync(file, unevenLines(400));
    const s = new FileSource(h.options(dir, { readBlockBytes, maxChunkLines: 7 }));
    sources.push(s);
    await s.start();
    const bytes = fs.readFileSync(file);
    await waitFor('all lines', () => h.got.length >= 400, 30_000, 10);
    expect(h.violations).toEqual([]);
    expect(h.chunks.length).toBeGreaterThan(50);
    for (const c of h.chunks) expect(c.position.fingerprint, `position ${c.position.offset}`).toBe(expectedFingerprint(bytes, c.position.offset));
    expect(h.errors).toEqual([]);
  });

  it('lets timers run between the chunks of a backlog', async () => {
    const h = new Harness();
    fs.writeFileSync(path.join(dir, 'agent.jsonl'), unevenLines(3000));
    let ticks = 0;
    /** timer ticks seen by each chunk as it was committed */
    const seen: number[] = [];
    // A sink that never waits for a macrotask: only the source's own yield lets a timer in.
    const s = new FileSource({
      ...h.options(dir, { maxChunkLines: 10 }),
      sink: async (chunk) => {
        h.chunks.push(chunk);
        seen.push(ticks);
      },
    });
    sources.push(s);
    const timer = setInterval(() => ticks++, 0);
    try {
      await s.start();
      await waitFor('the backlog', () => h.chunks.reduce((n, c) => n + c.lines.length, 0) >= 3000, 30_000, 10);
      expect(h.chunks.length).toBeGreaterThanOrEqual(300);
      // the timer fired while the backlog was being read, not only after it
      expect(seen[seen.length - 1]!).toBeGreaterThan(seen[0]!);
    } finally {
      clearInterval(timer);
    }
  });
});
