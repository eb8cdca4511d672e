/**
 * Built-in detectors for personal data: contact details, national and
 * financial identifiers, network addresses and medical record numbers.
 * Each function builds one DetectorDef from already-checked options
 * (detectors.ts reads them); the RE2 rules of detectors.ts's header apply
 * to every pattern here.
 */
import { labelLiteral, labelPattern, type DetectorDef } from './detector-kit.js';

const OCTET = '(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])';
const IPV4 = `${OCTET}(?:\\.${OCTET}){3}`;

export function email(): DetectorDef {
  return {
    id: 'email',
    description: 'Email addresses (ASCII local part and domain, TLD of 2+ letters)',
    // Bounded label and part lengths (RFC 5321 limits) keep RE2's program small.
    pattern: "(?i)\\b[a-z0-9._%+'-]{1,64}@(?:[a-z0-9-]{1,63}\\.){1,8}[a-z]{2,63}\\b",
    requires: ['@'],
  };
}

export function phoneE164(separators: boolean): DetectorDef {
  return {
    id: 'phone_e164',
    description: separators
      ? 'International phone numbers: "+", then 8 to 15 digits, single spaces, dots or dashes allowed between digits'
      : 'Phone numbers in E.164 form: "+", then 8 to 15 digits',
    pattern: separators ? '\\+[1-9](?:[ .-]?[0-9]){7,14}\\b' : '\\+[1-9][0-9]{7,14}\\b',
    requires: ['+'],
  };
}

export function phoneNanp(): DetectorDef {
  // NANP numbering plan: area code and exchange start with 2-9 and are never
  // N11 (service codes); N9X area codes are reserved for expansion. These
  // rules are what keep 10-digit epoch seconds (1...) and 123-456-7890 out.
  const area = '[2-9](?:1[02-9]|[02-8][0-9])';
  const exchange = '[2-9](?:1[02-9]|[02-9][0-9])';
  return {
    id: 'phone_nanp',
    description:
      'North American (NANP) phone numbers: (415) 555-2671, 415-555-2671, 415.555.2671, +1 415 555 2671, 1-415-555-2671, 4155552671',
    pattern:
      `(?:(?:\\+1|\\b1)[ .-]?\\(?${area}\\)?|\\(${area}\\)|\\b${area})` + `[ .-]?${exchange}[ .-]?[0-9]{4}\\b`,
  };
}

export function phoneUk(): DetectorDef {
  // Listed groupings rather than "9-10 digits with any separators": the
  // latter also matches dates with times ("01-02-2024 12:30").
  const s = '[ .-]?';
  // [first group, rest]; the first group is what "(0...)" may enclose.
  const nsn: [string, string][] = [
    ['[1-35789][0-9]{8,9}', ''], // unspaced
    ['2[0-9]', `${s}[0-9]{4}${s}[0-9]{4}`], // 020 7183 8750
    ['2[0-9]{2}', `${s}[0-9]{3}${s}[0-9]{4}`], // 0207 183 8750 (common, if wrong)
    ['1[0-9]{2}', `${s}[0-9]{3}${s}[0-9]{4}`], // 0161 496 0000
    ['1[0-9]{3}', `${s}[0-9]{3}${s}[0-9]{2,3}`], // 01632 960000, 01632 96000
    ['1[0-9]{4}', `${s}[0-9]{4,5}`], // 015396 12345
    ['7[0-9]{3}', `${s}[0-9]{3}${s}[0-9]{3}`], // 07700 900123
    ['[3589][0-9]{2}', `${s}[0-9]{3}${s}[0-9]{3,4}`], // 0800 123 4567, 0300 123 456
  ];
  const plain = nsn.map(([a, b]) => a + b).join('|');
  // "(020) 7183 8750": the parenthesis must close, or "(020 7183 8750)" would lose its "(".
  const paren = nsn.filter(([, b]) => b !== '').map(([a, b]) => `${a}\\)${b}`).join('|');
  return {
    id: 'phone_uk',
    description: 'UK phone numbers: 0 or +44 / 0044 (optionally "(0)"), then a UK geographic, mobile or non-geographic number',
    pattern: `(?:(?:(?:\\+|\\b00)44[ .-]?(?:\\(0\\)[ .-]?)?|\\b0)(?:${plain})|\\(0(?:${paren}))\\b`,
  };
}

