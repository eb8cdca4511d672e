/**
 * A FileSource under test: its sink stands in for the SQLite buffer, so lines
 * and their position are "committed" together, and a restart reads positions
 * from the same map. Shared by the file-source and file-rotation tests.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { FileSourceOptions, LineChunk, PositionStore, StoredPosition } from '../../src/sidecar/sources/file-source.js';
import { sleep, waitFor } from '../harness/wait.js';

export { sleep, waitFor };

/** `dev:ino` of a file, the key FileSource gives it. */
export function keyOf(file: string): string {
  const st = fs.statSync(file);
  return `${st.dev}:${st.ino}`;
}

export interface Got {
  key: string;
  path: string;
  offset: number;
  length: number;
  text?: string;
  error?: string;
}

export class Harness {
  readonly store = new Map<string, StoredPosition>();
  readonly got: Got[] = [];
  readonly chunks: LineChunk[] = [];
  readonly errors: Error[] = [];
  readonly notices: string[] = [];
  /** broken chunk invariants seen by the sink (tests assert this is empty) */
  readonly violations: string[] = [];
  /** the sink fails this many chunks ("buffer busy") before committing again */
  rejectNext = 0;
  rejected: LineChunk[] = [];
  /** a slow sink: each commit waits this long (0: one setImmediate) */
  sinkDelayMs = 0;
  inSink = 0;
  maxInSink = 0;
  readonly positions: PositionStore = { get: (s, k) => this.store.get(`${s}|${k}`) };

  readonly sink = async (chunk: LineChunk): Promise<void> => {
    this.inSink++;
    this.maxInSink = Math.max(this.maxInSink, this.inSink);
    try {
      if (this.sinkDelayMs) await sleep(this.sinkDelayMs);
      else await new Promise((r) => setImmediate(r));
      if (this.rejectNext > 0) {
        this.rejectNext--;
        this.rejected.push(chunk);
        throw new Error('buffer busy');
      }
      this.check(chunk);
      this.chunks.push(chunk);
      for (const l of chunk.lines) {
        this.got.push({ key: chunk.file.key, path: chunk.file.path, offset: l.offset, length: l.length, text: l.text, error: l.error?.code });
      }
      this.store.set(`${chunk.source}|${chunk.position.key}`, chunk.position);
    } finally {
      this.inSink--;
    }
  };

  private check(chunk: LineChunk): void {
    const { lines, position } = chunk;
    if (!lines.length) {
      // A position-only commit (startAt end, or a copy of a file already read): a line start, no lines.
      if (chunk.file.key !== position.key) this.violations.push('file key and position key differ');
      if (this.store.get(`${chunk.source}|${position.key}`)) this.violations.push('position-only chunk for a file with a position');
      return;
    }
    for (let i = 1; i < lines.length; i++) {
      if (lines[i - 1]!.offset + lines[i - 1]!.length !== lines[i]!.offset) this.violations.push(`gap inside chunk at ${lines[i]!.offset}`);
    }
    const last = lines[lines.length - 1]!;
    if (position.offset !== last.offset + last.length) this.violations.push('position is not the end of the last line');
    const prev = this.store.get(`${chunk.source}|${position.key}`);
    const first = lines[0]!;
    // A chunk continues the committed offset, or restarts a file at 0 (truncation).
    if (prev && first.offset !== prev.offset && first.offset !== 0) {
      this.violations.push(`chunk at ${first.offset} does not continue committed ${prev.offset}`);
    }
    if (chunk.file.key !== position.key) this.violations.push('file key and position key differ');
  }

  texts(): string[] {
    return this.got.map((g) => g.text ?? `!${g.error}`);
  }

  /** Source options with short timers; `include` is a list of globs, or a directory for its `*.jsonl`. */
  options(include: string | string[], over: Partial<FileSourceOptions> = {}): FileSourceOptions {
    return {
      id: 'traces',
      include: typeof include === 'string' ? [path.join(include, '*.jsonl')] : include,
      maxLineBytes: 64 * 1024,
      startAt: 'beginning',
      positions: this.positions,
      sink: this.sink,
      pollIntervalMs: 40,
      rescanIntervalMs: 150,
      rotateWaitMs: 300,
      retryDelayMs: 50,
      onError: (e) => this.errors.push(e),
      onNotice: (m) => this.notices.push(m),
      ...over,
    };
  }
}
