/**
 * Redaction engine v2 (docs/redaction.md): operators, scopes, keys,
 * coverage through encodings (NFKC, numbers, base64/base64url, percent),
 * validators, value groups, depth, robustness, and the whole-record probe
 * against per-string redaction.
 */
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/core/errors.js';
import { base32, compileRuleset, loadRuleset, maskText, type RuleSpec } from '../../src/sidecar/redact/index.js';
import { prng } from '../helpers/prng.js';

const KEY = Buffer.alloc(32, 7);
const KEY2 = Buffer.alloc(32, 9);
const KEYS = new Map([
  ['pseudonym-2026', KEY],
  ['other', KEY2],
]);
const EMAIL = '(?i)[a-z0-9._%+-]+@[a-z0-9.-]+\\.[a-z]{2,}';

type Hits = Record<string, number>;

function run(specs: RuleSpec[], value: unknown, ctx?: { tenant?: string }, opts: Parameters<typeof compileRuleset>[1] = {}): { out: unknown; hits: Hits } {
  const rs = compileRuleset(specs, { pseudonymKeys: KEYS, ...opts });
  const hits: Hits = {};
  const out = rs.redact(value, hits, ctx);
  // The probe must never change the answer.
  const slowHits: Hits = {};
  expect(rs.redactUnprobed(value, slowHits, ctx)).toEqual(out);
  expect(slowHits).toEqual(hits);
  return { out, hits };
}

function token(keyId: string, key: Buffer, text: string, tenant?: string): string {
  const h = createHmac('sha256', key);
  if (tenant !== undefined) h.update(`${tenant}\u0000`, 'utf8');
  h.update(text, 'utf8');
  return `pii:${keyId}:${base32(h.digest().subarray(0, 10))}`;
}

