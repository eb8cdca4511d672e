/**
 * Built-in detectors for credentials: tokens with a recognisable shape
 * (JWT, cloud and forge tokens, PEM keys) and values that are secret by the
 * key they follow (secret_kv, AWS secret keys, bearer tokens). Each function
 * builds one DetectorDef from already-checked options (detectors.ts reads
 * them); the RE2 rules of detectors.ts's header apply to every pattern here.
 */
import { labelLiteral, labelPattern, type DetectorDef } from './detector-kit.js';

/** A key/value separator, with the quotes JSON, YAML, shell and escaped JSON put around keys and values. */
const CLOSE_KEY = `(?:\\\\?["'])?[ \\t]*(?:=>|:=|[:=])[ \\t]*(?:\\\\?["'])?`;

export function jwt(): DetectorDef {
  return {
    id: 'jwt',
    description: 'JSON Web Tokens (JWS compact form, and JWE with non-empty parts): base64url segments, header starting eyJ',
    // No leading \b: a token glued to a word ("id_tokeneyJ...") is still a token.
    // The last segment may be empty (alg "none").
    pattern: 'eyJ[A-Za-z0-9_-]{10,}\\.(?:[A-Za-z0-9_-]{2,}\\.){1,3}[A-Za-z0-9_-]*',
    requires: ['eyj'],
  };
}

export function bearerToken(): DetectorDef {
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

export function awsAccessKeyId(): DetectorDef {
  return {
    id: 'aws_access_key_id',
    description: 'AWS access key ids and other IAM unique ids (AKIA, ASIA, AGPA, AIDA, AROA, ANPA, ANVA, AIPA, ABIA, ACCA + 16 or 17)',
    pattern: `\\b(?:${AWS_KEY_PREFIXES.join('|')})[A-Z0-9]{16,17}\\b`,
    requires: AWS_KEY_PREFIXES.map((p) => p.toLowerCase()),
  };
}

export function awsSecretAccessKey(): DetectorDef {
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

export function githubToken(): DetectorDef {
  return {
    id: 'github_token',
    description: 'GitHub tokens: ghp_/gho_/ghu_/ghs_/ghr_ + 36 or more alphanumerics, github_pat_ fine-grained tokens',
    // GitHub reserves the right to lengthen tokens (up to 255 characters).
    pattern: '\\b(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,244})\\b',
    requires: ['ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_', 'github_pat_'],
  };
}

const GITLAB_PREFIXES = ['glpat', 'gldt', 'glrt', 'glptt', 'glcbt', 'gloas', 'glsoat', 'glimt', 'glft', 'glffct', 'glagent'];

export function gitlabToken(): DetectorDef {
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

export function slackToken(): DetectorDef {
  return {
    id: 'slack_token',
    description: 'Slack tokens: xoxb-, xoxp-, xoxa-, xoxo-, xoxs-, xoxr-, xoxe- (and rotating xoxe.xoxp-), app-level xapp-',
    pattern: '\\b(?:(?:xoxe\\.)?xox[abposre]-[A-Za-z0-9-]{10,}|xapp-[0-9]-[A-Za-z0-9-]{10,})',
    requires: ['xox', 'xapp-'],
  };
}

export function pemPrivateKey(): DetectorDef {
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

export function secretKv(keys: readonly string[] | undefined): DetectorDef {
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
