import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep } from '../harness/wait.js';
import {
  getJson,
  makeDeployment,
  queryAll,
  startCollectorProc,
  startSidecarProc,
  stop,
  treeSize,
  type Deployment,
  sidecarItems,
} from '../helpers/deployment.js';
import { runCli, waitFor, type Proc } from '../helpers/procs.js';
import { findLeaks, readAllFiles } from '../helpers/redaction-deployment.js';
import { KILLABLE_CLIENT_SOURCE, SocketClient } from '../helpers/socket-client.js';

const SOCK_CLIENTS = 5;
const SOCK_LINES = 1_000;
const FILE_LINES = 1_000;


/** One event; `k` is its unique key, kept in details.k through the whole pipeline. */
function ev(k: string, details: Record<string, unknown> = {}): string {
  return JSON.stringify({
    event_type: 'tool_invoked',
    actor: { id: 'agent-7', type: 'agent' },
    tool: { name: 'lookup', arguments: { q: k } },
    details: { k, ...details },
  });
}

function keys(prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
}

/** Two sources next to the deployment's file source "traces": a socket "sock" and the http source "api". */
function sourcesOf(dir: string): string[] {
  return [`{ id: sock, type: socket, path: ${join(dir, 's.sock')} }`, '{ id: api, type: http }'];
}

interface PostResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  body: any;
}

async function postEvents(d: Deployment, body: string | Buffer, headers: Record<string, string>): Promise<PostResult> {
  const res = await request(`${d.telemetryUrl}/v1/events`, { method: 'POST', body, headers });
  const text = await res.body.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.statusCode, headers: res.headers, text, body: parsed };
}

const JSON_TYPE = { 'content-type': 'application/json' };
const NDJSON_TYPE = { 'content-type': 'application/x-ndjson' };

/** A 202's seqs, one per event in request order (all accepted). */
function acceptedSeqs(r: PostResult, eventKeys: readonly string[]): Map<string, number> {
  expect(r.status, r.text).toBe(202);
  expect(r.body.accepted).toBe(eventKeys.length);
  expect(r.body.rejected).toEqual([]);
  expect(r.body.last_seq - r.body.first_seq + 1).toBe(eventKeys.length);
  expect(r.headers['x-request-id']).toBe(r.body.request_id);
  return new Map(eventKeys.map((k, i) => [k, r.body.first_seq + i]));
}

/** Sum of a metric's samples whose labels include all of `labels`. */
function metric(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = new Map<string, string>();
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) got.set(l[1]!, l[2]!);
    if (Object.entries(labels).every(([k, v]) => got.get(k) === v)) sum += Number(m[3]);
  }
  return sum;
}

async function metricsText(d: Deployment): Promise<string> {
  const { status, body } = await getJson(`${d.telemetryUrl}/metrics`);
  if (status !== 200) throw new Error(`/metrics: ${status}`);
  return String(body);
}

/**
 * Waits until the sidecar's chain head is stored at the collector and nothing
 * is left unacknowledged, twice in a row; returns the tree size.
 */
async function settled(d: Deployment, timeoutMs = 60_000): Promise<number> {
  let last = -1;
  return waitFor(
    'the collector holds the whole chain',
    async () => {
      const m = await metricsText(d);
      const size = await treeSize(d);
      const ok = metric(m, 'sealtrail_unanchored_records') === 0 && size === metric(m, 'sealtrail_chain_head_seq') + 1;
      if (!ok) {
        last = -1;
        return false;
      }
      if (size !== last) {
        last = size;
        return false;
      }
      return size;
    },
    timeoutMs,
    300,
  );
}

/** Collector items by details.k (every key must be unique across the stream). */
function byKey(items: any[]): Map<string, any[]> {
  const m = new Map<string, any[]>();
  for (const it of items) {
    const k = it.record.details?.k;
    if (typeof k !== 'string') continue;
    const list = m.get(k) ?? [];
    list.push(it);
    m.set(k, list);
  }
  return m;
}