describe('operators', () => {
  it('replace: the default label and a custom one', () => {
    expect(run([{ id: 'email', pattern: EMAIL }], 'mail a@example.com').out).toBe('mail [REDACTED:email]');
    expect(run([{ id: 'email', pattern: EMAIL, operator: 'replace', replace: '<email>' }], 'mail a@example.com').out).toBe('mail <email>');
  });

  it('mask: keep_last characters of the match, the rest "*"', () => {
    const card: RuleSpec = { id: 'card', detector: 'payment_card', operator: 'mask', keepLast: 4 };
    expect(run([card], 'card 4111 1111 1111 1111 ok').out).toBe('card ***************1111 ok');
    expect(run([{ ...card, keepLast: undefined }], '4111111111111111').out).toBe('****************');
    expect(run([{ ...card, keepLast: 0 }], '4111111111111111').out).toBe('****************');
    // characters are code points
    expect(maskText('a😀bc', 2)).toBe('**bc');
    expect(maskText('abc😀', 1)).toBe('***😀');
    // a keep_last that would keep the whole match keeps nothing
    expect(maskText('abc', 3)).toBe('***');
    expect(maskText('abc', 10)).toBe('***');
  });

  it('hash: pii:<key id>:<base32 of 80 bits of HMAC-SHA-256>, deterministic', () => {
    const rule: RuleSpec = { id: 'email', pattern: EMAIL, operator: 'hash', key: 'pseudonym-2026' };
    const a = run([rule], 'from alice@example.com to bob@example.com').out as string;
    expect(a).toBe(
      `from ${token('pseudonym-2026', KEY, 'alice@example.com')} to ${token('pseudonym-2026', KEY, 'bob@example.com')}`,
    );
    expect(a).toMatch(/^from pii:pseudonym-2026:[a-z2-7]{16} to pii:pseudonym-2026:[a-z2-7]{16}$/);
    // same value, same token, in another ruleset instance too
    expect(run([rule], { x: 'alice@example.com' }).out).toEqual({ x: token('pseudonym-2026', KEY, 'alice@example.com') });
    // another key id and key: another token
    const other = run([{ ...rule, key: 'other' }], 'alice@example.com').out;
    expect(other).toBe(token('other', KEY2, 'alice@example.com'));
    expect(other).not.toBe(token('pseudonym-2026', KEY, 'alice@example.com'));
  });

  it('hash per_tenant: HMAC over tenant || 0x00 || text; tenants differ, a missing tenant is ""', () => {
    const rule: RuleSpec = { id: 'email', pattern: EMAIL, operator: 'hash', key: 'pseudonym-2026', perTenant: true };
    const acme = run([rule], 'alice@example.com', { tenant: 'acme' }).out;
    const globex = run([rule], 'alice@example.com', { tenant: 'globex' }).out;
    expect(acme).toBe(token('pseudonym-2026', KEY, 'alice@example.com', 'acme'));
    expect(globex).toBe(token('pseudonym-2026', KEY, 'alice@example.com', 'globex'));
    expect(acme).not.toBe(globex);
    expect(run([rule], 'alice@example.com', { tenant: 'acme' }).out).toBe(acme);
    expect(run([rule], 'alice@example.com').out).toBe(token('pseudonym-2026', KEY, 'alice@example.com', ''));
    // without per_tenant the tenant is ignored
    const plain = { ...rule, perTenant: false };
    expect(run([plain], 'alice@example.com', { tenant: 'acme' }).out).toBe(run([plain], 'alice@example.com', { tenant: 'globex' }).out);
  });

  it('hash with an unknown key id is redaction_unknown_key naming the key, never its bytes', () => {
    const rule: RuleSpec = { id: 'email', pattern: EMAIL, operator: 'hash', key: 'nope' };
    expect(() => compileRuleset([rule], { pseudonymKeys: KEYS })).toThrow(/unknown pseudonym key "nope"/);
    expect(() => compileRuleset([rule])).toThrow(expect.objectContaining({ code: 'redaction_unknown_key' }));
    try {
      compileRuleset([{ ...rule, key: 'pseudonym-2026' }]);
    } catch (err) {
      expect((err as Error).message).not.toContain(KEY.toString('hex'));
      expect((err as { code: string }).code).toBe('redaction_unknown_key');
    }
  });

  it('drop_field: the member goes, array elements become null, one hit per field', () => {
    const rule: RuleSpec = { id: 'ssn', pattern: '[0-9]{3}-[0-9]{2}-[0-9]{4}', operator: 'drop_field' };
    const { out, hits } = run([rule], {
      a: 'ssn 123-45-6789 and 987-65-4321',
      b: 'ok',
      list: ['x', '123-45-6789', 'y'],
      '123-45-6789': 'value of a PII key',
      nested: { c: { d: '123-45-6789' } },
      n: 1,
    });
    expect(out).toEqual({ b: 'ok', list: ['x', null, 'y'], nested: { c: {} }, n: 1 });
    expect(hits).toEqual({ ssn: 4 });
    expect(run([rule], '123-45-6789').out).toBe(null);
  });

  it('drop_field wins over other rules in the same string', () => {
    const { out, hits } = run(
      [
        { id: 'email', pattern: EMAIL },
        { id: 'ssn', pattern: '[0-9]{3}-[0-9]{2}-[0-9]{4}', operator: 'drop_field' },
      ],
      { a: 'a@example.com 123-45-6789', b: 'a@example.com' },
    );
    expect(out).toEqual({ b: '[REDACTED:email]' });
    expect(hits).toEqual({ ssn: 1, email: 1 });
  });

  it('value groups: only the captured value is replaced', () => {
    const { out, hits } = run(
      [
        { id: 'secret_kv', detector: 'secret_kv' },
        { id: 'bearer_token', detector: 'bearer_token' },
        { id: 'aws_secret_access_key', detector: 'aws_secret_access_key' },
      ],
      {
        a: 'login password=hunter2hunter2 ok',
        b: 'Authorization: Bearer 7f3c9a1e2b4d6f8091a2b3c4d5e6f708',
        c: 'aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY end',
      },
    );
    expect(out).toEqual({
      a: 'login password=[REDACTED:secret_kv] ok',
      b: 'Authorization: Bearer [REDACTED:bearer_token]',
      c: 'aws_secret_access_key=[REDACTED:aws_secret_access_key] end',
    });
    expect(hits).toEqual({ secret_kv: 1, bearer_token: 1, aws_secret_access_key: 1 });
  });

  it('value groups work with mask and hash too', () => {
    expect(run([{ id: 'kv', detector: 'secret_kv', operator: 'mask', keepLast: 2 }], 'password=hunter2').out).toBe('password=*****r2');
    expect(run([{ id: 'kv', detector: 'secret_kv', operator: 'hash', key: 'other' }], 'password=hunter2').out).toBe(
      `password=${token('other', KEY2, 'hunter2')}`,
    );
  });
});

