/**
 * Built-in detectors: named RE2 patterns (plus an optional checksum
 * validator) that rule files reference with `detector: NAME` instead of
 * writing a pattern. See docs/redaction.md. The table below is the
 * catalogue: each detector's options (name → reader) and how it builds its
 * definition from them; the patterns live in detectors-pii.ts and
 * detectors-secrets.ts, the option readers and errors in detector-kit.ts.
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
import { bool, DetectorError, int, labels, type DetectorDef, type OptionReader } from './detector-kit.js';
import { email, iban, ipv4, ipv6, medicalRecordNumber, paymentCard, phoneE164, phoneNanp, phoneUk, usSsn } from './detectors-pii.js';
import {
  awsAccessKeyId,
  awsSecretAccessKey,
  bearerToken,
  githubToken,
  gitlabToken,
  jwt,
  pemPrivateKey,
  secretKv,
  slackToken,
} from './detectors-secrets.js';

export { DetectorError } from './detector-kit.js';
export type { DetectorDef } from './detector-kit.js';

/** One catalogue entry. */
export interface Detector {
  /** option name → reader, in the order options are read and listed in messages; empty: the detector takes none */
  readonly options: Readonly<Record<string, OptionReader<unknown>>>;
  /** the definition from the options as read (an absent option is undefined: defaults are applied here) */
  build(options: Readonly<Record<string, unknown>>): DetectorDef;
}

/** An entry whose build sees its options typed as their readers return them. */
function detector<O extends Record<string, unknown>>(
  options: { readonly [K in keyof O]: OptionReader<O[K]> },
  build: (options: Partial<O>) => DetectorDef,
): Detector {
  return { options, build: build as Detector['build'] };
}

/** In the order docs/redaction.md lists them, which is also the order error messages list them in. */
const DETECTORS = {
  email: detector({}, email),
  phone_e164: detector({ separators: bool }, (o) => phoneE164(o.separators ?? false)),
  phone_nanp: detector({}, phoneNanp),
  phone_uk: detector({}, phoneUk),
  us_ssn: detector({ bare: bool }, (o) => usSsn(o.bare ?? true)),
  payment_card: detector({}, paymentCard),
  iban: detector({}, iban),
  ipv4: detector({}, ipv4),
  ipv6: detector({}, ipv6),
  jwt: detector({}, jwt),
  bearer_token: detector({}, bearerToken),
  aws_access_key_id: detector({}, awsAccessKeyId),
  aws_secret_access_key: detector({}, awsSecretAccessKey),
  github_token: detector({}, githubToken),
  gitlab_token: detector({}, gitlabToken),
  slack_token: detector({}, slackToken),
  pem_private_key: detector({}, pemPrivateKey),
  secret_kv: detector({ keys: labels }, (o) => secretKv(o.keys)),
  medical_record_number: detector({ prefix: labels, min_digits: int(1, 32), max_digits: int(1, 32) }, (o) => {
    const min = o.min_digits ?? 6;
    const max = o.max_digits ?? Math.max(10, min);
    if (min > max) {
      throw new DetectorError(
        'redaction_rule_invalid',
        'medical_record_number',
        undefined,
        `detector medical_record_number: min_digits (${min}) is greater than max_digits (${max})`,
      );
    }
    return medicalRecordNumber(o.prefix ?? ['MRN'], min, max);
  }),
} as const satisfies Readonly<Record<string, Detector>>;

export type DetectorName = keyof typeof DETECTORS;

export const DETECTOR_NAMES: readonly DetectorName[] = Object.freeze(Object.keys(DETECTORS) as DetectorName[]);

/**
 * The detector `name` with `options` applied. Throws DetectorError: code
 * redaction_unknown_detector for a name not in the table (checked first:
 * the options of an unknown detector mean nothing), redaction_rule_invalid
 * naming the option for options that are not a mapping, an option the
 * detector does not take, or a value its reader refuses. The rule loader
 * adds the rule id and file:line:col.
 */
export function buildDetector(name: string, options?: Record<string, unknown>): DetectorDef {
  if (typeof name !== 'string' || !Object.hasOwn(DETECTORS, name)) {
    throw new DetectorError(
      'redaction_unknown_detector',
      String(name),
      undefined,
      `unknown detector ${JSON.stringify(name)}; known detectors: ${DETECTOR_NAMES.join(', ')}`,
    );
  }
  const d: Detector = DETECTORS[name as DetectorName];
  const opts: unknown = options ?? {};
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) {
    throw new DetectorError('redaction_rule_invalid', name, undefined, `detector ${name}: options must be a mapping`);
  }
  const given = Object.keys(opts);
  const allowed = Object.keys(d.options);
  for (const k of given) {
    if (Object.hasOwn(d.options, k)) continue;
    throw new DetectorError(
      'redaction_rule_invalid',
      name,
      k,
      allowed.length === 0
        ? `detector ${name} takes no options (got ${given.map((g) => JSON.stringify(g)).join(', ')})`
        : `detector ${name}: unknown option ${JSON.stringify(k)} (allowed: ${allowed.join(', ')})`,
    );
  }
  const read: Record<string, unknown> = {};
  for (const k of allowed) {
    const v = (opts as Record<string, unknown>)[k];
    if (v !== undefined) read[k] = d.options[k]!(v, { detector: name, option: k });
  }
  return d.build(read);
}
