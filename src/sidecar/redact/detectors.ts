/**
 * Built-in detectors: named RE2 patterns (plus an optional checksum
 * validator) that rule files reference with `detector: NAME` instead of
 * writing a pattern. See docs/redaction.md.
 *
 * Every pattern is RE2 syntax (no lookaround, no backreferences), so each
 * search is linear in the input. Beyond that, no pattern has a
 * higher-priority branch that can stay alive past the end of the match a
 * lower-priority branch finds: otherwise every match would make RE2 read on
 * to the end of the text to rule the better branch out, and a string with
 * many matches would cost quadratic time. That is why no pattern has a
 * lazy "anything up to the END line" body.
 *
 * Shapes are deliberately ASCII: the engine matches on NFKC-normalised text
 * by default, which folds full-width digits and letters into ASCII first.
 */
export interface DetectorDef {
  /** the detector name, e.g. "email" */
  id: string;
  description: string;
  /** RE2 syntax; no capture groups unless valueGroup */
  pattern: string;
  /**
   * Checksum run on the redacted part (the whole match, or the value group);
   * a candidate that fails is left alone.
   */
  validator?: 'luhn' | 'iban_mod97' | 'ssn_valid';
  /**
   * The pattern has exactly ONE capturing group, the part to redact; the rest
   * of the match (a key, a separator, a quote) stays as it is. A match in
   * which the group did not take part is left alone entirely: a pattern uses
   * that to consume look-alike text (ipv4 swallows 5-part version strings
   * such as 1.2.3.4.5) so that nothing inside it is redacted.
   */
  valueGroup?: boolean;
  /**
   * Cheap prefilter: every match contains at least one of these substrings
   * when compared in lowercase (`text.toLowerCase().includes(s)`), or
   * undefined when no literal is common to all matches. Exact on NFKC text;
   * on text that skipped NFKC, RE2's `(?i)` also folds U+017F (ſ) to s and
   * U+212A (Kelvin sign) to k, which toLowerCase() does not, so a prefilter
   * there must fold those two as well.
   */
  requires?: string[];
}

export const DETECTOR_NAMES: readonly string[] = Object.freeze([
  'email',
  'phone_e164',
  'phone_nanp',
  'phone_uk',
  'us_ssn',
  'payment_card',
  'iban',
  'ipv4',
  'ipv6',
  'jwt',
  'bearer_token',
  'aws_access_key_id',
  'aws_secret_access_key',
  'github_token',
  'gitlab_token',
  'slack_token',
  'pem_private_key',
  'secret_kv',
  'medical_record_number',
]);

type Options = Record<string, unknown>;

/**
 * The detector `name` with `options` applied. Throws a plain Error naming the
 * detector and the option for an unknown name or a bad option; the rule
 * loader adds the file:line:col.
 */
export function buildDetector(name: string, options?: Record<string, unknown>): DetectorDef {
  const opts: Options = options ?? {};
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) {
    throw new Error(`detector ${name}: options must be a mapping`);
  }
  switch (name) {
    case 'email':
      noOptions(name, opts);
      return email();
    case 'phone_e164':
      allowOptions(name, opts, ['separators']);
      return phoneE164(optBool(name, opts, 'separators', false));
    case 'phone_nanp':
      noOptions(name, opts);
      return phoneNanp();
    case 'phone_uk':
      noOptions(name, opts);
      return phoneUk();
    case 'us_ssn':
      allowOptions(name, opts, ['bare']);
      return usSsn(optBool(name, opts, 'bare', true));
    case 'payment_card':
      noOptions(name, opts);
      return paymentCard();
    case 'iban':
      noOptions(name, opts);
      return iban();
    case 'ipv4':
      noOptions(name, opts);
      return ipv4();
    case 'ipv6':
      noOptions(name, opts);
      return ipv6();
    case 'jwt':
      noOptions(name, opts);
      return jwt();
    case 'bearer_token':
      noOptions(name, opts);
      return bearerToken();
    case 'aws_access_key_id':
      noOptions(name, opts);
      return awsAccessKeyId();
    case 'aws_secret_access_key':
      noOptions(name, opts);
      return awsSecretAccessKey();
    case 'github_token':
      noOptions(name, opts);
      return githubToken();
    case 'gitlab_token':
      noOptions(name, opts);
      return gitlabToken();
    case 'slack_token':
      noOptions(name, opts);
      return slackToken();
    case 'pem_private_key':
      noOptions(name, opts);
      return pemPrivateKey();
    case 'secret_kv':
      allowOptions(name, opts, ['keys']);
      return secretKv(opts['keys'] === undefined ? undefined : optNames(name, opts, 'keys'));
    case 'medical_record_number': {
      allowOptions(name, opts, ['prefix', 'min_digits', 'max_digits']);
      const prefixes = opts['prefix'] === undefined ? ['MRN'] : optNames(name, opts, 'prefix');
      const min = optInt(name, opts, 'min_digits', 6, 1, 32);
      const max = optInt(name, opts, 'max_digits', Math.max(10, min), 1, 32);
      if (min > max) throw new Error(`detector ${name}: min_digits (${min}) is greater than max_digits (${max})`);
      return medicalRecordNumber(prefixes, min, max);
    }
    default:
      throw new Error(`unknown detector ${JSON.stringify(name)}; known detectors: ${DETECTOR_NAMES.join(', ')}`);
  }
}

