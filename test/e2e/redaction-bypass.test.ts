/**
 * Redaction bypass corpus, end to end (issue 2, item 9).
 *
 * Canary PII written in the encodings an agent (or an attacker) could use to
 * slip it past a pattern — JSON escapes, full-width digits, object keys,
 * JSON numbers, base64 / base64url / percent-encoding, deep nesting, huge
 * strings, invalid UTF-8, lone surrogates — goes through a real sidecar
 * (rules: the shipped pii-basic + secrets packs) and a real collector.
 * Afterwards every byte the deployment wrote (both SQLite files with their
 * WAL and SHM, taken while running and again after SIGTERM, and every log
 * line of both programs) is searched for each canary in every encoding
 * encodingsOf() knows. Only the trace files, which hold the input, are
 * exempt.
 *
 * Each canary is unique, so a failure names the case that leaked.
 */
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { B64URL, ESCAPE_ALL, FULL_WIDTH_ASCII, FULL_WIDTH_DIGIT, luhnComplete, PERCENT_ALL } from '../helpers/pii-encodings.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryAll, type Deployment } from '../helpers/deployment.js';
import { runCli, stop, type Proc } from '../helpers/procs.js';
import {
  findLeaks,
  makeRedactionDeployment,
  packPath,
  readAllFiles,
  startCollector,
  startSidecar,
  waitDelivered,
  type FileBytes,
} from '../helpers/redaction-deployment.js';

const PACKS = ['pii-basic', 'secrets'];
/** the default max_depth of docs/redaction.md */
const MAX_DEPTH = 64;

// ------------------------------------------------------------------ corpus

interface Case {
  id: string;
  title: string;
  /** the raw bytes of the JSONL line, without the newline */
  line: Buffer;
  /** what must never appear in any stored byte or log, in any encoding */
  needles: string[];
  /** 'record': redacted and delivered; otherwise the quarantine reason */
  expect: 'record' | string;
}


/** Every line is a normal agent event; `details` carries the case id and a visible marker. */
function eventLine(id: string, extra: { details?: Record<string, unknown>; args?: Record<string, unknown> }, raw: Record<string, string> = {}): Buffer {
  const ev = {
    event_type: 'tool_invoked',
    time: '2026-11-22T12:00:00.000Z',
    tenant: 'acme',
    actor: { id: 'user-7', type: 'user' },
    agent: { id: 'agent-1', name: 'bypass-bot' },
    tool: { name: 'crm.lookup', arguments: { limit: 5, ...extra.args } },
    outcome: 'success',
    details: { case: id, marker: `visible-marker-${id}`, ...extra.details },
  };
  let text = JSON.stringify(ev);
  // Placeholders let a case put exact JSON text (escapes) where a string goes.
  for (const [ph, json] of Object.entries(raw)) {
    const quoted = JSON.stringify(ph);
    if (!text.includes(quoted)) throw new Error(`placeholder ${ph} not in ${id}`);
    text = text.split(quoted).join(json);
  }
  return Buffer.from(text, 'utf8');
}

function nested(levels: number, leaf: Record<string, unknown>): Record<string, unknown> {
  let v: Record<string, unknown> = leaf;
  for (let i = 1; i < levels; i++) v = { a: v };
  return v;
}

/**
 * Unique canary tokens. The case number sits inside, not at an end, so even
 * the part of a base64 encoding that does not depend on neighbouring bytes
 * (which can lose up to two bytes at each end) still tells cases apart.
 */
const tok = (n: number): string => `zq${String(n).padStart(2, '0')}canary${String(n).padStart(2, '0')}zq`;
const mail = (n: number): string => `${tok(n)}@example.com`;

