/**
 * Whole-path benchmark: 100,000 agent events of ~500 bytes written to a trace
 * file, tailed, redacted, chained, sealed and shipped by a real sidecar
 * process to a real collector process (SQLite store), measured until the
 * collector's stored tree holds every record.
 *
 *   npm run bench            (BENCH_EVENTS=N to change the count)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { createHmacKeyFile, createSigningKeyFiles } from '../src/keyfiles.js';

const N = Number(process.env.BENCH_EVENTS ?? 100_000);
const LATENCY_SAMPLES = 20;
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const RULES = fileURLToPath(new URL('../../config/redaction/pii-basic.yaml', import.meta.url));

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

function event(n: number): string {
  return JSON.stringify({
    event_type: 'tool_invoked',
    time: new Date(Date.UTC(2026, 10, 22) + n).toISOString(),
    tenant: 'acme-health',
    actor: { id: `user-${n % 1000}`, type: 'user' },
    agent: { id: 'agent-7', name: 'claims-assistant' },
    action: 'lookup_claim',
    tool: { name: 'claims.search', arguments: { claim_id: `CLM-${100000 + n}`, query: `status of claim for member ${n % 5000}, contact jane.doe${n % 97}@example.com` } },
    resource: { type: 'claim', id: `CLM-${100000 + n}` },
    outcome: n % 20 === 0 ? 'denied' : 'success',
    model: { provider: 'anthropic', name: 'claude-sonnet' },
    trace_id: (n * 2654435761).toString(16).padStart(32, '0').slice(-32),
    session_id: `sess-${n % 300}`,
    details: { latency_ms: n % 900, tokens: 120 + (n % 400) },
  });
}

function peakRssMiB(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** The collector records every read in its own stream (docs/read-audit.md); polls must not count it. */
const COLLECTOR_STREAM = 'collector-bench';

async function treeSize(url: string, token: string): Promise<number> {
  const res = await request(`${url}/v1/streams`, { headers: { authorization: `Bearer ${token}` } });
  const body = (await res.body.json()) as { streams?: Array<{ stream: string; tree_size: number }> };
  return (body.streams ?? []).filter((s) => s.stream !== COLLECTOR_STREAM).reduce((n, s) => n + s.tree_size, 0);
}

function run(args: string[]): ChildProcess {
  return spawn(process.execPath, [...(process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(' ') : []), CLI, ...args], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, SEALTRAIL_LOG_LEVEL: 'warn' } });
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sealtrail-bench-'));
  const keys = join(dir, 'keys');
  createSigningKeyFiles(join(keys, 'bench.skey'), join(keys, 'bench.vkey'), 'bench');
  createHmacKeyFile(join(keys, 'hmac.key'));
  mkdirSync(join(dir, 'traces'));
  const trace = join(dir, 'traces', 'agent.jsonl');
  let text = '';
  for (let n = 0; n < N; n++) text += `${event(n)}\n`;
  writeFileSync(trace, text);
  const bytes = statSync(trace).size;
  const [cport, tport] = [await freePort(), await freePort()];
  const token = 'bench-admin-token-0123456789';
  const config = join(dir, 'bench.yaml');
  writeFileSync(
    config,
    `collector:
  listen: 127.0.0.1:${cport}
  store: { type: sqlite, path: ${join(dir, 'collector.db')} }
  auth: { admin_tokens: ["${token}"] }
  streams: [{ match: "*", vkey_file: ${join(keys, 'bench.vkey')} }]
  hmac_keys: [{ id: k1, file: ${join(keys, 'hmac.key')} }]
  read_audit: { stream: ${COLLECTOR_STREAM} }
sidecar:
  stream: { name: bench }
  data_dir: ${join(dir, 'sidecar')}
  sources: [{ id: traces, type: file, include: ["${join(dir, 'traces', '*.jsonl')}"] }]
  redaction: { rules: [${RULES}] }
  keys: { signing_key_file: ${join(keys, 'bench.skey')}, hmac_key_file: ${join(keys, 'hmac.key')} }
  ship: { url: "http://127.0.0.1:${cport}" }
  telemetry: { listen: 127.0.0.1:${tport} }
`,
  );
  const collector = run(['collector', '--config', config]);
  const url = `http://127.0.0.1:${cport}`;
  for (;;) {
    try {
      await treeSize(url, token);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const t0 = process.hrtime.bigint();
  const sidecar = run(['sidecar', '--config', config]);
  let stored = 0;
  while (stored < N) {
    await new Promise((r) => setTimeout(r, 25));
    stored = await treeSize(url, token);
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const rssSidecar = peakRssMiB(sidecar.pid);
  const rssCollector = peakRssMiB(collector.pid);

  // Latency of one event on an idle pipeline: appended to the file until the
  // collector's query API returns it (default seal.max_interval of 1 s).
  const latencies: number[] = [];
  for (let i = 0; i < LATENCY_SAMPLES; i++) {
    const marker = `latency-${i}`;
    const start = process.hrtime.bigint();
    appendFileSync(trace, `${JSON.stringify({ event_type: 'agent_response_generated', session_id: marker })}\n`);
    for (;;) {
      const res = await request(`${url}/v1/audit?session_id=${marker}`, { headers: { authorization: `Bearer ${token}` } });
      const body = (await res.body.json()) as { items?: unknown[] };
      if (body.items?.length) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    latencies.push(Number(process.hrtime.bigint() - start) / 1e6);
    await new Promise((r) => setTimeout(r, 137));
  }
  latencies.sort((a, b) => a - b);
  sidecar.kill('SIGTERM');
  collector.kill('SIGTERM');
  await Promise.all([sidecar, collector].map((c) => new Promise((r) => c.on('exit', r))));
  rmSync(dir, { recursive: true, force: true });

  const lines = [
    `sealtrail whole-path benchmark (file tail -> redact -> chain -> seal -> ship -> verify -> store)`,
    `  events:               ${N} (${(bytes / N).toFixed(0)} bytes each on average, ${(bytes / 1048576).toFixed(1)} MiB)`,
    `  wall time:            ${seconds.toFixed(2)} s (sidecar start to last record stored at the collector)`,
    `  throughput:           ${Math.round(N / seconds)} records/s`,
    `  input rate:           ${(bytes / 1048576 / seconds).toFixed(2)} MB/s (MiB of JSONL input per second)`,
    `  peak RSS sidecar:     ${rssSidecar.toFixed(1)} MiB`,
    `  peak RSS collector:   ${rssCollector.toFixed(1)} MiB`,
    `  append-to-queryable:  p50 ${latencies[Math.floor(latencies.length / 2)]!.toFixed(0)} ms, max ${latencies[latencies.length - 1]!.toFixed(0)} ms over ${latencies.length} single events (seal.max_interval 1 s)`,
    `  node ${process.version}, ${process.platform}/${process.arch}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack}\n`);
  process.exit(1);
});