// ---------------------------------------------------------------- options

function noOptions(name: string, opts: Options): void {
  const keys = Object.keys(opts);
  if (keys.length > 0) throw new Error(`detector ${name} takes no options (got ${keys.map((k) => JSON.stringify(k)).join(', ')})`);
}

function allowOptions(name: string, opts: Options, allowed: readonly string[]): void {
  for (const k of Object.keys(opts)) {
    if (!allowed.includes(k)) {
      throw new Error(`detector ${name}: unknown option ${JSON.stringify(k)} (allowed: ${allowed.join(', ')})`);
    }
  }
}

function optBool(name: string, opts: Options, key: string, dflt: boolean): boolean {
  const v = opts[key];
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw new Error(`detector ${name}: option ${key} must be true or false`);
  return v;
}

function optInt(name: string, opts: Options, key: string, dflt: number, lo: number, hi: number): number {
  const v = opts[key];
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) {
    throw new Error(`detector ${name}: option ${key} must be an integer from ${lo} to ${hi}`);
  }
  return v;
}

/** Labels people write before a value ("MRN", "member id"): letters first, then a small safe alphabet. */
const LABEL = /^[A-Za-z][A-Za-z0-9_ .#/-]{0,63}$/;
const MAX_LABELS = 32;

function optNames(name: string, opts: Options, key: string): string[] {
  const v = opts[key];
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || list.length === 0 || list.length > MAX_LABELS) {
    throw new Error(`detector ${name}: option ${key} must be a string or a list of 1 to ${MAX_LABELS} strings`);
  }
  for (const s of list) {
    if (typeof s !== 'string' || !LABEL.test(s.trim())) {
      throw new Error(
        `detector ${name}: option ${key}: each entry must start with a letter and hold at most 64 of A-Z a-z 0-9 space _ . # / -`,
      );
    }
  }
  return (list as string[]).map((s) => s.trim());
}

/**
 * A label as a case-insensitive RE2 fragment in which any run of separators
 * (space, _, ., -) may be written as any other run or left out, so
 * "member_id" also finds "Member ID", "member-id" and "memberId".
 */
function labelPattern(label: string): string {
  return label
    .split(/[\s_.-]+/)
    .filter((p) => p.length > 0)
    .map(escapeRe2)
    .join('[ \\t_.-]*');
}

/** The longest separator-free piece of a label: a literal every match of labelPattern() contains. */
function labelLiteral(label: string): string {
  let best = '';
  for (const p of label.split(/[\s_.-]+/)) if (p.length > best.length) best = p;
  return best.toLowerCase();
}

