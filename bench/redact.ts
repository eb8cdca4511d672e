/**
 * Redaction engine micro-benchmark (issue 2): `ruleset.redact` on one core
 * over ~500-byte agent events (already JSON.parse'd), for three mixes:
 *
 *   mixed     90% clean, 10% with one PII / secret item (varied kind and place)
 *   clean     no PII at all (the common case in production)
 *   all-PII   every event holds one item
 *
 * For orientation, two baselines on the same events (string walk in both):
 *   (a) per-rule   ten RE2 objects: per string, test() each (replace() on a match)
 *   (b) combined   one RE2 alternation of the same ten patterns: one test() per string
 *
 * Then a linear-growth check: for each built-in detector, adversarial
 * inputs of 10 KB, 100 KB and 1 MB; the time ratio per 10x of input should
 * be ~10x (linear). A ratio far above that is flagged.
 *
 *   npm run bench:redact      (BENCH_REDACT_SECONDS=N per measurement, default 1)
 *   BENCH_REDACT_ONLY=engine  the engine rows only, e.g. with node --cpu-prof
 */
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import RE2 from 're2';
import { loadRuleset } from '../src/sidecar/redact/index.js';
import { prng } from '../test/harness/prng.js';

/** The engine API from docs/redaction.md (compiles against older engines too). */
interface BenchRuleset {
  readonly hash: string;
  readonly ruleIds: readonly string[];
  redact(value: unknown, hits?: Record<string, number>, ctx?: { tenant?: string; text?: string }): unknown;
}

const PACKS_DIR = fileURLToPath(new URL('../../config/redaction/', import.meta.url));
const PACKS = ['pii-basic', 'secrets'];
const SECONDS = Number(process.env.BENCH_REDACT_SECONDS ?? 1) || 1;
const EVENTS = 2000;
// BENCH_REDACT_ONLY=engine: the engine rows only (no baselines, no linear-growth table), e.g. under --cpu-prof
const ENGINE_ONLY = process.env.BENCH_REDACT_ONLY === 'engine';

// ---------------------------------------------------------------- events

const rand = prng(20261122);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
const hex = (n: number): string => Array.from({ length: n }, () => Math.floor(rand() * 16).toString(16)).join('');

const TOOLS = ['claims.search', 'crm.lookup_customer', 'tickets.update', 'kb.search', 'email.draft', 'payments.refund'];
const ACTIONS = ['lookup_claim', 'update_ticket', 'search_docs', 'draft_reply', 'issue_refund'];
const PROSE = [
  'Customer asked about the status of their claim and the expected payout date.',
  'Summarised the last three tickets and proposed a follow-up with the billing team.',
  'Retrieved policy document section 4.2 on coverage limits for outpatient care.',
  'The refund was approved under policy rule R-17; amount below the manual review threshold.',
  'Searched the knowledge base for reset instructions; two articles matched.',
  'Drafted a reply explaining the delay; waiting for human approval before sending.',
];

/** One PII or secret item, as it would appear inside free text or a field. */
const PII: ReadonlyArray<(n: number) => string> = [
  (n) => `jane.doe${n}@example.com`,
  (n) => `+1415555${String(1000 + (n % 9000)).padStart(4, '0')}`,
  (n) => `(415) 555-${String(1000 + (n % 9000))}`,
  () => '+44 20 7946 0958',
  (n) => `287-65-${String(1000 + (n % 8999))}`,
  () => '4111 1111 1111 1111',
  () => 'GB82 WEST 1234 5698 7654 32',
  (n) => `10.${n % 250}.3.${(n * 7) % 250}`,
  () => '2001:db8:85a3::8a2e:370:7334',
  () =>
    'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c',
  () => 'Bearer 7f3c9a1e2b4d6f8091a2b3c4d5e6f708',
  () => 'AKIAIOSFODNN7EXAMPLE',
  () => 'aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
  () => 'ghp_16C7e42F292c6912E7710c838347Ae178B4a',
  () => 'xoxb-2048-4096-abcdefghijklmnopqrstuvwx',
  () => '-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq\n-----END RSA PRIVATE KEY-----',
  (n) => `password=hunter${n}x!`,
  (n) => `MRN ${String(40000000 + n)}`,
  (n) => Buffer.from(`jane.doe${n}@example.com`).toString('base64'),
  (n) => `jane.doe${n}%40example.com`,
];