describe('scopes and keys', () => {
  const email = (scope: RuleSpec['scope'], extra: Partial<RuleSpec> = {}): RuleSpec[] => [{ id: 'email', pattern: EMAIL, scope, ...extra }];
  const record = {
    trace_id: 'a@example.com',
    details: { who: 'b@example.com', deep: { x: ['c@example.com'] } },
    tool: { arguments: { to: 'd@example.com' }, name: 'e@example.com' },
    other: 'f@example.com',
  };

  it('include with ** covers the subtree, including the node itself', () => {
    const { out } = run(email({ include: ['$.details.**'] }), { ...record, details2: 'g@example.com', details: 'h@example.com' });
    expect(out).toEqual({ ...record, details2: 'g@example.com', details: '[REDACTED:email]' });
    const { out: out2 } = run(email({ include: ['$.details.**', '$.tool.arguments.**'] }), record);
    expect(out2).toEqual({
      ...record,
      details: { who: '[REDACTED:email]', deep: { x: ['[REDACTED:email]'] } },
      tool: { arguments: { to: '[REDACTED:email]' }, name: 'e@example.com' },
    });
  });

  it('exclude names exact paths; everything else stays in scope', () => {
    const { out } = run(email({ exclude: ['$.trace_id', '$.details.deep.**'] }), record);
    expect(out).toEqual({
      trace_id: 'a@example.com',
      details: { who: '[REDACTED:email]', deep: { x: ['c@example.com'] } },
      tool: { arguments: { to: '[REDACTED:email]' }, name: '[REDACTED:email]' },
      other: '[REDACTED:email]',
    });
  });

  it('* is exactly one member or array element; ** any depth including none', () => {
    expect(run(email({ include: ['$.*.who'] }), record).out).toEqual({ ...record, details: { ...record.details, who: '[REDACTED:email]' } });
    expect(run(email({ include: ['$.*.*.to'] }), record).out).toEqual({ ...record, tool: { ...record.tool, arguments: { to: '[REDACTED:email]' } } });
    expect(run(email({ include: ['$.details.deep.x.*'] }), record).out).toEqual({
      ...record,
      details: { ...record.details, deep: { x: ['[REDACTED:email]'] } },
    });
    expect(run(email({ include: ['$.details.deep.x[0]', '$.**.other'] }), record).out).toEqual({
      ...record,
      other: '[REDACTED:email]',
      details: { ...record.details, deep: { x: ['[REDACTED:email]'] } },
    });
    expect(run(email({ include: ['$["tool"][*]["name"]', '$.**.name'] }), record).out).toEqual({
      ...record,
      tool: { ...record.tool, name: '[REDACTED:email]' },
    });
  });

  it('a key is in scope at the path of the member it names', () => {
    const value = { details: { 'k@example.com': 1, inner: { 'j@example.com': 2 } }, 'top@example.com': 3 };
    expect(run(email({ include: ['$.details.*'] }), value).out).toEqual({
      details: { '[REDACTED:email]': 1, inner: { 'j@example.com': 2 } },
      'top@example.com': 3,
    });
  });

  it('keys: false leaves object keys alone', () => {
    const value = { 'k@example.com': 'v@example.com' };
    expect(run(email(undefined, { keys: false }), value).out).toEqual({ 'k@example.com': '[REDACTED:email]' });
    expect(run(email(undefined), value).out).toEqual({ '[REDACTED:email]': '[REDACTED:email]' });
  });

  it('a broad rule scoped to member names only runs where such members exist', () => {
    const field: RuleSpec = { id: 'secret_field', pattern: '[\\s\\S]+', keys: false, scope: { include: ['$.**.password', '$.**.token'] } };
    const rs = compileRuleset([{ id: 'email', pattern: EMAIL }, field]);
    const plain = { a: 'nothing here', password2: 'x', list: [{ tokens: 5 }] };
    expect(rs.redact(plain)).toBe(plain);
    const hits: Hits = {};
    expect(rs.redact({ a: 'x', auth: { password: 'hunter2', token: 12345, other: 'y' }, b: 'z@example.com' }, hits)).toEqual({
      a: 'x',
      auth: { password: '[REDACTED:secret_field]', token: '[REDACTED:secret_field]', other: 'y' },
      b: '[REDACTED:email]',
    });
    expect(hits).toEqual({ secret_field: 2, email: 1 });
  });
});