function escapeRe2(s: string): string {
  return s.replace(/[\\^$.|?*+()[\]{}#/-]/g, (c) => `\\${c}`);
}

// ---------------------------------------------------------------- shared fragments

/** A key/value separator, with the quotes JSON, YAML, shell and escaped JSON put around keys and values. */
const CLOSE_KEY = `(?:\\\\?["'])?[ \\t]*(?:=>|:=|[:=])[ \\t]*(?:\\\\?["'])?`;

const OCTET = '(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])';
const IPV4 = `${OCTET}(?:\\.${OCTET}){3}`;

// ---------------------------------------------------------------- detectors

function email(): DetectorDef {
  return {
    id: 'email',
    description: 'Email addresses (ASCII local part and domain, TLD of 2+ letters)',
    // Bounded label and part lengths (RFC 5321 limits) keep RE2's program small.
    pattern: "(?i)\\b[a-z0-9._%+'-]{1,64}@(?:[a-z0-9-]{1,63}\\.){1,8}[a-z]{2,63}\\b",
    requires: ['@'],
  };
}

function phoneE164(separators: boolean): DetectorDef {
  return {
    id: 'phone_e164',
    description: separators
      ? 'International phone numbers: "+", then 8 to 15 digits, single spaces, dots or dashes allowed between digits'
      : 'Phone numbers in E.164 form: "+", then 8 to 15 digits',
    pattern: separators ? '\\+[1-9](?:[ .-]?[0-9]){7,14}\\b' : '\\+[1-9][0-9]{7,14}\\b',
    requires: ['+'],
  };
}

function phoneNanp(): DetectorDef {
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

function phoneUk(): DetectorDef {
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

function usSsn(bare: boolean): DetectorDef {
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

function paymentCard(): DetectorDef {
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

function iban(): DetectorDef {
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

function ipv4(): DetectorDef {
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

function ipv6(): DetectorDef {
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

function jwt(): DetectorDef {
  return {
    id: 'jwt',
    description: 'JSON Web Tokens (JWS compact form, and JWE with non-empty parts): base64url segments, header starting eyJ',
    // No leading \b: a token glued to a word ("id_tokeneyJ...") is still a token.
    // The last segment may be empty (alg "none").
    pattern: 'eyJ[A-Za-z0-9_-]{10,}\\.(?:[A-Za-z0-9_-]{2,}\\.){1,3}[A-Za-z0-9_-]*',
    requires: ['eyj'],
  };
}

function bearerToken(): DetectorDef {
  return {
    id: 'bearer_token',
    description: 'Bearer tokens ("Bearer <token>", RFC 6750); only the token is redacted',
    // The token must hold a digit or one of _~+/- (or be 20+ characters), so
    // prose like "the bearer of bad news" or "bearer bonds." is left alone.
    pattern:
      '(?i)\\bbearer[ \\t]+([A-Za-z0-9._~+/-]*[0-9_~+/-][A-Za-z0-9._~+/-]*=*|[A-Za-z0-9._~+/-]{20,}=*)',
    valueGroup: true,
    requires: ['bearer'],
  };
}

const AWS_KEY_PREFIXES = ['AKIA', 'ASIA', 'AGPA', 'AIDA', 'AROA', 'ANPA', 'ANVA', 'AIPA', 'ABIA', 'ACCA'];

function awsAccessKeyId(): DetectorDef {
  return {
    id: 'aws_access_key_id',
    description: 'AWS access key ids and other IAM unique ids (AKIA, ASIA, AGPA, AIDA, AROA, ANPA, ANVA, AIPA, ABIA, ACCA + 16 or 17)',
    pattern: `\\b(?:${AWS_KEY_PREFIXES.join('|')})[A-Z0-9]{16,17}\\b`,
    requires: AWS_KEY_PREFIXES.map((p) => p.toLowerCase()),
  };
}

function awsSecretAccessKey(): DetectorDef {
  return {
    id: 'aws_secret_access_key',
    description:
      'AWS secret access keys (40 base64 characters) after a key such as aws_secret_access_key=, SecretAccessKey:, secret_key=; only the value is redacted',
    // Only in key/value context: 40 base64 characters alone are as likely a
    // hash or an id. The trailing character (kept, outside the group) makes
    // a 41st base64 character fail the match instead of cutting the value.
    pattern: `(?i)(?:aws[_.-]?)?secret[_.-]?(?:access[_.-]?)?key${CLOSE_KEY}([a-z0-9/+]{40})(?:[^a-z0-9/+=]|$)`,
    valueGroup: true,
    requires: ['secret'],
  };
}

function githubToken(): DetectorDef {
  return {
    id: 'github_token',
    description: 'GitHub tokens: ghp_/gho_/ghu_/ghs_/ghr_ + 36 or more alphanumerics, github_pat_ fine-grained tokens',
    // GitHub reserves the right to lengthen tokens (up to 255 characters).
    pattern: '\\b(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,244})\\b',
    requires: ['ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_', 'github_pat_'],
  };
}

const GITLAB_PREFIXES = ['glpat', 'gldt', 'glrt', 'glptt', 'glcbt', 'gloas', 'glsoat', 'glimt', 'glft', 'glffct', 'glagent'];

function gitlabToken(): DetectorDef {
  return {
    id: 'gitlab_token',
    description:
      'GitLab tokens: personal/project/group access (glpat-), deploy, runner, trigger, CI job, OAuth, feed and agent tokens, and runner registration tokens (GR1348941)',
    // The optional dotted parts are the routing suffix of newer tokens.
    pattern:
      `\\b(?:(?:${GITLAB_PREFIXES.join('|')})-|GR1348941)[A-Za-z0-9_-]{20,}(?:\\.[A-Za-z0-9_-]+)*`,
    requires: [...GITLAB_PREFIXES.map((p) => `${p}-`), 'gr1348941'],
  };
}

function slackToken(): DetectorDef {
  return {
    id: 'slack_token',
    description: 'Slack tokens: xoxb-, xoxp-, xoxa-, xoxo-, xoxs-, xoxr-, xoxe- (and rotating xoxe.xoxp-), app-level xapp-',
    pattern: '\\b(?:(?:xoxe\\.)?xox[abposre]-[A-Za-z0-9-]{10,}|xapp-[0-9]-[A-Za-z0-9-]{10,})',
    requires: ['xox', 'xapp-'],
  };
}

function pemPrivateKey(): DetectorDef {
  const label = '[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----';
  // The body: RFC 1421 headers (Proc-Type:, DEK-Info:), base64 lines,
  // whitespace and literal "\n" escapes (double-encoded JSON). Headers come
  // first because RE2 takes the first branch that leads to any match, and
  // reading "Proc" as base64 would end the body at its "-". The body stops
  // at the first "-", so the END line is an optional suffix rather than the
  // target of a lazy scan: a key cut off before its END line (a truncated
  // log line) is still redacted, and a BEGIN line with no END never makes
  // RE2 read on to the end of the text.
  const body = '(?:[A-Za-z]{1,20}-[A-Za-z]{1,20}:[^\\r\\n\\\\]{0,200}|[A-Za-z0-9+/= \\t\\r\\n]|\\\\[rn])*';
  return {
    id: 'pem_private_key',
    description: 'PEM private keys (PKCS#1, PKCS#8, encrypted, EC, DSA, OpenSSH, PGP): BEGIN line through END line, or to the end of a truncated body',
    pattern: `-----BEGIN${label}${body}(?:-----END${label})?`,
    requires: ['-----begin'],
  };
}

function secretKv(keys: readonly string[] | undefined): DetectorDef {
  // Default keys need no boundary before them, so DB_PASSWORD= and
  // x_api_key: count; compound keys ending in the bare keyword
  // (access_token, client_secret) are found through that keyword. Custom
  // keys are arbitrary words ("id"), so they need a boundary or "_" first.
  const keyPattern = keys
    ? `(?:\\b|_)(?:${keys.map(labelPattern).join('|')})`
    : '(?:passw(?:or)?d|passphrase|pwd|secret(?:[_ .-]?(?:access[_ .-]?)?key)?|api[_ .-]?key|private[_ .-]?key|token)';
  // The value: no whitespace, quotes, backslash, or , ; & (query-string and
  // list separators). An auth scheme word before it is taken along, or
  // "token: Bearer abc" would redact "Bearer" and leave the token. A value
  // may not start with five dashes: "private_key: -----BEGIN ..." must be
  // left to pem_private_key, which redacts the whole key.
  const value = `((?:(?:bearer|basic|token)[ \\t]+)?-{0,4}[^\\s"'\`\\\\,;&-][^\\s"'\`\\\\,;&]*)`;
  return {
    id: 'secret_kv',
    description: keys
      ? `Values after the keys ${keys.join(', ')} followed by = or : (optionally quoted); only the value is redacted`
      : 'Values after password/passwd/pwd/passphrase/secret/api_key/private_key/token (and *_token, client_secret, ...) followed by = or : (optionally quoted); only the value is redacted',
    pattern: `(?i)${keyPattern}${CLOSE_KEY}${value}`,
    valueGroup: true,
    requires: keys ? keys.map(labelLiteral) : ['pass', 'pwd', 'secret', 'key', 'token'],
  };
}

function medicalRecordNumber(prefixes: readonly string[], min: number, max: number): DetectorDef {
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
