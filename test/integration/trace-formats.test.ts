import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startCollectorFromConfig, type CollectorHandle } from '../../src/collector/from-config.js';
import { defaultCollectorConfig, defaultSidecarConfig } from '../../src/config/load.js';
import type { SidecarConfigInput } from '../../src/config/types.js';
import type { LineFormat } from '../../src/sidecar/formats/format.js';
import { formatFor } from '../../src/sidecar/formats/for-source.js';
import { createHmacKeyFile, createSigningKeyFiles } from '../../src/keyfiles.js';
import { createLogger } from '../../src/log.js';
import { startSidecar, type SidecarHandle } from '../../src/sidecar/sidecar.js';
import { getJson } from '../helpers/deployment.js';
import { freePort, ROOT, waitFor } from '../helpers/procs.js';

/**
 * Trace files as agents already write them, one source per format and
 * preset: each file is tailed across a rename rotation, and every event it
 * holds reaches the collector exactly once.
 */
const logger = createLogger('test', 'silent');
const TOKEN = 'trace-formats-token-0123456789';
const FIXTURES = join(ROOT, 'test', 'fixtures');

type Format = { format: 'otlp-json' | 'cloudevents' } | { format: 'mapped'; mapping: string };
const CASES: Array<{ id: string; fixture: string; cfg: Format }> = [
  { id: 'otlp', fixture: join(FIXTURES, 'otlp', 'collector-file-exporter.jsonl'), cfg: { format: 'otlp-json' } },
  { id: 'ce', fixture: join(FIXTURES, 'formats', 'cloudevents.jsonl'), cfg: { format: 'cloudevents' } },
  { id: 'mesh', fixture: join(FIXTURES, 'formats', 'agentmesh.jsonl'), cfg: { format: 'mapped', mapping: 'agentmesh' } },
  { id: 'comp', fixture: join(FIXTURES, 'formats', 'compliance-record.jsonl'), cfg: { format: 'mapped', mapping: 'compliance-record' } },
  { id: 'oai', fixture: join(FIXTURES, 'formats', 'openai-agents.jsonl'), cfg: { format: 'mapped', mapping: 'openai-agents' } },
  { id: 'lc', fixture: join(FIXTURES, 'formats', 'langchain.jsonl'), cfg: { format: 'mapped', mapping: 'langchain' } },
];

/** What a line must become: event_type and the time as the record writes it, per event, in order. */
function expected(format: LineFormat, lines: string[]): string[] {
  return lines.flatMap((l) =>
    format.decode(JSON.parse(l)).map(({ event }) => `${event.event_type as string}@${typeof event.time === 'string' ? new Date(event.time).toISOString() : 'received'}`),
  );
}