function corpus(): Case[] {
  const cases: Case[] = [];
  const add = (c: Case): void => void cases.push(c);

  add({ id: 'c00', title: 'plain email (control)', line: eventLine('c00', { details: { note: `reach me at ${mail(0)} please` } }), needles: [tok(0)], expect: 'record' });

  add({
    id: 'c01',
    title: 'email with its @ written as \\u0040',
    line: eventLine('c01', { details: { note: '@@P@@' } }, { '@@P@@': `"write to ${tok(1)}\\u0040example.com today"` }),
    needles: [tok(1)],
    expect: 'record',
  });

  add({
    id: 'c02',
    title: 'email written entirely in \\u escapes',
    line: eventLine('c02', { args: { to: '@@P@@' } }, { '@@P@@': `"${ESCAPE_ALL(mail(2))}"` }),
    needles: [tok(2)],
    expect: 'record',
  });

  const ssn3 = '431-03-7303';
  add({
    id: 'c03',
    title: 'SSN in full-width digits (NFKC)',
    line: eventLine('c03', { details: { note: `ssn ${FULL_WIDTH_DIGIT(ssn3)} on file` } }),
    needles: [FULL_WIDTH_DIGIT(ssn3), ssn3, ssn3.replace(/-/g, ''), FULL_WIDTH_DIGIT(ssn3.replace(/-/g, ''))],
    expect: 'record',
  });

  const ssn4 = '452-04-7404';
  const fw4 = FULL_WIDTH_DIGIT(ssn4).replace(/-/g, '\uff0d');
  add({
    id: 'c04',
    title: 'SSN in full-width digits and full-width hyphens',
    line: eventLine('c04', { args: { query: `member ${fw4}` } }),
    needles: [fw4, ssn4, ssn4.replace(/-/g, ''), FULL_WIDTH_DIGIT(ssn4.replace(/-/g, ''))],
    expect: 'record',
  });

  add({
    id: 'c05',
    title: 'emails as object keys',
    line: eventLine('c05', { details: { [mail(5)]: 'subscribed' }, args: { [`cc:${tok(5)}x@example.org`]: true } }),
    needles: [tok(5)],
    expect: 'record',
  });

  add({
    id: 'c06',
    title: 'SSN as a bare JSON number',
    line: eventLine('c06', { details: { ssn: 463067606 } }),
    needles: ['463067606', '463-06-7606'],
    expect: 'record',
  });

  const card = luhnComplete('492971820230707');
  if (Number(card) > Number.MAX_SAFE_INTEGER) throw new Error('card does not fit a JSON number exactly');
  add({
    id: 'c07',
    title: 'Luhn-valid card as a JSON number',
    line: eventLine('c07', { args: { card: Number(card) } }),
    needles: [card, card.replace(/(\d{4})(?=\d)/g, '$1 '), card.replace(/(\d{4})(?=\d)/g, '$1-')],
    expect: 'record',
  });

  add({
    id: 'c08',
    title: 'base64 of an email',
    line: eventLine('c08', { args: { payload: Buffer.from(mail(8)).toString('base64') } }),
    needles: [tok(8)],
    expect: 'record',
  });

  // A JSON blob encoded base64url (a JWT-like payload); pick one whose
  // base64url really differs from base64 ('-' or '_' in it).
  let blob9 = '';
  for (let k = 0; ; k++) {
    blob9 = JSON.stringify({ email: mail(9), scope: 'crm.read', n: k, note: '>>>???' });
    if (/[+/]/.test(Buffer.from(blob9).toString('base64'))) break;
  }
  add({
    id: 'c09',
    title: 'base64url of a JSON blob holding an email',
    line: eventLine('c09', { details: { state: B64URL(Buffer.from(blob9)) } }),
    needles: [tok(9)],
    expect: 'record',
  });

  add({
    id: 'c10',
    title: 'percent-encoded @ in a URL',
    line: eventLine('c10', { args: { url: `https://crm.example.org/search?q=${encodeURIComponent(mail(10))}&page=2` } }),
    needles: [tok(10)],
    expect: 'record',
  });

  add({
    id: 'c11',
    title: 'email percent-encoded byte by byte',
    line: eventLine('c11', { details: { q: `email=${PERCENT_ALL(mail(11))}` } }),
    needles: [tok(11)],
    expect: 'record',
  });

  // Nesting counts containers from the record root (root, details, then the chain).
  add({
    id: 'c12',
    title: 'email 60 levels deep (under max_depth 64): redacted',
    line: eventLine('c12', { details: { deep: nested(60 - 2, { email: mail(12) }) } }),
    needles: [tok(12)],
    expect: 'record',
  });

  add({
    id: 'c13',
    title: `email 100 levels deep (over max_depth ${MAX_DEPTH}): quarantined`,
    line: eventLine('c13', { details: { deep: nested(100 - 2, { email: mail(13) }) } }),
    needles: [tok(13)],
    expect: 'redact_too_deep',
  });

  const filler = 'lorem ipsum dolor sit amet, consectetur adipiscing elit. '.repeat(Math.ceil(250_000 / 57)).slice(0, 250_000);
  add({
    id: 'c14',
    title: '500 KB string with an email in the middle',
    line: eventLine('c14', { details: { transcript: `${filler} ${mail(14)} ${filler}` } }),
    needles: [tok(14)],
    expect: 'record',
  });

  {
    const good = eventLine('c15', { details: { note: `${mail(15)} @@BAD@@` } }).toString('utf8');
    const [before, after] = good.split('@@BAD@@') as [string, string];
    add({
      id: 'c15',
      title: 'invalid UTF-8 bytes on a line with an email: quarantined',
      line: Buffer.concat([Buffer.from(before), Buffer.from([0xc3, 0x28, 0xff, 0xfe, 0x80]), Buffer.from(after)]),
      needles: [tok(15)],
      expect: 'invalid_utf8',
    });
  }

  add({
    id: 'c16',
    title: 'lone surrogates right next to an email',
    line: eventLine('c16', { details: { note: '@@P@@' } }, { '@@P@@': `"\\ud800${mail(16)}\\udfff and \\udc00${tok(16)}b@example.net\\ud83d"` }),
    needles: [tok(16)],
    expect: 'record',
  });

  add({
    id: 'c17',
    title: 'lone surrogate next to an email in an object key',
    line: eventLine('c17', { details: { '@@K@@': 1 } }, { '@@K@@': `"\\udbff${mail(17)}"` }),
    needles: [tok(17)],
    expect: 'record',
  });

  const fwMail = FULL_WIDTH_ASCII(mail(18));
  add({
    id: 'c18',
    title: 'email in full-width letters (NFKC)',
    line: eventLine('c18', { details: { note: `contact ${fwMail}` } }),
    needles: [tok(18), FULL_WIDTH_ASCII(tok(18))],
    expect: 'record',
  });

  // secrets pack
  const awsId = 'AKIAZQXIXCANARYAWSZQ';
  add({
    id: 'c19',
    title: 'AWS access key id',
    line: eventLine('c19', { args: { env: `AWS_ACCESS_KEY_ID=${awsId} region=eu-west-1` } }),
    needles: [awsId, 'ZQXIXCANARYAWSZQ'],
    expect: 'record',
  });

  const sig20 = B64URL(Buffer.from(`signature-${tok(20)}-signature`));
  const jwt = `eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.${B64URL(Buffer.from(JSON.stringify({ sub: mail(20), iat: 1767225600 })))}.${sig20}`;
  add({
    id: 'c20',
    title: 'JWT (payload holds an email) in an Authorization header',
    line: eventLine('c20', { args: { headers: { 'X-Forwarded-Auth': `Bearer ${jwt}` }, log: `sent Authorization: Bearer ${jwt}` } }),
    needles: [tok(20), jwt.split('.')[1]!, sig20],
    expect: 'record',
  });

  const pemBody = 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCZQ21PEMCANARY21ZQxyz';
  add({
    id: 'c21',
    title: 'PEM private key block',
    line: eventLine('c21', { details: { file: `-----BEGIN PRIVATE KEY-----\n${pemBody}\nAbCdEfGh0123456789\n-----END PRIVATE KEY-----\n` } }),
    needles: [pemBody, 'ZQ21PEMCANARY21ZQ'],
    expect: 'record',
  });

  add({
    id: 'c22',
    title: 'password=... in free text',
    line: eventLine('c22', { details: { note: `login ok with password=${tok(22)}pw! for svc` } }),
    needles: [tok(22)],
    expect: 'record',
  });

  add({
    id: 'c23',
    title: 'api_key member with a shapeless value',
    line: eventLine('c23', { args: { api_key: `${tok(23)}Shapeless` } }),
    needles: [tok(23)],
    expect: 'record',
  });

  return cases;
}

