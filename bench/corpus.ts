/**
 * Benchmark corpora: sealtrail input events (docs/events.md), one JSON
 * object a line, generated from a seed so that every run of every benchmark
 * reads the same bytes.
 *
 *   light  the event bench/pipeline.ts has always used: one tool call with
 *          one email, ~580 B. Unchanged, so earlier figures stay comparable.
 *   pii    a mix of tool calls (tool_invoked), model calls (model_called)
 *          and tool results (tool_completed) of ~530 B on average, with
 *          ~2.8 items of personal data or credentials a record: emails,
 *          phone numbers, US SSNs, Luhn-valid card numbers, IPv4 addresses,
 *          bearer tokens and JWTs, every one of a shape the pii-basic and
 *          secrets packs detect. Hex trace, span and request ids, times,
 *          counts and claim numbers are there too and are not personal data:
 *          a redactor that flags them is wrong.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { prng } from '../test/harness/prng.js';

export type CorpusName = 'light' | 'pii';
export const CORPORA: readonly CorpusName[] = ['light', 'pii'];
export const DEFAULT_SEED = 20261207;

export type PiiKind = 'email' | 'phone' | 'ssn' | 'card' | 'ipv4' | 'bearer' | 'jwt';
export const PII_KINDS: readonly PiiKind[] = ['email', 'phone', 'ssn', 'card', 'ipv4', 'bearer', 'jwt'];

/** The rule ids (config/redaction/pii-basic.yaml, secrets.yaml) that find each kind. */
export const RULES_FOR_KIND: Readonly<Record<PiiKind, readonly string[]>> = {
  email: ['email'],
  phone: ['phone_e164', 'phone_nanp', 'phone_uk'],
  ssn: ['us_ssn'],
  card: ['payment_card'],
  ipv4: ['ipv4'],
  bearer: ['bearer_token'],
  jwt: ['jwt'],
};

/** Which rule packs a corpus needs for all of its items to be found. */
export const PACKS_FOR_CORPUS: Readonly<Record<CorpusName, readonly string[]>> = {
  light: ['pii-basic'],
  pii: ['pii-basic', 'secrets'],
};

export interface CorpusLine {
  line: string;
  /** the personal data and credentials planted in this line, one entry per item */
  items: PiiKind[];
  /** each item as written into the line, in the order of `items` */
  values: string[];
}

export interface CorpusStats {
  corpus: CorpusName;
  seed: number;
  lines: number;
  /** bytes written, newlines included */
  bytes: number;
  /** items planted, all kinds */
  pii: number;
  byKind: Record<PiiKind, number>;
}

const DAY0 = Date.UTC(2026, 10, 22);

