import { describe, expect, it } from 'vitest';
import { compileRuleset, loadRuleset, type CompiledRuleset } from '../../src/sidecar/redact/index.js';
import { prng } from '../helpers/prng.js';

// The raw probe may only make a clean record cheaper: with the line text or
// without, redact() must give the same value and the same hits.
function same(rs: CompiledRuleset, text: string, tenant = 't1'): unknown {
  const v = JSON.parse(text);
  const h1: Record<string, number> = {};
  const h2: Record<string, number> = {};
  const withText = rs.redact(v, h1, { tenant, text });
  const without = rs.redact(v, h2, { tenant });
  const reference = rs.redactUnprobed(v, {}, { tenant });
  expect(withText).toEqual(without);
  expect(withText).toEqual(reference);
  expect(h1).toEqual(h2);
  return withText;
}

const PIECES = [
  'bob@example.com', 'x', '123-45-6789', '078-05-1120', '4111 1111 1111 1111', '+447700900123', '10.0.0.1', 'plain text',
  'a@b', '@', '.com', '555', '-', ' ', 'ü', '１２３', '%40', 'bob%40example.com', 'Ym9iQGV4YW1wbGUuY29t', 'password=hunter2',
  'AKIAIOSFODNN7EXAMPLE', 'ghp_16C7e42F292c6912E7710c838347Ae178B4a', '"', '\\', '\n', '\u2028', '12', '1.2.3', 'eyJhbGciOiJIUzI1NiJ9',
  '4bf92f3577b34da6a3ce929d0e0e4736', 'Bearer abcdefghijklmnop', '-----BEGIN RSA PRIVATE KEY-----', 'password', 'secret',
];

function randomString(r: () => number): string {
  let s = '';
  for (let n = Math.floor(r() * 4); n > 0; n--) s += PIECES[Math.floor(r() * PIECES.length)];
  return s;
}

const NUMBERS = [0, -0, 7, 123456789, 78051120, 4111111111111111, 12345678901234567890, 1e21, 1.5, 0.1, 2.87650000e8, -42, 1e-7, 5e15];

function randomValue(r: () => number, depth = 0): unknown {
  const k = r();
  if (depth > 3 || k < 0.35) return randomString(r);
  if (k < 0.5) return NUMBERS[Math.floor(r() * NUMBERS.length)];
  if (k < 0.55) return r() < 0.5;
  if (k < 0.6) return null;
  if (k < 0.75) return Array.from({ length: Math.floor(r() * 4) }, () => randomValue(r, depth + 1));
  const o: Record<string, unknown> = {};
  for (let i = Math.floor(r() * 5); i > 0; i--) o[randomString(r) || `k${i}`] = randomValue(r, depth + 1);
  return o;
}

/** Number literals as a producer might write them (JSON.stringify never writes 1E5 or 1.50). */
function literalVariants(text: string, r: () => number): string {
  return text.replace(/(?<=[:[,])(-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)(?=[,}\]])/g, (m) => {
    const k = r();
    if (k < 0.2 && /^\d+$/.test(m)) return `${m}.0`;
    if (k < 0.3 && /^\d+$/.test(m)) return `${m}E0`;
    if (k < 0.4) return ` ${m} `;
    return m;
  });
}

