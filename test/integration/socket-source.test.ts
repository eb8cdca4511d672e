import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { sleep, waitFor } from '../harness/wait.js';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AuditBuffer } from '../../src/sidecar/buffer/buffer.js';
import { Ingest, type LineOutcome } from '../../src/sidecar/ingest.js';
import { loadRuleset, type Ruleset } from '../../src/sidecar/redact/index.js';
import { SocketSource, SocketSourceError, type SocketBatch, type SocketSourceOptions } from '../../src/sidecar/sources/socket-source.js';
import { containsText, HMAC_KEY, KEY_ID, sqliteFileBytes, tempDir, type TempDir } from '../helpers/sidecar-fixtures.js';

const PII_RULES = fileURLToPath(new URL('../../config/redaction/pii-basic.yaml', import.meta.url));
const STREAM = 'test-stream';

// ---- harness ----------------------------------------------------------------

interface Resp {
  ack?: number;
  seq?: number;
  line?: number;
  error?: { code: string; message: string };
}

interface Client {
  socket: net.Socket;
  responses: Resp[];
  /** every raw byte received, to check nothing from the input is echoed */
  raw(): string;
  closed: Promise<void>;
}

let tmp: TempDir;
let sockPath: string;
let buffer: AuditBuffer;
let ruleset: Ruleset;
let ingest: Ingest;
let sources: SocketSource[];
let clients: net.Socket[];
let errors: Error[];
let notices: string[];

beforeEach(() => {
  tmp = tempDir('st-sock-');
  sockPath = tmp.file('in.sock');
  buffer = AuditBuffer.open(tmp.file('buffer.db'), { newStreamId: () => STREAM });
  ruleset ??= loadRuleset([PII_RULES]);
  ingest = new Ingest(buffer, { hmacKey: HMAC_KEY, keyId: KEY_ID, ruleset: () => ruleset });
  sources = [];
  clients = [];
  errors = [];
  notices = [];
});

afterEach(async () => {
  for (const c of clients) c.destroy();
  await Promise.all(sources.map((s) => s.close()));
  buffer.close();
  tmp.cleanup();
});

/** The real commit path: one Ingest transaction per batch. */
function ingestSink(b: SocketBatch): LineOutcome[] {
  return ingest.ingest({ source: b.source, path: b.path, fileKey: b.fileKey, lines: b.lines }).lines;
}

function makeSource(over: Partial<SocketSourceOptions> = {}): SocketSource {
  const src = new SocketSource({
    id: 'sock',
    path: sockPath,
    mode: 0o660,
    maxLineBytes: 64 * 1024,
    maxConnections: 64,
    sink: ingestSink,
    retryDelayMs: 20,
    closeGraceMs: 200,
    onError: (e) => errors.push(e),
    onNotice: (m) => notices.push(m),
    ...over,
  });
  sources.push(src);
  return src;
}

async function started(over: Partial<SocketSourceOptions> = {}): Promise<SocketSource> {
  const src = makeSource(over);
  await src.start();
  expect(src.ready).toBe(true);
  return src;
}

async function connect(onResponse?: (r: Resp) => void, path = sockPath): Promise<Client> {
  const socket = net.connect(path);
  clients.push(socket);
  socket.on('error', () => undefined);
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.setEncoding('utf8');
  const responses: Resp[] = [];
  let all = '';
  let rest = '';
  socket.on('data', (d: string) => {
    all += d;
    rest += d;
    let nl: number;
    while ((nl = rest.indexOf('\n')) !== -1) {
      const r = JSON.parse(rest.slice(0, nl)) as Resp;
      rest = rest.slice(nl + 1);
      responses.push(r);
      onResponse?.(r);
    }
  });
  return { socket, responses, raw: () => all, closed };
}

function ev(extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ event_type: 'tool_invoked', tool: { name: 'search', arguments: extra } });
}

const recordAt = (): ((seq: number) => { canonical: string } | undefined) => {
  const stmt = buffer.db.prepare('SELECT canonical FROM records WHERE seq = ?');
  return (seq) => stmt.get(seq) as { canonical: string } | undefined;
};

function argsAt(seq: number): Record<string, unknown> {
  const row = recordAt()(seq);
  expect(row).toBeDefined();
  return (JSON.parse(row!.canonical) as { tool: { arguments: Record<string, unknown> } }).tool.arguments;
}

