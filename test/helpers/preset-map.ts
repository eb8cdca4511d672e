/**
 * Reading what a framework wrote and putting it through a mapped preset the
 * way ingest does: JSON lines, the preset's decode, normaliseEvent; plus the
 * small pickers the framework-preset tests assert with.
 */
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import { InputError } from '../../src/core/errors.js';
import { normaliseEvent } from '../../src/core/record.js';
import type { DecodedEvent } from '../../src/sidecar/formats/format.js';
import { loadMapping } from '../../src/sidecar/formats/mapped/index.js';

export type Obj = Record<string, unknown>;
export type Ev = ReturnType<typeof normaliseEvent>;

/** The receive time mapFile stamps on every event. */
export const RECEIVED = '2026-03-04T05:06:07.089Z';

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
export function obj(v: unknown): Obj {
  if (!isObj(v)) throw new Error(`expected an object, got ${JSON.stringify(v)}`);
  return v;
}
export function str(v: unknown): string {
  if (typeof v !== 'string') throw new Error(`expected a string, got ${JSON.stringify(v)}`);
  return v;
}

export function lines(file: string): Obj[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => obj(JSON.parse(l)));
}

export interface Mapped {
  decoded: DecodedEvent[];
  events: Ev[];
  /** one per refused line: where and why, as the sidecar would quarantine it */
  refused: Array<{ line: number; code: string; field: string | undefined; message: string }>;
}

/** Every line of a file through the preset and normaliseEvent, as ingest does, keeping refusals instead of throwing. */
export function mapFile(preset: string, file: string): Mapped {
  const format = loadMapping(preset, '/nonexistent-base-dir');
  const out: Mapped = { decoded: [], events: [], refused: [] };
  lines(file).forEach((line, i) => {
    try {
      const decoded = format.decode(line);
      const events = decoded.map((d) => normaliseEvent(d.event, RECEIVED));
      out.decoded.push(...decoded);
      out.events.push(...events);
    } catch (err) {
      if (!(err instanceof InputError)) throw err;
      out.refused.push({ line: i + 1, code: err.code, field: err.field, message: err.message });
    }
  });
  return out;
}

export const unmapped = (e: Ev): Obj | undefined => e.details?.['_unmapped'] as Obj | undefined;
/** A UTC time ("…Z") with microseconds as the record keeps it: milliseconds. */
export const toMillis = (t: string): string => `${t.slice(0, 23)}Z`;

/** A value computed once, after beforeAll has produced the files. */
export function once<T>(f: () => T): () => T {
  let v: { value: T } | undefined;
  return () => (v ??= { value: f() }).value;
}
export const byType = (events: Ev[], type: string): Ev[] => events.filter((e) => e.event_type === type);
export function only(events: Ev[], pred: (e: Ev) => boolean): Ev {
  const hits = events.filter(pred);
  expect(hits).toHaveLength(1);
  return hits[0]!;
}
