import { request } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { canonicalize } from '../../src/core/canonical.js';
import { openNote, parseVerifierKey } from '../../src/core/note.js';
import { parseCheckpoint } from '../../src/core/checkpoint.js';
import { Frontier, leafHash } from '../../src/core/merkle.js';
import type { SealedBatch } from '../../src/core/types.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCollector } from '../../src/collector/app.js';
import type { CollectorOptions } from '../../src/collector/options.js';
import { SqliteAuditStore } from '../../src/collector/store/sqlite.js';
import type { AuditStore } from '../../src/collector/store/types.js';
import { BatchBuilder, otherSigner } from '../helpers/collector-batches.js';
import { getJson, memoryLogger, postJson, startTestCollector, type TestCollector } from '../helpers/collector-server.js';
import { sleep } from '../harness/wait.js';

const HMAC_KEY = Buffer.alloc(32, 7);

describe('collector POST /v1/batches', () => {
  let c: TestCollector;
  let b: BatchBuilder;

  beforeEach(async () => {
    b = new BatchBuilder({ stream: 'pod-a', hmacKey: HMAC_KEY, keyId: 'k1' });
    c = await startTestCollector({
      streams: [{ match: 'pod-a', vkey: b.vkey }],
      hmac_keys: [{ id: 'k1', key: HMAC_KEY }],
    });
  });
  afterEach(async () => {
    await c.close();
  });

  it('accepts a sequence of 3 batches and serves them back', async () => {
    const sizes = [3, 5, 2];
    let total = 0;
    for (const [i, n] of sizes.entries()) {
      const res = await postJson(c.url, b.next(n));
      total += n;
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ ack: { stream: 'pod-a', batch: i, tree_size: total } });
    }

    const audit = await getJson(c.url, '/v1/audit');
    expect(audit.status).toBe(200);
    expect(audit.body.items.map((x: any) => x.seq)).toEqual([...Array(10).keys()]);
    expect(audit.body.next_cursor).toBeNull();
    const first = audit.body.items[0];
    expect(first.record).toEqual(JSON.parse(canonicalize(b.record(0))));
    expect(first).toMatchObject({ stream: 'pod-a', seq: 0, batch: 0, key_id: 'k1' });
    expect(first.leaf_hash).toBe(leafHash(Buffer.from(canonicalize(b.record(0)))).toString('hex'));

    const streams = await getJson(c.url, '/v1/streams');
    expect(streams.body.streams).toEqual([
      {
        stream: 'pod-a',
        tree_size: 10,
        next_batch: 3,
        last_checkpoint: b.prevCheckpoint,
        chain_key_id: 'k1',
        trusted_on_first_use: false,
      },
    ]);

    const cps = await getJson(c.url, '/v1/streams/pod-a/checkpoints');
    expect(cps.status).toBe(200);
    expect(cps.body.stream).toBe('pod-a');
    expect(cps.body.checkpoints.map((x: any) => [x.batch, x.tree_size])).toEqual([
      [0, 3],
      [1, 8],
      [2, 10],
    ]);

    // An auditor can rebuild the tree from the records endpoint and check it
    // against the signed checkpoint without trusting the collector.
    const recs = await getJson(c.url, '/v1/streams/pod-a/records?from_seq=0&limit=4');
    expect(recs.body.records.map((r: any) => r.seq)).toEqual([0, 1, 2, 3]);
    expect(recs.body.next_from_seq).toBe(4);
    const rest = await getJson(c.url, '/v1/streams/pod-a/records?from_seq=4');
    expect(rest.body.next_from_seq).toBeNull();
    const f = Frontier.empty();
    for (const r of [...recs.body.records, ...rest.body.records]) f.append(leafHash(Buffer.from(r.canonical, 'utf8')));
    const note = cps.body.checkpoints[2].note as string;
    const cp = parseCheckpoint(openNote(note, [parseVerifierKey(b.vkey)]).text);
    expect(cp.size).toBe(10);
    expect(f.root().equals(cp.root)).toBe(true);

    const rows: number[] = [];
    for await (const r of c.store.iterateStreamRecords('pod-a')) rows.push(r.seq);
    expect(rows).toEqual([...Array(10).keys()]);
  });

  it('acknowledges an identical resend as a duplicate', async () => {
    const b0 = b.next(3);
    expect((await postJson(c.url, b0)).status).toBe(200);
    expect((await postJson(c.url, b.next(2))).status).toBe(200);
    const again = await postJson(c.url, b0);
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ ack: { stream: 'pod-a', batch: 0, tree_size: 3 }, duplicate: true });
    // and with the (ignored, unsigned) vkey field added
    const withVkey = await postJson(c.url, { ...b0, vkey: b.vkey });
    expect(withVkey.body.duplicate).toBe(true);
  });

  it('answers 409 and raises an alert for a different batch with a stored number', async () => {
    const alt = b.clone();
    expect((await postJson(c.url, b.next(3))).status).toBe(200);
    const fork = alt.next(3, { fields: () => ({ outcome: 'denied' }) });
    const res = await postJson(c.url, fork);
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('batch_fork');
    const alert = c.logs.find((l) => l.alert === 'batch_fork');
    expect(alert).toMatchObject({ level: 50, stream: 'pod-a', batch: 0 });
    expect(c.logText()).not.toContain('denied');
  });

  it('does not alert on an unsigned "fork" (only the stream key can fork)', async () => {
    const alt = b.clone();
    expect((await postJson(c.url, b.next(3))).status).toBe(200);
    const res = await postJson(c.url, alt.next(3, { signer: otherSigner().signer }));
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('batch_bad_signature');
    expect(c.logs.some((l) => l.alert === 'batch_fork')).toBe(false);
  });

  it('refuses a batch number gap with 422', async () => {
    b.next(3); // never sent
    const res = await postJson(c.url, b.next(2));
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('batch_gap');
    expect(res.body.error.message).toContain('stream pod-a batch 1');
  });

  it('refuses a seq gap with 422', async () => {
    expect((await postJson(c.url, b.next(2))).status).toBe(200);
    // Skip seq 2..3 in the builder but keep the batch number contiguous.
    const skipper = b.clone();
    skipper.seal(2, canonicalize(skipper.record(2)));
    skipper.seal(3, canonicalize(skipper.record(3)));
    const recs = [4, 5].map((s) => skipper.seal(s, canonicalize(skipper.record(s))));
    const res = await postJson(c.url, skipper.finish(recs));
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('batch_seq_gap');
  });

  it('refuses a checkpoint signed by another key', async () => {
    const res = await postJson(c.url, b.next(3, { signer: otherSigner().signer }));
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('batch_bad_signature');
  });

  it('refuses a checkpoint whose signature bytes were altered', async () => {
    const batch = b.next(3);
    const lines = batch.checkpoint.split('\n');
    const sigLine = lines[lines.length - 2]!;
    const parts = sigLine.split(' ');
    const raw = Buffer.from(parts[2]!, 'base64');
    raw[raw.length - 1] = raw[raw.length - 1]! ^ 1;
    lines[lines.length - 2] = `${parts[0]} ${parts[1]} ${raw.toString('base64')}`;
    const res = await postJson(c.url, { ...batch, checkpoint: lines.join('\n') });
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('batch_bad_signature');
  });

  it('refuses a checkpoint for another origin', async () => {
    const batch = b.next(2);
    const cp = b.sign(2, b.frontier.root(), b.signer, 'sealtrail/pod-b');
    const res = await postJson(c.url, { ...batch, checkpoint: cp });
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('batch_origin_mismatch');
  });

  it('refuses tampered record text', async () => {
    const batch = b.next(3);
    const rec = batch.records[1]!;

    // still canonical, different content: the root no longer matches
    const changed = canonicalize({ ...JSON.parse(rec.canonical), outcome: 'failure' });
    let res = await postJson(c.url, { ...batch, records: batch.records.map((r) => (r === rec ? { ...r, canonical: changed } : r)) });
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('batch_root_mismatch');

    // not canonical (whitespace)
    const spaced = JSON.stringify(JSON.parse(rec.canonical), null, 1);
    res = await postJson(c.url, { ...batch, records: batch.records.map((r) => (r === rec ? { ...r, canonical: spaced } : r)) });
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('batch_not_canonical');
    expect(res.body.error.message).toBe('stream pod-a batch 0 seq 1: record text is not an RFC 8785 canonical JSON object');
    expect(c.logText()).not.toContain('query 1');
  });

  it('refuses a correctly signed record that claims another stream or seq', async () => {
    const b2 = new BatchBuilder({ stream: 'pod-a', skey: b.skey, hmacKey: HMAC_KEY });
    const batch = b2.next(3, { fields: (seq) => (seq === 2 ? { seq: 7 } : {}) });
    let res = await postJson(c.url, batch);
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('batch_record_mismatch');

    const b3 = new BatchBuilder({ stream: 'pod-a', skey: b.skey, hmacKey: HMAC_KEY });
    res = await postJson(c.url, b3.next(2, { fields: () => ({ stream: 'pod-z' }) }));
    expect(res.body.error.code).toBe('batch_record_mismatch');
  });

  it('refuses a record without a valid time', async () => {
    const res = await postJson(c.url, b.next(2, { fields: (s) => (s === 1 ? { time: 'yesterday' } : {}) }));
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('batch_record_invalid');
  });

  it('refuses a wrong root or size in a validly signed checkpoint', async () => {
    const batch = b.next(3);
    let res = await postJson(c.url, { ...batch, checkpoint: b.sign(3, Buffer.alloc(32, 1)) });
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('batch_root_mismatch');
    res = await postJson(c.url, { ...batch, checkpoint: b.sign(4, b.frontier.root()) });
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('batch_root_mismatch');
  });

  it('refuses a wrong prev_checkpoint as a fork', async () => {
    expect((await postJson(c.url, b.next(2))).status).toBe(200);
    const next = b.next(2);
    const res = await postJson(c.url, { ...next, prev_checkpoint: b.sign(2, Buffer.alloc(32, 9)) });
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('batch_fork');
    expect((await postJson(c.url, next)).status).toBe(200);
  });

  it('refuses a broken chain when it holds the key', async () => {
    const wrongKey = new BatchBuilder({ stream: 'pod-a', skey: b.skey, hmacKey: Buffer.alloc(32, 8), keyId: 'k1' });
    let res = await postJson(c.url, wrongKey.next(3));
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('batch_chain_broken');
    expect(res.body.error.message).toContain('seq 0');

    const batch = b.next(3);
    res = await postJson(c.url, { ...batch, chain_head: batch.records[1]!.mac });
    expect(res.body.error.code).toBe('batch_chain_broken');

    // chain across batches: batch 1 must continue from batch 0's head
    expect((await postJson(c.url, batch)).status).toBe(200);
    const restarted = b.clone();
    restarted.chainHead = Buffer.alloc(32); // sidecar "forgot" its head
    res = await postJson(c.url, restarted.next(2));
    expect(res.body.error.code).toBe('batch_chain_broken');
    expect((await postJson(c.url, b.next(2))).status).toBe(200);
  });

  it('answers 413 for a body over the limit, 400 for malformed JSON, 415 for other types', async () => {
    const small = await startTestCollector({ streams: [{ match: 'pod-a', vkey: b.vkey }], max_body_bytes: 4096 });
    try {
      const res = await postJson(small.url, b.next(40));
      expect(res.status).toBe(413);
      expect(res.body.error.code).toBe('body_too_large');
    } finally {
      await small.close();
    }
    const bad = await postJson(c.url, undefined, '{"v":1,"stream":"pod-a",');
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('body_malformed');
    const empty = await postJson(c.url, undefined, '');
    expect(empty.status).toBe(400);
    // Parsed with plain JSON.parse (no prototype-poisoning scan): a
    // "__proto__" member, written plainly or escaped, is an own property
    // that parseBatch refuses as an unknown field, and nothing is stored.
    for (const raw of ['{"__proto__":{"x":1}}', '{"\\u005f_proto__":{"x":1}}', '{"constructor":{"prototype":{"x":1}}}']) {
      const proto = await postJson(c.url, undefined, raw);
      expect(proto.status, raw).toBe(422);
      expect(proto.body.error.code, raw).toBe('batch_malformed');
      expect(({} as Record<string, unknown>).x, raw).toBeUndefined();
    }
    const text = await request(`${c.url}/v1/batches`, { method: 'POST', headers: { 'content-type': 'application/xml' }, body: '<batch/>' });
    expect(text.statusCode).toBe(415);
    expect(((await text.body.json()) as any).error.code).toBe('unsupported_media_type');
  });

  it('answers 4xx, never 500, for hostile shapes', async () => {
    const good = b.clone().next(2);
    const deep = '['.repeat(10_000) + ']'.repeat(10_000);
    const deepRecord = `{"stream":"pod-a","seq":0,"x":${deep}}`;
    const cases: [string, unknown, string?][] = [
      ['array body', [good]],
      ['string body', 'hello'],
      ['null body', null],
      ['records not an array', { ...good, records: { 0: good.records[0] } }],
      ['records empty', { ...good, records: [] }],
      ['huge batch number', { ...good, batch: 1e308 }],
      ['negative seq', { ...good, first_seq: -1 }],
      ['fractional seq', { ...good, last_seq: 1.5 }],
      ['seq as string', { ...good, records: good.records.map((r) => ({ ...r, seq: String(r.seq) })) }],
      ['record not object', { ...good, records: [1, 2] }],
      ['mac not hex', { ...good, records: good.records.map((r) => ({ ...r, mac: 'zz' })) }],
      ['extra record field', { ...good, records: good.records.map((r) => ({ ...r, extra: 1 })) }],
      ['unknown top-level field', { ...good, hello: 1 }],
      ['wrong version', { ...good, v: 2 }],
      ['stream with slash', { ...good, stream: 'a/b' }],
      ['stream too long', { ...good, stream: 'a'.repeat(300) }],
      ['checkpoint not a note', { ...good, checkpoint: 'hello' }],
      ['checkpoint number', { ...good, checkpoint: 5 }],
      ['vkey object', { ...good, vkey: {} }],
      ['deeply nested array body', undefined, deep],
      ['deeply nested records', undefined, JSON.stringify({ ...good, records: 'DEEP' }).replace('"DEEP"', deep)],
      ['deeply nested record text', { ...good, records: [{ ...good.records[0], canonical: deepRecord }, good.records[1]] }],
      ['seq count mismatch', { ...good, last_seq: 5 }],
      ['huge numbers in text', undefined, `{"v":1,"stream":"pod-a","batch":1e99999,"first_seq":0}`],
    ];
    for (const [name, body, raw] of cases) {
      const res = await postJson(c.url, body, raw);
      expect(res.status, name).toBeGreaterThanOrEqual(400);
      expect(res.status, name).toBeLessThan(500);
      expect(res.body?.error?.code, name).toMatch(/^[a-z_]+$/);
    }
    // the stream still works afterwards
    expect((await postJson(c.url, b.next(2))).status).toBe(200);
  });

  it('refuses an unknown stream without TOFU (403)', async () => {
    const stranger = new BatchBuilder({ stream: 'pod-x' });
    const res = await postJson(c.url, { ...stranger.next(2), vkey: stranger.vkey });
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('stream_unknown');
  });

  it('matches configured keys by exact id or "*" prefix, first entry wins', async () => {
    const wild = new BatchBuilder({ stream: 'agents-7' });
    const other = new BatchBuilder({ stream: 'agents-8' });
    const s = await startTestCollector({
      streams: [
        { match: 'agents-8', vkey: other.vkey },
        { match: 'agents-*', vkey: wild.vkey },
      ],
    });
    try {
      expect((await postJson(s.url, wild.next(1))).status).toBe(200);
      expect((await postJson(s.url, other.next(1))).status).toBe(200);
      const impostor = new BatchBuilder({ stream: 'agents-8', skey: wild.skey });
      expect((await postJson(s.url, impostor.next(1))).status).toBe(422);
    } finally {
      await s.close();
    }
  });

  it('checks only the chain head when it does not hold the key', async () => {
    const s = await startTestCollector({ streams: [{ match: 'pod-a', vkey: b.vkey }] });
    try {
      const unknownKey = new BatchBuilder({ stream: 'pod-a', skey: b.skey, hmacKey: Buffer.alloc(32, 3), keyId: 'k9' });
      const batch = unknownKey.next(3);
      let res = await postJson(s.url, { ...batch, chain_head: 'ab'.repeat(32) });
      expect(res.body.error.code).toBe('batch_chain_broken');
      res = await postJson(s.url, batch);
      expect(res.status).toBe(200);
    } finally {
      await s.close();
    }
  });

  it('serialises concurrent posts of one stream', async () => {
    const batches = [b.next(5), b.next(5), b.next(5)];
    // Same batch many times at once: exactly one store, the rest duplicates.
    const results = await Promise.all(Array.from({ length: 8 }, () => postJson(c.url, batches[0])));
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(results.filter((r) => r.body.duplicate).length).toBe(7);
    // A batch and its resend racing each other: one store, one duplicate.
    const race = await Promise.all([postJson(c.url, batches[1]), postJson(c.url, batches[1])]);
    expect(race.map((r) => r.status)).toEqual([200, 200]);
    expect(race.filter((r) => r.body.duplicate).length).toBe(1);
    expect((await postJson(c.url, batches[2])).status).toBe(200);
    const streams = await getJson(c.url, '/v1/streams');
    expect(streams.body.streams[0].tree_size).toBe(15);
  });
});

