import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { collectorOptionsFromConfig } from '../../src/collector/from-config.js';
import { StreamKeys } from '../../src/collector/stream-keys.js';
import { parseConfigText } from '../../src/config/index.js';
import { ConfigError } from '../../src/core/errors.js';
import { generateKeyPair, parseSignerKey } from '../../src/core/note.js';
import { BatchBuilder, otherSigner } from '../helpers/collector-batches.js';
import { postJson, startTestCollector, type TestCollector } from '../helpers/collector-server.js';
import { codeOf } from '../helpers/errors.js';

const DAY = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString();

describe('collector checkpoint keys', () => {
  let c: TestCollector | undefined;
  afterEach(async () => {
    await c?.close();
    c = undefined;
  });

  it('rotation: both keys verify during the overlap, the old one until not_after, the new one from not_before', async () => {
    const now = Date.now();
    const b = new BatchBuilder({ stream: 'pod-rot' });
    const fresh = otherSigner('pod-rot-2');
    c = await startTestCollector({
      streams: [
        {
          match: 'pod-rot',
          keys: [
            { vkey: b.vkey, not_after: iso(now + DAY) },
            { vkey: fresh.vkey, not_before: iso(now - DAY) },
          ],
        },
      ],
    });
    // old key, then new key, then old again: all inside the overlap
    expect((await postJson(c.url, b.next(2))).status).toBe(200);
    expect((await postJson(c.url, b.next(2, { signer: fresh.signer }))).status).toBe(200);
    const again = await postJson(c.url, b.next(1));
    expect(again.status).toBe(200);
    expect(again.body.ack).toEqual({ stream: 'pod-rot', batch: 2, tree_size: 5 });
    // a key of no entry is still a bad signature
    const stranger = otherSigner('stranger');
    const bad = await postJson(c.url, b.clone().next(1, { signer: stranger.signer }));
    expect(bad.status).toBe(422);
    expect(bad.body.error.code).toBe('batch_bad_signature');
  });

  it('refuses a key outside its validity period with a code naming which side', async () => {
    const now = Date.now();
    const b = new BatchBuilder({ stream: 'pod-win' });
    const retired = otherSigner('retired');
    const future = otherSigner('future');
    c = await startTestCollector({
      streams: [
        {
          match: 'pod-*',
          keys: [
            { vkey: retired.vkey, not_before: iso(now - 10 * DAY), not_after: iso(now - DAY) },
            { vkey: b.vkey },
            { vkey: future.vkey, not_before: iso(now + DAY) },
          ],
        },
      ],
    });
    const expired = await postJson(c.url, b.clone().next(1, { signer: retired.signer }));
    expect(expired.status).toBe(422);
    expect(expired.body.error.code).toBe('batch_key_expired');
    expect(expired.body.error.message).toContain('retired+');
    const early = await postJson(c.url, b.clone().next(1, { signer: future.signer }));
    expect(early.status).toBe(422);
    expect(early.body.error.code).toBe('batch_key_not_yet_valid');
    // nothing was stored by the refusals: batch 0 with the current key goes in
    const ok = await postJson(c.url, b.next(1));
    expect(ok.status).toBe(200);
    expect(ok.body.ack.tree_size).toBe(1);
  });

  it('acknowledges a resend of a stored batch whose key has expired since, and still alerts on a fork signed by it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sealtrail-keys-'));
    try {
      const dbPath = join(dir, 'audit.db');
      const b = new BatchBuilder({ stream: 'pod-late' });
      const batch0 = b.next(2);
      const alt = b.clone();
      const batch1 = b.next(1);
      c = await startTestCollector({ streams: [{ match: 'pod-late', vkey: b.vkey }] }, dbPath);
      expect((await postJson(c.url, batch0)).status).toBe(200);
      expect((await postJson(c.url, batch1)).status).toBe(200);
      await c.close();
      // The same store, after the stream's key was retired.
      const now = Date.now();
      c = await startTestCollector({ streams: [{ match: 'pod-late', keys: [{ vkey: b.vkey, not_after: iso(now - DAY) }] }] }, dbPath);
      const resend = await postJson(c.url, batch1);
      expect(resend.status).toBe(200);
      expect(resend.body).toEqual({ ack: { stream: 'pod-late', batch: 1, tree_size: 3 }, duplicate: true });
      // A different batch 1 signed by that (expired) key of the stream is a fork.
      const fork = await postJson(c.url, alt.next(1, { fields: () => ({ action: 'other' }) }));
      expect(fork.status).toBe(409);
      expect(fork.body.error.code).toBe('batch_fork');
      expect(c.logs.some((l) => l.alert === 'batch_fork')).toBe(true);
      // A new batch signed by it is refused as expired.
      const next = await postJson(c.url, b.next(1));
      expect(next.status).toBe(422);
      expect(next.body.error.code).toBe('batch_key_expired');
      expect((await c.store.getStreamState('pod-late'))?.treeSize).toBe(3);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an exact match beats a prefix, and the longest prefix beats a shorter one, whatever the order', async () => {
    const any = otherSigner('any');
    const pods = otherSigner('pods');
    const special = otherSigner('special');
    c = await startTestCollector({
      streams: [
        { match: '*', vkey: any.vkey },
        { match: 'agent-pod-*', vkey: pods.vkey },
        { match: 'agent-pod-special', vkey: special.vkey },
      ],
    });
    const cases: [string, typeof any, typeof any][] = [
      ['agent-pod-1', pods, any],
      ['agent-pod-special', special, pods],
      ['agent-podx', any, pods],
      ['other', any, special],
    ];
    for (const [stream, right, wrong] of cases) {
      const b = new BatchBuilder({ stream });
      const refused = await postJson(c.url, b.clone().next(1, { signer: wrong.signer }));
      expect(refused.status, stream).toBe(422);
      expect(refused.body.error.code, stream).toBe('batch_bad_signature');
      expect((await postJson(c.url, b.next(1, { signer: right.signer }))).status, stream).toBe(200);
    }
  });

  it('a stream matching no entry gets 403 without trust on first use', async () => {
    const pods = otherSigner('pods');
    c = await startTestCollector({ streams: [{ match: 'agent-pod-*', vkey: pods.vkey }] });
    const b = new BatchBuilder({ stream: 'agent-po' });
    const res = await postJson(c.url, { ...b.next(1, { signer: pods.signer }), vkey: pods.vkey });
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('stream_unknown');
  });

  it('refuses inconsistent key lists at start', () => {
    const k = generateKeyPair('k').vkey;
    expect(() => new StreamKeys([{ match: 'a', keys: [{ vkey: k, not_before: '2026-02-01T00:00:00Z', not_after: '2026-01-01T00:00:00Z' }] }])).toThrow(/earlier/);
    expect(() => new StreamKeys([{ match: 'a', keys: [{ vkey: k }, { vkey: k }] }])).toThrow(/twice/);
    expect(() => new StreamKeys([{ match: 'a', keys: [{ vkey: k, not_after: 'tomorrow' }] }])).toThrow(/RFC 3339/);
    expect(() => new StreamKeys([{ match: 'a', vkey: k, keys: [{ vkey: k }] }])).toThrow(/exactly one/);
    expect(() => new StreamKeys([{ match: 'a*', vkey: k }, { match: 'a*', vkey: k }])).toThrow(/duplicate/);
  });

  it('reads keys with validity periods from the config', async () => {
    const oldKey = generateKeyPair('cfg-old');
    const newKey = generateKeyPair('cfg-new');
    const text = `collector:
  streams:
    - match: "cfg-*"
      keys:
        - { vkey: "${oldKey.vkey}", not_after: "2000-01-01T00:00:00Z" }
        - { vkey: "${newKey.vkey}", not_before: "2000-01-01T00:00:00+00:00" }
    - { match: legacy, vkey: "${oldKey.vkey}" }
`;
    const cfg = parseConfigText(text, 'keys.yaml', {}).collector!;
    expect(cfg.streams[0]!.keys).toHaveLength(2);
    const opts = collectorOptionsFromConfig(cfg);
    expect(opts.streams[1]).toEqual({ match: 'legacy', vkey: oldKey.vkey });
    c = await startTestCollector({ streams: opts.streams });
    const b = new BatchBuilder({ stream: 'cfg-1', skey: oldKey.skey });
    const expired = await postJson(c.url, b.clone().next(1));
    expect(expired.body.error.code).toBe('batch_key_expired');
    expect((await postJson(c.url, b.next(1, { signer: parseSignerKey(newKey.skey) }))).status).toBe(200);

    const bad = (keys: string) =>
      codeOf(() => parseConfigText(`collector:\n  streams:\n    - match: x\n      keys:\n${keys}`, 'bad.yaml', {}), ConfigError);
    expect(bad(`        - { vkey: "${oldKey.vkey}", not_before: "next week" }\n`)).toBe('config_schema');
    expect(bad(`        - { not_before: "2000-01-01T00:00:00Z" }\n`)).toBe('config_schema');
    expect(
      bad(`        - { vkey: "${oldKey.vkey}", not_before: "2001-01-01T00:00:00Z", not_after: "2000-01-01T00:00:00Z" }\n`),
    ).toBe('config_schema');
    expect(codeOf(() => parseConfigText(`collector:\n  streams:\n    - { match: x }\n`, 'bad.yaml', {}), ConfigError)).toBe(
      'config_schema',
    );
  });
});
