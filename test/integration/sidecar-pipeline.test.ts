import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { startCollectorFromConfig, type CollectorHandle } from '../../src/collector/from-config.js';
import { defaultCollectorConfig, defaultSidecarConfig } from '../../src/config/load.js';
import { createHmacKeyFile, createSigningKeyFiles } from '../../src/keyfiles.js';
import { createLogger } from '../../src/log.js';
import { startSidecar, type SidecarHandle } from '../../src/sidecar/sidecar.js';
import { freePort, ROOT, sleep, waitFor } from '../helpers/procs.js';
import { getJson } from '../helpers/deployment.js';

const logger = createLogger('test', 'silent');
const TOKEN = 'pipeline-test-token-0123456789';

interface Setup {
  dir: string;
  traces: string;
  port: number;
  sidecarCfg: ReturnType<typeof defaultSidecarConfig>;
  collectorCfg: ReturnType<typeof defaultCollectorConfig>;
}

async function setup(opts: { maxRecords?: number; rules?: string[]; pseudonym?: boolean } = {}): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), 'sealtrail-pipe-'));
  const keys = join(dir, 'keys');
  createSigningKeyFiles(join(keys, 's.skey'), join(keys, 's.vkey'), 'pipe');
  createHmacKeyFile(join(keys, 'hmac.key'));
  const traces = join(dir, 'traces');
  mkdirSync(traces);
  const port = await freePort();
  const collectorCfg = defaultCollectorConfig({
    listen: `127.0.0.1:${port}`,
    store: { type: 'sqlite', path: join(dir, 'collector', 'audit.db') },
    auth: { admin_tokens: [TOKEN] },
    streams: [{ match: '*', vkey_file: join(keys, 's.vkey') }],
    hmac_keys: [{ id: 'k1', file: join(keys, 'hmac.key') }],
  });
  const sidecarCfg = defaultSidecarConfig({
    stream: { name: 'pipe' },
    data_dir: join(dir, 'sidecar'),
    sources: [{ id: 'traces', type: 'file', include: [join(traces, '*.jsonl')] }],
    redaction: {
      rules: opts.rules ?? [join(ROOT, 'config', 'redaction', 'pii-basic.yaml')],
      ...(opts.pseudonym ? { pseudonym_keys: [{ id: 'p1', file: join(keys, 'hmac.key') }] } : {}),
    },
    keys: { signing_key_file: join(keys, 's.skey'), hmac_key_file: join(keys, 'hmac.key') },
    seal: { max_interval: '100ms', ...(opts.maxRecords ? { max_records: Math.min(opts.maxRecords, 1000) } : {}) },
    ship: { url: `http://127.0.0.1:${port}`, backoff_initial: '50ms', backoff_max: '500ms' },
    buffer: opts.maxRecords ? { max_records: opts.maxRecords } : {},
    telemetry: { listen: `127.0.0.1:${await freePort()}` },
  });
  return { dir, traces, port, sidecarCfg, collectorCfg };
}

async function storedRecords(s: Setup): Promise<any[]> {
  const { body } = await getJson(`http://127.0.0.1:${s.port}/v1/audit?limit=1000`, TOKEN);
  // The collector's own read-audit stream (docs/read-audit.md) records these reads; only the sidecar's records count here.
  return (body.items ?? []).filter((i: { record: { source?: string } }) => i.record.source !== 'collector');
}

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(join(e.parentPath ?? (e as unknown as { path: string }).path, e.name));
  }
  return out;
}