export function usSsn(bare: boolean): DetectorDef {
  // SSA never issues area 000, 666 or 900-999, group 00, serial 0000.
  const area = '(?:00[1-9]|0[1-9][0-9]|[1-57-8][0-9]{2}|6[0-57-9][0-9]|66[0-57-9])';
  const group = '(?:0[1-9]|[1-9][0-9])';
  const serial = '(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})';
  const forms = [`${area}-${group}-${serial}`, `${area} ${group} ${serial}`];
  if (bare) forms.push(`${area}${group}${serial}`);
  return {
    id: 'us_ssn',
    description: bare
      ? 'US Social Security numbers: ddd-dd-dddd, ddd dd dddd, or 9 digits standing alone; never-issued areas, groups and serials excluded'
      : 'US Social Security numbers: ddd-dd-dddd or ddd dd dddd; never-issued areas, groups and serials excluded',
    pattern: `\\b(?:${forms.join('|')})\\b`,
    validator: 'ssn_valid',
  };
}

export function paymentCard(): DetectorDef {
  // Printed groupings come before the free-form fallback: greedy free-form
  // matching would run on into a following CVV or date ("4111 1111 1111
  // 1111 12/25" -> 18 digits), fail Luhn, and leave the card unredacted.
  // The first digit is an issuer range (2 Mastercard/Mir, 3 Amex/JCB/Diners,
  // 4 Visa, 5 Mastercard/Maestro, 6 Discover/UnionPay/Maestro); 1 (UATP) is
  // left out because 13-digit epoch milliseconds start with 1 and pass Luhn
  // one time in ten.
  const s = '[ -]';
  const forms = [
    '[2-6][0-9]{12,18}', // unspaced
    `[2-6][0-9]{3}${s}[0-9]{4}${s}[0-9]{4}${s}[0-9]{4}`, // 4-4-4-4
    `3[0-9]{3}${s}[0-9]{6}${s}[0-9]{4,5}`, // Amex 4-6-5, Diners 4-6-4
    `4[0-9]{3}${s}[0-9]{4}${s}[0-9]{4}${s}[0-9]`, // Visa 13 as 4-4-4-1
    // Anything else, but with an unbroken 4-digit start, which keeps phone
    // numbers written in 2- and 3-digit groups out.
    `[2-6][0-9]{3}(?:${s}?[0-9]){9,15}`,
  ];
  return {
    id: 'payment_card',
    description: 'Payment card numbers (PANs): 13 to 19 digits, optionally grouped with single spaces or dashes; Luhn-checked',
    pattern: `\\b(?:${forms.join('|')})\\b`,
    validator: 'luhn',
  };
}

/**
 * IBAN lengths from the SWIFT IBAN registry, plus French overseas
 * territories (which use FR-format IBANs under their own codes) and the
 * countries with published but unregistered formats (West/Central Africa,
 * Algeria, Iran, Morocco, ...).
 */
const IBAN_LENGTHS: Readonly<Record<number, string>> = {
  15: 'NO',
  16: 'BE',
  18: 'DK FI FK FO GL NL SD',
  19: 'MK SI',
  20: 'AT BA EE KZ LT LU MN XK',
  21: 'CH HR LI LV',
  22: 'BG BH CR DE GB GE IE ME RS VA',
  23: 'AE GI IL IQ OM SO TL',
  24: 'AD CZ ES MD PK RO SA SE SK TN VG',
  25: 'AO CV GW LY MZ PT ST',
  26: 'DZ IR IS TR',
  27: 'BI CF CG CM DJ FR GA GQ GR IT KM MC MG MR SM TD BL GF GP MF MQ NC PF PM RE TF WF YT',
  28: 'AL AZ BF BJ BY CI CY DO GT HN HU LB MA ML NE NI PL SN SV TG',
  29: 'BR EG PS QA UA',
  30: 'JO KW MU YE',
  31: 'MT SC',
  32: 'LC',
  33: 'RU',
};