/** Asserts each key is stored exactly once, with the given seq when known, from `source`. */
function expectStoredOnce(index: Map<string, any[]>, expected: Map<string, number | undefined>, source: string): void {
  const missing: string[] = [];
  const dup: string[] = [];
  const wrongSeq: string[] = [];
  const wrongSource: string[] = [];
  for (const [k, seq] of expected) {
    const got = index.get(k) ?? [];
    if (got.length === 0) missing.push(k);
    if (got.length > 1) dup.push(k);
    const it = got[0];
    if (!it) continue;
    if (seq !== undefined && (it.seq !== seq || it.record.seq !== seq)) wrongSeq.push(`${k}: acked ${seq}, stored ${it.seq}`);
    if (it.record.source !== source) wrongSource.push(`${k}: ${it.record.source}`);
  }
  expect(missing.slice(0, 10)).toEqual([]);
  expect(dup.slice(0, 10)).toEqual([]);
  expect(wrongSeq.slice(0, 10)).toEqual([]);
  expect(wrongSource.slice(0, 10)).toEqual([]);
}

/** Checks the stream as a whole: one stream, seqs 0..n-1 each once, no key twice; returns the items. */
async function wholeStream(d: Deployment, size: number): Promise<any[]> {
  const { body } = await getJson(`${d.collectorUrl}/v1/streams`, d.token);
  const streams = sidecarItems(body.streams as Array<{ stream: string; tree_size: number }>);
  expect(streams).toHaveLength(1);
  expect(streams[0]!.tree_size).toBe(size);
  const items = await queryAll(d);
  expect(items).toHaveLength(size);
  const seqs = items.map((i) => i.seq as number).sort((a, b) => a - b);
  expect(seqs[0]).toBe(0);
  expect(seqs.every((s, i) => s === i)).toBe(true);
  const dups = [...byKey(items)].filter(([, l]) => l.length > 1).map(([k]) => k);
  expect(dups).toEqual([]);
  return items;
}