describe('coverage', () => {
  const pii = loadRuleset(['config/redaction/pii-basic.yaml']);
  const packs = loadRuleset(['config/redaction/pii-basic.yaml', 'config/redaction/secrets.yaml']);
  const redact = (value: unknown, rs = pii): { out: unknown; hits: Hits } => {
    const hits: Hits = {};
    const out = rs.redact(value, hits);
    const h2: Hits = {};
    expect(rs.redactUnprobed(value, h2)).toEqual(out);
    expect(h2).toEqual(hits);
    return { out, hits };
  };

  it('matches NFKC-normalised text: a full-width SSN; the output is the NFKC form with redactions', () => {
    expect(redact({ note: 'SSN １２３-４５-６７８９ on file' })).toEqual({ out: { note: 'SSN [REDACTED:us_ssn] on file' }, hits: { us_ssn: 1 } });
    // full-width "＠" and letters
    expect(redact('ｍａｉｌ ａｌｉｃｅ＠ｅｘａｍｐｌｅ．ｃｏｍ').out).toBe('mail [REDACTED:email]');
    // non-ASCII text without a match is left exactly as it was (not normalised)
    const s = 'ｆｕｌｌ ｗｉｄｔｈ ｔｅｘｔ, café';
    expect(redact(s).out).toBe(s);
    // nfkc: false
    const off = compileRuleset([{ id: 'us_ssn', detector: 'us_ssn' }], { decode: { nfkc: false } });
    expect(off.redact('SSN １２３-４５-６７８９')).toBe('SSN １２３-４５-６７８９');
  });

  it('an SSN or a card number sent as a JSON number becomes the redacted string', () => {
    expect(redact(JSON.parse('{"ssn":123456789,"card":4111111111111111,"n":42,"f":1.5}'))).toEqual({
      out: { ssn: '[REDACTED:us_ssn]', card: '[REDACTED:payment_card]', n: 42, f: 1.5 },
      hits: { us_ssn: 1, payment_card: 1 },
    });
    expect(redact([4111111111111111, 5]).out).toEqual(['[REDACTED:payment_card]', 5]);
  });

  it('an email inside a base64 run: the whole run is replaced and counted once', () => {
    const b64 = Buffer.from('contact alice@example.com today').toString('base64');
    expect(b64).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(redact({ blob: `data ${b64} end` })).toEqual({ out: { blob: 'data [REDACTED:email] end' }, hits: { email: 1 } });
    expect(redact({ blob: b64 }).out).toEqual({ blob: '[REDACTED:email]' });
    // in a URL path segment
    expect(redact(`https://x.example/api/v1/${Buffer.from('alice@example.com').toString('base64url')}/view`).out).toBe(
      'https://x.example/api/v1/[REDACTED:email]/view',
    );
  });

  it('an email inside a base64url run', () => {
    const url = Buffer.from('~~~ bob.smith@example.org ~~~').toString('base64url');
    expect(url).toMatch(/[-_]/);
    expect(redact({ t: `token=${url}&x=1` })).toEqual({ out: { t: 'token=[REDACTED:email]&x=1' }, hits: { email: 1 } });
  });

  it('base64 nested in base64 is found; binary base64 and short runs are left alone', () => {
    const inner = Buffer.from('alice@example.com').toString('base64');
    const outer = Buffer.from(`payload=${inner}`).toString('base64');
    expect(redact(outer).out).toBe('[REDACTED:email]');
    const binary = Buffer.from([0xff, 0xfe, 0x00, 0x81, 0x40, 0x41, 0x42, 0x43, 0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0xf0]).toString('base64');
    expect(redact(binary).out).toBe(binary);
    const hex = '9f1c2b3a4d5e6f708192a3b4c5d6e7f8';
    expect(redact({ trace_id: hex }).out).toEqual({ trace_id: hex });
  });

  it('decode.base64: false turns base64 scanning off', () => {
    const b64 = Buffer.from('alice@example.com').toString('base64');
    const off = compileRuleset([{ id: 'email', detector: 'email' }], { decode: { base64: false } });
    expect(off.redact(b64)).toBe(b64);
  });

  it('percent-encoded text is decoded; the decoded text is the output', () => {
    expect(redact({ q: 'mailto:alice%40example.com?subject=hi%20there' })).toEqual({
      out: { q: 'mailto:[REDACTED:email]?subject=hi there' },
      hits: { email: 1 },
    });
    // double encoding, an escaped "+" and invalid escapes left as they are
    expect(redact('to=alice%2540example.com').out).toBe('to=[REDACTED:email]');
    expect(redact('call %2B14155552671').out).toBe('call [REDACTED:phone_e164]');
    expect(redact('100%zz alice%40example.com %FF%').out).toBe('100%zz [REDACTED:email] %FF%');
    // percent-encoded UTF-8 of full-width digits: decoded, then NFKC
    const fw = encodeURIComponent('１２３-４５-６７８９');
    expect(redact(`ssn=${fw}`).out).toBe('ssn=[REDACTED:us_ssn]');
    // no match: the string stays encoded
    expect(redact('a%20b%20c').out).toBe('a%20b%20c');
    const off = compileRuleset([{ id: 'email', detector: 'email' }], { decode: { percent: false } });
    expect(off.redact('alice%40example.com')).toBe('alice%40example.com');
  });

  it('a failed validator leaves the match alone and scanning goes on: a valid card after an invalid one', () => {
    expect(redact('cards 4111 1111 1111 1112 and 4111 1111 1111 1111').out).toBe('cards 4111 1111 1111 1112 and [REDACTED:payment_card]');
    expect(redact('4111111111111112 4111111111111111').out).toBe('4111111111111112 [REDACTED:payment_card]');
    const rs = compileRuleset([{ id: 'card', pattern: '[0-9]{16}', validator: 'luhn' }]);
    // overlapping candidates: the valid one starts one digit later
    expect(rs.redact('94111111111111111')).toBe('9[REDACTED:card]');
    expect(rs.redact('4111111111111112')).toBe('4111111111111112');
  });

  it('a validator failure lets a later rule match at the same place', () => {
    const rs = compileRuleset([
      { id: 'card', pattern: '[0-9]{16}', validator: 'luhn' },
      { id: 'digits', pattern: '[0-9]{16}' },
    ]);
    const hits: Hits = {};
    expect(rs.redact('4111111111111112 4111111111111111', hits)).toBe('[REDACTED:digits] [REDACTED:card]');
    expect(hits).toEqual({ digits: 1, card: 1 });
  });

  it('an escaped "@" in JSON text is caught, because redaction runs on decoded values', () => {
    const decoded = JSON.parse('{"contact":"alice\\u0040example.com","\\u0061lice\\u0040example.com":1}') as unknown;
    expect(redact(decoded).out).toEqual({ contact: '[REDACTED:email]', '[REDACTED:email]': 1 });
  });

  it('secrets and PII together through the shipped packs', () => {
    const { out, hits } = redact(
      {
        note: 'use ghp_16C7e42F292c6912E7710c838347Ae178B4a or AKIAIOSFODNN7EXAMPLE',
        headers: { Authorization: 'Bearer abc.def.ghi', password: 'hunter2' },
        card: 4111111111111111,
      },
      packs,
    );
    expect(out).toEqual({
      note: 'use [REDACTED:github_token] or [REDACTED:aws_access_key_id]',
      headers: { Authorization: '[REDACTED:secret_field]', password: '[REDACTED:secret_field]' },
      card: '[REDACTED:payment_card]',
    });
    expect(hits).toEqual({ github_token: 1, aws_access_key_id: 1, secret_field: 2, payment_card: 1 });
  });
});

