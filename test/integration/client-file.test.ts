import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditClient, ClientError, decision } from '../../src/client/index.js';
import { ClientSidecar } from '../helpers/client-sidecar.js';
import { procOf, ROOT, waitFor } from '../helpers/procs.js';

/**
 * The JSONL file writer: two processes append to one file at once through
 * the built client (one fsyncing), every line lands whole, and a real
 * sidecar's file source then ingests every one of them without a refusal.
 */

let sc: ClientSidecar;
let dir: string;
let traces: string;

beforeAll(async () => {
  sc = await ClientSidecar.create({
    prefix: 'sealtrail-client-file-',
    stream: 'client-file',
    sources: (d) => [`{ id: traces, type: file, include: ["${join(d, 'traces', 'agent.jsonl')}"] }`],
  });
  dir = sc.dir;
  traces = join(dir, 'traces');
  mkdirSync(traces);
});

afterAll(async () => {
  await sc?.dispose();
});

/**
 * A writer process: `node -e <this> <file> <tag> <n> <fsync 0|1>` prints the
 * event_ids it was given, in order. It writes the first half of its events,
 * waits until the file holds a line of another writer, then writes the
 * rest: two writers are bound to interleave, however the OS schedules them.
 */
const WRITER = `
import { readFileSync } from 'node:fs';
const { AuditClient } = await import(${JSON.stringify(join(ROOT, 'dist/src/client/index.js'))});
const [file, tag, n, fsync] = process.argv.slice(1);
const client = new AuditClient({ file, fsync: fsync === '1' });
const emit = (i) => client.emit({ event_type: 'file_line', actor: { id: tag }, details: { tag, i, pad: 'x'.repeat((i * 7919) % 60000) } });
const half = Math.floor(Number(n) / 2);
const results = await Promise.all(Array.from({ length: half }, (_, i) => emit(i)));
const other = () => { try { return readFileSync(file, 'utf8').split('\\n').some((l) => l && JSON.parse(l).details.tag !== tag); } catch { return false; } };
while (!other()) await new Promise((r) => setTimeout(r, 5));
results.push(...(await Promise.all(Array.from({ length: Number(n) - half }, (_, i) => emit(half + i)))));
await client.close();
if (results.some((r) => r.seq !== undefined)) throw new Error('a file write has no seq');
process.stdout.write(JSON.stringify(results.map((r) => r.event_id)));
`;

async function writer(file: string, tag: string, n: number, fsync: boolean): Promise<string[]> {
  const p = procOf(spawn(process.execPath, ['--input-type=module', '-e', WRITER, file, tag, String(n), fsync ? '1' : '0'], { stdio: ['ignore', 'pipe', 'pipe'] }));
  const { code } = await p.exited;
  expect(code, p.stderr()).toBe(0);
  return JSON.parse(p.stdout()) as string[];
}

describe('AuditClient file writer', () => {
  it('two processes appending at once write whole lines only, which the file source ingests without a refusal', async () => {
    const file = join(traces, 'agent.jsonl');
    const N = 400;
    const [a, b] = await Promise.all([writer(file, 'a', N, true), writer(file, 'b', N, false)]);

    const text = readFileSync(file, 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    const lines = text.slice(0, -1).split('\n');
    expect(lines).toHaveLength(2 * N);
    const written = lines.map((l) => JSON.parse(l) as { event_id: string; details: { tag: string; i: number; pad: string } });
    for (const w of written) expect(w.details.pad.length).toBe((w.details.i * 7919) % 60000);
    expect(new Set(written.map((w) => w.event_id))).toEqual(new Set([...a, ...b]));
    // Each writer's lines are in its emit order (one write at a time, O_APPEND).
    for (const [tag, ids] of [['a', a], ['b', b]] as const) expect(written.filter((w) => w.details.tag === tag).map((w) => w.event_id)).toEqual(ids);
    // The two processes did interleave (see WRITER): the test exercised concurrent appends.
    const tags = written.map((w) => w.details.tag).join('');
    expect(tags).toMatch(/a.*b.*a|b.*a.*b/);

    await sc.start();
    const ids = await waitFor(
      'every line ingested',
      () => {
        const got = records().filter((r) => r.event_type === 'file_line');
        return got.length >= 2 * N ? got : false;
      },
      30_000,
      50,
    );
    expect(new Set(ids.map((r) => r.event_id))).toEqual(new Set([...a, ...b]));
    expect(ids).toHaveLength(2 * N);
    expect(quarantine()).toEqual([]);
  });

  it('resolves without a seq once written; a write that cannot happen rejects with client_write_failed', async () => {
    const client = new AuditClient({ file: join(traces, 'single.jsonl'), fsync: true });
    const r = await client.emit(decision({ policy: { decision: 'deny', rule: 'r1' } }));
    expect(r.seq).toBeUndefined();
    expect(JSON.parse(readFileSync(join(traces, 'single.jsonl'), 'utf8'))).toMatchObject({ event_id: r.event_id, event_type: 'policy_decided', outcome: 'denied' });
    await client.close();

    const broken = new AuditClient({ file: join(dir, 'no-such-dir', 'x.jsonl') });
    const err = await broken.emit({ event_type: 't' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClientError);
    expect(err).toMatchObject({ code: 'client_write_failed' });
    expect((err as Error).message).toContain('ENOENT');
    await broken.close();
  });

  it('writes emits awaited one after another (each made as soon as the previous resolved)', async () => {
    const path = join(traces, 'sequential.jsonl');
    const client = new AuditClient({ file: path });
    const ids: string[] = [];
    for (let i = 0; i < 50; i++) ids.push((await client.emit({ event_type: 'step', details: { i } })).event_id);
    await client.close();
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as { event_id: string });
    expect(lines.map((l) => l.event_id)).toEqual(ids);
  });

  /** Shipped records and those still in the buffer. */
  function records(): Array<{ event_type: string; event_id: string | undefined }> {
    return sc.allRecords().map(({ event_type, event_id }) => ({ event_type, event_id }));
  }

  function quarantine(): unknown[] {
    return sc.quarantine('source, offset, reason');
  }
});
