import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { readHmacKey } from '../../src/keyfiles.js';
import { BatchBuilder, type RecordFields } from '../helpers/collector-batches.js';
import { makeDeployment, startCollectorProc, stop, type Deployment } from '../helpers/deployment.js';
import { runCli, type Proc } from '../helpers/procs.js';

/**
 * Real processes: a spawned collector, `sealtrail export --bundle` against
 * it, then `sealtrail verify --bundle` with the collector stopped.
 */

const BASE = Date.UTC(2026, 6, 1, 9, 0, 0);
const iso = (ms: number) => new Date(ms).toISOString();

let d: Deployment;
let collector: Proc | undefined;
let tmp: string;
/** every record sent, parsed */
const sent: RecordFields[] = [];

async function post(body: unknown): Promise<number> {
  const res = await request(`${d.collectorUrl}/v1/batches`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  await res.body.text();
  return res.statusCode;
}

beforeAll(async () => {
  d = await makeDeployment({ prefix: 'sealtrail-export-e2e-' });
  tmp = mkdtempSync(join(tmpdir(), 'sealtrail-export-out-'));
  collector = await startCollectorProc(d);
  const skey = readFileSync(join(d.keys, 'e2e.skey'), 'utf8').trim();
  const hmacKey = readHmacKey(join(d.keys, 'hmac.key'));
  const fields = (seq: number): RecordFields => ({
    time: iso(BASE + seq * 60_000),
    tenant: seq % 3 === 0 ? 'globex' : 'acme',
    event_type: seq % 4 === 0 ? 'tool_denied' : 'tool_invoked',
    outcome: seq % 4 === 0 ? 'denied' : 'success',
  });
  for (const stream of ['pod-a', 'pod-b']) {
    const b = new BatchBuilder({ stream, skey, hmacKey, baseTime: BASE });
    for (const n of [3, 4, 2]) {
      const batch = b.next(n, { fields });
      expect(await post(batch)).toBe(200);
      for (const r of batch.records) sent.push(JSON.parse(r.canonical));
    }
  }
});

afterAll(async () => {
  if (collector) await stop(collector, 'SIGKILL');
});

const auth = () => ['--url', d.collectorUrl, '--token', d.token];

describe('sealtrail export --bundle / verify --bundle', () => {
  let bundle: string;
  let filtered: string;

  it('exports a bundle of every record, then a filtered one', async () => {
    bundle = join(tmp, 'all');
    const r = await runCli(['export', ...auth(), '--bundle', bundle, '--keys', d.keys]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/18 records, 6 checkpoints, 4 consistency proofs, 1 keys, 2 stream/);
    filtered = join(tmp, 'filtered');
    const f = await runCli([
      'export',
      ...auth(),
      '--bundle',
      filtered,
      '--keys',
      d.keys,
      '--stream',
      'pod-b',
      '--tenant',
      'acme',
      '--event-type',
      'tool_invoked',
      '--from',
      iso(BASE + 2 * 60_000),
    ]);
    expect(f.code).toBe(0);
    const lines = readFileSync(join(filtered, 'records.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const want = sent.filter(
      (s) => s.stream === 'pod-b' && s.tenant === 'acme' && s.event_type === 'tool_invoked' && Date.parse(s.time as string) >= BASE + 120_000,
    );
    expect(want.length).toBeGreaterThan(0);
    expect(lines.map((l) => l.seq)).toEqual(want.map((s) => s.seq));
    expect(JSON.parse(readFileSync(join(filtered, 'manifest.json'), 'utf8')).query).toEqual({
      stream: 'pod-b',
      tenant: 'acme',
      event_type: 'tool_invoked',
      from: iso(BASE + 120_000),
    });
    // into a non-empty directory: refused
    const again = await runCli(['export', ...auth(), '--bundle', bundle, '--keys', d.keys]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/export_dir_not_empty/);
  });

  it('verify --bundle checks offline, with the collector gone', async () => {
    await stop(collector!, 'SIGTERM');
    collector = undefined;
    for (const dir of [bundle, filtered]) {
      const r = await runCli(['verify', '--bundle', dir]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/ok: \d+ records/);
      expect(r.stderr).toMatch(/pass --keys/);
      const pinned = await runCli(['verify', '--bundle', dir, '--keys', d.keys]);
      expect(pinned.code).toBe(0);
      expect(pinned.stdout).toMatch(/keys given on the command line/);
    }
    // pinned to a key that did not sign: fails
    const other = join(tmp, 'other-keys');
    expect((await runCli(['keygen', '--name', 'other', '--out', other])).code).toBe(0);
    const wrong = await runCli(['verify', '--bundle', bundle, '--vkey', join(other, 'other.vkey')]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/verification FAILED: .*checkpoints\/pod-a\/\d+\.note/);
  });

  it('exit 1 after a tamper, naming the file', async () => {
    const path = join(bundle, 'records.jsonl');
    const orig = readFileSync(path);
    const bad = Buffer.from(orig);
    bad[Math.floor(bad.length / 2)]! ^= 0x01;
    writeFileSync(path, bad);
    const r = await runCli(['verify', '--bundle', bundle]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/verification FAILED: bundle .*: records\.jsonl: SHA-256 does not match manifest\.json/);
    writeFileSync(path, orig);
    expect((await runCli(['verify', '--bundle', bundle])).code).toBe(0);
  });

  it('usage errors exit 2', async () => {
    expect((await runCli(['verify', '--bundle', bundle, '--db', 'x.db'])).code).toBe(2);
    expect((await runCli(['verify', '--bundle', join(tmp, 'missing')])).code).toBe(2);
    expect((await runCli(['export', '--url', 'http://127.0.0.1:1', '--token', 'x'.repeat(20)])).code).toBe(2);
    expect((await runCli(['query', '--url', 'http://127.0.0.1:1', '--token', 'x'.repeat(20), '--limit', '0'])).code).toBe(2);
    expect((await runCli(['query', '--url', 'http://127.0.0.1:1', '--token', 'x'.repeat(20), '--bogus'])).code).toBe(2);
  });
});

describe('sealtrail query', () => {
  beforeAll(async () => {
    if (!collector) collector = await startCollectorProc(d);
  });

  it('prints the filtered items as JSONL, following cursors with --all', async () => {
    const r = await runCli(['query', ...auth(), '--tenant', 'acme', '--outcome', 'success', '--all', '--limit', '2']);
    expect(r.code, r.stderr).toBe(0);
    const items = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    const want = sent.filter((s) => s.tenant === 'acme' && s.outcome === 'success');
    expect(items).toHaveLength(want.length);
    expect(new Set(items.map((i) => `${i.stream}/${i.seq}`))).toEqual(new Set(want.map((s) => `${s.stream}/${s.seq}`)));
    for (const i of items) expect(i.record).toMatchObject({ tenant: 'acme', outcome: 'success' });
    expect(r.stderr).toMatch(new RegExp(`^${want.length} item\\(s\\)`, 'm'));
  });

  it('one page without --all, with the cursor on stderr; --order desc; --proof', async () => {
    const one = await runCli(['query', ...auth(), '--stream', 'pod-a', '--limit', '4', '--order', 'desc']);
    expect(one.code).toBe(0);
    const items = one.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(items.map((i) => i.seq)).toEqual([8, 7, 6, 5]);
    expect(one.stderr).toMatch(/more results: --cursor \S+/);
    const cursor = /--cursor (\S+)/.exec(one.stderr)![1]!;
    const next = await runCli(['query', ...auth(), '--stream', 'pod-a', '--limit', '4', '--order', 'desc', '--cursor', cursor]);
    expect(next.stdout.trim().split('\n').map((l) => JSON.parse(l).seq)).toEqual([4, 3, 2, 1]);
    const proof = await runCli(['query', ...auth(), '--stream', 'pod-b', '--trace', 'trace-1', '--session', 'session-1', '--event-type', 'tool_denied', '--proof', '--all']);
    expect(proof.code).toBe(0);
    const p = proof.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(p.map((i) => i.seq)).toEqual(sent.filter((s) => s.stream === 'pod-b' && s.event_type === 'tool_denied').map((s) => s.seq));
    for (const i of p) expect(i.proof).toMatchObject({ leaf_index: i.seq, checkpoint: expect.stringContaining('sealtrail/pod-b') });
  });

  it('a collector refusal exits 1 with its code', async () => {
    const r = await runCli(['query', '--url', d.collectorUrl, '--token', 'wrong-token-0123456789abcdef']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/collector_refused.*40[13]/);
  });
});