describe('depth and robustness', () => {
  const email = compileRuleset([{ id: 'email', pattern: EMAIL }]);
  const nest = (n: number, leaf: unknown, obj: boolean): unknown => {
    let v = leaf;
    for (let i = 0; i < n; i++) v = obj ? { k: v } : [v];
    return v;
  };
  const deepError = (fn: () => unknown): InputError => {
    try {
      fn();
    } catch (err) {
      expect(err).toBeInstanceOf(InputError);
      return err as InputError;
    }
    throw new Error('expected redact_too_deep');
  };

  it('depth 64 is fine, 65 throws redact_too_deep without data', () => {
    for (const obj of [true, false]) {
      expect(JSON.stringify(email.redact(nest(64, 'alice@example.com', obj)))).toContain('[REDACTED:email]');
      const err = deepError(() => email.redact(nest(65, 'alice@example.com', obj)));
      expect(err.code).toBe('redact_too_deep');
      expect(err.message).not.toContain('alice');
      expect(() => email.redactUnprobed(nest(65, 'x', obj))).toThrow(InputError);
    }
  });

  it('max_depth is configurable', () => {
    const rs = compileRuleset([{ id: 'email', pattern: EMAIL }], { maxDepth: 3 });
    expect(rs.redact(nest(3, 'a@example.com', true))).toEqual(nest(3, '[REDACTED:email]', true));
    expect(deepError(() => rs.redact(nest(4, 1, true))).message).toBe('value nests deeper than 3 levels');
    expect(() => compileRuleset([], { maxDepth: 0 })).toThrow(/max_depth/);
  });

  it('lone surrogates do not crash and survive around matches', () => {
    const rs = loadRuleset(['config/redaction/pii-basic.yaml', 'config/redaction/secrets.yaml']);
    expect(rs.redact('\ud800alice@example.com\udc00')).toBe('\ud800[REDACTED:email]\udc00');
    expect(rs.redact({ '\udfff': '\ud800', k: 'x\udbff 4111 1111 1111 1111 \udc00y' })).toEqual({
      '\udfff': '\ud800',
      k: 'x\udbff [REDACTED:payment_card] \udc00y',
    });
    expect(rs.redact('１２３-４５-６７８９\ud800')).toBe('[REDACTED:us_ssn]\ud800');
    expect(rs.redact('alice%40example.com\ud800')).toBe('[REDACTED:email]\ud800');
    const r = prng(11);
    for (let i = 0; i < 300; i++) {
      let s = '';
      for (let j = 0; j < 40; j++) s += String.fromCharCode(r() < 0.3 ? 0xd800 + Math.floor(r() * 0x800) : 32 + Math.floor(r() * 200));
      expect(rs.redact({ [s]: s })).toEqual(rs.redactUnprobed({ [s]: s }));
    }
  });

  it('very long strings (1 MB) complete', () => {
    const rs = loadRuleset(['config/redaction/pii-basic.yaml', 'config/redaction/secrets.yaml']);
    const mb = 1_000_000;
    const plain = 'lorem ipsum '.repeat(mb / 12);
    expect(rs.redact({ t: plain })).toEqual({ t: plain });
    const withPii = `${'x'.repeat(mb)} alice@example.com`;
    expect(rs.redact(withPii)).toBe(`${'x'.repeat(mb)} [REDACTED:email]`);
    const b64 = Buffer.from('a@'.repeat(mb / 4)).toString('base64');
    expect(typeof rs.redact(b64)).toBe('string');
    expect(typeof rs.redact('%40'.repeat(mb / 3))).toBe('string');
    expect(typeof rs.redact('１-'.repeat(mb / 2))).toBe('string');
    expect(typeof rs.redact('4 '.repeat(mb / 2))).toBe('string');
  });
});