function recordCount(): number {
  return (buffer.db.prepare('SELECT count(*) AS n FROM records').get() as { n: number }).n;
}

interface QRow {
  source: string;
  path: string;
  file_key: string;
  offset: number;
  length: number;
  reason: string;
  message: string;
}

function quarantine(): QRow[] {
  return buffer.db.prepare('SELECT source, path, file_key, offset, length, reason, message FROM quarantine ORDER BY id').all() as QRow[];
}

async function expectStartFails(src: SocketSource, code: string): Promise<void> {
  const err = await src.start().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SocketSourceError);
  expect((err as SocketSourceError).code).toBe(code);
}

// ---- tests ------------------------------------------------------------------

describe('SocketSource: acks', () => {
  it('acks every line of 20 concurrent clients with its line number, only once it is committed', async () => {
    const src = await started();
    const CLIENTS = 20;
    const LINES = 500;
    const at = recordAt();
    const notYetStored: string[] = [];
    const all = await Promise.all(
      Array.from({ length: CLIENTS }, (_, c) =>
        connect((r) => {
          // Runs in this process right when the ack arrives: the record must already be there.
          if (r.seq !== undefined && at(r.seq) === undefined) notYetStored.push(`${c}:${r.ack}`);
        }),
      ),
    );
    // Split each client's stream at odd places so lines straddle writes.
    for (const [c, client] of all.entries()) {
      const text = Array.from({ length: LINES }, (_, i) => `${ev({ c, i: i + 1 })}\n`).join('');
      const bytes = Buffer.from(text);
      const cuts = [0, 7 + c, 4096 + c * 13, Math.floor(bytes.length / 2) + 1, bytes.length];
      for (let k = 0; k + 1 < cuts.length; k++) client.socket.write(bytes.subarray(cuts[k], cuts[k + 1]));
      client.socket.end();
    }
    await Promise.all(all.map((cl) => cl.closed));

    expect(notYetStored).toEqual([]);
    const seqs = new Set<number>();
    for (const [c, client] of all.entries()) {
      expect(client.responses.map((r) => r.ack)).toEqual(Array.from({ length: LINES }, (_, i) => i + 1));
      for (const r of client.responses) {
        expect(r.error).toBeUndefined();
        seqs.add(r.seq!);
        expect(argsAt(r.seq!)).toEqual({ c, i: r.ack });
      }
    }
    expect(seqs.size).toBe(CLIENTS * LINES);
    expect(recordCount()).toBe(CLIENTS * LINES);
    expect(buffer.chainCursor().nextSeq).toBe(CLIENTS * LINES);
    expect(src.connections()).toBe(0);
    expect(errors).toEqual([]);
  });

  it('sends nothing while the sink fails, then acks each line once', async () => {
    let failures = 3;
    const seenBeforeCommit: number[] = [];
    let client: Client | undefined;
    await started({
      sink: (b) => {
        seenBeforeCommit.push(client?.responses.length ?? -1);
        if (failures > 0) {
          failures--;
          throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
        }
        return ingestSink(b);
      },
    });
    client = await connect();
    client.socket.end(Array.from({ length: 10 }, (_, i) => `${ev({ i: i + 1 })}\n`).join(''));
    await client.closed;

    expect(seenBeforeCommit.length).toBeGreaterThanOrEqual(4);
    expect(seenBeforeCommit.every((n) => n === 0)).toBe(true);
    expect(client.responses.map((r) => r.ack)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(new Set(client.responses.map((r) => r.seq)).size).toBe(10);
    expect(recordCount()).toBe(10);
    expect(client.responses.map((r) => argsAt(r.seq!).i)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(errors).toHaveLength(3);
    for (const e of errors) {
      expect(e).toBeInstanceOf(SocketSourceError);
      expect((e as SocketSourceError).code).toBe('socket_sink_failed');
      expect(e.message).toContain('SQLITE_FULL');
    }
  });

  it('retries a failed commit when its timer fires, whatever Date.now() says by then', async () => {
    // Timers run on libuv's monotonic clock, which can be a millisecond ahead of Date.now()
    // (and the wall clock can step back): a retry that re-checked Date.now() was turned away
    // and never scheduled again, so a client that had already half-closed waited for ever.
    // Here the wall clock reads a minute ahead exactly while the failure is handled.
    const realNow = Date.now.bind(Date);
    let skewMs = 0;
    const clock = vi.spyOn(Date, 'now').mockImplementation(() => realNow() + skewMs);
    try {
      let failures = 1;
      await started({
        sink: (b) => {
          if (failures > 0) {
            failures--;
            skewMs = 60_000;
            queueMicrotask(() => (skewMs = 0));
            throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
          }
          return ingestSink(b);
        },
      });
      const client = await connect();
      client.socket.end(Array.from({ length: 10 }, (_, i) => `${ev({ i: i + 1 })}\n`).join(''));
      const outcome = await Promise.race([client.closed.then(() => 'closed'), sleep(5000).then(() => 'stuck')]);

      expect(outcome).toBe('closed');
      expect(client.responses.map((r) => r.ack)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(recordCount()).toBe(10);
      expect(errors.map((e) => (e as SocketSourceError).code)).toEqual(['socket_sink_failed']);
    } finally {
      clock.mockRestore();
    }
  });
});

describe('SocketSource: bad and hostile lines', () => {
  it('answers each bad line with an error, quarantines it by line number, and keeps the connection usable', async () => {
    const MAX = 4096;
    const src = await started({ maxLineBytes: MAX });
    const client = await connect();
    const secret = 'alice.secret@example.com';
    const long = `{"event_type":"x","pad":"${'a'.repeat(MAX)}","who":"${secret}"}`;
    const parts: Buffer[] = [
      Buffer.from(`${ev({ n: 1 })}\n`), // 1
      Buffer.from(`{not json ${secret}\n`), // 2
      Buffer.from('   \n'), // 3 blank: no response
      Buffer.from('[1,2,3]\n'), // 4
      Buffer.from(`${JSON.stringify({ event_type: 'x', tool: { name: 't', arguments: { n: 5 } } }).replace('}}}', ',"s":"\\ud800"}}}')}\n`), // 5
      Buffer.from(`{"event_type":"x"}\0\n`), // 6 raw NUL after the object
      Buffer.concat([Buffer.from('{"event_type":"'), Buffer.from([0xff, 0xfe]), Buffer.from(`${secret}"}\r\n`)]), // 7
      Buffer.from(`${long}\n`), // 8
      Buffer.from(`${ev({ n: 9 })}\r\n`), // 9 CRLF is fine
      Buffer.from('{"event_type":"cut'), // 10: no newline before the client half-closes
    ];
    for (const p of parts) client.socket.write(p);
    client.socket.end();
    await client.closed;

    const codes = client.responses.map((r) => (r.ack !== undefined ? `ack:${r.ack}` : `${r.line}:${r.error?.code}`));
    expect(codes).toEqual([
      'ack:1',
      '2:json_invalid',
      '4:record_not_object',
      'ack:5',
      '6:json_invalid',
      '7:invalid_utf8',
      '8:line_too_long',
      'ack:9',
      '10:unterminated',
    ]);
    expect(argsAt(client.responses[3]!.seq!)).toEqual({ n: 5, s: '\ufffd' });
    expect(argsAt(client.responses[7]!.seq!)).toEqual({ n: 9 });

    const q = quarantine();
    expect(q.map((r) => [r.offset, r.reason])).toEqual([
      [2, 'json_invalid'],
      [4, 'record_not_object'],
      [6, 'json_invalid'],
      [7, 'invalid_utf8'],
      [8, 'line_too_long'],
      [10, 'unterminated'],
    ]);
    const key = q[0]!.file_key;
    expect(key).toMatch(/^socket:/);
    for (const r of q) {
      expect(r).toMatchObject({ source: 'sock', path: sockPath, file_key: key });
    }
    expect(q.find((r) => r.offset === 8)!.length).toBe(Buffer.byteLength(long) + 1);
    expect(q.find((r) => r.offset === 7)!.length).toBe(parts[6]!.length);
    expect(q.find((r) => r.offset === 10)!.length).toBe(parts[9]!.length);

    // Nothing of the input is echoed back, logged or persisted in the clear.
    expect(client.raw()).not.toContain(secret);
    expect(client.raw()).not.toContain('not json');
    for (const r of q) expect(r.message).not.toContain(secret);
    expect(containsText(sqliteFileBytes(tmp.file('buffer.db')), secret)).toBe(false);
    expect([...errors.map((e) => e.message), ...notices].join('\n')).not.toContain(secret);
    expect(src.connections()).toBe(0);
  });

  it('survives 1 MB of garbage without a newline, and the next client is served', async () => {
    await started({ maxLineBytes: 64 * 1024 });
    const garbage = randomBytes(1024 * 1024).map((b) => (b === 0x0a ? 0x00 : b));
    const bad = await connect();
    bad.socket.end(garbage);
    await bad.closed;
    expect(bad.responses).toEqual([{ line: 1, error: { code: 'unterminated', message: expect.any(String) as string } }]);
    expect(quarantine().map((r) => [r.offset, r.length, r.reason])).toEqual([[1, garbage.length, 'unterminated']]);

    // The same garbage followed by a newline is one too-long line; the line after it is fine.
    const next = await connect();
    next.socket.write(garbage);
    next.socket.end(`\n${ev({ after: true })}\n`);
    await next.closed;
    expect(next.responses.map((r) => r.ack ?? r.error?.code)).toEqual(['line_too_long', 2]);
    expect(recordCount()).toBe(1);
  });
  it('accepts a line of exactly max_line_bytes (CRLF not counted) and refuses one byte more, however it is split', async () => {
    const MAX = 100;
    await started({ maxLineBytes: MAX });
    const fit = (n: number): string => {
      const base = '{"event_type":"e","tool":{"name":"t","arguments":{"p":""}}}';
      return base.replace('"p":""', `"p":"${'x'.repeat(n - base.length)}"`);
    };
    expect(Buffer.byteLength(fit(MAX))).toBe(MAX);
    const client = await connect();
    const bytes = Buffer.from(`${fit(MAX)}\r\n${fit(MAX + 1)}\n${fit(MAX)}\n\n${fit(MAX - 1)}`);
    // drip it in small pieces so lines are assembled across many reads
    for (let i = 0; i < bytes.length; i += 9) {
      client.socket.write(bytes.subarray(i, i + 9));
      if (i % 45 === 0) await sleep(1);
    }
    client.socket.end('\n');
    await client.closed;
    expect(client.responses.map((r) => r.ack ?? `${r.line}:${r.error?.code}`)).toEqual([1, '2:line_too_long', 3, 5]);
    expect(quarantine().map((r) => [r.offset, r.length, r.reason])).toEqual([[2, MAX + 2, 'line_too_long']]);
  });
});

describe('SocketSource: socket file', () => {
  it('creates the socket with mode 0660, or the configured mode', async () => {
    const a = await started();
    expect(fs.statSync(sockPath).mode & 0o777).toBe(0o660);
    expect(fs.statSync(sockPath).isSocket()).toBe(true);
    await a.close();
    expect(fs.existsSync(sockPath)).toBe(false);
    expect(a.ready).toBe(false);

    await started({ mode: 0o600 });
    expect(fs.statSync(sockPath).mode & 0o777).toBe(0o600);
    const c = await connect();
    c.socket.end(`${ev()}\n`);
    await c.closed;
    expect(c.responses).toEqual([{ ack: 1, seq: 0 }]);
  });

  it('reports a bad path or mode as a typed error', async () => {
    expect(() => makeSource({ mode: 0o1777 })).toThrow(SocketSourceError);
    expect(() => makeSource({ maxConnections: 0 })).toThrow(SocketSourceError);
    await expectStartFails(makeSource({ path: tmp.file('missing-dir/in.sock') }), 'socket_listen_failed');
  });

  it('replaces a stale socket file nobody listens on', async () => {
    // A process that exits without closing its listener leaves the socket file behind.
    execFileSync(process.execPath, ['-e', "require('node:net').createServer().listen(process.argv[1], () => process.exit(0))", sockPath]);
    expect(fs.lstatSync(sockPath).isSocket()).toBe(true);
    await started();
    expect(notices.some((n) => n.includes('stale'))).toBe(true);
    const c = await connect();
    c.socket.end(`${ev()}\n`);
    await c.closed;
    expect(c.responses).toEqual([{ ack: 1, seq: 0 }]);
  });

  it('refuses a socket another process listens on, and a regular file', async () => {
    const other = net.createServer((s) => {
      s.on('error', () => undefined); // our probe connects and leaves at once
      s.end('other\n');
    });
    await new Promise<void>((r) => other.listen(sockPath, r));
    try {
      await expectStartFails(makeSource(), 'socket_in_use');
      // the other server is untouched
      const got = await new Promise<string>((resolve) => {
        const s = net.connect(sockPath);
        let d = '';
        s.on('data', (b) => (d += b.toString()));
        s.on('close', () => resolve(d));
      });
      expect(got).toBe('other\n');
    } finally {
      await new Promise((r) => other.close(r));
    }

    fs.writeFileSync(sockPath, 'precious');
    await expectStartFails(makeSource(), 'socket_path_not_socket');
    expect(fs.readFileSync(sockPath, 'utf8')).toBe('precious');
  });
});

describe('SocketSource: limits and backpressure', () => {
  it('answers a connection over max_connections with one error line and closes it', async () => {
    const src = await started({ maxConnections: 2 });
    const a = await connect();
    const b = await connect();
    a.socket.write(`${ev()}\n`);
    b.socket.write(`${ev()}\n`);
    await waitFor('first acks', () => a.responses.length === 1 && b.responses.length === 1, 30_000, 10);
    expect(src.connections()).toBe(2);

    const c = await connect();
    await c.closed;
    expect(c.responses).toEqual([{ error: { code: 'too_many_connections', message: expect.any(String) as string } }]);

    // the accepted ones are unaffected
    a.socket.end(`${ev()}\n`);
    await a.closed;
    expect(a.responses.map((r) => r.ack)).toEqual([1, 2]);
    await waitFor('a to be gone', () => src.connections() === 1, 30_000, 10);
    const d = await connect();
    d.socket.end(`${ev()}\n`);
    await d.closed;
    expect(d.responses.map((r) => r.ack)).toEqual([1]);
  });

  it('while paused reads and acks nothing, so clients block; resume delivers everything', async () => {
    const src = await started();
    const LINES = 2000;
    const pad = 'p'.repeat(2000);
    const payload = (c: number): string => Array.from({ length: LINES }, (_, i) => `${ev({ c, i: i + 1, pad })}\n`).join('');
    const before = await connect();
    src.pause();
    const after = await connect();
    for (const [c, cl] of [before, after].entries()) cl.socket.end(payload(c));
    await sleep(300);

    // Each client wrote ~4 MB; kernel buffers hold far less, so both are stuck with unsent bytes.
    for (const cl of [before, after]) {
      expect(cl.socket.writableLength).toBeGreaterThan(0);
      expect(cl.responses).toEqual([]);
    }
    expect(recordCount()).toBe(0);
    // not even read: the bytes wait in the kernel, not in the sidecar's memory
    expect(src.pendingLines()).toBe(0);

    src.resume();
    await Promise.all([before.closed, after.closed]);
    for (const [c, cl] of [before, after].entries()) {
      expect(cl.responses.map((r) => r.ack)).toEqual(Array.from({ length: LINES }, (_, i) => i + 1));
      expect(argsAt(cl.responses[LINES - 1]!.seq!)).toMatchObject({ c, i: LINES });
    }
    expect(recordCount()).toBe(2 * LINES);
  });

  it('stops reading a client that does not read its acks, instead of buffering them', async () => {
    const src = await started({ maxPendingWriteBytes: 1024 });
    const LINES = 30_000;
    const client = await connect();
    client.socket.pause();
    client.socket.end(Array.from({ length: LINES }, (_, i) => `{"event_type":"e${i % 10}"}\n`).join(''));

    // Wait until the server has stalled: nothing received and nothing committed over several samples.
    let last = -1;
    let same = 0;
    await waitFor('the server to stop reading', async () => {
      await sleep(50);
      const n = recordCount();
      same = n === last && src.pendingLines() === 0 ? same + 1 : 0;
      last = n;
      return same >= 4;
    }, 30_000, 10);
    expect(last).toBeGreaterThan(0);
    expect(last).toBeLessThan(LINES);
    expect(client.socket.writableLength).toBeGreaterThan(0);

    client.socket.resume();
    await client.closed;
    expect(client.responses).toHaveLength(LINES);
    expect(client.responses.at(-1)).toEqual({ ack: LINES, seq: LINES - 1 });
    expect(recordCount()).toBe(LINES);
  });
});

describe('SocketSource: crashes and shutdown', () => {
  it('a client killed mid-stream loses nothing it was acked for, and nothing is stored twice', async () => {
    const src = await started();
    const script = tmp.file('writer.mjs');
    fs.writeFileSync(
      script,
      `import net from 'node:net';
const s = net.connect(process.argv[2]);
let rest = '';
s.setEncoding('utf8');
s.on('data', (d) => {
  rest += d;
  let nl;
  while ((nl = rest.indexOf('\\n')) !== -1) {
    process.stdout.write(rest.slice(0, nl + 1));
    rest = rest.slice(nl + 1);
  }
});
let i = 0;
function pump() {
  for (;;) {
    // one write per 7 lines, cut mid-line, so a kill can land inside a line
    let chunk = '';
    for (let k = 0; k < 7; k++) chunk += JSON.stringify({ event_type: 'k', tool: { name: 't', arguments: { i: ++i } } }) + '\\n';
    const cut = 1 + (i % 40);
    if (!s.write(chunk.slice(0, cut)) | !s.write(chunk.slice(cut))) return s.once('drain', pump);
    if (i % 700 === 0) return setImmediate(pump);
  }
}
s.on('connect', pump);
`,
    );
    const child = spawn(process.execPath, [script, sockPath], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => (out += d));
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    await waitFor('the child to get 1500 acks', () => out.split('\n').length > 1500, 30_000, 10);
    child.kill('SIGKILL');
    await exited;
    await waitFor('the connection to be finished', () => src.connections() === 0 && src.pendingLines() === 0, 30_000, 10);

    const acks = out
      .split('\n')
      .filter((l) => l.endsWith('}'))
      .map((l) => JSON.parse(l) as Resp);
    expect(acks.length).toBeGreaterThan(1500);
    for (const [k, a] of acks.entries()) {
      expect(a).toEqual({ ack: k + 1, seq: k });
      expect(argsAt(a.seq!)).toEqual({ i: a.ack });
    }
    // Every stored line is there once, in order, with no gap; at most one cut line is quarantined.
    const stored = (buffer.db.prepare('SELECT canonical FROM records ORDER BY seq').all() as { canonical: string }[]).map(
      (r) => (JSON.parse(r.canonical) as { tool: { arguments: { i: number } } }).tool.arguments.i,
    );
    expect(stored.length).toBeGreaterThanOrEqual(acks.length);
    expect(stored).toEqual(Array.from({ length: stored.length }, (_, k) => k + 1));
    const q = quarantine();
    expect(q.length).toBeLessThanOrEqual(1);
    for (const r of q) expect(r).toMatchObject({ reason: 'unterminated', offset: stored.length + 1 });
  });

  it('drain commits and acks what was received, then accepts no one', async () => {
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const src = await started({
      sink: async (b) => {
        await gate;
        return ingestSink(b);
      },
    });
    const all = await Promise.all([connect(), connect(), connect()]);
    for (const [c, cl] of all.entries()) cl.socket.write(Array.from({ length: 50 }, (_, i) => `${ev({ c, i: i + 1 })}\n`).join(''));
    await waitFor('all lines received', () => src.pendingLines() === 150, 30_000, 10);
    src.pause(); // draining must still commit what was received
    const drained = src.drain(Date.now() + 10_000);
    open();
    await drained;
    await waitFor('all acks', () => all.every((cl) => cl.responses.length === 50), 30_000, 10);
    for (const cl of all) expect(cl.responses.map((r) => r.ack)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(recordCount()).toBe(150);
    expect(src.ready).toBe(false);
    await expect(connect()).rejects.toMatchObject({ code: expect.stringMatching(/^(ENOENT|ECONNREFUSED)$/) as string });
    const client = all[0]!;
    await src.close();
    await client.closed;
    expect(client.responses.at(-1)).toMatchObject({ error: { code: 'source_closed' } });
  });

  it('a drain that runs out of time leaves unstored lines unacknowledged', async () => {
    const src = await started({
      sink: () => {
        throw new Error('disk full');
      },
    });
    const client = await connect();
    client.socket.write(`${ev()}\n${ev()}\n`);
    await waitFor('lines received', () => src.pendingLines() === 2, 30_000, 10);
    await src.drain(Date.now() + 150);
    expect(client.responses).toEqual([]);
    expect(notices.some((n) => n.includes('2 received lines not committed'))).toBe(true);
    await src.close();
    await client.closed;
    expect(client.responses.map((r) => r.error?.code)).toEqual(['source_closed']);
    expect(recordCount()).toBe(0);
  });
});
