import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { canonicalize } from '../../src/core/canonical.js';
import { BatchBuilder, otherSigner } from '../helpers/collector-batches.js';
import { getJson, postJson, startTestCollector, type TestCollector } from '../helpers/collector-server.js';

const HMAC_KEY = Buffer.alloc(32, 7);

describe('collector hostile input', () => {
  let c: TestCollector;
  let b: BatchBuilder;

  beforeEach(async () => {
    b = new BatchBuilder({ stream: 'pod-a', hmacKey: HMAC_KEY, keyId: 'k1' });
    c = await startTestCollector({
      streams: [{ match: 'pod-a', vkey: b.vkey }],
      hmac_keys: [{ id: 'k1', key: HMAC_KEY }],
      trust_on_first_use: true,
    });
    expect((await postJson(c.url, b.next(2))).status).toBe(200);
  });
  afterEach(async () => {
    await c.close();
  });

  it('answers 4xx, never 500, for hostile query strings and paths', async () => {
    const paths = [
      '/v1/audit?__proto__=x',
      '/v1/audit?constructor=x',
      '/v1/audit?toString=x',
      '/v1/audit?limit=1&limit=2',
      '/v1/audit?limit=99999999999999999999',
      '/v1/audit?limit=-1',
      '/v1/audit?limit=1e3',
      '/v1/audit?from=9999-99-99T00:00:00Z',
      '/v1/audit?from=2024-01-01T00:00:00',
      '/v1/audit?to=%00',
      '/v1/audit?stream[]=a',
      '/v1/audit?tenant[a]=b',
      '/v1/audit?cursor=',
      '/v1/audit?cursor=abc',
      '/v1/audit?cursor=a.b',
      '/v1/audit?cursor=' + 'A'.repeat(5000),
      '/v1/audit?%ZZ=1',
      '/v1/streams?x=1',
      '/v1/streams/%2e%2e/records',
      '/v1/streams/..%2F/records',
      '/v1/streams/%ZZ/records',
      '/v1/streams/' + 'a'.repeat(400) + '/records',
      '/v1/streams/-a/records',
      '/v1/streams/pod-a/records?from_seq=-1',
      '/v1/streams/pod-a/records?from_seq=99999999999999999',
      '/v1/streams/pod-a/records?limit=0',
      '/v1/streams/pod-a/records?from_batch=1',
      '/v1/streams/pod-a/checkpoints?from_seq=1',
      '/v1/streams/pod-a/checkpoints?limit=10001',
      '/v1/streams/nope/checkpoints',
    ];
    for (const p of paths) {
      const res = await getJson(c.url, p);
      expect(res.status, p).toBeGreaterThanOrEqual(400);
      expect(res.status, p).toBeLessThan(500);
      expect(res.body?.error?.code ?? `none: ${res.status} ${res.text}`, p).toMatch(/^[a-z_]+$/);
    }
  });

  it('answers 4xx, never 500, for hostile batch bodies', async () => {
    const good = b.clone().next(2);
    const rec0 = good.records[0]!;
    const recWith = (fields: Record<string, unknown>) => {
      const bb = b.clone();
      return bb.finish([bb.seal(2, canonicalize(bb.record(2, fields)))]);
    };
    const intruder = otherSigner();
    const tofu = new BatchBuilder({ stream: 'tofu-x', hmacKey: HMAC_KEY, keyId: 'k1' });
    const tofuBatch = tofu.next(1);
    const cases: [string, unknown, string?][] = [
      ['__proto__ key', undefined, JSON.stringify(good).replace('{', '{"__proto__":{"x":1},')],
      ['constructor key', undefined, JSON.stringify(good).replace('{', '{"constructor":{"prototype":{"x":1}},')],
      ['record __proto__', { ...good, records: [{ ...rec0, __proto__: 1 }] }],
      ['time not a string', recWith({ time: 12345 })],
      ['time invalid date', recWith({ time: '2024-02-30T00:00:00Z' })],
      ['time without offset', recWith({ time: '2024-02-01T00:00:00' })],
      ['record stream differs', recWith({ stream: 'pod-b' })],
      ['record not object', { ...good, records: [{ ...rec0, canonical: '[1]' }, good.records[1]] }],
      ['not canonical', { ...good, records: [{ ...rec0, canonical: ' ' + rec0.canonical }, good.records[1]] }],
      ['lone surrogate', { ...good, records: [{ ...rec0, canonical: rec0.canonical.replace('"test"', '"\ud800"') }, good.records[1]] }],
      ['foreign signer', b.clone().finish(b.clone().next(1).records, intruder.signer)],
      ['tofu bad vkey', { ...tofuBatch, vkey: 'not-a-key' }],
      ['tofu without vkey', tofuBatch],
      ['tofu foreign vkey', { ...tofuBatch, vkey: intruder.vkey }],
      ['key_id too long', { ...good, records: good.records.map((r) => ({ ...r, key_id: 'k'.repeat(200) })) }],
      ['stream dot', { ...good, stream: '.' }],
      ['stream dotdot', { ...good, stream: '..' }],
      ['prev_checkpoint empty', { ...good, prev_checkpoint: '' }],
      ['batch gap', b.clone().next(1)],
    ];
    cases[cases.length - 1]![1] = { ...(cases[cases.length - 1]![1] as object), batch: 5 };
    for (const [name, body, raw] of cases) {
      const res = await postJson(c.url, body, raw);
      expect(res.status, name).toBeGreaterThanOrEqual(400);
      expect(res.status, name).toBeLessThan(500);
      expect(res.body?.error?.code, name).toMatch(/^[a-z_]+$/);
    }
    // nothing was stored, and the stream still works
    expect((await c.store.getStreamState('tofu-x'))).toBeUndefined();
    expect((await postJson(c.url, b.next(2))).status).toBe(200);
    expect((await c.store.getStreamState('pod-a'))?.treeSize).toBe(4);
  });
});