function event(n: number, pii: boolean): Record<string, unknown> {
  const tool = pick(TOOLS);
  const ev: Record<string, unknown> = {
    event_type: pick(['tool_invoked', 'agent_response_generated', 'policy_evaluation', 'data_accessed']),
    time: new Date(Date.UTC(2026, 10, 22) + n * 137).toISOString(),
    tenant: pick(['acme-health', 'globex', 'initech']),
    actor: { id: `user-${n % 1000}`, type: 'user' },
    agent: { id: 'agent-7', name: 'claims-assistant' },
    action: pick(ACTIONS),
    tool: { name: tool, arguments: { claim_id: `CLM-${100000 + n}`, query: pick(PROSE), limit: 20 } },
    outcome: n % 20 === 0 ? 'denied' : 'success',
    trace_id: hex(32),
    session_id: `sess-${n % 300}`,
    details: { latency_ms: n % 900, tokens: 120 + (n % 400), summary: pick(PROSE) },
  };
  if (pii) {
    const item = PII[n % PII.length]!(n);
    const where = Math.floor(rand() * 3);
    const args = (ev.tool as { arguments: Record<string, unknown> }).arguments;
    const details = ev.details as Record<string, unknown>;
    if (where === 0) args.query = `${pick(PROSE)} Contact: ${item}.`;
    else if (where === 1) details.summary = `${pick(PROSE)} (ref ${item})`;
    else details.note = item;
  }
  return ev;
}

/** The JSON line each event was parsed from: the sidecar passes it along (RedactContext.text). */
const LINE = new WeakMap<object, string>();

function makeEvents(piiEvery: number | 'all' | 'none'): unknown[] {
  const out: unknown[] = [];
  for (let n = 0; n < EVENTS; n++) {
    const pii = piiEvery === 'all' ? true : piiEvery === 'none' ? false : n % piiEvery === 7 % piiEvery;
    // the value the sidecar sees: JSON text parsed once
    const line = JSON.stringify(event(n, pii));
    const value = JSON.parse(line) as object;
    LINE.set(value, line);
    out.push(value);
  }
  return out;
}

// ---------------------------------------------------------------- baselines

const BASELINE_PATTERNS = [
  '(?i)[a-z0-9._%+-]+@[a-z0-9.-]+\\.[a-z]{2,}',
  '\\b(?:00[1-9]|0[1-9][0-9]|[1-57-8][0-9]{2}|6[0-57-9][0-9]|66[0-57-9])-(?:0[1-9]|[1-9][0-9])-(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})\\b',
  '\\b[2-6](?:[ -]?[0-9]){12,18}\\b',
  '\\+[1-9][0-9]{7,14}\\b',
  '\\b(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\\b',
  'eyJ[A-Za-z0-9_-]{5,}\\.[A-Za-z0-9_-]{5,}\\.[A-Za-z0-9_-]*',
  '\\b(?:AKIA|ASIA)[A-Z0-9]{16}\\b',
  '\\bgh[pousr]_[A-Za-z0-9]{36,255}\\b',
  '\\bxox[abposr]-[A-Za-z0-9-]{10,}',
  '-----BEGIN [A-Z ]*PRIVATE KEY-----',
];

type StringFn = (s: string) => string;

/** Copy-on-write walk over keys, values and numbers, like the engine's. */
function walk(value: unknown, f: StringFn): unknown {
  if (typeof value === 'string') return f(value);
  if (typeof value === 'number') {
    const t = String(value);
    const r = f(t);
    return r === t ? value : r;
  }
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const v = walk(value[i], f);
      if (v !== value[i]) (out ??= value.slice())[i] = v;
    }
    return out ?? value;
  }
  let changed = false;
  const entries: [string, unknown][] = [];
  for (const [k, v] of Object.entries(value)) {
    const k2 = f(k);
    const v2 = walk(v, f);
    if (k2 !== k || v2 !== v) changed = true;
    entries.push([k2, v2]);
  }
  return changed ? Object.fromEntries(entries) : value;
}

