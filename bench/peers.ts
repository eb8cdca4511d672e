/**
 * The sidecar beside a log shipper on the same file: the pii corpus
 * (bench/corpus.ts) read by a sealtrail sidecar into its durable buffer, and
 * by rsyslog (Debian's package; installed with apt-get when missing) into a
 * plain file with emails and SSNs replaced. One after the other, in the same
 * run, each alone on the machine; CPU is each process's own user + system
 * time from /proc, from the moment the file appears (start-up excluded).
 *
 * The sidecar runs twice: with pii-basic + secrets, the rules the corpus is
 * made for, and with only the email and us_ssn rules, which is the work
 * rsyslog is given. Shipping points at a closed port, as in bench/otlp.ts:
 * the path measured is file -> redact -> chain -> durable buffer.
 *
 * rsyslog 8.2302 (Debian 12) has no regex replacement (RainerScript's replace() takes a
 * literal; the property replacer's regex only extracts), so each line is
 * redacted with re_extract() (POSIX ERE) to find the first remaining match
 * and replace() to replace every copy of it, repeated while something
 * matches, up to MAX_PER_LINE times per kind. What is left unredacted is
 * counted afterwards and printed.
 *
 *   npm run bench:peers      (BENCH_EVENTS=N lines, default 100,000)
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, createReadStream, existsSync, linkSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createHmacKeyFile, createSigningKeyFiles } from '../src/keyfiles.js';
import { DEFAULT_SEED, describeCorpus, PACKS_FOR_CORPUS, writeCorpus, type CorpusStats } from './corpus.js';
import { cpuSeconds, freePort, peakRssMiB, sidecarMetrics } from './proc-stats.js';

const N = Number(process.env.BENCH_EVENTS ?? 100_000);
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const PACKS_DIR = fileURLToPath(new URL('../../config/redaction/', import.meta.url));
const RSYSLOGD = '/usr/sbin/rsyslogd';
const SOURCE = 'traces';
/** The corpus has at most six items a line, so six rounds per kind leave nothing behind. */
const MAX_PER_LINE = 6;

// POSIX ERE as rsyslog's re_extract() takes them (glibc, so \b works); the
// same expressions in JavaScript check rsyslog's output afterwards.
const EMAIL_ERE = "[A-Za-z0-9._%+'-]+@([A-Za-z0-9-]+\\.)+[A-Za-z]{2,}";
const SSN_ERE = '\\b[0-9]{3}[- ][0-9]{2}[- ][0-9]{4}\\b';
const LEFT = { email: new RegExp(EMAIL_ERE, 'g'), ssn: new RegExp(SSN_ERE, 'g') };

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The temp dir goes on exit, so a failed process's log is quoted in the error. */
function died(what: string, child: ChildProcess, log: string): Error {
  let tail = '';
  try {
    tail = readFileSync(log, 'utf8').slice(-2000);
  } catch {
    // no log written
  }
  return new Error(`${what} exited (${child.exitCode ?? child.signalCode})${tail ? `; its log ends:\n${tail}` : ''}`);
}

interface Result {
  name: string;
  does: string;
  seconds: number;
  cpu: number;
  rss: number;
  check: string;
}

/** Every process and directory made, so that an error or ^C leaves nothing running or on disk. */
const children = new Set<ChildProcess>();
let workDir: string | undefined;

function cleanup(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  children.clear();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
  workDir = undefined;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    // A process that does not stop must still not outlive the benchmark.
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
  children.delete(child);
}

function ensureRsyslog(): string {
  if (!existsSync(RSYSLOGD)) {
    process.stderr.write(`${RSYSLOGD} not found; installing Debian's rsyslog package (apt-get install -y rsyslog)\n`);
    const r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'rsyslog'], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    if (r.status !== 0 || !existsSync(RSYSLOGD)) throw new Error(`could not install rsyslog (apt-get exited ${r.status ?? r.signal}); install it as root and rerun`);
  }
  const v = spawnSync(RSYSLOGD, ['-v'], { encoding: 'utf8' });
  // First line: "rsyslogd  8.2302.0 (aka 2023.02) compiled with:"
  return (v.stdout.split('\n')[0] ?? '').replace(/\s+compiled with:.*$/, '').replace(/\s+/g, ' ').trim();
}