// ------------------------------------------------------------------ run

describe('redaction bypass corpus through a real sidecar and collector', () => {
  const cases = corpus();
  const packs = PACKS.map(packPath);
  const present = packs.filter((p) => existsSync(p));
  let d: Deployment;
  let collector: Proc | undefined;
  let sidecar: Proc | undefined;
  let delivered: { records: number; quarantined: number };
  let items: any[] = [];
  let verifyUrl: { code: number | null; stdout: string; stderr: string };
  let exits: { sidecar: number | null; collector: number | null };
  const scanned: FileBytes[] = [];
  let quarantine: Array<{ offset: number; reason: string; message: string }> = [];
  const offsets = new Map<string, number>();

  beforeAll(async () => {
    // Until every pack exists the run uses the present ones, so the cases
    // that do not depend on the missing pack still report; the first test
    // fails in that state.
    d = await makeRedactionDeployment({ rules: present });
    const env = { SEALTRAIL_LOG_LEVEL: 'trace' };
    collector = await startCollector(d, env);
    sidecar = await startSidecar(d, env);

    let off = 0;
    const chunks: Buffer[] = [];
    for (const c of cases) {
      offsets.set(c.id, off);
      chunks.push(c.line, Buffer.from('\n'));
      off += c.line.length + 1;
    }
    writeFileSync(join(d.traces, 'agent.jsonl'), Buffer.concat(chunks));

    delivered = await waitDelivered(d, cases.length);
    items = await queryAll(d);
    verifyUrl = await runCli(['verify', '--url', d.collectorUrl, '--keys', d.keys, '--token', d.token]);

    // Snapshot while running (the WALs hold the newest pages), then stop and read again.
    scanned.push(...readAllFiles(d.dir, [d.traces]).map((f) => ({ name: `running:${f.name}`, bytes: f.bytes })));
    const s = await stop(sidecar);
    const c = await stop(collector);
    exits = { sidecar: s.code, collector: c.code };
    scanned.push(...readAllFiles(d.dir, [d.traces]).map((f) => ({ name: `stopped:${f.name}`, bytes: f.bytes })));
    scanned.push({ name: 'sidecar stdout', bytes: Buffer.from(sidecar.stdout()) });
    scanned.push({ name: 'sidecar stderr', bytes: Buffer.from(sidecar.stderr()) });
    scanned.push({ name: 'collector stdout', bytes: Buffer.from(collector.stdout()) });
    scanned.push({ name: 'collector stderr', bytes: Buffer.from(collector.stderr()) });
    scanned.push({ name: 'verify --url output', bytes: Buffer.from(verifyUrl.stdout + verifyUrl.stderr) });
    scanned.push({ name: 'GET /v1/audit', bytes: Buffer.from(JSON.stringify(items)) });

    // Only now open the buffer with SQLite (after its bytes were read).
    const db = new Database(d.bufferDb, { readonly: true, fileMustExist: true });
    try {
      quarantine = db.prepare('SELECT offset, reason, message FROM quarantine ORDER BY offset').all() as typeof quarantine;
    } finally {
      db.close();
    }
  }, 240_000);

  afterAll(async () => {
    if (sidecar) await stop(sidecar, 'SIGKILL');
    if (collector) await stop(collector, 'SIGKILL');
    if (d) rmSync(d.dir, { recursive: true, force: true });
  });

  const recordOf = (id: string): any => items.find((i) => i.record?.details?.case === id)?.record;
  const hitsOf = (r: any): number => Object.values((r?.redaction?.hits ?? {}) as Record<string, number>).reduce((a, b) => a + b, 0);

  it('runs with both packs, pii-basic and secrets', () => {
    expect(present.map((p) => p.split('/').pop())).toEqual(PACKS.map((p) => `${p}.yaml`));
  });

  it('sealtrail verify --url passed against the live collector before stopping', () => {
    expect(verifyUrl.stderr).toBe('');
    expect(verifyUrl.code).toBe(0);
    expect(verifyUrl.stdout).toMatch(/HMAC chain checked/);
  });

  it('both programs exit 0 on SIGTERM', () => {
    expect(exits).toEqual({ sidecar: 0, collector: 0 });
  });

  it('delivers every redactable line as one record and quarantines the rest by position and reason', () => {
    const wantRecords = cases.filter((c) => c.expect === 'record').map((c) => c.id);
    const wantQuarantine = cases.filter((c) => c.expect !== 'record');
    // the sidecar's own records (its ingest_rejected report of the quarantined lines) are not cases
    const own = items.filter((i) => i.record?.source === 'sealtrail');
    expect(own.every((i) => i.record.event_type === 'ingest_rejected')).toBe(true);
    expect(items.filter((i) => i.record?.source !== 'sealtrail').map((i) => i.record?.details?.case).sort()).toEqual(wantRecords.sort());
    expect(delivered).toEqual({ records: wantRecords.length, quarantined: wantQuarantine.length });
    expect(quarantine.map((q) => ({ offset: q.offset, reason: q.reason }))).toEqual(
      wantQuarantine.map((c) => ({ offset: offsets.get(c.id)!, reason: c.expect })),
    );
  });

  it('the scan sees record content in plain text (so a miss means absent, not unreadable)', () => {
    const names = scanned.map((s) => s.name);
    for (const want of ['stopped:sidecar/buffer.db', 'stopped:collector/audit.db']) expect(names).toContain(want);
    const collectorBytes = Buffer.concat(scanned.filter((s) => s.name.includes('collector/audit.db')).map((s) => s.bytes));
    for (const c of cases.filter((x) => x.expect === 'record')) {
      expect(collectorBytes.includes(`visible-marker-${c.id}`), c.id).toBe(true);
    }
    // the positive control: findLeaks does find what is there
    expect(findLeaks(scanned, ['visible-marker-c00']).length).toBeGreaterThan(0);
  });

  for (const c of cases) {
    const outcome = c.expect === 'record' ? 'redacted and delivered' : `quarantined (${c.expect})`;
    it(`${c.id} ${c.title}: ${outcome}, the canary in no stored byte or log`, () => {
      if (c.expect === 'record') {
        const r = recordOf(c.id);
        expect(r, `record for ${c.id}`).toBeDefined();
        expect(hitsOf(r), `redaction hits in ${c.id}: ${JSON.stringify(r?.redaction)}`).toBeGreaterThan(0);
      } else {
        expect(recordOf(c.id)).toBeUndefined();
        expect(quarantine.find((q) => q.offset === offsets.get(c.id))?.reason).toBe(c.expect);
      }
      expect(findLeaks(scanned, c.needles)).toEqual([]);
    });
  }
});
