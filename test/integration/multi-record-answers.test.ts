import { mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultSidecarConfig } from '../../src/config/load.js';
import type { SidecarConfig } from '../../src/config/types.js';
import { createHmacKeyFile, createSigningKeyFiles } from '../../src/keyfiles.js';
import { createLogger } from '../../src/log.js';
import { startSidecar, type SidecarHandle } from '../../src/sidecar/sidecar.js';
import { freePort, waitFor } from '../helpers/procs.js';

/** Lines that become several records (OTLP/JSON: one per span) are answered with every seq they took. */
const span = (i: number) => ({
  traceId: '5b8efff798038103d269b633813fc60c',
  spanId: `eee19b7ec3c1b1${String(70 + i)}`,
  name: 's',
  startTimeUnixNano: '1733500000000000000',
  attributes: [{ key: 'gen_ai.operation.name', value: { stringValue: 'chat' } }],
});
const request = (n: number) => JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: Array.from({ length: n }, (_, i) => span(i)) }] }] });

describe('answers for lines that become several records', () => {
  let sidecar: SidecarHandle | undefined;
  afterAll(async () => {
    await sidecar?.shutdown(Date.now() + 1000);
  });

  it('socket acks carry records and the first seq; a line with no spans is answered too; http gives last_seq and records', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sealtrail-multi-'));
    createSigningKeyFiles(join(dir, 's.skey'), join(dir, 's.vkey'), 'multi');
    createHmacKeyFile(join(dir, 'hmac.key'));
    const socketPath = join(dir, 'in.sock');
    const cfg = defaultSidecarConfig({
      stream: { name: 'multi' },
      data_dir: join(dir, 'data'),
      sources: [{ id: 'x', type: 'file', include: [join(dir, 'none', '*.jsonl')] }],
      keys: { signing_key_file: join(dir, 's.skey'), hmac_key_file: join(dir, 'hmac.key') },
      ship: { url: `http://127.0.0.1:${await freePort()}` },
      telemetry: { listen: `127.0.0.1:${await freePort()}` },
    });
    const full: SidecarConfig = {
      ...cfg,
      sources: [
        { id: 'sock', type: 'socket', path: socketPath, mode: 0o600, max_line_bytes: 1 << 20, max_connections: 4, format: 'otlp-json' },
        { id: 'api', type: 'http', max_body_bytes: 1 << 20, max_events: 100, format: 'otlp-json' },
      ],
    };
    sidecar = await startSidecar(full, { logger: createLogger('test', 'silent') });

    const c = connect(socketPath);
    let got = '';
    c.on('data', (d) => (got += d.toString()));
    c.write(`${request(3)}\n${request(0)}\n${request(1)}\n`);
    const answers = await waitFor('three answers', () => (got.split('\n').filter(Boolean).length >= 3 ? got.trim().split('\n').map((l) => JSON.parse(l)) : undefined), 10_000);
    c.destroy();
    expect(answers).toEqual([{ ack: 1, seq: 0, records: 3 }, { ack: 2, records: 0 }, { ack: 3, seq: 3 }]);

    const res = await fetch(`${sidecar.telemetryUrl}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: `${request(2)}\n${request(4)}\n` });
    expect(res.status).toBe(202);
    expect(await res.json()).toMatchObject({ accepted: 2, records: 6, first_seq: 4, last_seq: 9, rejected: [] });
    expect(sidecar.buffer.chainCursor().nextSeq).toBe(10);
  });
});