describe('collector replicas sharing one database', () => {
  it('turn a lost race into a duplicate ack or a fork, never a second copy', async () => {
    const b = new BatchBuilder({ stream: 'pod-r', hmacKey: HMAC_KEY });
    const opts = { streams: [{ match: 'pod-r', vkey: b.vkey }], hmac_keys: [{ id: 'k1', key: HMAC_KEY }] };
    const r1 = await startTestCollector(opts);
    const r2 = await startTestCollector(opts, r1.dbPath);
    try {
      for (let i = 0; i < 10; i++) {
        const batch = b.next(50);
        const res = await Promise.all([postJson(r1.url, batch), postJson(r2.url, batch), postJson(r2.url, batch)]);
        expect(res.map((r) => r.status)).toEqual([200, 200, 200]);
        expect(res.filter((r) => !r.body.duplicate).length).toBe(1);
      }
      const alt = b.clone();
      const mine = b.next(5);
      const theirs = alt.next(5, { fields: () => ({ outcome: 'failure' }) });
      const res = await Promise.all([postJson(r1.url, mine), postJson(r2.url, theirs)]);
      expect(res.map((r) => r.status).sort()).toEqual([200, 409]);
      expect((await r1.store.getStreamState('pod-r'))?.treeSize).toBe(505);
    } finally {
      await r2.close();
      await r1.close();
    }
  });

  it('resolve a store conflict by the stored batch (deterministic race)', async () => {
    const b = new BatchBuilder({ stream: 'pod-s', hmacKey: HMAC_KEY });
    const opts: CollectorOptions = {
      listen: { host: '127.0.0.1', port: 0 },
      max_body_bytes: 1 << 20,
      admin_tokens: [],
      streams: [{ match: 'pod-s', vkey: b.vkey }],
      trust_on_first_use: false,
      hmac_keys: [{ id: 'k1', key: HMAC_KEY }],
    };
    const dir = mkdtempSync(join(tmpdir(), 'sealtrail-race-'));
    // Both replicas read the head, then wait, so both verify against the
    // same state and the second append hits the store's optimistic check.
    const slow = (inner: SqliteAuditStore): AuditStore =>
      new Proxy(inner, {
        get(target, prop, receiver) {
          if (prop === 'getStreamState') {
            return async (s: string) => {
              const st = await target.getStreamState(s);
              await sleep(50);
              return st;
            };
          }
          const v = Reflect.get(target, prop, receiver);
          return typeof v === 'function' ? v.bind(target) : v;
        },
      });
    const s1 = new SqliteAuditStore(join(dir, 'a.db'));
    const s2 = new SqliteAuditStore(join(dir, 'a.db'));
    const { logger, lines } = memoryLogger();
    const r1 = await startCollector(opts, slow(s1), logger);
    const r2 = await startCollector(opts, slow(s2), logger);
    try {
      const b0 = b.next(3);
      const same = await Promise.all([postJson(r1.url, b0), postJson(r2.url, b0)]);
      expect(same.map((r) => r.status)).toEqual([200, 200]);
      expect(same.filter((r) => r.body.duplicate).length).toBe(1);

      const alt = b.clone();
      const mine = b.next(2);
      const theirs = alt.next(2, { fields: () => ({ outcome: 'failure' }) });
      const fork = await Promise.all([postJson(r1.url, mine), postJson(r2.url, theirs)]);
      expect(fork.map((r) => r.status).sort()).toEqual([200, 409]);
      expect(lines.some((l) => l.includes('"alert":"batch_fork"'))).toBe(true);
    } finally {
      await r1.close();
      await r2.close();
      await s1.close();
      await s2.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('collector trust on first use', () => {
  let c: TestCollector;
  beforeEach(async () => {
    c = await startTestCollector({ trust_on_first_use: true });
  });
  afterEach(async () => {
    await c.close();
  });

  it('pins the key of batch 0 and refuses any other key afterwards', async () => {
    const b = new BatchBuilder({ stream: 'pod-new' });
    const b0 = b.next(2);
    let res = await postJson(c.url, b0);
    expect(res.status).toBe(403); // no vkey, nothing to trust
    res = await postJson(c.url, { ...b0, vkey: b.vkey });
    expect(res.status).toBe(200);
    expect(c.logs.some((l) => l.level === 40 && String(l.msg).includes('trusting stream pod-new on first use'))).toBe(true);
    expect((await c.store.getStreamState('pod-new'))?.pinnedVkey).toBe(b.vkey);
    expect((await postJson(c.url, b.next(2))).status).toBe(200);

    // A second sidecar claiming the same stream with its own key.
    const usurper = new BatchBuilder({ stream: 'pod-new' });
    const u0 = usurper.next(2);
    res = await postJson(c.url, { ...u0, vkey: usurper.vkey });
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('batch_bad_signature');
    const u1 = usurper.next(2);
    res = await postJson(c.url, { ...u1, vkey: usurper.vkey });
    expect(res.status).toBe(422);

    const streams = await getJson(c.url, '/v1/streams');
    expect(streams.body.streams[0]).toMatchObject({ stream: 'pod-new', tree_size: 4, trusted_on_first_use: true });
  });

  it('refuses a TOFU vkey that is not a verifier key, and a vkey on a later batch of a new stream', async () => {
    const b = new BatchBuilder({ stream: 'pod-q' });
    const b0 = b.next(1);
    let res = await postJson(c.url, { ...b0, vkey: 'not a key' });
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('batch_malformed');
    const b1 = b.next(1);
    res = await postJson(c.url, { ...b1, vkey: b.vkey });
    expect(res.status).toBe(403);
    expect(await c.store.getStreamState('pod-q')).toBeUndefined();
  });

  it('rejects a forged batch 0 whose vkey does not sign it', async () => {
    const b = new BatchBuilder({ stream: 'pod-r' });
    const res = await postJson(c.url, { ...b.next(1), vkey: otherSigner().vkey });
    expect(res.status).toBe(422);
    expect(await c.store.getStreamState('pod-r')).toBeUndefined();
  });
});

export type { SealedBatch };