function perRuleBaseline(): (v: unknown) => unknown {
  // test() without the g flag (a g regex's test() moves lastIndex); replace() with it
  const res = BASELINE_PATTERNS.map((p) => ({ test: new RE2(p), all: new RE2(p, 'g') }));
  const f: StringFn = (s) => {
    let out = s;
    for (const re of res) if (re.test.test(out)) out = re.all.replace(out, '[REDACTED]');
    return out;
  };
  return (v) => walk(v, f);
}

function combinedBaseline(): (v: unknown) => unknown {
  const source = BASELINE_PATTERNS.map((p) => `(?:${p})`).join('|');
  const probe = new RE2(source);
  const all = new RE2(source, 'g');
  const f: StringFn = (s) => (probe.test(s) ? all.replace(s, '[REDACTED]') : s);
  return (v) => walk(v, f);
}

// ---------------------------------------------------------------- timing

let sink = 0;

/**
 * ns per call of fn over the events: warm-up, then the median of five rounds
 * of ~SECONDS/5 each, as wall time and as CPU time of this process. The
 * target is per core, so CPU time is the figure that matters on a shared
 * machine; wall time also counts the time other processes held the core.
 */
function nsPerRecord(fn: (v: unknown) => unknown, events: readonly unknown[]): { wall: number; cpu: number } {
  const pass = (): void => {
    for (const e of events) if (fn(e) !== e) sink++;
  };
  const warmEnd = performance.now() + 300 * SECONDS;
  while (performance.now() < warmEnd) pass();
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let r = 0; r < 5; r++) {
    const end = performance.now() + (1000 * SECONDS) / 5;
    let n = 0;
    const t0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    do {
      pass();
      n += events.length;
    } while (performance.now() < end);
    const c = process.cpuUsage(c0);
    wall.push(Number(process.hrtime.bigint() - t0) / n);
    cpu.push(((c.user + c.system) * 1000) / n);
  }
  const median = (xs: number[]): number => xs.sort((a, b) => a - b)[2]!;
  return { wall: median(wall), cpu: median(cpu) };
}