describe('the whole-record probe gives what per-string redaction gives', () => {
  const rs = loadRuleset(['config/redaction/pii-basic.yaml', 'config/redaction/secrets.yaml']);
  const PIECES = [
    'bob@example.com',
    '123-45-6789',
    '１２３-４５-６７８９',
    '4111 1111 1111 1111',
    '4111 1111 1111 1112',
    '+447700900123',
    '10.0.0.1',
    Buffer.from('carol@example.org').toString('base64'),
    Buffer.from('~~ carol@example.org').toString('base64url'),
    'dave%40example.com',
    '%2B14155552671',
    'password=hunter2',
    'Bearer abcdef0123456789',
    'ghp_16C7e42F292c6912E7710c838347Ae178B4a',
    'plain text',
    'x',
    '',
    '%',
    '%4',
    '@',
    '.com',
    '\u0000',
    'ü',
    '😀',
    '\ud800',
    '9f1c2b3a4d5e6f708192a3b4c5d6e7f8',
    'QUJDREVGR0hJSktMTU5PUA==',
    'token',
    'password',
  ];
  const randomString = (r: () => number): string => {
    let s = '';
    for (let i = Math.floor(r() * 4); i > 0; i--) s += PIECES[Math.floor(r() * PIECES.length)] + (r() < 0.5 ? ' ' : '');
    return s;
  };
  const randomValue = (r: () => number, depth = 0): unknown => {
    const k = r();
    if (depth > 3 || k < 0.4) return randomString(r);
    if (k < 0.5) return Math.floor(r() * 1e10);
    if (k < 0.55) return [123456789, 4111111111111111, 42][Math.floor(r() * 3)];
    if (k < 0.6) return r() < 0.5;
    if (k < 0.75) return Array.from({ length: Math.floor(r() * 4) }, () => randomValue(r, depth + 1));
    const o: Record<string, unknown> = {};
    for (let i = Math.floor(r() * 4); i > 0; i--) o[r() < 0.2 ? 'password' : randomString(r) || `k${i}`] = randomValue(r, depth + 1);
    return o;
  };

  it('on 2,000 random records with encoded PII', () => {
    const r = prng(2026);
    let changed = 0;
    for (let i = 0; i < 2000; i++) {
      const v = randomValue(r);
      const h1: Hits = {};
      const h2: Hits = {};
      const fast = rs.redact(v, h1, { tenant: 't' });
      const slow = rs.redactUnprobed(v, h2, { tenant: 't' });
      expect(fast).toEqual(slow);
      expect(h1).toEqual(h2);
      if (fast !== v) changed++;
    }
    expect(changed).toBeGreaterThan(500);
  });

  it('returns the input itself when nothing matches', () => {
    const clean = { a: 'hello', b: [1, 2, { c: 'world' }], trace_id: '9f1c2b3a4d5e6f708192a3b4c5d6e7f8' };
    expect(rs.redact(clean)).toBe(clean);
  });
});