describe('socket, http and file sources in one spawned sidecar', () => {
  let d: Deployment;
  let collector: Proc | undefined;
  let sidecar: Proc | undefined;
  let sockPath: string;
  /** every key whose seq a client was told (socket ack or 202), with that seq */
  const told = new Map<string, number>();

  beforeAll(async () => {
    d = await makeDeployment({ extraSources: sourcesOf, prefix: 'st-src-' });
    sockPath = join(d.dir, 's.sock');
    expect(Buffer.byteLength(sockPath)).toBeLessThan(108);
    collector = await startCollectorProc(d);
    sidecar = await startSidecarProc(d);
  });

  afterAll(async () => {
    if (sidecar) await stop(sidecar, 'SIGKILL');
    if (collector) await stop(collector, 'SIGKILL');
  });

  it('delivers concurrent socket, HTTP (object, array, NDJSON, gzip) and file events exactly once, with the seqs the clients were told', async () => {
    expect(statSync(sockPath).isSocket()).toBe(true);
    expect(statSync(sockPath).mode & 0o777).toBe(0o600); // the default socket mode

    const socketKeys = Array.from({ length: SOCK_CLIENTS }, (_, c) => keys(`sock${c}`, SOCK_LINES));
    const socketRun = async (c: number): Promise<Map<string, number>> => {
      const client = await SocketClient.connect(sockPath);
      const lines = socketKeys[c]!.map((k) => ev(k));
      // in chunks of 100 lines, without waiting for answers: the client reads them as they come
      for (let i = 0; i < lines.length; i += 100) await client.sendLines(lines.slice(i, i + 100));
      await client.end();
      expect(client.lineErrors.size).toBe(0);
      expect(client.connectionErrors).toEqual([]);
      expect(client.answers).toHaveLength(SOCK_LINES);
      // answers in line order, seqs increasing in line order
      expect(client.answers.map((a) => a.ack)).toEqual(Array.from({ length: SOCK_LINES }, (_, i) => i + 1));
      const seqs = client.answers.map((a) => a.seq!);
      expect(seqs.every((s, i) => i === 0 || s > seqs[i - 1]!)).toBe(true);
      return new Map(socketKeys[c]!.map((k, i) => [k, client.acks.get(i + 1)!]));
    };

    const httpKeys = { object: keys('http-obj', 1), array: keys('http-arr', 50), ndjson: keys('http-nd', 100), gzip: keys('http-gz', 50) };
    const httpRun = async (): Promise<Map<string, number>> => {
      const out = new Map<string, number>();
      const add = (m: Map<string, number>): void => m.forEach((v, k) => out.set(k, v));
      add(acceptedSeqs(await postEvents(d, ev(httpKeys.object[0]!), JSON_TYPE), httpKeys.object));
      add(acceptedSeqs(await postEvents(d, `[\n${httpKeys.array.map((k) => ev(k)).join(',\n')}\n]`, JSON_TYPE), httpKeys.array));
      // CRLF and a blank line in NDJSON; no final newline
      const nd = httpKeys.ndjson.map((k) => ev(k));
      nd.splice(40, 0, '');
      add(acceptedSeqs(await postEvents(d, nd.join('\r\n'), { 'content-type': 'application/x-ndjson; charset=utf-8' }), httpKeys.ndjson));
      const gz = gzipSync(Buffer.from(httpKeys.gzip.map((k) => `${ev(k)}\n`).join('')));
      add(acceptedSeqs(await postEvents(d, gz, { ...NDJSON_TYPE, 'content-encoding': 'gzip' }), httpKeys.gzip));
      return out;
    };

    const fileKeys = keys('file', FILE_LINES);
    const fileRun = async (): Promise<void> => {
      const live = join(d.traces, 'app.jsonl');
      writeFileSync(live, '');
      for (let i = 0; i < FILE_LINES; i += 250) {
        appendFileSync(live, fileKeys.slice(i, i + 250).map((k) => `${ev(k)}\n`).join(''));
        await sleep(50);
      }
    };

    const [socketSeqs, httpSeqs] = await Promise.all([
      Promise.all(socketKeys.map((_, c) => socketRun(c))),
      httpRun(),
      fileRun(),
    ]);
    const total = SOCK_CLIENTS * SOCK_LINES + 201 + FILE_LINES;
    await waitFor('every event at the collector', async () => (await treeSize(d)) >= total, 60_000, 250);
    expect(await settled(d)).toBe(total);

    const items = await wholeStream(d, total);
    const index = byKey(items);
    for (const m of socketSeqs) {
      expectStoredOnce(index, m, 'sock');
      m.forEach((v, k) => told.set(k, v));
    }
    expectStoredOnce(index, httpSeqs, 'api');
    httpSeqs.forEach((v, k) => told.set(k, v));
    expectStoredOnce(index, new Map(fileKeys.map((k) => [k, undefined])), 'traces');
    // the socket's seqs interleave with the others': the five connections and the other sources shared one chain
    expect(new Set(items.map((i) => i.record.stream)).size).toBe(1);

    const r = await runCli(['verify', '--url', d.collectorUrl, '--keys', d.keys, '--token', d.token]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`${total} records`));
    expect(r.stdout).toMatch(/HMAC chain checked/);

    const m = await metricsText(d);
    expect(metric(m, 'sealtrail_records_ingested_total', { source: 'sock' })).toBe(SOCK_CLIENTS * SOCK_LINES);
    expect(metric(m, 'sealtrail_records_ingested_total', { source: 'api' })).toBe(201);
    expect(metric(m, 'sealtrail_records_ingested_total', { source: 'traces' })).toBe(FILE_LINES);
    expect(metric(m, 'sealtrail_http_requests_total', { source: 'api', code: 'accepted' })).toBe(4);
  });

  it('redacts socket and HTTP events like file lines', async () => {
    const emails = { sock: 'canary.sock.b7e1@mail.example.org', http: 'canary.http.b7e1@mail.example.org', nd: 'canary.nd.b7e1@mail.example.org' };
    const client = await SocketClient.connect(sockPath);
    await client.sendLines([ev('redact-sock', { contact: `write to ${emails.sock}` })]);
    await client.end();
    expect(client.acks.size).toBe(1);
    const r1 = await postEvents(d, ev('redact-http', { contact: emails.http }), JSON_TYPE);
    const r2 = await postEvents(d, `${ev('redact-nd', { contact: emails.nd })}\n`, NDJSON_TYPE);
    expect(r1.status).toBe(202);
    expect(r2.status).toBe(202);
    // nothing of the event is echoed to the client
    expect(client.raw()).not.toContain('@');
    expect(r1.text + r2.text).not.toContain('@');

    const size = await settled(d);
    const items = await queryAll(d);
    expect(items).toHaveLength(size);
    const text = JSON.stringify(items);
    for (const e of Object.values(emails)) expect(text).not.toContain(e);
    expect(text).not.toMatch(/canary\.[a-z]+\.b7e1/);
    const index = byKey(items);
    const expected = new Map<string, [string, number]>([
      ['redact-sock', ['sock', client.acks.get(1)!]],
      ['redact-http', ['api', r1.body.first_seq]],
      ['redact-nd', ['api', r2.body.first_seq]],
    ]);
    for (const [k, [source, seq]] of expected) {
      const got = index.get(k) ?? [];
      expect(got).toHaveLength(1);
      expect(got[0].seq).toBe(seq);
      expect(got[0].record.source).toBe(source);
      expect(got[0].record.details.contact).toMatch(/\[REDACTED:email\]/);
      expect(got[0].record.redaction.hits.email).toBe(1);
      told.set(k, seq);
    }
    // nor did the raw address reach the sidecar's buffer files or its logs
    const leaks = findLeaks(readAllFiles(join(d.dir, 'sidecar')), Object.values(emails));
    expect(leaks).toEqual([]);
    for (const e of Object.values(emails)) expect(sidecar!.stderr() + sidecar!.stdout()).not.toContain(e);
  });

  it('stores every line acknowledged to a client that is SIGKILLed mid-stream exactly once', async () => {
    const script = join(d.dir, 'killable-client.mjs');
    writeFileSync(script, KILLABLE_CLIENT_SOURCE);
    const LINES = 50_000;
    const child = spawn(process.execPath, [script, sockPath, 'kill', String(LINES), '25'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const exited = new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_c, s) => r(s)));
    await waitFor('the client got 1,000 acks', () => {
      if (child.exitCode !== null) throw new Error(`client exited: ${err}`);
      return out.split('\n').length > 1_000;
    }, 60_000, 20);
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');

    // only complete answer lines count: the last one may be cut
    const answers = out.split('\n').slice(0, -1).map((l) => JSON.parse(l) as { ack?: number; seq?: number; error?: unknown });
    expect(answers.every((a) => a.ack !== undefined && a.seq !== undefined)).toBe(true);
    expect(answers.map((a) => a.ack)).toEqual(answers.map((_, i) => i + 1));
    const acked = new Map(answers.map((a) => [`kill-${a.ack! - 1}`, a.seq!]));
    expect(acked.size).toBeGreaterThanOrEqual(1_000);
    expect(acked.size).toBeLessThan(LINES);

    // the connection is gone; a new client still gets served, and sees its own ack
    const after = await SocketClient.connect(sockPath);
    await after.sendLines([ev('after-kill')]);
    await after.end();
    expect(after.acks.size).toBe(1);
    told.set('after-kill', after.acks.get(1)!);

    const size = await settled(d);
    const items = await queryAll(d);
    expect(items).toHaveLength(size);
    const index = byKey(items);
    expectStoredOnce(index, acked, 'sock');
    acked.forEach((v, k) => told.set(k, v));
    // lines received but not answered before the kill may be stored too, each once, right after the acked ones
    const unacked = [...index.keys()].filter((k) => k.startsWith('kill-') && !acked.has(k));
    const lastAcked = Math.max(...acked.values());
    for (const k of unacked) {
      expect(Number(k.slice(5))).toBeGreaterThanOrEqual(acked.size);
      expect(index.get(k)![0].seq).toBeGreaterThan(lastAcked);
    }
    expect(unacked.length).toBeLessThanOrEqual(25);
  });

  it('answers malformed socket lines and HTTP bodies with errors, quarantines and counts them, and never logs their content', async () => {
    const CANARY = 'CANARY-f3a9c1d7e5';
    const before = await metricsText(d);
    const client = await SocketClient.connect(sockPath);
    await client.write(
      Buffer.concat([
        Buffer.from(
          [
            ev('bad-ok-1'), // 1
            `{"event_type":"tool_invoked","details":{"s":"${CANARY}-json"}`, // 2: cut JSON
            `["${CANARY}-array"]`, // 3: not an object
            `{"actor":{"id":"${CANARY}-schema"}}`, // 4: no event_type
            '   ', // 5: blank, no answer
            ev('bad-ok-2'), // 6
            `{"event_type":"${'x'.repeat(200)}","details":{"s":"${CANARY}-long-type"}}`, // 7: event_type too long
            '',
          ].join('\n'),
        ),
        // 8: not UTF-8
        Buffer.from(`{"event_type":"tool_invoked","details":{"s":"${CANARY}-bytes1 `),
        Buffer.from([0xff, 0xfe]),
        Buffer.from('"}}\n'),
        // 9: no newline before the half-close
        Buffer.from(`{"event_type":"tool_invoked","details":{"s":"${CANARY}-cut"}}`),
      ]),
    );
    await client.end();
    expect(client.lineErrors).toEqual(
      new Map([
        [2, 'json_invalid'],
        [3, 'record_not_object'],
        [4, 'record_invalid'],
        [7, 'record_invalid'],
        [8, 'invalid_utf8'],
        [9, 'unterminated'],
      ]),
    );
    expect([...client.acks.keys()]).toEqual([1, 6]);
    // one answer per non-blank line, in line order
    expect(client.answers.map((a) => a.ack ?? a.line)).toEqual([1, 2, 3, 4, 6, 7, 8, 9]);
    expect(client.raw()).not.toContain('CANARY');

    const bad = await postEvents(d, `{"event_type":"tool_invoked","details":{"s":"${CANARY}-body"}`, JSON_TYPE);
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('json_invalid');
    expect(bad.text).not.toContain('CANARY');
    const notObj = await postEvents(d, `${ev('bad-http-1')}\n"${CANARY}-scalar"\n`, NDJSON_TYPE);
    expect(notObj.status).toBe(400);
    expect(notObj.body.error).toMatchObject({ code: 'record_not_object', index: 1, line: 2 });
    expect(notObj.text).not.toContain('CANARY');
    const mixed = await postEvents(d, `[${ev('bad-http-2')}, {"actor":{"id":"${CANARY}-http-schema"}}]`, JSON_TYPE);
    expect(mixed.status).toBe(202);
    expect(mixed.body.accepted).toBe(1);
    expect(mixed.body.rejected).toEqual([{ index: 1, line: 1, code: 'record_invalid' }]);
    expect(mixed.text).not.toContain('CANARY');
    const notUtf8 = await postEvents(d, Buffer.concat([Buffer.from(`{"event_type":"x","details":{"s":"${CANARY}-bytes2 `), Buffer.from([0xff, 0xfe]), Buffer.from('"}}')]), JSON_TYPE);
    expect(notUtf8.status).toBe(400);
    expect(notUtf8.body.error.code).toBe('invalid_utf8');

    const size = await settled(d);
    const after = await metricsText(d);
    const delta = (labels: Record<string, string>): number =>
      metric(after, 'sealtrail_records_quarantined_total', labels) - metric(before, 'sealtrail_records_quarantined_total', labels);
    expect(delta({ source: 'sock' })).toBe(6);
    expect(delta({ source: 'sock', reason: 'json_invalid' })).toBe(1);
    expect(delta({ source: 'sock', reason: 'record_not_object' })).toBe(1);
    expect(delta({ source: 'sock', reason: 'record_invalid' })).toBe(2);
    expect(delta({ source: 'sock', reason: 'invalid_utf8' })).toBe(1);
    expect(delta({ source: 'sock', reason: 'unterminated' })).toBe(1);
    // a refused request (400) commits nothing, not even quarantine rows; a 202's rejected events are quarantined
    expect(delta({ source: 'api' })).toBe(1);
    expect(delta({ source: 'api', reason: 'record_invalid' })).toBe(1);
    const codes = (code: string): number =>
      metric(after, 'sealtrail_http_requests_total', { source: 'api', code }) - metric(before, 'sealtrail_http_requests_total', { source: 'api', code });
    expect(codes('json_invalid')).toBe(1);
    expect(codes('record_not_object')).toBe(1);
    expect(codes('invalid_utf8')).toBe(1);
    expect(codes('accepted')).toBe(1);

    const items = await queryAll(d);
    expect(items).toHaveLength(size);
    const index = byKey(items);
    const stored = new Map<string, number>([
      ['bad-ok-1', client.acks.get(1)!],
      ['bad-ok-2', client.acks.get(6)!],
      ['bad-http-2', mixed.body.first_seq],
    ]);
    expectStoredOnce(index, new Map([...stored].slice(0, 2)), 'sock');
    expectStoredOnce(index, new Map([...stored].slice(2)), 'api');
    stored.forEach((v, k) => told.set(k, v));
    expect(index.has('bad-http-1')).toBe(false); // its request was refused whole
    expect(JSON.stringify(items)).not.toContain('CANARY');

    const logs = sidecar!.stderr() + sidecar!.stdout();
    expect(logs).toMatch(/lines quarantined/);
    expect(logs).not.toContain('CANARY');
    // nor are the refused lines' bytes kept in the buffer (quarantine rows hold positions and reasons only)
    const files = readAllFiles(join(d.dir, 'sidecar'));
    for (const cut of ['-json', '-array', '-schema', '-long-type', '-cut', '-body', '-scalar', '-http-schema', '-bytes1', '-bytes2']) {
      expect(findLeaks(files, [`${CANARY}${cut}`])).toEqual([]);
    }
  });

  it('on SIGTERM with a socket client writing, exits 0 after answering it; everything acked is at the collector after a restart', async () => {
    const client = await SocketClient.connect(sockPath);
    const lines = keys('term', 20_000).map((k) => ev(k));
    const writing = client.sendWindowed(lines, 20).catch((e: Error) => e);
    await waitFor('500 acks before SIGTERM', () => client.acks.size >= 500, 60_000, 20);
    const exit = await stop(sidecar!, 'SIGTERM');
    expect(exit.code).toBe(0);
    sidecar = undefined;
    await client.closed;
    const outcome = await writing;
    expect(outcome).toBeInstanceOf(Error); // the connection closed before 20,000 lines were answered
    // acks for a prefix of the lines, then at most "source_closed"; no line error
    expect(client.lineErrors.size).toBe(0);
    const ackLines = client.answers.filter((a) => a.ack !== undefined).map((a) => a.ack);
    expect(ackLines).toEqual(ackLines.map((_, i) => i + 1));
    expect(client.connectionErrors.every((c) => c === 'source_closed')).toBe(true);
    expect(client.connectionErrors.length).toBeLessThanOrEqual(1);
    if (client.connectionErrors.length === 1) expect(client.answers[client.answers.length - 1]!.error?.code).toBe('source_closed');
    expect(client.acks.size).toBeGreaterThanOrEqual(500);
    expect(client.acks.size).toBeLessThan(lines.length);
    expect(existsSync(sockPath)).toBe(false); // the source removed its socket file

    sidecar = await startSidecarProc(d);
    expect(statSync(sockPath).mode & 0o777).toBe(0o600); // the default socket mode
    const acked = new Map([...client.acks].map(([line, seq]) => [`term-${line - 1}`, seq]));
    acked.forEach((v, k) => told.set(k, v));
    const size = await settled(d);
    const items = await wholeStream(d, size);
    const index = byKey(items);
    expectStoredOnce(index, acked, 'sock');
    // every seq any client was told in this whole describe block is the one stored, once
    const wrong = [...told].filter(([k, seq]) => index.get(k)?.length !== 1 || index.get(k)![0].seq !== seq);
    expect(wrong).toEqual([]);
    // nothing after the acked prefix: a line not answered before the drain ended was not stored
    const notAcked = [...index.keys()].filter((k) => k.startsWith('term-') && !acked.has(k));
    expect(notAcked).toEqual([]);

    const r = await runCli(['verify', '--url', d.collectorUrl, '--keys', d.keys, '--token', d.token]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`${size} records`));
    expect((await stop(sidecar)).code).toBe(0);
    sidecar = undefined;
  });
});