/** Today's event of bench/pipeline.ts, byte for byte. */
export function lightEvent(n: number): string {
  return JSON.stringify({
    event_type: 'tool_invoked',
    time: new Date(DAY0 + n).toISOString(),
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

// ---------------------------------------------------------------- items

type Rand = () => number;

const FIRST = ['jane', 'john', 'maria', 'wei', 'fatima', 'olga', 'pedro', 'aisha', 'li', 'tom', 'sara', 'kofi', 'emma', 'raj', 'noah', 'mia'];
const LAST = ['doe', 'smith', 'garcia', 'chen', 'khan', 'novak', 'silva', 'okafor', 'brown', 'muller', 'rossi', 'tanaka', 'patel', 'nguyen'];
const DOMAINS = ['example.com', 'gmail.com', 'outlook.com', 'acme-health.org', 'mail.globex.io', 'initech.co.uk', 'yahoo.com'];
// Real, assigned NANP area codes: the detector rejects N11 and N9X on purpose.
const AREAS = ['212', '303', '312', '415', '503', '617', '702', '808', '919', '646', '213', '404'];
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

function int(rand: Rand, lo: number, hi: number): number {
  return lo + Math.floor(rand() * (hi - lo + 1));
}
function pick<T>(rand: Rand, xs: readonly T[]): T {
  return xs[Math.floor(rand() * xs.length)]!;
}
function digits(rand: Rand, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String(Math.floor(rand() * 10));
  return s;
}
function hex(rand: Rand, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += Math.floor(rand() * 16).toString(16);
  return s;
}
function b64url(rand: Rand, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += B64URL[Math.floor(rand() * 64)]!;
  return s;
}

/** The Luhn check digit that makes `body` + digit valid. */
export function luhnDigit(body: string): string {
  let sum = 0;
  for (let i = 0; i < body.length; i++) {
    let d = body.charCodeAt(body.length - 1 - i) - 48;
    if (i % 2 === 0) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  return String((10 - (sum % 10)) % 10);
}

export function luhnValid(number: string): boolean {
  const d = number.replace(/[ -]/g, '');
  return /^[0-9]{12,19}$/.test(d) && luhnDigit(d.slice(0, -1)) === d.slice(-1);
}

function email(rand: Rand): string {
  const sep = pick(rand, ['.', '_', '']);
  const num = rand() < 0.4 ? String(int(rand, 1, 99)) : '';
  return `${pick(rand, FIRST)}${sep}${pick(rand, LAST)}${num}@${pick(rand, DOMAINS)}`;
}

function phone(rand: Rand): string {
  const area = pick(rand, AREAS);
  const exchange = String(int(rand, 2, 9)) + String(int(rand, 2, 9)) + String(int(rand, 0, 9));
  const line = digits(rand, 4);
  const r = rand();
  if (r < 0.3) return `(${area}) ${exchange}-${line}`;
  if (r < 0.55) return `${area}-${exchange}-${line}`;
  if (r < 0.8) return `+1${area}${exchange}${line}`;
  if (r < 0.9) return `+44 20 7${digits(rand, 3)} ${digits(rand, 4)}`;
  return `07700 9${digits(rand, 5)}`;
}

function ssn(rand: Rand): string {
  // Issued ranges only: area 001-665 and 667-899, group 01-99, serial 0001-9999.
  let area = int(rand, 100, 898);
  if (area === 666) area = 667;
  const group = String(int(rand, 1, 99)).padStart(2, '0');
  const serial = String(int(rand, 1, 9999)).padStart(4, '0');
  return rand() < 0.8 ? `${area}-${group}-${serial}` : `${area} ${group} ${serial}`;
}

function card(rand: Rand): string {
  const r = rand();
  if (r < 0.15) {
    const body = `3${pick(rand, ['4', '7'])}${digits(rand, 12)}`;
    const pan = body + luhnDigit(body);
    return `${pan.slice(0, 4)} ${pan.slice(4, 10)} ${pan.slice(10)}`;
  }
  const prefix = r < 0.6 ? '4' : r < 0.9 ? `5${int(rand, 1, 5)}` : '6011';
  const body = prefix + digits(rand, 15 - prefix.length);
  const pan = body + luhnDigit(body);
  const style = rand();
  if (style < 0.5) return pan.replace(/(\d{4})(?=\d)/g, '$1 ');
  if (style < 0.7) return pan.replace(/(\d{4})(?=\d)/g, '$1-');
  return pan;
}

function ipv4(rand: Rand): string {
  const r = rand();
  if (r < 0.3) return `10.${int(rand, 0, 255)}.${int(rand, 0, 255)}.${int(rand, 1, 254)}`;
  if (r < 0.5) return `192.168.${int(rand, 0, 255)}.${int(rand, 1, 254)}`;
  if (r < 0.7) return `203.0.113.${int(rand, 1, 254)}`;
  return `${int(rand, 11, 223)}.${int(rand, 0, 255)}.${int(rand, 0, 255)}.${int(rand, 1, 254)}`;
}

function bearer(rand: Rand): string {
  return `Bearer ${rand() < 0.5 ? hex(rand, 40) : `${b64url(rand, 12)}.${b64url(rand, 22)}`}`;
}

function jwt(rand: Rand, n: number): string {
  const header = Buffer.from(JSON.stringify({ alg: pick(rand, ['HS256', 'RS256']), typ: 'JWT' })).toString('base64url');
  const payload = Buffer.from(JSON.stringify({ sub: `user-${n % 1000}`, iat: 1795000000 + n })).toString('base64url');
  return `${header}.${payload}.${b64url(rand, 43)}`;
}

const MAKE: Record<PiiKind, (rand: Rand, n: number) => string> = { email, phone, ssn, card, ipv4, bearer, jwt };

/** How an item reads inside free text. */
const PHRASES: Record<PiiKind, readonly ((x: string) => string)[]> = {
  email: [(x) => `contact ${x}`, (x) => `reply to ${x}`, (x) => `cc ${x}`],
  phone: [(x) => `call back on ${x}`, (x) => `phone ${x}`, (x) => `mobile ${x}`],
  ssn: [(x) => `SSN ${x}`, (x) => `member ssn ${x}`],
  card: [(x) => `card ${x}`, (x) => `charged to ${x}`],
  ipv4: [(x) => `from ${x}`, (x) => `client ip ${x}`],
  bearer: [(x) => `sent with ${x}`, (x) => `header ${x}`],
  jwt: [(x) => `session jwt ${x}`, (x) => `forwarded ${x}`],
};

/** The argument name a tool call would give an item; none of these is a name the secrets pack redacts whole. */
const FIELD: Record<PiiKind, string> = {
  email: 'email',
  phone: 'phone',
  ssn: 'ssn',
  card: 'card_number',
  ipv4: 'client_ip',
  bearer: 'auth_header',
  jwt: 'session_jwt',
};

// Weights chosen so that the mix of short (ipv4, ssn) and long (jwt,
// bearer) items keeps the mean line near 530 B.
const KIND_WEIGHTS: ReadonlyArray<[PiiKind, number]> = [
  ['email', 0.28],
  ['phone', 0.18],
  ['ssn', 0.12],
  ['card', 0.12],
  ['ipv4', 0.16],
  ['bearer', 0.08],
  ['jwt', 0.06],
];
/** P(items in a record = i); mean 2.84. */
const COUNT_WEIGHTS = [0.08, 0.14, 0.2, 0.25, 0.16, 0.11, 0.06];

function weighted(rand: Rand, weights: readonly number[]): number {
  let r = rand();
  for (let i = 0; i < weights.length; i++) {
    r -= weights[i]!;
    if (r < 0) return i;
  }
  return weights.length - 1;
}

// ---------------------------------------------------------------- events

const TENANTS = ['acme-health', 'globex', 'initech', 'umbrella-ins'];
const AGENTS = [
  { id: 'agent-7', name: 'claims-assistant' },
  { id: 'agent-12', name: 'support-triage' },
  { id: 'agent-3', name: 'billing-helper' },
];
const MODELS = [
  { provider: 'anthropic', name: 'claude-sonnet' },
  { provider: 'openai', name: 'gpt-4.1-mini' },
  { provider: 'google', name: 'gemini-2.5-flash' },
];
const TOOLS = [
  { name: 'crm.lookup_customer', action: 'lookup_customer', resource: 'customer' },
  { name: 'claims.search', action: 'lookup_claim', resource: 'claim' },
  { name: 'payments.refund', action: 'issue_refund', resource: 'payment' },
  { name: 'tickets.update', action: 'update_ticket', resource: 'ticket' },
  { name: 'email.draft', action: 'draft_reply', resource: 'message' },
];
const ASKS = [
  'Find the customer and check the claim',
  'Refund the duplicate charge',
  'Update the ticket contact details',
  'Summarise last month\'s activity',
  'Verify identity before the payout change',
];
const RESULTS = [
  'Matched one customer; claim in review',
  'Refund queued for settlement',
  'Ticket updated, awaiting reply',
  'Two logins flagged by the fraud model',
  'Identity verified against the profile',
];

function text(base: string, items: string[]): string {
  return items.length ? `${base}: ${items.join(', ')}.` : `${base}.`;
}

/** The pii corpus: a stateful generator, so line n depends on the seed and on every line before it. */
export function piiCorpus(seed = DEFAULT_SEED): (n: number) => CorpusLine {
  const rand = prng(seed);
  return (n: number): CorpusLine => {
    const kinds: PiiKind[] = [];
    const count = weighted(rand, COUNT_WEIGHTS);
    for (let i = 0; i < count; i++) kinds.push(KIND_WEIGHTS[weighted(rand, KIND_WEIGHTS.map(([, w]) => w))]![0]);
    const values = kinds.map((k) => MAKE[k](rand, n));
    const phrased = kinds.map((k, i) => pick(rand, PHRASES[k])(values[i]!));
    const agent = pick(rand, AGENTS);
    const tool = pick(rand, TOOLS);
    const common = {
      time: new Date(DAY0 + n * 37).toISOString(),
      tenant: pick(rand, TENANTS),
      agent,
    };
    // actor.type left to its default (user), as most clients do.
    const actor = { id: `user-${int(rand, 1, 4000)}` };
    const ids = { trace_id: hex(rand, 32), session_id: `sess-${int(rand, 1, 900)}` };
    const r = rand();
    let event: Record<string, unknown>;
    if (r < 0.4) {
      // A tool call: the first item as a named argument, the rest in the request text.
      const args: Record<string, unknown> = tool.resource === 'claim' ? { claim_id: `CLM-${100000 + (n % 900000)}` } : {};
      if (kinds.length) args[FIELD[kinds[0]!]] = values[0];
      args.request = text(pick(rand, ASKS), phrased.slice(1));
      event = {
        event_type: 'tool_invoked',
        ...common,
        actor,
        action: tool.action,
        tool: { name: tool.name, call_id: `call_${hex(rand, 8)}`, arguments: args },
        resource: { type: tool.resource, id: `${tool.resource}-${int(rand, 1000, 99999)}` },
        outcome: rand() < 0.05 ? 'denied' : 'success',
        ...ids,
      };
    } else if (r < 0.7) {
      event = {
        event_type: 'model_called',
        ...common,
        actor,
        model: pick(rand, MODELS),
        ...ids,
        span_id: hex(rand, 16),
        details: {
          prompt_excerpt: text(`User: ${pick(rand, ASKS)}`, phrased),
          input_tokens: int(rand, 200, 4000),
          output_tokens: int(rand, 20, 800),
        },
      };
    } else {
      event = {
        event_type: 'tool_completed',
        ...common,
        tool: { name: tool.name, call_id: `call_${hex(rand, 8)}` },
        outcome: rand() < 0.04 ? 'error' : 'success',
        ...ids,
        details: { duration_ms: int(rand, 3, 2500), request_id: hex(rand, 16), result: text(pick(rand, RESULTS), phrased) },
      };
    }
    return { line: JSON.stringify(event), items: kinds, values };
  };
}

/** Line n of a corpus; for pii, call in order n = 0, 1, 2, … on one generator. */
export function corpusGenerator(corpus: CorpusName, seed = DEFAULT_SEED): (n: number) => CorpusLine {
  if (corpus === 'light') return (n) => ({ line: lightEvent(n), items: ['email'], values: [`jane.doe${n % 97}@example.com`] });
  return piiCorpus(seed);
}

/** Write `lines` lines of a corpus to `path` (replacing it), in chunks: a million lines are over V8's longest string. */
export function writeCorpus(path: string, corpus: CorpusName, lines: number, seed = DEFAULT_SEED): CorpusStats {
  const next = corpusGenerator(corpus, seed);
  const byKind = Object.fromEntries(PII_KINDS.map((k) => [k, 0])) as Record<PiiKind, number>;
  const fd = openSync(path, 'w');
  let bytes = 0;
  let pii = 0;
  try {
    let chunk: string[] = [];
    let chunkLen = 0;
    for (let n = 0; n < lines; n++) {
      const { line, items } = next(n);
      for (const k of items) byKind[k]++;
      pii += items.length;
      chunk.push(line);
      chunkLen += line.length;
      if (chunkLen >= 1 << 20 || n === lines - 1) {
        const buf = Buffer.from(`${chunk.join('\n')}\n`);
        writeSync(fd, buf);
        bytes += buf.length;
        chunk = [];
        chunkLen = 0;
      }
    }
  } finally {
    closeSync(fd);
  }
  return { corpus, seed, lines, bytes, pii, byKind };
}

export function describeCorpus(s: CorpusStats): string {
  const kinds = PII_KINDS.filter((k) => s.byKind[k]).map((k) => `${k} ${s.byKind[k]}`).join(', ');
  return `${s.corpus} corpus (seed ${s.seed}): ${s.lines.toLocaleString('en-US')} lines, ${(s.bytes / 1048576).toFixed(1)} MiB, ${(s.bytes / s.lines).toFixed(0)} B a line on average, ${(s.pii / s.lines).toFixed(2)} PII items a record (${kinds})`;
}