describe('hostile record shapes', () => {
  it('many keys redacted to one label: every value kept under its own label (speed: bench, not here)', () => {
    const rs = compileRuleset([{ id: 'email', pattern: EMAIL }]);
    const o: Record<string, number> = { '[REDACTED:email]#3': -1 };
    const n = 20_000;
    for (let i = 0; i < n; i++) o[`u${i}@ex.co`] = i;
    const hits: Record<string, number> = {};
    const r = rs.redact(o, hits) as Record<string, number>;
    expect(hits).toEqual({ email: n });
    expect(Object.keys(r)).toHaveLength(n + 1);
    expect(r['[REDACTED:email]#3']).toBe(-1); // an unchanged key keeps its name
    expect(r['[REDACTED:email]']).toBe(0);
    expect(r['[REDACTED:email]#2']).toBe(1);
    expect(r['[REDACTED:email]#4']).toBe(2);
    expect(new Set(Object.values(r)).size).toBe(n + 1);
  });

  it('a secret value continues past a lone surrogate (no part of it survives)', () => {
    const rs = compileRuleset([{ id: 'kv', detector: 'secret_kv' }]);
    for (const v of ['password=ab\uD800cdefgh', 'password=\uDC00hunter2', 'password=hunter\uDBFF']) {
      const out = JSON.stringify(rs.redact({ v }));
      expect(out).not.toContain('cdefgh');
      expect(out).not.toContain('hunter');
      expect(rs.redact({ v })).toEqual(rs.redactUnprobed({ v }));
    }
  });

  it('probe and per-string redaction agree on lone surrogates and NUL at string edges', () => {
    const rs = compileRuleset([
      { id: 'head', pattern: '^SECRET' },
      { id: 'tail', pattern: 'TAIL$' },
      { id: 'word', pattern: '\\bK[0-9]{4}\\b' },
      { id: 'email', pattern: EMAIL },
    ]);
    const rand = prng(7);
    const atoms = ['SECRET', 'TAIL', 'K1234', 'a@b.co', '\u0000', '\uD800', '\uDC00', '\uD83D\uDE00', 'x', ' ', '@', '.co'];
    for (let i = 0; i < 3000; i++) {
      const parts: string[] = [];
      const k = 1 + Math.floor(rand() * 5);
      for (let j = 0; j < k; j++) {
        let s = '';
        const m = Math.floor(rand() * 5);
        for (let q = 0; q < m; q++) s += atoms[Math.floor(rand() * atoms.length)]!;
        parts.push(s);
      }
      const value = { [parts[0]!]: parts.slice(1) };
      const h1: Record<string, number> = {};
      const h2: Record<string, number> = {};
      expect(rs.redact(value, h1), JSON.stringify(value)).toEqual(rs.redactUnprobed(value, h2));
      expect(h1).toEqual(h2);
    }
  });

  it('a NUL inside a string neither hides a match nor moves it to a neighbour', () => {
    const rs = compileRuleset([{ id: 'email', pattern: EMAIL }]);
    const value = { a: 'x\u0000', b: 'jane@example.com\u0000y', c: '\u0000\u0000', d: 'clean\u0000text' };
    expect(rs.redact(value)).toEqual({ a: 'x\u0000', b: '[REDACTED:email]\u0000y', c: '\u0000\u0000', d: 'clean\u0000text' });
  });
});
