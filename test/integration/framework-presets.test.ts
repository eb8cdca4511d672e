import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultSidecarConfig } from '../../src/config/load.js';
import { createHmacKeyFile, createSigningKeyFiles } from '../../src/keyfiles.js';
import { createLogger } from '../../src/log.js';
import { startSidecar, type SidecarHandle } from '../../src/sidecar/sidecar.js';
import { runLangChain, type LangChainRun } from '../helpers/langchain-run.js';
import { runOpenAIAgents, type AgentsRun } from '../helpers/openai-agents-run.js';
import { mapFile, obj, str, type Obj } from '../helpers/preset-map.js';
import { FakeCollector } from '../helpers/sidecar-collector.js';
import { freePort, ROOT, waitFor } from '../helpers/procs.js';

/**
 * The openai-agents and langchain presets against what the frameworks' own
 * packages write, not against hand-written fixtures: an agent run of
 * @openai/agents-core with the SDK's own OpenAI models, answered by a fake
 * OpenAI API on 127.0.0.1 and exported by the SDK's own BatchTraceProcessor,
 * and a LangChain.js run traced by LangChainTracer through a langsmith Client
 * that posts to a LangSmith stand-in on 127.0.0.1 (its model scripted).
 * Nothing leaves the host and no API key is needed; everything that shapes
 * the traces is the packages'.
 *
 * The mapping of each framework is asserted in framework-presets-openai and
 * framework-presets-langchain; this file runs both frameworks again and ships
 * what they wrote through a sidecar.
 */

const dir = mkdtempSync(join(tmpdir(), 'sealtrail-framework-presets-'));
let agents: AgentsRun;
let langchain: LangChainRun;

beforeAll(async () => {
  agents = await runOpenAIAgents(dir);
  langchain = await runLangChain(dir);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('through a real sidecar', () => {
  it('tails the three files and ships every event they map to, quarantining nothing', async () => {
    const work = join(dir, 'sidecar');
    const keys = join(work, 'keys');
    createSigningKeyFiles(join(keys, 's.skey'), join(keys, 's.vkey'), 'framework-presets');
    createHmacKeyFile(join(keys, 'hmac.key'));
    const cases = [
      { id: 'agents', file: agents.spans, mapping: 'openai-agents' },
      { id: 'agents-bodies', file: agents.bodies, mapping: 'openai-agents' },
      { id: 'langchain', file: langchain.runs, mapping: 'langchain' },
    ];
    const collector = await new FakeCollector().start();
    let sidecar: SidecarHandle | undefined;
    try {
      sidecar = await startSidecar(
        defaultSidecarConfig({
          stream: { name: 'framework-presets' },
          data_dir: join(work, 'data'),
          sources: cases.map((c) => ({ id: c.id, type: 'file', include: [c.file], format: 'mapped', mapping: c.mapping })),
          redaction: { rules: [join(ROOT, 'config', 'redaction', 'pii-basic.yaml')] },
          keys: { signing_key_file: join(keys, 's.skey'), hmac_key_file: join(keys, 'hmac.key') },
          seal: { max_interval: '100ms' },
          ship: { url: collector.url, backoff_initial: '50ms', backoff_max: '500ms' },
          telemetry: { listen: `127.0.0.1:${await freePort()}` },
        }),
        { logger: createLogger('test', 'silent') },
      );
      const handle = sidecar;
      const want = new Map(cases.map((c) => [c.id, mapFile(c.mapping, c.file).events]));
      for (const [id, evs] of want) expect(evs.length, id).toBeGreaterThan(5);
      const total = [...want.values()].reduce((n, evs) => n + evs.length, 0);
      const quarantined = (): unknown[] => handle.buffer.db.prepare('SELECT source, offset, reason, message FROM quarantine').all();
      const shipped = (): Obj[] => {
        const bySeq = new Map<number, Obj>();
        for (const r of collector.received) for (const w of r.body.records) bySeq.set(w.seq, obj(JSON.parse(w.canonical)));
        return [...bySeq.entries()].sort(([a], [b]) => a - b).map(([, rec]) => rec);
      };
      const ours = new Set(cases.map((c) => c.id));
      // a refused line never arrives: stop waiting as soon as one is quarantined
      await waitFor('every event at the collector, or a quarantined line', () => quarantined().length > 0 || shipped().filter((r) => ours.has(str(r['source']))).length >= total, 30_000);
      expect(quarantined()).toEqual([]);
      const records = shipped();
      // redaction may rewrite values, never which event a line became
      const key = (e: Obj): unknown[] => [e['event_type'], e['trace_id'], e['span_id'], (e['tool'] as Obj | undefined)?.['name'], e['outcome']];
      for (const c of cases) {
        expect(records.filter((r) => r['source'] === c.id).map(key), c.id).toEqual(want.get(c.id)!.map((e) => key(e as unknown as Obj)));
      }
    } finally {
      await sidecar?.shutdown(Date.now() + 2000);
      await collector.stop();
    }
  });
});
