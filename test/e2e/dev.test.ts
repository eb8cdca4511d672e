import { appendFileSync, existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { getJson } from '../helpers/deployment.js';
import { freePort, runCli, spawnCli, stop, waitFor, type Proc } from '../helpers/procs.js';
import { SocketClient } from '../helpers/socket-client.js';

describe('sealtrail dev (what npm start runs)', () => {
  let p: Proc | undefined;
  afterAll(async () => {
    if (p) await stop(p, 'SIGKILL');
  });

  it('generates keys and a 0600 admin token, serves queries of appended events, drains on Ctrl-C with exit 0', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'sealtrail-dev-'));
    const [cport, tport, oport] = [await freePort(), await freePort(), await freePort()];
    const env = { SEALTRAIL_ADMIN_TOKEN: undefined } as unknown as NodeJS.ProcessEnv;
    delete process.env.SEALTRAIL_ADMIN_TOKEN;
    p = spawnCli(['dev', '--collector-listen', `127.0.0.1:${cport}`, '--telemetry-listen', `127.0.0.1:${tport}`, '--otlp-listen', `127.0.0.1:${oport}`], { cwd, env });
    await waitFor('dev banner', () => p!.stdout().includes('admin token'), 30_000);
    const tokenFile = join(cwd, '.sealtrail', 'admin.token');
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    const token = readFileSync(tokenFile, 'utf8').trim();
    expect(p.stdout()).toContain(token);
    expect(existsSync(join(cwd, '.sealtrail', 'keys', 'sidecar.vkey'))).toBe(true);
    expect(statSync(join(cwd, '.sealtrail', 'keys', 'sidecar.skey')).mode & 0o777).toBe(0o600);

    appendFileSync(
      join(cwd, '.sealtrail', 'traces', 'agent.jsonl'),
      `${JSON.stringify({ event_type: 'tool_invoked', actor: { id: 'u1', type: 'user' }, tool: { name: 'search', arguments: { q: 'mail bob@example.com' } } })}\n`,
    );
    const items = await waitFor('the event at the collector', async () => {
      // event_type: the collector's own read-audit records (data_accessed) are in /v1/audit too.
      const { body } = await getJson(`http://127.0.0.1:${cport}/v1/audit?event_type=tool_invoked`, token);
      return body.items?.length === 1 ? body.items : undefined;
    }, 30_000);
    expect(items[0].record.tool.arguments.q).toBe('mail [REDACTED:email]');
    expect((await getJson(`http://127.0.0.1:${cport}/v1/audit`)).status).toBe(401);
    expect((await getJson(`http://127.0.0.1:${cport}/v1/audit`, 'wrong-token-wrong-token')).status).toBe(403);
    expect((await getJson(`http://127.0.0.1:${tport}/healthz`)).status).toBe(200);
    expect((await getJson(`http://127.0.0.1:${tport}/readyz`)).status).toBe(200);
    const metrics = (await getJson(`http://127.0.0.1:${tport}/metrics`)).body as string;
    expect(metrics).toMatch(/sealtrail_records_ingested_total\{source="traces"\} 1/);
    expect(metrics).toMatch(/sealtrail_redaction_hits_total\{rule="email"\} 1/);

    // The embedded default also takes OTLP/HTTP, and OTLP/JSON and CloudEvents lines in its trace files.
    const span = (name: string, op: string) => ({
      traceId: '5b8efff798038103d269b633813fc60c',
      spanId: name === 'a' ? 'eee19b7ec3c1b174' : 'eee19b7ec3c1b175',
      name,
      kind: 1,
      startTimeUnixNano: '1733500000000000000',
      endTimeUnixNano: '1733500001000000000',
      attributes: [{ key: 'gen_ai.operation.name', value: { stringValue: op } }, { key: 'gen_ai.tool.name', value: { stringValue: 'lookup' } }],
    });
    const request = (s: object) => ({ resourceSpans: [{ resource: { attributes: [] }, scopeSpans: [{ scope: { name: 'dev-test' }, spans: [s] }] }] });
    const res = await fetch(`http://127.0.0.1:${oport}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(request(span('a', 'execute_tool'))),
    });
    expect(res.status).toBe(200);
    appendFileSync(
      join(cwd, '.sealtrail', 'traces', 'agent.jsonl'),
      `${JSON.stringify(request(span('b', 'chat')))}\n${JSON.stringify({ specversion: '1.0', id: 'ce-1', source: '/agent', type: 'approval_granted' })}\n`,
    );
    const others = await waitFor('the OTLP span, the OTLP/JSON line and the CloudEvent at the collector', async () => {
      const { body } = await getJson(`http://127.0.0.1:${cport}/v1/audit?event_type=tool_invoked`, token);
      const more = await getJson(`http://127.0.0.1:${cport}/v1/audit?event_type=approval_granted`, token);
      const chat = await getJson(`http://127.0.0.1:${cport}/v1/audit?event_type=model_called`, token);
      return body.items?.length === 2 && more.body.items?.length === 1 && chat.body.items?.length === 1 ? [...body.items, ...chat.body.items] : undefined;
    }, 30_000);
    expect(others.map((i: { record: { source: string } }) => i.record.source).sort()).toEqual(['otlp', 'traces', 'traces']);

    // ... and the Unix socket an AuditClient connects to, each line answered once durable
    const sock = join(cwd, '.sealtrail', 'events.sock');
    expect(p.stdout()).toContain(join('.sealtrail', 'events.sock'));
    expect(statSync(sock).isSocket()).toBe(true);
    expect(statSync(sock).mode & 0o777).toBe(0o600);
    const client = await SocketClient.connect(sock);
    await client.sendLines([JSON.stringify({ event_type: 'decision_made', actor: { id: 'agent-7', type: 'agent' }, outcome: 'success' })]);
    await client.waitAnswers(1);
    expect(client.acks.get(1)).toEqual(expect.any(Number));
    await client.end();
    const decided = await waitFor('the socket event at the collector', async () => {
      const { body } = await getJson(`http://127.0.0.1:${cport}/v1/audit?event_type=decision_made`, token);
      return body.items?.length === 1 ? body.items : undefined;
    }, 30_000);
    expect(decided[0].record.source).toBe('socket');

    const verify = await runCli(['verify', '--url', `http://127.0.0.1:${cport}`], { cwd });
    expect(verify.code).toBe(0);

    p.child.kill('SIGINT');
    const { code } = await p.exited;
    expect(code).toBe(0);
    p = undefined;
    // the store verifies offline with the dev keys (the default --keys)
    const offline = await runCli(['verify', '--db', join('.sealtrail', 'collector', 'audit.db')], { cwd });
    expect(offline.code).toBe(0);
    expect(offline.stdout).toMatch(/HMAC chain checked/);
  });
});
