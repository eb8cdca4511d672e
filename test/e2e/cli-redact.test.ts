import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { AuditBuffer } from '../../src/sidecar/buffer/buffer.js';
import { autoFormat } from '../../src/sidecar/formats/auto.js';
import { Ingest } from '../../src/sidecar/ingest.js';
import { loadRuleset } from '../../src/sidecar/redact/index.js';
import { runCli } from '../helpers/procs.js';
import { HMAC_KEY, KEY_ID, tempDir } from '../helpers/sidecar-fixtures.js';

const RULES = fileURLToPath(new URL('../../config/redaction/pii-basic.yaml', import.meta.url));
const tmp = tempDir('sealtrail-redact-cli-');
afterAll(() => tmp.cleanup());

const otlpLine = (spans: object[]): string =>
  JSON.stringify({ resourceSpans: [{ resource: { attributes: [] }, scopeSpans: [{ scope: { name: 's' }, spans }] }] });
const span = (id: string, attrs: object[] = []): object => ({
  traceId: '5b8efff798038103d269b633813fc60c',
  spanId: id,
  name: 'execute_tool lookup',
  kind: 1,
  startTimeUnixNano: '1733500000000000000',
  endTimeUnixNano: '1733500001000000000',
  attributes: [{ key: 'gen_ai.operation.name', value: { stringValue: 'execute_tool' } }, ...attrs],
});

// What agents write, good and bad: each line's fate must be the same in `sealtrail redact` and in a sidecar.
const LINES = [
  '{"event_type":"tool_invoked","tool":{"name":"search","arguments":{"q":"mail bob@example.com"}}}',
  '{"event_type":"x","agent":{"id":"a","version":"1.2"},"tool":{"name":"t","call_id":"c1"}}',
  '{"event_type":"x","outcome":"exploded"}',
  '{"event_type":"x","outcome":["error"]}',
  '{"event_type":"x","seq":5}',
  '{"event_type":"x","time":"yesterday"}',
  '{"actor":{"id":"u"}}',
  '[1,2,3]',
  'not json at all',
  '',
  '{"event_type":"x","details":{"text":"call 555-867-5309 or jane@example.org"}}',
  JSON.stringify({ specversion: '1.0', id: 'e1', source: '/agent', type: 'approval_granted', data: { approver: 'cfo@example.com' } }),
  JSON.stringify({ specversion: '1.0', id: 'e2', type: 'no source' }),
  otlpLine([span('eee19b7ec3c1b174'), span('eee19b7ec3c1b175', [{ key: 'user.email', value: { stringValue: 'kim@example.com' } }])]),
  otlpLine([]),
  // under the 1 MiB line limit, over the 1 MiB record limit once written in a batch (each " costs 4 bytes there)
  `{"event_type":"big","details":{"pad":"${'\\"'.repeat(300_000)}"}}`,
  '{"event_type":"x","tool":{"name":7}}',
];

describe('sealtrail redact refuses exactly what a sidecar refuses', () => {
  it('the same lines are refused, for the same reasons, and every accepted event is written redacted', async () => {
    const input = tmp.file('input.jsonl');
    writeFileSync(input, `${LINES.join('\n')}\n`);
    const r = await runCli(['redact', '--rules', RULES, input]);
    expect(r.code).toBe(1);
    const refused = [...r.stderr.matchAll(/^line (\d+): ([a-z_]+): /gm)].map((m) => [Number(m[1]), m[2]]);

    const buffer = AuditBuffer.open(tmp.file('buffer.db'), { newStreamId: () => 's' });
    const ruleset = loadRuleset([RULES]);
    const ingest = new Ingest(buffer, { hmacKey: HMAC_KEY, keyId: KEY_ID, ruleset: () => ruleset });
    const result = ingest.ingest({ source: 'traces', path: input, fileKey: 'k', format: autoFormat, lines: LINES.map((text, i) => ({ offset: i, length: 1, text })) });
    const quarantined = result.lines.flatMap((o, i) => ('error' in o ? [[i + 1, o.error.code]] : []));
    buffer.close();

    expect(refused).toEqual(quarantined);
    expect(refused.map(([n]) => n)).toEqual([4, 5, 6, 7, 8, 9, 13, 16, 17]);
    // one line per event: 1,2,3,11,12 and the two spans of line 14
    const out = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(out).toHaveLength(7);
    expect(result.records).toBe(7);
    expect(r.stdout).not.toMatch(/bob@example\.com|jane@example\.org|cfo@example\.com|kim@example\.com|555-867-5309/);
    expect(r.stdout).toContain('[REDACTED:email]');
    expect(r.stderr).toMatch(/of 17 line\(s\) refused/);
  });

  it('--format and --mapping pick the format; bad ones are usage errors or name the mapping file', async () => {
    const input = tmp.file('ce.jsonl');
    writeFileSync(input, `${JSON.stringify({ specversion: '1.0', id: 'e1', source: '/a', type: 't' })}\n{"event_type":"x"}\n`);
    const ce = await runCli(['redact', '--rules', RULES, '--format', 'cloudevents', input]);
    expect(ce.code).toBe(1);
    expect(ce.stderr).toMatch(/^line 2: format_mismatch: /m);
    const own = await runCli(['redact', '--rules', RULES, '--format', 'sealtrail', input]);
    expect(own.stderr).toMatch(/^line 1: record_invalid: /m);
    const bad = await runCli(['redact', '--rules', RULES, '--format', 'xml', input]);
    expect([bad.code, bad.stderr]).toEqual([2, expect.stringMatching(/--format xml: expected one of sealtrail, otlp-json, cloudevents, mapped, auto/)]);
    const noMapping = await runCli(['redact', '--rules', RULES, '--format', 'mapped', input]);
    expect([noMapping.code, noMapping.stderr]).toEqual([2, expect.stringMatching(/needs --mapping/)]);
    const stray = await runCli(['redact', '--rules', RULES, '--format', 'auto', '--mapping', 'agentmesh', input]);
    expect(stray.code).toBe(2);
    const mappingFile = tmp.file('broken-mapping.yaml');
    writeFileSync(mappingFile, 'format: mapped\nversion: 1\nrules:\n  - fields:\n      nonsense_target: { path: a }\n');
    const broken = await runCli(['redact', '--rules', RULES, '--mapping', mappingFile, input]);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toContain('broken-mapping.yaml:');
    expect(broken.stderr).not.toMatch(/\n\s+at /);
  });
});
