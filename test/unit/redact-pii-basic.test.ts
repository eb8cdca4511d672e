import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadRuleset } from '../../src/sidecar/redact/index.js';

const PACK = join(import.meta.dirname, '../../config/redaction/pii-basic.yaml');
const rs = loadRuleset([PACK]);

function redact(s: string): { out: unknown; hits: Record<string, number> } {
  const hits: Record<string, number> = {};
  return { out: rs.redact(s, hits), hits };
}

const CASES: Record<string, { positive: string[]; negative: string[] }> = {
  email: {
    positive: ['alice@example.com', 'Bob.Smith+tag@Mail.Example.CO.UK', 'x_y%z-1@sub.domain-1.io', 'ALICE@EXAMPLE.COM'],
    negative: ['alice@localhost', '@example.com', 'alice at example dot com', 'user@.', 'a@b.c', 'no-at-sign.example.com'],
  },
  us_ssn: {
    // The detector also takes 9 digits standing alone (options: {bare: true}, the pack default).
    positive: ['123-45-6789', '001-01-0001', '899-99-9999', '665-12-3456', '667-12-3456', '078-05-1120', '123456789'],
    negative: [
      '000-12-3456', // area 000 is never issued
      '666-12-3456', // nor 666
      '900-12-3456', // nor 9xx
      '999-99-9999',
      '123-00-4567', // group 00
      '123-45-0000', // serial 0000
      '123-45-67890',
      '1234-56-7890',
      '12-345-6789',
    ],
  },
  payment_card: {
    positive: [
      '4111111111111111',
      '4111 1111 1111 1111',
      '4111-1111-1111-1111',
      '378282246310005', // Amex, 15
      '3782 822463 10005',
      '5555555555554444',
      '2223003122003222', // Mastercard 2-series
      '6011111111111117',
      '4222222222222', // 13 digits
      '6011000000000000001', // 19 digits (Luhn-valid: the detector checks Luhn)
    ],
    negative: [
      '1718000000000', // epoch milliseconds
      '1718000000000123', // epoch microseconds
      '411111111111', // 12 digits
      '41111111111111111111', // 20 digits
      '7111111111111111', // no issuer starts with 7 in this cut
      '4111--1111-1111-1111',
      '4111  1111 1111 1111',
    ],
  },
  phone_e164: {
    positive: ['+14155552671', '+442071838750', '+12345678', '+123456789012345', '+4915112345678'],
    negative: ['+1234567', '+1234567890123456', '+0123456789', '14155552671', '+1 415 555 2671', '+'],
  },
  ipv4: {
    positive: ['10.0.0.1', '192.168.1.254', '255.255.255.255', '0.0.0.0', '8.8.8.8'],
    negative: ['256.1.1.1', '1.2.3', '1.2.3.256', '999.1.1.1', '01.2.3.4', '1.2.3.04', 'a.b.c.d'],
  },
};

describe('pii-basic', () => {
  it('ships these rules first, in this order', () => {
    // The detector-based pack keeps the five original ids in place and adds more after them.
    expect(rs.ruleIds.slice(0, Object.keys(CASES).length)).toEqual(Object.keys(CASES));
  });

  for (const [id, { positive, negative }] of Object.entries(CASES)) {
    describe(id, () => {
      it.each(positive)('redacts %j on its own and inside text', (value) => {
        expect(redact(value)).toEqual({ out: `[REDACTED:${id}]`, hits: { [id]: 1 } });
        expect(redact(`Contact ${value} now`)).toEqual({ out: `Contact [REDACTED:${id}] now`, hits: { [id]: 1 } });
        expect(redact(`(${value}),`)).toEqual({ out: `([REDACTED:${id}]),`, hits: { [id]: 1 } });
      });

      // Another rule of the pack may take the text (14155552671 is a NANP number); this one must not.
      it.each(negative)('%j is not a match for this rule', (value) => {
        expect(redact(value).hits[id]).toBeUndefined();
        expect(redact(`Contact ${value} now`).hits[id]).toBeUndefined();
      });
    });
  }

  it('several kinds in one record, counted per rule', () => {
    const hits: Record<string, number> = {};
    const out = rs.redact(
      {
        user: 'alice@example.com',
        note: 'SSN 123-45-6789, card 4111 1111 1111 1111, call +14155552671 from 10.0.0.1 or bob@example.org',
        card_as_number: 4111111111111111,
        ts: 1718000000000,
        ok: true,
      },
      hits,
    );
    expect(out).toEqual({
      user: '[REDACTED:email]',
      note: 'SSN [REDACTED:us_ssn], card [REDACTED:payment_card], call [REDACTED:phone_e164] from [REDACTED:ipv4] or [REDACTED:email]',
      card_as_number: '[REDACTED:payment_card]',
      ts: 1718000000000,
      ok: true,
    });
    expect(hits).toEqual({ email: 2, us_ssn: 1, payment_card: 2, phone_e164: 1, ipv4: 1 });
  });

  it('an SSN sent as a JSON number becomes the redacted string; other numbers stay numbers', () => {
    expect(rs.redact({ ssn: 123456789, n: 666123456 })).toEqual({ ssn: '[REDACTED:us_ssn]', n: 666123456 });
  });

  it('an escaped "@" in JSON text is caught, because redaction runs on decoded values', () => {
    const decoded = JSON.parse('{"contact":"alice\\u0040example.com","\\u0061lice\\u0040example.com":1}') as unknown;
    expect(rs.redact(decoded)).toEqual({ contact: '[REDACTED:email]', '[REDACTED:email]': 1 });
  });
});