/** Median ms for one call on this input: at least 3 calls and ~150 ms in total. */
function msPerCall(fn: () => unknown, budgetMs = 150): number {
  const times: number[] = [];
  const start = performance.now();
  while (times.length < 3 || (performance.now() - start < budgetMs && times.length < 2000)) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

const fmtInt = (n: number): string => Math.round(n).toLocaleString('en-US');
const fmtMs = (ms: number): string => (ms < 1 ? `${ms.toFixed(3)} ms` : ms < 100 ? `${ms.toFixed(2)} ms` : `${ms.toFixed(0)} ms`);

// ---------------------------------------------------------------- adversarial inputs

interface Adversary {
  detector: string;
  label: string;
  unit: (i: number) => string;
  prefix?: string;
}

const ADVERSARIES: Adversary[] = [
  { detector: 'email', label: '"a@" * n', unit: () => 'a@' },
  { detector: 'email', label: '"a." * n + "@"', unit: () => 'a.' },
  { detector: 'phone_e164', label: '"+1" * n', unit: () => '+1' },
  { detector: 'phone_nanp', label: '"(555) " * n', unit: () => '(555) ' },
  { detector: 'phone_uk', label: '"+44 " * n', unit: () => '+44 ' },
  { detector: 'us_ssn', label: '"1-" * n', unit: () => '1-' },
  { detector: 'us_ssn', label: '"123-45-" * n', unit: () => '123-45-' },
  { detector: 'payment_card', label: '"4 " * n', unit: () => '4 ' },
  { detector: 'payment_card', label: 'digits * n', unit: (i) => String(i % 10) },
  { detector: 'iban', label: '"GB82 " * n', unit: () => 'GB82 ' },
  { detector: 'ipv4', label: '"1." * n', unit: () => '1.' },
  { detector: 'ipv6', label: '"a:" * n', unit: () => 'a:' },
  { detector: 'ipv6', label: '"::" * n', unit: () => '::' },
  { detector: 'jwt', label: '"eyJ" + "a." * n', prefix: 'eyJ', unit: () => 'a.' },
  { detector: 'jwt', label: '"eyJ" * n', unit: () => 'eyJ' },
  { detector: 'bearer_token', label: '"Bearer " * n', unit: () => 'Bearer ' },
  { detector: 'aws_access_key_id', label: '"AKIA" * n', unit: () => 'AKIA' },
  { detector: 'aws_secret_access_key', label: '"Ab1/" * n', unit: () => 'Ab1/' },
  { detector: 'github_token', label: '"ghp_" * n', unit: () => 'ghp_' },
  { detector: 'gitlab_token', label: '"glpat-" * n', unit: () => 'glpat-' },
  { detector: 'slack_token', label: '"xoxb-" * n', unit: () => 'xoxb-' },
  { detector: 'pem_private_key', label: '"-----BEGIN " * n', unit: () => '-----BEGIN ' },
  { detector: 'pem_private_key', label: 'BEGIN line, no END', prefix: '-----BEGIN RSA PRIVATE KEY-----\n', unit: () => 'QUJD' },
  { detector: 'secret_kv', label: '"password=" * n', unit: () => 'password=' },
  { detector: 'secret_kv', label: '"secret: " * n', unit: () => 'secret: ' },
  { detector: 'medical_record_number', label: '"MRN 1" * n', unit: () => 'MRN 1' },
  // decode layers, through the whole packs
  { detector: '(decode:percent)', label: '"%4" * n', unit: () => '%4' },
  { detector: '(decode:percent)', label: '"%40" * n', unit: () => '%40' },
  { detector: '(decode:base64)', label: 'base64 run', unit: () => 'QUJD' },
  { detector: '(decode:base64)', label: 'base64("a@" * n)', unit: () => 'YUBh' },
  { detector: '(decode:nfkc)', label: '"１-" * n', unit: () => '１-' },
];

function build(a: Adversary, bytes: number): string {
  let s = a.prefix ?? '';
  let i = 0;
  const parts: string[] = [s];
  let len = Buffer.byteLength(s);
  while (len < bytes) {
    const u = a.unit(i++);
    parts.push(u);
    len += Buffer.byteLength(u);
  }
  s = parts.join('');
  return s;
}

/** A one-rule ruleset for a built-in detector, or undefined when the engine does not know it. */
function detectorRuleset(dir: string, detector: string): BenchRuleset | undefined {
  if (detector.startsWith('(')) return undefined;
  const file = join(dir, `${detector}.yaml`);
  writeFileSync(file, `rules:\n  - id: t\n    detector: ${detector}\n`);
  try {
    return loadRuleset([file]);
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------- main

function main(): void {
  const packFiles = PACKS.map((p) => join(PACKS_DIR, `${p}.yaml`));
  const present = packFiles.filter((f) => existsSync(f));
  const missing = PACKS.filter((_, i) => !existsSync(packFiles[i]!));
  const ruleset: BenchRuleset = loadRuleset(present);

  console.log(`redaction benchmark — node ${process.version}, one core, ${SECONDS}s per measurement`);
  console.log(`packs: ${PACKS.filter((p) => !missing.includes(p)).join(' + ')}${missing.length ? `  (MISSING: ${missing.join(', ')} — figures cover the present packs only)` : ''}`);
  console.log(`ruleset ${ruleset.hash}, ${ruleset.ruleIds.length} rules: ${ruleset.ruleIds.join(', ')}`);

  const mixes = [
    { name: 'mixed (90% clean / 10% PII)', events: makeEvents(10) },
    { name: 'all clean', events: makeEvents('none') },
    { name: 'all PII (one item each)', events: makeEvents('all') },
  ];
  const avgBytes = (evs: readonly unknown[]): number => evs.reduce<number>((n, e) => n + Buffer.byteLength(JSON.stringify(e)), 0) / evs.length;
  console.log(`events: ${EVENTS} per mix, ~${fmtInt(avgBytes(mixes[0]!.events))} bytes of JSON each\n`);

  // As the sidecar calls it: with the line the event was parsed from.
  const engine = (v: unknown): unknown => ruleset.redact(v, {}, { tenant: 'acme-health', text: LINE.get(v as object)! });
  const engineValueOnly = (v: unknown): unknown => ruleset.redact(v, {}, { tenant: 'acme-health' });
  const baseA = perRuleBaseline();
  const baseB = combinedBaseline();

  const header = `${'mix'.padEnd(30)} ${'implementation'.padEnd(36)} ${'ns/record'.padStart(11)} ${'records/s'.padStart(12)} ${'CPU ns/rec'.padStart(11)} ${'rec/CPU-s'.padStart(12)}`;
  console.log(header);
  console.log('-'.repeat(header.length));
  for (const mix of mixes) {
    const rows: [string, (v: unknown) => unknown][] = [
      ['engine: ruleset.redact (with line)', engine],
      ['engine: value only (no line text)', engineValueOnly],
    ];
    if (!ENGINE_ONLY) rows.push(['(a) 10 RE2 calls/string (per rule)', baseA], ['(b) 1 combined RE2 call/string', baseB]);
    for (const [label, fn] of rows) {
      const ns = nsPerRecord(fn, mix.events);
      console.log(
        `${mix.name.padEnd(30)} ${label.padEnd(36)} ${fmtInt(ns.wall).padStart(11)} ${fmtInt(1e9 / ns.wall).padStart(12)} ${fmtInt(ns.cpu).padStart(11)} ${fmtInt(1e9 / ns.cpu).padStart(12)}`,
      );
    }
  }
  console.log('\n(baselines use 10 fixed RE2 patterns for email, ssn, card, e164, ipv4, jwt, aws key id, github, slack, pem:');
  console.log(' test() per string and replace() only on a match; no validators, decoding or NFKC, so they do less');
  console.log(' work than the engine; for orientation only)\n');

  if (ENGINE_ONLY) return;
  // linear growth
  const dir = mkdtempSync(join(tmpdir(), 'sealtrail-bench-redact-'));
  try {
    console.log('linear-growth check: median time for one redact() of { details: { text: INPUT } }');
    const h2 = `${'detector'.padEnd(24)} ${'input'.padEnd(26)} ${'10 KB'.padStart(10)} ${'100 KB'.padStart(10)} ${'1 MB'.padStart(10)} ${'x per 10x'.padStart(14)}  note`;
    console.log(h2);
    console.log('-'.repeat(h2.length + 10));
    const cache = new Map<string, BenchRuleset | undefined>();
    for (const a of ADVERSARIES) {
      if (!cache.has(a.detector)) cache.set(a.detector, detectorRuleset(dir, a.detector));
      const own = cache.get(a.detector);
      const rs = own ?? ruleset;
      const times: (number | undefined)[] = [];
      for (const size of [10_000, 100_000, 1_000_000]) {
        const prev = times[times.length - 1];
        const before = times[times.length - 2];
        if (prev === undefined ? times.length > 0 : prev > 1000 || (before !== undefined && prev / before > 30)) {
          times.push(undefined); // already superlinear and would take minutes: skip
          continue;
        }
        const value = { details: { text: build(a, size) } };
        times.push(msPerCall(() => rs.redact(value, {}), size >= 1_000_000 ? 400 : 150));
      }
      const ratios = [1, 2].map((i) => {
        const t0 = times[i - 1];
        const t1 = times[i];
        return t0 !== undefined && t1 !== undefined ? t1 / t0 : undefined;
      });
      const bad = ratios.some((r) => r !== undefined && r > 30) || times.includes(undefined);
      const note = [own ? '' : a.detector.startsWith('(') ? 'whole packs' : 'detector unknown to engine: whole packs', bad ? 'SUPERLINEAR?' : '']
        .filter(Boolean)
        .join('; ');
      console.log(
        `${a.detector.padEnd(24)} ${a.label.padEnd(26)} ${times.map((t) => (t === undefined ? 'skipped' : fmtMs(t)).padStart(10)).join(' ')} ${ratios
          .map((r) => (r === undefined ? '-' : `${r.toFixed(1)}x`))
          .join(' / ')
          .padStart(14)}  ${note}`,
      );
    }
    console.log('\n(x per 10x: time(100 KB)/time(10 KB) and time(1 MB)/time(100 KB); ~10x is linear, >30x is flagged)');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  if (sink < 0) console.log(sink);
}

main();