async function runSidecar(dir: string, keys: string, corpus: string, name: string, rules: string[], rulesText: string, stats: CorpusStats, planted: number): Promise<Result> {
  const work = mkdtempSync(join(dir, 'sidecar-'));
  mkdirSync(join(work, 'traces'));
  const tport = await freePort();
  const config = join(work, 'sidecar.yaml');
  writeFileSync(
    config,
    `sidecar:
  stream: { name: bench-peers }
  data_dir: ${join(work, 'data')}
  sources: [{ id: ${SOURCE}, type: file, include: ["${join(work, 'traces', '*.jsonl')}"] }]
  redaction: { rules: [${rules.join(', ')}] }
  keys: { signing_key_file: ${join(keys, 'bench.skey')}, hmac_key_file: ${join(keys, 'hmac.key')} }
  ship: { url: "http://127.0.0.1:${await freePort()}", backoff_max: 30s }
  buffer: { max_records: ${Math.max(N * 2, 1_000_000)} }
  telemetry: { listen: 127.0.0.1:${tport} }
`,
  );
  const log = openSync(join(work, 'sidecar.log'), 'w');
  const child = spawn(process.execPath, [CLI, 'sidecar', '--config', config], { stdio: ['ignore', 'ignore', log], env: { ...process.env, SEALTRAIL_LOG_LEVEL: 'error' } });
  closeSync(log);
  children.add(child);
  const pid = child.pid!;
  for (;;) {
    if (child.exitCode !== null) throw died('the sidecar', child, join(work, 'sidecar.log'));
    try {
      await sidecarMetrics(tport, SOURCE);
      break;
    } catch {
      await sleep(50);
    }
  }
  const cpu0 = cpuSeconds(pid);
  const t0 = process.hrtime.bigint();
  linkSync(corpus, join(work, 'traces', 'agent.jsonl'));
  let m = { ingested: 0, hits: 0 };
  while (m.ingested < N) {
    if (child.exitCode !== null || child.signalCode !== null) throw died('the sidecar', child, join(work, 'sidecar.log'));
    await sleep(20);
    m = await sidecarMetrics(tport, SOURCE);
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = cpuSeconds(pid) - cpu0;
  const rss = peakRssMiB(pid);
  await stop(child);
  return {
    name,
    does: `${rulesText}; every record chained (SHA-256, HMAC) and committed with its file position to SQLite (WAL, synchronous=FULL), checkpoints signed`,
    seconds,
    cpu,
    rss,
    check: `${m.hits.toLocaleString('en-US')} replacements for ${planted.toLocaleString('en-US')} planted items of those kinds (${stats.pii.toLocaleString('en-US')} of all kinds)`,
  };
}

/** RainerScript that replaces up to MAX_PER_LINE distinct matches of `ere` in $.m, stopping at the first round that finds none. */
function redactRounds(ere: string, replacement: string, rounds: number, indent = '  '): string {
  if (rounds === 0) return '';
  const lit = ere.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
  return [
    `${indent}set $.x = re_extract($.m, "${lit}", 0, 0, "");`,
    `${indent}if $.x != "" then {`,
    `${indent}  set $.m = replace($.m, $.x, "${replacement}");`,
    redactRounds(ere, replacement, rounds - 1, `${indent}  `),
    `${indent}}`,
  ]
    .filter(Boolean)
    .join('\n');
}

/** Lines in `path`, counted from `state.offset` on, so a poll reads only what was added since the last. */
function countNewLines(path: string, state: { offset: number; lines: number }): number {
  if (!existsSync(path)) return 0;
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, state.offset);
      if (n === 0) break;
      const got = buf.subarray(0, n);
      for (let i = got.indexOf(10); i !== -1; i = got.indexOf(10, i + 1)) state.lines++;
      state.offset += n;
    }
  } finally {
    closeSync(fd);
  }
  return state.lines;
}

async function scanOutput(path: string): Promise<{ lines: number; email: number; ssn: number; marks: number }> {
  const out = { lines: 0, email: 0, ssn: 0, marks: 0 };
  for await (const line of createInterface({ input: createReadStream(path), crlfDelay: Infinity })) {
    out.lines++;
    out.email += line.match(LEFT.email)?.length ?? 0;
    out.ssn += line.match(LEFT.ssn)?.length ?? 0;
    out.marks += line.match(/\[REDACTED:(?:email|us_ssn)\]/g)?.length ?? 0;
  }
  return out;
}