describe('redaction with the line text (raw probe)', () => {
  const packs = loadRuleset(['config/redaction/pii-basic.yaml', 'config/redaction/secrets.yaml']);

  it('gives exactly what the walk gives, on 3,000 random records and their hand-written number forms', () => {
    const r = prng(20261122);
    for (let i = 0; i < 3000; i++) {
      const v = { event_type: 'tool_invoked', details: randomValue(r) };
      const text = JSON.stringify(v, null, i % 7 === 0 ? 2 : undefined);
      same(packs, text);
      same(packs, literalVariants(text, r));
    }
  });

  it('answers clean for a plain agent event and leaves it untouched', () => {
    const text = JSON.stringify({
      event_type: 'tool_invoked',
      time: '2026-11-22T00:00:00.137Z',
      tool: { name: 'claims.search', arguments: { claim_id: 'CLM-100012', limit: 20, score: 0.93 } },
      trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
    });
    const v = JSON.parse(text);
    expect(packs.redact(v, {}, { text })).toBe(v);
  });

  it('does not let an anchored rule miss a whole string, key or number', () => {
    const rs = compileRuleset([
      { id: 'whole', pattern: '^secret$', keys: true },
      { id: 'nine', pattern: '\\A\\d{9}\\z' },
    ]);
    expect(same(rs, '{"a":"secret","b":"not secret"}')).toEqual({ a: '[REDACTED:whole]', b: 'not secret' });
    expect(same(rs, '{"secret": 1}')).toEqual({ '[REDACTED:whole]': 1 });
    expect(same(rs, '{"n": 123456789}')).toEqual({ n: '[REDACTED:nine]' });
    expect(same(rs, '[123456789]')).toEqual(['[REDACTED:nine]']);
    expect(same(rs, '123456789')).toBe('[REDACTED:nine]');
  });

  it('judges numbers by their string form, not their literal', () => {
    const rs = compileRuleset([{ id: 'zeros', pattern: '0{20}' }, { id: 'card', detector: 'payment_card' }]);
    // 1e20 is "100000000000000000000" as a string: twenty zeros the literal does not have
    expect(same(rs, '{"n": 1e20}')).toEqual({ n: '1[REDACTED:zeros]' });
    expect(same(rs, '{"n": 1E20}')).toEqual({ n: '1[REDACTED:zeros]' });
    expect(same(rs, '{"n": 100000000000000000000.0}')).toEqual({ n: '1[REDACTED:zeros]' });
    expect(same(rs, '{"n": [1, 1e+20]}')).toEqual({ n: [1, '1[REDACTED:zeros]'] });
    // a card number written with an exponent
    expect(same(rs, '{"n": 4.111111111111111e15}')).toEqual({ n: '[REDACTED:card]' });
    expect(same(rs, '{"n": 4111111111111111}')).toEqual({ n: '[REDACTED:card]' });
    // every place a number can stand, with and without whitespace, at the top level too
    for (const text of ['1e20', ' 1e20 ', '[1e20]', '[ 1 ,\n1e20\n]', '{"a":{"b":1e20}}', '{"a":1,"b":1e+20}', '{"a":"x:1e20,y","b":1e20}']) {
      expect(JSON.stringify(same(rs, text))).toContain('[REDACTED:zeros]');
    }
  });

  it('sees escapes, non-ASCII, percent-encoding and base64 as the walk does', () => {
    same(packs, '{"a":"bob\\u0040example.com"}');
    same(packs, '{"a":"\\ud800 bob@example.com"}');
    same(packs, '{"a":"１２３-４５-６７８９ 078-05-1120"}');
    same(packs, '{"a":"bob%40example.com"}');
    same(packs, `{"a":"${Buffer.from('bob@example.com').toString('base64')}"}`);
    same(packs, `{"a":"${Buffer.from(Buffer.from('bob@example.com').toString('base64')).toString('base64')}"}`);
    expect(JSON.stringify(same(packs, '{"a":"x bob%40example.com y"}'))).not.toContain('bob');
  });

  it('runs rules triggered by a member name, and the depth limit, as the walk does', () => {
    expect(same(packs, '{"password":"correct horse battery staple"}')).not.toEqual({ password: 'correct horse battery staple' });
    expect(same(packs, '{"user":{"apiKey":"0123456789"}}')).not.toEqual({ user: { apiKey: '0123456789' } });
    const deep = `${'['.repeat(70)}1${']'.repeat(70)}`;
    expect(() => packs.redact(JSON.parse(deep), {}, { text: deep })).toThrow(/deeper than/);
    const ok = `${'['.repeat(60)}1${']'.repeat(60)}`;
    same(packs, ok);
  });
});

describe('the raw probe on a stream where most records hold personal data', () => {
  it('is asked of one record in 16 while fewer than half of those asked were clean, and of every record again when most are', async () => {
    const { RawProbe } = await import('../../src/sidecar/redact/raw-probe.js');
    const rs = loadRuleset(['config/redaction/pii-basic.yaml']);
    let asked = 0;
    const original = RawProbe.prototype.check;
    RawProbe.prototype.check = function (this: InstanceType<typeof RawProbe>, text: string) {
      asked++;
      return original.call(this, text);
    };
    try {
      const dirty = '{"event_type":"tool_invoked","note":"mail bob@example.com"}';
      const clean = '{"event_type":"tool_invoked","note":"nothing here"}';
      // (15/16)^11 < 0.5: the first 11 are asked, then one in 16.
      for (let i = 0; i < 11; i++) expect(same(rs, dirty)).toEqual({ event_type: 'tool_invoked', note: 'mail [REDACTED:email]' });
      expect(asked).toBe(11);
      for (let i = 0; i < 160; i++) same(rs, dirty);
      expect(asked).toBe(11 + 10);
      // Clean records while skipping go the exact path (same result); the
      // sampled ones raise the average until the probe is asked of every record.
      let cleanSeen = 0;
      while (asked - 21 < 20 && cleanSeen < 2000) {
        expect(same(rs, clean)).toEqual({ event_type: 'tool_invoked', note: 'nothing here' });
        cleanSeen++;
      }
      expect(cleanSeen).toBeLessThan(400);
      const before = asked;
      for (let i = 0; i < 5; i++) same(rs, clean);
      expect(asked).toBe(before + 5);
    } finally {
      RawProbe.prototype.check = original;
    }
  });
});