describe('backpressure from a full buffer while the collector is down', () => {
  let d: Deployment;
  let collector: Proc | undefined;
  let sidecar: Proc | undefined;

  afterAll(async () => {
    if (sidecar) await stop(sidecar, 'SIGKILL');
    if (collector) await stop(collector, 'SIGKILL');
  });

  it('stalls socket acks and answers HTTP 503 at the buffer limit, then delivers everything once the collector is up', async () => {
    d = await makeDeployment({ extraSources: sourcesOf, buffer: { max_records: 50 }, prefix: 'st-bp-' });
    const sockPath = join(d.dir, 's.sock');
    sidecar = await startSidecarProc(d);

    const client = await SocketClient.connect(sockPath);
    const sockKeys = keys('bp-sock', 300);
    const writing = client.sendWindowed(sockKeys.map((k) => ev(k)), 10);
    await waitFor('50 acks', () => client.acks.size >= 50, 30_000, 20);
    await waitFor('backpressure on', async () => metric(await metricsText(d), 'sealtrail_backpressure') === 1, 30_000, 100);

    const httpKeys = keys('bp-http', 5);
    const body = JSON.stringify(httpKeys.map((k) => JSON.parse(ev(k))));
    const refused = await postEvents(d, body, JSON_TYPE);
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('5');
    expect(refused.body.error.code).toBe('buffer_full');

    // no more acks while the collector stays down
    const stalledAt = client.acks.size;
    expect(stalledAt).toBeGreaterThanOrEqual(50);
    expect(stalledAt).toBeLessThanOrEqual(60);
    await sleep(1_500);
    expect(client.acks.size).toBe(stalledAt);
    expect(client.lineErrors.size).toBe(0);
    const m = await metricsText(d);
    expect(metric(m, 'sealtrail_buffer_records')).toBe(stalledAt);
    expect(metric(m, 'sealtrail_http_requests_total', { source: 'api', code: 'buffer_full' })).toBe(1);

    collector = await startCollectorProc(d);
    await writing;
    expect(client.acks.size).toBe(300);
    expect(client.lineErrors.size).toBe(0);
    // the refused request is resent whole until accepted
    const accepted = await waitFor('the resent request accepted', async () => {
      const r = await postEvents(d, body, JSON_TYPE);
      if (r.status === 503) return false;
      return r;
    }, 60_000, 250);
    const httpSeqs = acceptedSeqs(accepted, httpKeys);
    await client.end();

    const size = await settled(d);
    expect(size).toBe(305);
    const items = await wholeStream(d, 305);
    const index = byKey(items);
    expectStoredOnce(index, new Map(sockKeys.map((k, i) => [k, client.acks.get(i + 1)!])), 'sock');
    expectStoredOnce(index, httpSeqs, 'api');
    expect(metric(await metricsText(d), 'sealtrail_backpressure')).toBe(0);
    const r = await runCli(['verify', '--url', d.collectorUrl, '--keys', d.keys, '--token', d.token]);
    expect(r.code).toBe(0);
    expect((await stop(sidecar)).code).toBe(0);
    sidecar = undefined;
  });
});