async function runRsyslog(dir: string, corpus: string, version: string, planted: number): Promise<Result> {
  const work = join(dir, 'rsyslog');
  for (const d of ['in', 'state']) mkdirSync(join(work, d), { recursive: true });
  const output = join(work, 'out.jsonl');
  const config = join(work, 'rsyslog.conf');
  // Only this config is read (-f), so none of the system's inputs, outputs or
  // its pid file and work directory are touched.
  writeFileSync(
    config,
    `global(workDirectory="${join(work, 'state')}" maxMessageSize="64k")
module(load="imfile" mode="inotify")
template(name="line" type="string" string="%$.m%\\n")
ruleset(name="redact") {
  set $.m = $msg;
${redactRounds(EMAIL_ERE, '[REDACTED:email]', MAX_PER_LINE)}
${redactRounds(SSN_ERE, '[REDACTED:us_ssn]', MAX_PER_LINE)}
  action(type="omfile" file="${output}" template="line")
}
input(type="imfile" file="${join(work, 'in', '*.jsonl')}" tag="bench" ruleset="redact")
`,
  );
  const check = spawnSync(RSYSLOGD, ['-N1', '-f', config], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`rsyslogd refused the config:\n${check.stderr}${check.stdout}`);
  const log = openSync(join(work, 'rsyslogd.log'), 'w');
  const child = spawn(RSYSLOGD, ['-n', '-f', config, '-i', join(work, 'rsyslogd.pid')], { stdio: ['ignore', log, log] });
  closeSync(log);
  children.add(child);
  const pid = child.pid!;
  // rsyslogd writes its pid file once its inputs are set up; a file that
  // appears before imfile watches the directory is found by its first scan.
  while (!existsSync(join(work, 'rsyslogd.pid'))) {
    if (child.exitCode !== null) throw died('rsyslogd', child, join(work, 'rsyslogd.log'));
    await sleep(20);
  }
  await sleep(200);
  const cpu0 = cpuSeconds(pid);
  const t0 = process.hrtime.bigint();
  linkSync(corpus, join(work, 'in', 'agent.jsonl'));
  const state = { offset: 0, lines: 0 };
  while (countNewLines(output, state) < N) {
    if (child.exitCode !== null) throw died('rsyslogd', child, join(work, 'rsyslogd.log'));
    await sleep(20);
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = cpuSeconds(pid) - cpu0;
  const rss = peakRssMiB(pid);
  await stop(child);
  const scan = await scanOutput(output);
  return {
    name: 'rsyslog, email + SSN',
    does: `${version}; imfile (inotify) -> RainerScript re_extract() + replace(), up to ${MAX_PER_LINE} distinct emails and ${MAX_PER_LINE} distinct SSNs a line (ERE ${EMAIL_ERE} and ${SSN_ERE}; no Luhn or SSN-range check) -> omfile; default in-memory main queue, output not fsync'd, file position saved at shutdown`,
    seconds,
    cpu,
    rss,
    check: `${scan.lines.toLocaleString('en-US')} lines out, ${scan.marks.toLocaleString('en-US')} replacement marks for ${planted.toLocaleString('en-US')} planted emails and SSNs (a repeated value in a line is one mark), left unredacted: ${scan.email} emails, ${scan.ssn} SSNs`,
  };
}

async function main(): Promise<void> {
  if (!Number.isInteger(N) || N < 1) throw new Error(`BENCH_EVENTS must be a positive integer, not ${JSON.stringify(process.env.BENCH_EVENTS)}`);
  const version = ensureRsyslog();
  const dir = mkdtempSync(join(tmpdir(), 'sealtrail-bench-peers-'));
  workDir = dir;
  const keys = join(dir, 'keys');
  createSigningKeyFiles(join(keys, 'bench.skey'), join(keys, 'bench.vkey'), 'bench');
  createHmacKeyFile(join(keys, 'hmac.key'));
  const corpus = join(dir, 'corpus.jsonl');
  const stats = writeCorpus(corpus, 'pii', N);
  const emailSsn = join(dir, 'email-ssn.yaml');
  writeFileSync(emailSsn, 'rules:\n  - id: email\n    detector: email\n  - id: us_ssn\n    detector: us_ssn\n    validator: ssn_valid\n');
  const packs = PACKS_FOR_CORPUS.pii;
  const ruleCount = packs.reduce((n, p) => n + (readFileSync(join(PACKS_DIR, `${p}.yaml`), 'utf8').match(/^ {2}- id: /gm)?.length ?? 0), 0);
  const emailsAndSsns = stats.byKind.email + stats.byKind.ssn;

  const results: Result[] = [];
  results.push(await runSidecar(dir, keys, corpus, `sidecar, ${packs.join(' + ')}`, packs.map((p) => join(PACKS_DIR, `${p}.yaml`)), `${packs.join(' + ')} (${ruleCount} rules)`, stats, stats.pii));
  results.push(await runSidecar(dir, keys, corpus, 'sidecar, email + us_ssn', [emailSsn], 'the email and us_ssn rules of pii-basic only (what rsyslog is given)', stats, emailsAndSsns));
  results.push(await runRsyslog(dir, corpus, version, emailsAndSsns));
  cleanup();

  const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
  const rsyslog = results[results.length - 1]!;
  const perCpu = (r: Result): number => N / r.cpu;
  const lines = [
    `bench:peers — the same file, each process alone, CPU = the process's own user + system time while it worked through the file`,
    `  ${describeCorpus(stats)}`,
    ...results.flatMap((r) => [
      `  ${r.name.padEnd(30)} ${fmt(N / r.seconds).padStart(8)} records/s   ${fmt(perCpu(r)).padStart(8)} records per CPU-second (${r.cpu.toFixed(2)} CPU s)   peak RSS ${r.rss.toFixed(1)} MiB`,
      `      does: ${r.does}`,
      `      check: ${r.check}`,
    ]),
    `  records per CPU-second, sidecar / rsyslog:`,
    ...results.slice(0, -1).map((r) => `    ${r.name.padEnd(30)} ${(perCpu(r) / perCpu(rsyslog)).toFixed(2)}x`),
    `  node ${process.version}, ${process.platform}/${process.arch}; corpus seed ${DEFAULT_SEED}`,
    `  rerun: ${process.env.BENCH_EVENTS ? `BENCH_EVENTS=${N} ` : ''}npm run bench:peers`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

process.once('SIGINT', () => {
  cleanup();
  process.exit(130);
});
process.once('SIGTERM', () => {
  cleanup();
  process.exit(143);
});
main().catch((err: unknown) => {
  cleanup();
  process.stderr.write(`bench:peers failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