export function iban(): DetectorDef {
  // Each country's exact length first, so an IBAN followed by another group
  // of four ("BE68 5390 0754 7034 EURO") is not swallowed into a longer,
  // failing candidate. The generic branch catches lengths this table lacks.
  const s = '[ ]?';
  const exact: string[] = [];
  const all: string[] = [];
  for (const [len, codes] of Object.entries(IBAN_LENGTHS)) {
    const cc = codes.split(' ');
    all.push(...cc);
    const bban = Number(len) - 4;
    const tail = bban % 4;
    exact.push(
      `(?:${cc.join('|')})[0-9]{2}(?:${s}[A-Z0-9]{4}){${Math.floor(bban / 4)}}` + (tail ? `${s}[A-Z0-9]{${tail}}` : ''),
    );
  }
  all.sort();
  const generic = `(?:${all.join('|')})[0-9]{2}(?:${s}[A-Z0-9]{4}){2,7}(?:${s}[A-Z0-9]{1,3})?`;
  return {
    id: 'iban',
    description: 'IBANs (ISO 13616), electronic or printed in groups of four; uppercase; mod-97 checked',
    pattern: `\\b(?:(?:${exact.join('|')})\\b|${generic}\\b)`,
    validator: 'iban_mod97',
  };
}

export function ipv4(): DetectorDef {
  return {
    id: 'ipv4',
    description: 'IPv4 addresses in dotted-quad form (no leading zeros); 5+ part version strings such as 1.2.3.4.5 are left alone',
    // The first branch consumes dotted runs of five or more numbers without
    // the group, so the engine leaves them alone and no 4-part window inside
    // (2.3.4.5 of 1.2.3.4.5) is redacted. No leading \b there: "v1.2.3.4.5"
    // must be swallowed from the 1.
    pattern: `[0-9]+(?:\\.[0-9]+){4,}|\\b(${IPV4})\\b`,
    valueGroup: true,
    requires: ['.'],
  };
}

export function ipv6(): DetectorDef {
  const h = '[0-9a-f]{1,4}';
  // The group before "::" must hold a digit: real prefixes (2001, 2a00,
  // fe80, fd12, ff02, 64) nearly always do, while hex-only words before "::"
  // are code paths ("Add::add", "Face::new").
  const hd = '(?:[0-9][0-9a-f]{0,3}|[a-f][0-9][0-9a-f]{0,2}|[a-f]{2}[0-9][0-9a-f]?|[a-f]{3}[0-9])';
  const forms = [
    `\\b(?:${h}:){6}${IPV4}\\b`, // full, IPv4 tail
    `\\b${hd}(?::${h}){0,5}::(?:${h}:){0,5}${IPV4}\\b`, // compressed, IPv4 tail
    `\\B::(?:${h}:){0,5}${IPV4}\\b`, // ::ffff:192.0.2.1
    `\\b(?:${h}:){7}${h}\\b`, // full
    `\\b${hd}(?::${h}){0,6}::${h}(?::${h}){0,6}\\b`, // 2001:db8::1
    // Trailing "::" needs two groups: "f64::" is a Rust path, "2001:db8::" an address.
    `\\b${hd}(?::${h}){1,6}::`,
    // \B: the "::" must not follow a word character, or "a::b" would lose "::b".
    `\\B::${h}(?::${h}){0,6}\\b`, // ::1
  ];
  return {
    id: 'ipv6',
    description: 'IPv6 addresses: full, compressed with "::", and with an embedded IPv4 tail (::ffff:192.0.2.1)',
    // Longer forms first: RE2 takes the first branch that matches, and the
    // IPv4-tail forms would otherwise stop at the first dot.
    pattern: `(?i)(?:${forms.join('|')})`,
    requires: [':'],
  };
}

export function medicalRecordNumber(prefixes: readonly string[], min: number, max: number): DetectorDef {
  return {
    id: 'medical_record_number',
    description: `Medical record numbers: ${prefixes.join(' / ')}, an optional "No."/"#"/":"/"=", then ${min} to ${max} digits; only the number is redacted`,
    pattern:
      `(?i)(?:\\b|_)(?:${prefixes.map(labelPattern).join('|')})` +
      `(?:\\\\?["'])?[ \\t]*(?:(?:no|nr|num|number)\\.?[ \\t]*)?[:#=-]{0,2}[ \\t]*(?:\\\\?["'])?` +
      `([0-9]{${min},${max}})\\b`,
    valueGroup: true,
    requires: prefixes.map(labelLiteral),
  };
}
