import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { startCollectorFromConfig, type CollectorHandle } from '../../src/collector/from-config.js';
import { defaultCollectorConfig, defaultSidecarConfig } from '../../src/config/load.js';
import { createHmacKeyFile, createSigningKeyFiles } from '../../src/keyfiles.js';
import { createLogger } from '../../src/log.js';
import { startSidecar, type SidecarHandle } from '../../src/sidecar/sidecar.js';
import { getJson } from '../helpers/deployment.js';
import { freePort, ROOT, waitFor } from '../helpers/procs.js';
import { SocketClient } from '../helpers/socket-client.js';

/**
 * The defect this guards against: one event the sidecar answered 202 for
 * grew past the collector's record limit (here by redaction: 7 characters of
 * "a@b.io " become 17 of "[REDACTED:email] "), the collector refused its
 * batch with 422, and shipping halted for good, taking the good records
 * sealed beside it along. Now each source refuses such an event at ingest
 * and says so, and everything else ships.
 */

const logger = createLogger('test', 'silent');
const TOKEN = 'oversized-test-token-0123456789';
// 980,049 bytes on the line, under the file source's 1 MiB line limit; about 2.4 MB once redacted
const GROWING = `{"event_type":"tool_invoked","details":{"text":"${'a@b.io '.repeat(140_000)}"}}`;

describe('an event that grows past the record limit when redacted', () => {
  let sidecar: SidecarHandle | undefined;
  let collector: CollectorHandle | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    await sidecar?.shutdown(Date.now() + 3000);
    await collector?.shutdown();
    if (dir) rmSync(dir, { recursive: true, force: true });
    sidecar = undefined;
    collector = undefined;
  });

  it('is refused by each source with record_too_large, and the good events around it reach the collector', async () => {
    expect(Buffer.byteLength(GROWING)).toBeLessThan(1024 * 1024);
    dir = mkdtempSync(join(tmpdir(), 'sealtrail-oversized-'));
    const keys = join(dir, 'keys');
    createSigningKeyFiles(join(keys, 's.skey'), join(keys, 's.vkey'), 'big');
    createHmacKeyFile(join(keys, 'hmac.key'));
    const traces = join(dir, 'traces');
    mkdirSync(traces);
    const sock = join(dir, 'events.sock');
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
    sidecar = await startSidecar(
      defaultSidecarConfig({
        stream: { name: 'big' },
        data_dir: join(dir, 'sidecar'),
        sources: [
          { id: 'traces', type: 'file', include: [join(traces, '*.jsonl')] },
          { id: 'sock', type: 'socket', path: sock },
          { id: 'api', type: 'http' },
        ],
        redaction: { rules: [join(ROOT, 'config', 'redaction', 'pii-basic.yaml')] },
        keys: { signing_key_file: join(keys, 's.skey'), hmac_key_file: join(keys, 'hmac.key') },
        seal: { max_interval: '100ms' },
        ship: { url: `http://127.0.0.1:${port}`, backoff_initial: '50ms', backoff_max: '500ms' },
        telemetry: { listen: `127.0.0.1:${await freePort()}` },
      }),
      { logger },
    );
    const good = (n: number, via: string): string => JSON.stringify({ event_type: 'tool_invoked', details: { n, via } });

    // HTTP: one request, the big event between two good ones: 202, the big one rejected by index
    const res = await request(`${sidecar.telemetryUrl}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body: [good(1, 'api'), GROWING, good(2, 'api')].join('\n'),
    });
    const answer = (await res.body.json()) as { accepted: number; rejected: Array<{ index: number; code: string }> };
    expect(res.statusCode).toBe(202);
    expect(answer.accepted).toBe(2);
    expect(answer.rejected).toEqual([{ index: 1, line: 2, code: 'record_too_large' }]);

    // socket: an error answer for that line, acks for the others, the connection still usable
    const client = await SocketClient.connect(sock);
    await client.sendLines([good(1, 'sock'), GROWING, good(2, 'sock')]);
    await client.waitAnswers(3);
    expect(client.lineErrors.get(2)).toBe('record_too_large');
    expect([...client.acks.keys()].sort()).toEqual([1, 3]);
    await client.end();

    // file: quarantined by position and reason
    const file = join(traces, 'agent.jsonl');
    writeFileSync(file, `${good(1, 'file')}\n`);
    appendFileSync(file, `${GROWING}\n${good(2, 'file')}\n`);

    const stored = await waitFor('six good events at the collector', async () => {
      const { body } = await getJson(`http://127.0.0.1:${port}/v1/audit?limit=100`, TOKEN);
      const items = ((body.items ?? []) as Array<{ record: { source: string; details?: { via?: string } } }>).filter((i) => i.record.details?.via);
      return items.length >= 6 ? items : undefined;
    }, 30_000);
    expect(stored.map((i) => `${i.record.details!.via}`).sort()).toEqual(['api', 'api', 'file', 'file', 'sock', 'sock']);
    expect(await sidecar.metrics.registry.getSingleMetricAsString('sealtrail_shipping_halted')).toMatch(/sealtrail_shipping_halted 0/);
    const q = await sidecar.metrics.registry.getSingleMetricAsString('sealtrail_records_quarantined_total');
    for (const source of ['api', 'sock', 'traces']) expect(q).toContain(`source="${source}",reason="record_too_large"} 1`);
    // and the refusals themselves reached the collector as an ingest_rejected record
    await waitFor('three refusals reported upstream', async () => {
      const { body } = await getJson(`http://127.0.0.1:${port}/v1/audit?event_type=ingest_rejected&limit=100`, TOKEN);
      const n = (body.items ?? []).reduce((s: number, i: { record: { details: { rejected: number } } }) => s + i.record.details.rejected, 0);
      return n === 3;
    }, 30_000);
  });
});