describe('trace files in every format and preset, across a rename rotation', () => {
  let sidecar: SidecarHandle | undefined;
  let collector: CollectorHandle | undefined;
  afterAll(async () => {
    await sidecar?.shutdown(Date.now() + 2000);
    await collector?.shutdown();
  });

  it('arrive exactly once, each event with its event_type and time', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sealtrail-formats-'));
    const keys = join(dir, 'keys');
    createSigningKeyFiles(join(keys, 's.skey'), join(keys, 's.vkey'), 'formats');
    createHmacKeyFile(join(keys, 'hmac.key'));
    const port = await freePort();
    collector = await startCollectorFromConfig(
      defaultCollectorConfig({
        listen: `127.0.0.1:${port}`,
        store: { type: 'sqlite', path: join(dir, 'collector', 'audit.db') },
        auth: { admin_tokens: [TOKEN] },
        streams: [{ match: '*', vkey_file: join(keys, 's.vkey') }],
        hmac_keys: [{ id: 'k1', file: join(keys, 'hmac.key') }],
      }),
      logger,
    );
    const sources: SidecarConfigInput['sources'] = CASES.map((c) => {
      mkdirSync(join(dir, c.id));
      return { id: c.id, type: 'file', include: [join(dir, c.id, '*.jsonl'), join(dir, c.id, '*.jsonl.*')], ...c.cfg };
    });
    sidecar = await startSidecar(
      defaultSidecarConfig({
        stream: { name: 'formats' },
        data_dir: join(dir, 'sidecar'),
        sources,
        redaction: { rules: [join(ROOT, 'config', 'redaction', 'pii-basic.yaml')] },
        keys: { signing_key_file: join(keys, 's.skey'), hmac_key_file: join(keys, 'hmac.key') },
        seal: { max_interval: '100ms' },
        ship: { url: `http://127.0.0.1:${port}`, backoff_initial: '50ms', backoff_max: '500ms' },
        telemetry: { listen: `127.0.0.1:${await freePort()}` },
      }),
      { logger },
    );

    const want = new Map<string, string[]>();
    const firstHalf = new Map<string, number>();
    for (const c of CASES) {
      const lines = readFileSync(c.fixture, 'utf8').split('\n').filter((l) => l.trim() !== '');
      expect(lines.length, c.fixture).toBeGreaterThanOrEqual(4);
      want.set(c.id, expected(formatFor(c.cfg, ROOT), lines));
      const half = Math.ceil(lines.length / 2);
      firstHalf.set(c.id, expected(formatFor(c.cfg, ROOT), lines.slice(0, half)).length);
      appendFileSync(join(dir, c.id, 'agent.jsonl'), `${lines.slice(0, half).join('\n')}\n`);
      // the rest after a rename rotation: part into the renamed file (written before the rename was seen), part into the new one
      c.fixture = `${half}:${lines.slice(half).join('\n')}`;
    }
    const bySource = async (): Promise<Map<string, any[]>> => {
      const { body } = await getJson(`http://127.0.0.1:${port}/v1/audit?limit=1000&order=asc`, TOKEN);
      const m = new Map<string, any[]>();
      for (const i of body.items ?? []) if (i.record.source !== 'collector' && i.record.source !== 'sealtrail') m.set(i.record.source, [...(m.get(i.record.source) ?? []), i.record]);
      // the API orders by time; a source's file order is its seq order
      for (const rs of m.values()) rs.sort((a, b) => a.seq - b.seq);
      return m;
    };
    await waitFor('the first halves', async () => {
      const m = await bySource();
      return CASES.every((c) => (m.get(c.id)?.length ?? 0) >= firstHalf.get(c.id)!);
    }, 30_000);
    for (const c of CASES) {
      const rest = c.fixture.slice(c.fixture.indexOf(':') + 1).split('\n');
      const cut = Math.ceil(rest.length / 2);
      appendFileSync(join(dir, c.id, 'agent.jsonl'), `${rest.slice(0, cut).join('\n')}\n`);
      renameSync(join(dir, c.id, 'agent.jsonl'), join(dir, c.id, 'agent.jsonl.1'));
      if (rest.length > cut) appendFileSync(join(dir, c.id, 'agent.jsonl'), `${rest.slice(cut).join('\n')}\n`);
    }
    const all = await waitFor('every event', async () => {
      const m = await bySource();
      return CASES.every((c) => (m.get(c.id)?.length ?? 0) >= want.get(c.id)!.length) ? m : undefined;
    }, 30_000);
    // a little longer: a duplicate would show up now
    await new Promise((r) => setTimeout(r, 500));
    const final = await bySource();
    for (const c of CASES) {
      const got = final.get(c.id)!.map((r) => `${r.event_type}@${r.time}`);
      const exp = want.get(c.id)!;
      expect(got.length, c.id).toBe(exp.length);
      // events without a time of their own carry the time they were received
      expect(got.map((g, i) => (exp[i]!.endsWith('@received') ? `${g.split('@')[0]}@received` : g)), c.id).toEqual(exp);
      expect(all.get(c.id)!.length).toBe(exp.length);
    }
    // the OTLP spans carry their mapped fields through the file path too
    const tool = final.get('otlp')!.find((r) => r.event_type === 'tool_invoked');
    expect(tool?.tool?.name).toEqual(expect.any(String));
    expect(tool?.trace_id).toMatch(/^[0-9a-f]{32}$/);
  });
});