describe('sidecar + collector in one process, over real HTTP', () => {
  let sidecar: SidecarHandle | undefined;
  let collector: CollectorHandle | undefined;
  afterEach(async () => {
    await sidecar?.shutdown(Date.now() + 2000);
    await collector?.shutdown();
    sidecar = undefined;
    collector = undefined;
  });

  it('refuses to start on a stream id collectors reserve (a pod named collector-...), and starts once stream.name is set', async () => {
    const s = await setup();
    const cfg = { ...s.sidecarCfg, stream: {} };
    let err: unknown;
    try {
      sidecar = await startSidecar(cfg, { logger, env: { POD_NAME: 'collector-agents-0' } });
    } catch (e) {
      err = e;
    }
    expect((err as { code?: string }).code).toBe('stream_reserved');
    expect((err as Error).message).toMatch(/stream\.name/);
    // No stream was assigned to the buffer: the corrected config starts a fresh one.
    sidecar = await startSidecar({ ...s.sidecarCfg, stream: { name: 'agents-0' } }, { logger, env: { POD_NAME: 'collector-agents-0' } });
    expect(sidecar.stream).toMatch(/^agents-0-/);
    // A configured id is refused alike.
    await sidecar.shutdown(Date.now() + 2000);
    sidecar = undefined;
    const other = await setup();
    await expect(startSidecar({ ...other.sidecarCfg, stream: { id: 'collector-x' } }, { logger })).rejects.toMatchObject({ code: 'stream_reserved' });
  });

  it('quarantines bad lines by position and reason, keeps their bytes out of every file, and delivers the good ones', async () => {
    const s = await setup();
    collector = await startCollectorFromConfig(s.collectorCfg, logger);
    sidecar = await startSidecar(s.sidecarCfg, { logger });
    const canary = 'zq-canary-4242@leak.example.net';
    const good = (n: number): string => JSON.stringify({ event_type: 'tool_invoked', details: { n } });
    const lines: (string | Buffer)[] = [
      good(1),
      Buffer.from([0xc3, 0x28, 0xff, 0xfe, 0x00, 0x01]), // invalid UTF-8
      `{"event_type":"tool_invoked","details":{"x":"${canary}"`, // truncated JSON with PII
      `${'{"event_type":"x","pad":"'}${canary}${'a'.repeat(2 * 1024 * 1024)}"}`, // over the 1 MiB limit
      '[1,2,3]',
      JSON.stringify({ actor: { id: canary } }), // no event_type
      '   ',
      '{"event_type":"user_message_received","details":{"text":"write to zq-escaped\\u0040leak.example.net"}}',
      JSON.stringify({ event_type: 'tool_invoked', seq: 7, details: { who: canary } }), // a field the sidecar owns
      good(2),
    ];
    const file = join(s.traces, 'agent.jsonl');
    for (const l of lines) appendFileSync(file, Buffer.concat([Buffer.isBuffer(l) ? l : Buffer.from(l), Buffer.from('\n')]));

    const fromTraces = async (): Promise<any[]> => (await storedRecords(s)).filter((i) => i.record.source === 'traces');
    await waitFor('three good records', async () => (await fromTraces()).length >= 3, 30_000);
    await sleep(300);
    const items = await fromTraces();
    expect(items).toHaveLength(3);
    expect(items.map((i) => i.record.event_type)).toEqual(['tool_invoked', 'user_message_received', 'tool_invoked']);
    expect(items[1].record.details.text).toBe('write to [REDACTED:email]');

    const db = new Database(join(s.sidecarCfg.data_dir, 'buffer.db'), { readonly: true });
    const q = db.prepare('SELECT reason, offset, length FROM quarantine ORDER BY offset').all() as { reason: string; offset: number; length: number }[];
    db.close();
    expect(q.map((r) => r.reason)).toEqual(['invalid_utf8', 'json_invalid', 'line_too_long', 'record_not_object', 'record_invalid', 'record_invalid']);
    // positions point at the real lines
    const raw = readFileSync(file);
    expect(raw.subarray(q[1]!.offset, q[1]!.offset + 14).toString()).toBe('{"event_type":');

    // The refusals reach the collector too, as chained ingest_rejected records: positions and reasons, never bytes.
    const reports = await waitFor('every refusal reported upstream', async () => {
      const r = (await storedRecords(s)).filter((i) => i.record.event_type === 'ingest_rejected');
      return r.reduce((n, i) => n + i.record.details.rejected, 0) >= 6 ? r : undefined;
    }, 30_000);
    expect(reports.every((i) => i.record.source === 'sealtrail')).toBe(true);
    const reported = reports.flatMap((i) => i.record.details.positions);
    expect(reported.map((p: { reason: string }) => p.reason).sort()).toEqual(q.map((r) => r.reason).sort());
    expect(reported.map((p: { offset: number }) => p.offset).sort((a: number, b: number) => a - b)).toEqual(q.map((r) => r.offset));
    expect(JSON.stringify(reports)).not.toContain(canary);
    // the field at fault travels with the position, for lines refused for one field
    expect(reported.filter((p: { field?: string }) => p.field !== undefined).map((p: { field: string }) => p.field).sort()).toEqual(['event_type', 'seq']);

    const metrics = await sidecar.metrics.registry.getSingleMetricAsString('sealtrail_records_quarantined_total');
    expect(metrics).toMatch(/reason="line_too_long"} 1/);
    expect(metrics).toMatch(/reason="record_invalid"} 2/);

    await sidecar.shutdown(Date.now() + 5000);
    sidecar = undefined;
    await collector.shutdown();
    collector = undefined;
    for (const f of filesUnder(s.dir)) {
      if (f.startsWith(s.traces)) continue;
      const bytes = readFileSync(f);
      expect(bytes.includes(canary), `${f} holds the canary`).toBe(false);
      expect(bytes.includes('zq-escaped@leak'), `${f} holds the escaped canary`).toBe(false);
    }
  });

  it('pauses reading when the buffer is full while the collector is down, and delivers everything once it is up', async () => {
    const s = await setup({ maxRecords: 100 });
    sidecar = await startSidecar(s.sidecarCfg, { logger });
    const file = join(s.traces, 'agent.jsonl');
    let text = '';
    for (let n = 0; n < 1000; n++) text += `${JSON.stringify({ event_type: 'tool_invoked', details: { n } })}\n`;
    writeFileSync(file, text);
    await waitFor('backpressure', async () => {
      const m = await sidecar!.metrics.registry.getSingleMetricAsString('sealtrail_backpressure');
      return / 1$/m.test(m);
    }, 30_000);
    // reading stopped near the limit instead of buffering the whole file
    expect(sidecar.buffer.stats().records).toBeLessThan(1000);
    expect(sidecar.buffer.stats().records).toBeGreaterThanOrEqual(100);
    collector = await startCollectorFromConfig(s.collectorCfg, logger);
    await waitFor('all 1000 stored', async () => {
      const { body } = await getJson(`http://127.0.0.1:${s.port}/v1/streams`, TOKEN);
      // The sidecar's stream, not the collector's read-audit stream (docs/read-audit.md).
      return (body.streams as Array<{ stream: string; tree_size: number }> | undefined)?.find((x) => !x.stream.startsWith('collector-'))?.tree_size === 1000;
    }, 60_000);
    const seen = new Set<number>();
    let cursor: string | null = null;
    do {
      const { body }: { body: any } = await getJson(`http://127.0.0.1:${s.port}/v1/audit?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, TOKEN);
      for (const i of body.items) if (i.record.source !== 'collector') seen.add(i.record.details.n);
      cursor = body.next_cursor;
    } while (cursor);
    expect(seen.size).toBe(1000);
  });

  it('pseudonymises with a deployment key: same person, same token per tenant; different tenant, different token', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sealtrail-rules-'));
    const rules = join(dir, 'hash.yaml');
    writeFileSync(
      rules,
      `rules:\n  - id: email\n    detector: email\n    operator: hash\n    key: p1\n    per_tenant: true\n`,
    );
    const s = await setup({ rules: [rules], pseudonym: true });
    collector = await startCollectorFromConfig(s.collectorCfg, logger);
    sidecar = await startSidecar(s.sidecarCfg, { logger });
    const ev = (tenant: string, who: string): string =>
      `${JSON.stringify({ event_type: 'data_accessed', tenant, actor: { id: who, type: 'user' } })}\n`;
    appendFileSync(
      join(s.traces, 'agent.jsonl'),
      ev('acme', 'ann@example.com') + ev('acme', 'ann@example.com') + ev('globex', 'ann@example.com') + ev('acme', 'bob@example.com'),
    );
    const items = await waitFor('four records', async () => {
      const it = await storedRecords(s);
      return it.length >= 4 ? it : undefined;
    }, 30_000);
    const ids = items.map((i) => i.record.actor.id as string);
    for (const id of ids) expect(id).toMatch(/^pii:p1:[a-z2-7]{16}$/);
    expect(ids[0]).toBe(ids[1]);
    expect(ids[2]).not.toBe(ids[0]);
    expect(ids[3]).not.toBe(ids[0]);
    expect(JSON.stringify(items)).not.toContain('@example.com');
    expect(items[0].record.redaction.hits).toEqual({ email: 1 });
  });
});
