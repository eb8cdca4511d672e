import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import RE2 from 're2';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../../src/core/errors.js';
import { buildDetector, DETECTOR_NAMES, DetectorError, type DetectorDef } from '../../src/sidecar/redact/detectors.js';
import { compileRuleset } from '../../src/sidecar/redact/index.js';
import { ibanMod97, luhn, ssnValid, VALIDATORS, type ValidatorName } from '../../src/sidecar/redact/validators.js';

/**
 * What a rule built on `def` would redact in `text`: the match (or its value
 * group), when the validator, if any, accepts it. Matching goes through RE2
 * directly, independent of the engine. exec() in a loop, not replace() with
 * a callback: node-re2 hands the callback a fresh copy of the whole input on
 * every match, which is quadratic on long strings with many matches.
 */
function redacted(def: Pick<DetectorDef, 'pattern' | 'validator' | 'valueGroup'>, text: string): string[] {
  const re = new RE2(def.pattern, 'g');
  const out: string[] = [];
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const part = def.valueGroup ? m[1] : m[0];
    if (part !== undefined && part !== '' && (!def.validator || VALIDATORS[def.validator](part))) out.push(part);
    if (m[0].length === 0) re.lastIndex++;
  }
  return out;
}

function groupCount(pattern: string): number {
  const m = new RE2(`(?:${pattern})|`).exec('');
  return m ? m.length - 1 : -1;
}

/** A positive: the text alone (it is redacted whole), or the text and exactly what is redacted in it. */
type Positive = string | [text: string, expected: string[]];

interface Corpus {
  options?: Record<string, unknown>;
  positive: Positive[];
  negative: string[];
}

// Tokens are assembled at run time so this file holds no string that a
// secret scanner would take for a live credential.
const rep = (s: string, n: number): string => s.repeat(n).slice(0, n);
const ALNUM36 = 'aB3dE5fG7hJ9kL1mN2pQ4rS6tU8vW0xY2zA4';
const gh = (kind: string, body = ALNUM36): string => `gh${kind}_${body}`;
const GH_PAT = `github_pat_11ABCDEFG0${rep('aZ09', 21)}_${rep('Qw3rTy9', 59)}`;
const gl = (kind: string, body = 'xY7-zQ2_aB3cD4eF5gH6'): string => `gl${kind}-${body}`;
const sl = (kind: string, body = '1234567890-0987654321098-AbCdEfGhIjKlMnOpQrStUvWx'): string => `xox${kind}-${body}`;
const AWS_SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'; // AWS documentation example
const JWT =
  'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c';
const JWT_NONE = 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.';
const JWE =
  'eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.OKOawDo13gRp2ojaHV7LFpZcgV7T6DVZKTyKOMTYUmKoTCVJRgckCL9kiMT03JGeipsEdY3mx_etLbbWSrFr05kLzcSr4qKAq7YN7e9jwQRb23nfa6c9d-StnImGyFDbSv04uVuxIp5Zms1gNxKKK2Da14B8S4rzVRltdYwam_lDp5XnZAYpQdb76FdIKLaVmqgfwX7XWRxv2322i-vDxRfqNzo_tETKzpVLzfiwQyeyPGLBIO56YJ7eObdv0je81860ppamavo35UgoRdbYaBcoh9QcfylQr66oc6vFWXRcZ_ZT2LawVCWTIy3brGPi6UklfCpIMfIjf7iGdXKHzg.48V1_ALb6US04U3b.5eym8TW_c8SuK0ltJ3rpYIzOeDQz7TALvtu6UG9oMo4vpzs9tX_EFShS8iB7j6jiSdiwkIr3ajwQzaBtQD_A.XFBoMYUZodetZdvTiFvSkQ';
const PEM_BODY = 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\nMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\n';

const CORPORA: Record<string, Corpus> = {
  email: {
    positive: [
      'alice@example.com',
      ['Contact Bob.Smith+tag@Mail.Example.CO.UK for details', ['Bob.Smith+tag@Mail.Example.CO.UK']],
      ['x_y%z-1@sub.domain-1.io is the owner', ['x_y%z-1@sub.domain-1.io']],
      ['mailto:ALICE@EXAMPLE.COM', ['ALICE@EXAMPLE.COM']],
      "o'brien@example.ie",
      ['<carol@example.org>, dave@example.net.', ['carol@example.org', 'dave@example.net']],
      ['{"to":"erin@example.com"}', ['erin@example.com']],
      ['reply to frank.o@mail.co.jp', ['frank.o@mail.co.jp']],
      ['user=grace@example.museum;', ['grace@example.museum']],
    ],
    negative: [
      'alice@localhost',
      '@example.com',
      'alice at example dot com',
      'user@.',
      'a@b.c',
      'npm i @scope/pkg@1.2.3',
      'nginx@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08',
      'alice@@example.com',
      'user@example.c0m',
      '550e8400-e29b-41d4-a716-446655440000',
    ],
  },
  phone_e164: {
    positive: [
      '+14155552671',
      '+442071838750',
      ['Call +4915112345678 today', ['+4915112345678']],
      '+12345678',
      '+123456789012345',
      ['(+33142685300)', ['+33142685300']],
      ['tel:+61291234567', ['+61291234567']],
      ['{"phone":"+819012345678"}', ['+819012345678']],
      ['numbers: +14155552671,+442071838750', ['+14155552671', '+442071838750']],
    ],
    negative: [
      '+1234567',
      '+1234567890123456',
      '+0123456789',
      '14155552671',
      '+1 415 555 2671',
      '2024-01-15T10:00:00+01:00',
      'UTC+0530',
      '1e+10',
      'score +12345',
    ],
  },
  phone_nanp: {
    positive: [
      '(415) 555-2671',
      '415-555-2671',
      '415.555.2671',
      '415 555 2671',
      '4155552671',
      '+1 415 555 2671',
      '1-800-555-0199',
      '+1 (212) 555-0100',
      ['Call me at 212-555-0100.', ['212-555-0100']],
      '+14155552671',
      ['(415)555-2671 or 1 (646) 555 0123', ['(415)555-2671', '1 (646) 555 0123']],
    ],
    negative: [
      '123-456-7890', // area code cannot start with 1
      '911-555-1234', // N11 is a service code
      '415-155-2671', // exchange cannot start with 1
      '415-555-267',
      '415-555-26710',
      '1718236800', // epoch seconds
      '2024-01-15',
      '555-2671',
      '12:30:45',
      '192.168.100.200',
      '4111111111111111',
    ],
  },
  phone_uk: {
    positive: [
      '020 7183 8750',
      '+44 20 7183 8750',
      '+44 (0)20 7183 8750',
      '07700 900123',
      '+447700900123',
      '0161 496 0000',
      '01632 960000',
      '0800 123 4567',
      '(020) 7183 8750',
      ['Ring 0044 20 7183 8750 after 5', ['0044 20 7183 8750']],
      ['tel: 02071838750.', ['02071838750']],
    ],
    negative: [
      '0400 123 456', // Australian mobile
      '0612345678', // French / Dutch mobile
      '+45 20 71 83 87',
      '020 7183 875',
      '01-02-2024 12:30',
      '0.123456789',
      '0 20 7183 8750',
      '07700 90012',
      '2024-01-15T10:00:00Z',
      '0x7fffffff',
    ],
  },
  us_ssn: {
    positive: [
      '123-45-6789',
      '001-01-0001',
      '899-99-9999',
      '665-12-3456',
      '667-12-3456',
      '078-05-1120',
      '123 45 6789',
      '123456789',
      ['SSN: 219-09-9999.', ['219-09-9999']],
      ['{"ssn":"536-90-4399","n":2}', ['536-90-4399']],
    ],
    negative: [
      '000-12-3456', // area 000 is never issued
      '666-12-3456', // nor 666
      '900-12-3456', // nor 9xx
      '999-99-9999',
      '123-00-4567', // group 00
      '123-45-0000', // serial 0000
      '000123456',
      '123-45-67890',
      '1234-56-7890',
      '12-345-6789',
      '1234567890', // 10 digits
      '1718000000000', // epoch milliseconds
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
      '4222222222222', // Visa 13
      '30569309025904', // Diners 14
      '3056 930902 5904',
      '3530111333300000', // JCB
      '6200000000000005', // UnionPay
      ['card 4111 1111 1111 1111 12/25 cvv 123', ['4111 1111 1111 1111']],
      ['4111 1111 1111 1111 123', ['4111 1111 1111 1111']],
      ['41111111 11111111', ['41111111 11111111']],
      ['4242424242424242,5555555555554444', ['4242424242424242', '5555555555554444']],
    ],
    negative: [
      '4111111111111112', // Luhn fails
      '4111 1111 1111 1112',
      '1234567812345678',
      '1718000000000', // epoch milliseconds
      '1718000000000123',
      '411111111111', // 12 digits
      '41111111111111111111', // 20 digits
      '4111--1111-1111-1111',
      '4111  1111 1111 1111',
      'a4111111111111111',
      '+44 20 7183 8750',
      '415 555 2671 415 555 2672',
    ],
  },
  iban: {
    positive: [
      'GB82 WEST 1234 5698 7654 32',
      'GB82WEST12345698765432',
      'DE89 3704 0044 0532 0130 00',
      'DE89370400440532013000',
      'FR14 2004 1010 0505 0001 3M02 606',
      'NL91 ABNA 0417 1643 00',
      'NO93 8601 1117 947',
      'BE68 5390 0754 7034',
      'MT84 MALT 0110 0001 2345 MTLC AST0 01S',
      'SA0380000000608010167519',
      ['IBAN: CH93 0076 2011 6238 5295 7.', ['CH93 0076 2011 6238 5295 7']],
      ['BE68 5390 0754 7034 EURO', ['BE68 5390 0754 7034']],
      ['pay to AT611904300234573201, ref 7', ['AT611904300234573201']],
    ],
    negative: [
      'GB82 WEST 1234 5698 7654 33', // check fails
      'DE88 3704 0044 0532 0130 00',
      'GB82WEST1234569876543', // one short
      'XX82WEST12345698765432', // no such country
      'DE00370400440532013000', // check digits 00 are never issued
      'ID AB12CDEF3456GH78',
      'ISBN 978-3-16-148410-0',
      '550e8400-e29b-41d4-a716-446655440000',
      'DE89',
    ],
  },
  ipv4: {
    positive: [
      '10.0.0.1',
      '192.168.1.254',
      '255.255.255.255',
      '0.0.0.0',
      ['from 8.8.8.8:53', ['8.8.8.8']],
      ['[203.0.113.7]', ['203.0.113.7']],
      ['10.1.2.3/24', ['10.1.2.3']],
      ['a=192.0.2.1,b=198.51.100.2', ['192.0.2.1', '198.51.100.2']],
      ['host 172.16.0.1.', ['172.16.0.1']],
    ],
    negative: [
      '256.1.1.1',
      '1.2.3',
      '1.2.3.256',
      '999.1.1.1',
      '01.2.3.4',
      '1.2.3.04',
      '1.2.3.4.5', // version string
      'v1.2.3.4.5',
      '1.3.6.1.4.1.311.21.8', // OID
      '10.0.19041.1', // Windows build
      '2024.01.15',
      '12:30:45',
    ],
  },
  ipv6: {
    positive: [
      '2001:0db8:85a3:0000:0000:8a2e:0370:7334',
      '2001:db8::1',
      'fe80::1',
      '::1',
      '::ffff:192.0.2.1',
      '2001:db8::',
      ['[2001:db8::8a2e:370:7334]:443', ['2001:db8::8a2e:370:7334']],
      ['fe80::1ff:fe23:4567:890a%eth0', ['fe80::1ff:fe23:4567:890a']],
      '64:ff9b::192.0.2.33',
      'FE80::0202:B3FF:FE1E:8329',
      ['addr=2001:DB8:0:0:8:800:200C:417A;', ['2001:DB8:0:0:8:800:200C:417A']],
      ['listen [::]:80 and ::1', ['::1']],
    ],
    negative: [
      '12:30:45',
      '2024-01-15T12:30:45.123Z',
      '00:1A:2B:3C:4D:5E', // MAC address
      'std::vector<int>',
      'a::b',
      'Add::add',
      'f64::EPSILON',
      'foo::bar::baz',
      '1:2:3',
      'ratio 16:9',
      '::',
      '10:30:00 - 11:45:00',
    ],
  },
  jwt: {
    positive: [
      JWT,
      [`Authorization: Bearer ${JWT}`, [JWT]],
      JWT_NONE,
      [`{"id_token":"${JWT}"}`, [JWT]],
      [`token=${JWT}&x=1`, [JWT]],
      JWE,
      [`${JWT} ${JWT_NONE}`, [JWT, JWT_NONE]],
      [`cookie: session=${JWT}; path=/`, [JWT]],
    ],
    negative: [
      'eyJhbGciOiJIUzI1NiJ9',
      'eyJhbGciOiJIUzI1NiJ9.',
      'eyJ.abc.def',
      'abc.def.ghi',
      'version 1.2.3',
      'eyjhbgcioijiuzi1nij9.eyJzdWIiOiIxIn0.c2ln',
      'eyJhbGciOi JIUzI1NiJ9.eyJzdWIi.sig',
      'example.com.au',
    ],
  },
  bearer_token: {
    positive: [
      ['Authorization: Bearer abc123', ['abc123']],
      [`Bearer ${JWT}`, [JWT]],
      ['authorization: bearer ya29.a0AfH6SMBx-long_token', ['ya29.a0AfH6SMBx-long_token']],
      ['BEARER 0123456789abcdef', ['0123456789abcdef']],
      ['"Bearer sk-proj-AbC123_xyz"', ['sk-proj-AbC123_xyz']],
      ['Bearer\tmF_9.B5f-4.1JqM', ['mF_9.B5f-4.1JqM']], // RFC 6750 example
      ['Bearer dGhpcyBpcyBhIHRva2Vu==', ['dGhpcyBpcyBhIHRva2Vu==']],
      ['header Bearer QWxhZGRpbjpvcGVuIHNlc2FtZQ end', ['QWxhZGRpbjpvcGVuIHNlc2FtZQ']],
    ],
    negative: [
      'the bearer of bad news',
      'bearer bonds.',
      'Bearer',
      'Bearer ',
      'WWW-Authenticate: Bearer realm="api"',
      'cupbearer abc123',
      'bearer authentication',
      'Basic dXNlcjpwYXNz',
      'pallbearers carried',
    ],
  },
  aws_access_key_id: {
    positive: [
      'AKIAIOSFODNN7EXAMPLE',
      ['aws_access_key_id = AKIAIOSFODNN7EXAMPLE', ['AKIAIOSFODNN7EXAMPLE']],
      'ASIAY34FZKBOKMUTVV7A',
      ['"AccessKeyId": "ASIAY34FZKBOKMUTVV7A",', ['ASIAY34FZKBOKMUTVV7A']],
      'AIDACKCEVSQ6C2EXAMPLE', // IAM user unique id (21 characters)
      'AROADBQP57FF2AEXAMPLE',
      'AGPA2EXAMPLE2EXAMPLE',
      ['export AWS_ACCESS_KEY_ID=AKIAI44QH8DHBEXAMPLE', ['AKIAI44QH8DHBEXAMPLE']],
    ],
    negative: [
      'AKIAIOSFODNN7EXAMPL', // 19
      'AKIAIOSFODNN7EXAMPLE123', // 23
      'akiaiosfodnn7example',
      'AKIBIOSFODNN7EXAMPLE',
      'XAKIAIOSFODNN7EXAMPLE',
      'AKIA IOSFODNN7EXAMPLE',
      'AKIA-IOSFODNN7EXAMPLE',
      'AKIAiosfodnn7example',
    ],
  },
  aws_secret_access_key: {
    positive: [
      [`aws_secret_access_key = ${AWS_SECRET}`, [AWS_SECRET]],
      [`AWS_SECRET_ACCESS_KEY=${AWS_SECRET}`, [AWS_SECRET]],
      [`"SecretAccessKey": "${AWS_SECRET}",`, [AWS_SECRET]],
      [`export AWS_SECRET_ACCESS_KEY="${AWS_SECRET}"`, [AWS_SECRET]],
      [`secret_key: ${AWS_SECRET}`, [AWS_SECRET]],
      [`{\\"SecretAccessKey\\":\\"${AWS_SECRET}\\"}`, [AWS_SECRET]],
      [`aws-secret-access-key=${AWS_SECRET} --region us-east-1`, [AWS_SECRET]],
      [`secretAccessKey: '${AWS_SECRET}'`, [AWS_SECRET]],
    ],
    negative: [
      AWS_SECRET,
      'aws_secret_access_key = short',
      `aws_secret_access_key = ${AWS_SECRET}X`, // 41 characters: not an AWS secret
      'aws_access_key_id = AKIAIOSFODNN7EXAMPLE',
      'commit da39a3ee5e6b4b0d3255bfef95601890afd80709',
      `secret_access_key_id: ${AWS_SECRET}`,
      `the secret key is ${AWS_SECRET}`,
      'sha1=da39a3ee5e6b4b0d3255bfef95601890afd80709',
    ],
  },
  github_token: {
    positive: [
      gh('p'),
      gh('o'),
      gh('u'),
      gh('s'),
      gh('r'),
      GH_PAT,
      [`GITHUB_TOKEN=${gh('p')}`, [gh('p')]],
      [`https://x-access-token:${gh('s')}@github.com/org/repo.git`, [gh('s')]],
      [`"token": "${gh('p', ALNUM36 + 'ABCD')}"`, [gh('p', ALNUM36 + 'ABCD')]],
    ],
    negative: [
      gh('p', ALNUM36.slice(1)), // 35
      gh('x'),
      `ghp-${ALNUM36}`,
      `GHP_${ALNUM36}`,
      'github_pat_short',
      `x${gh('p')}`,
      'gh_pages',
      'ghp_ and then words',
    ],
  },
  gitlab_token: {
    positive: [
      gl('pat'),
      gl('dt'),
      gl('rt'),
      gl('ptt', 'b4e9d1f0c2a3b4e9d1f0c2a3b4e9d1f0c2a3b4e9'),
      `GR1348941${'aB3dE5fG7hJ9kL1mN2pQ'}`,
      gl('pat', 'aB3dE5fG7hJ9kL1mN2pQ4rS6tU8vW.01.0abc12def'),
      [`PRIVATE-TOKEN: ${gl('pat')}`, [gl('pat')]],
      [`git clone https://oauth2:${gl('pat')}@gitlab.com/g/p.git`, [gl('pat')]],
    ],
    negative: [
      gl('pat', 'xY7-zQ2_aB3cD4eF5gH'), // 19
      `glpat_${'xY7-zQ2_aB3cD4eF5gH6'}`,
      `GLPAT-${'xY7-zQ2_aB3cD4eF5gH6'}`,
      `glpatx-${'xY7-zQ2_aB3cD4eF5gH6'}`,
      `x${gl('pat')}`,
      'glpat-',
      `gl-pat-${'xY7-zQ2_aB3cD4eF5gH6'}`,
      `glfoo-${'xY7-zQ2_aB3cD4eF5gH6'}`,
    ],
  },
  slack_token: {
    positive: [
      sl('b'),
      sl('p'),
      sl('a', '2-1234567890-AbCdEfGhIjKl'),
      `xoxe.${sl('p', '1-AbCdEfGhIjKlMnOpQrStUvWx')}`,
      sl('r'),
      sl('s'),
      `xapp-1-A0123456789-1234567890123-${'ab12'.repeat(8)}`,
      [`SLACK_BOT_TOKEN=${sl('b')}`, [sl('b')]],
      [`"token": "${sl('p')}"`, [sl('p')]],
    ],
    negative: [
      sl('b', '123'),
      sl('z'),
      `xox-${'1234567890abcd'}`,
      `xoxb_${'1234567890abcd'}`,
      `XOXB-${'1234567890abcd'}`,
      `fo${sl('b')}`,
      `xapp-12-${'1234567890abcd'}`,
      'xoxb-',
    ],
  },
  pem_private_key: {
    positive: [
      `-----BEGIN PRIVATE KEY-----\n${PEM_BODY}-----END PRIVATE KEY-----`,
      [
        `key:\n-----BEGIN RSA PRIVATE KEY-----\n${PEM_BODY}-----END RSA PRIVATE KEY-----\nnext line`,
        [`-----BEGIN RSA PRIVATE KEY-----\n${PEM_BODY}-----END RSA PRIVATE KEY-----`],
      ],
      `-----BEGIN EC PRIVATE KEY-----\n${PEM_BODY}-----END EC PRIVATE KEY-----`,
      `-----BEGIN ENCRYPTED PRIVATE KEY-----\r\n${PEM_BODY.replace(/\n/g, '\r\n')}-----END ENCRYPTED PRIVATE KEY-----`,
      `-----BEGIN OPENSSH PRIVATE KEY-----\n${PEM_BODY}-----END OPENSSH PRIVATE KEY-----`,
      `-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,0123456789ABCDEF0123456789ABCDEF\n\n${PEM_BODY}-----END RSA PRIVATE KEY-----`,
      [
        `{"k":"-----BEGIN PRIVATE KEY-----\\n${PEM_BODY.replace(/\n/g, '\\n')}-----END PRIVATE KEY-----\\n"}`,
        [`-----BEGIN PRIVATE KEY-----\\n${PEM_BODY.replace(/\n/g, '\\n')}-----END PRIVATE KEY-----`],
      ],
      `-----BEGIN RSA PRIVATE KEY----- ${PEM_BODY.replace(/\n/g, ' ')}-----END RSA PRIVATE KEY-----`,
      // Cut off before the END line (a truncated log line): still redacted to the end.
      [`-----BEGIN PRIVATE KEY-----\n${PEM_BODY}MIIEvQIBADAN`, [`-----BEGIN PRIVATE KEY-----\n${PEM_BODY}MIIEvQIBADAN`]],
      `-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBF${PEM_BODY}=twTO\n-----END PGP PRIVATE KEY BLOCK-----`,
    ],
    negative: [
      `-----BEGIN PUBLIC KEY-----\n${PEM_BODY}-----END PUBLIC KEY-----`,
      `-----BEGIN CERTIFICATE-----\n${PEM_BODY}-----END CERTIFICATE-----`,
      `-----BEGIN RSA PUBLIC KEY-----\n${PEM_BODY}-----END RSA PUBLIC KEY-----`,
      'BEGIN PRIVATE KEY',
      '----BEGIN PRIVATE KEY----',
      `-----BEGIN OPENSSH PUBLIC KEY-----\n${PEM_BODY}`,
      'the private key is on the HSM',
      `-----BEGIN private key-----\n${PEM_BODY}`,
      '-----BEGIN CERTIFICATE REQUEST-----',
    ],
  },
  secret_kv: {
    positive: [
      ['password=hunter2', ['hunter2']],
      ['DB_PASSWORD="s3cr3t!"', ['s3cr3t!']],
      ['{"password": "correct-horse"}', ['correct-horse']],
      ['api_key: sk_live_51Habc', ['sk_live_51Habc']],
      ['apikey=abc123', ['abc123']],
      ['client_secret=xyz789', ['xyz789']],
      ['access_token=ya29.abc', ['ya29.abc']],
      ["pwd='p@ss'", ['p@ss']],
      ['passwd: letmein', ['letmein']],
      ["secret => 'abc'", ['abc']],
      ['X-Api-Key: 1234abcd', ['1234abcd']],
      ['curl -d password=abc&user=bob', ['abc']],
      ['token: Bearer abc123', ['Bearer abc123']],
      ['{\\"password\\":\\"pa55\\"}', ['pa55']],
      ['PRIVATE_KEY=abc123def', ['abc123def']],
      ['login user=bob password=pw1 token=t2', ['pw1', 't2']],
    ],
    negative: [
      'password',
      'password:',
      'password: ""',
      'max_tokens: 1024',
      'input_tokens=12',
      'tokenizer: cl100k',
      'secretary: Jane',
      'the password is hunter2',
      'password_hash=abc',
      'private_key: -----BEGIN PRIVATE KEY-----', // left to pem_private_key
      'Token count: 5',
      'passwords: []',
      'forgot_password_url: https://example.com/reset',
    ],
  },
  medical_record_number: {
    positive: [
      ['MRN: 12345678', ['12345678']],
      ['MRN#1234567', ['1234567']],
      ['MRN 123456', ['123456']],
      ['mrn=0012345678', ['0012345678']],
      ['Patient MRN-1234567 admitted', ['1234567']],
      ['{"mrn": "87654321"}', ['87654321']],
      ['MRN No. 1234567', ['1234567']],
      ['MRN #: 7654321', ['7654321']],
      ['patient_mrn:12345678', ['12345678']],
    ],
    negative: [
      'MRN: 12345',
      'MRN: 12345678901',
      'MRN: ABC12345',
      'MRN',
      'mrna vaccine 123456',
      'SMRN 1234567',
      '12345678',
      'MR N 1234567',
      'MRN 12 34 56 78',
    ],
  },
};

describe('detector catalogue', () => {
  it('has a corpus for every detector and a detector for every corpus', () => {
    expect(Object.keys(CORPORA).sort()).toEqual([...DETECTOR_NAMES].sort());
  });

  it.each([...DETECTOR_NAMES])('%s compiles with RE2 and has the declared shape', (name) => {
    const d = buildDetector(name);
    expect(d.id).toBe(name);
    expect(d.description.length).toBeGreaterThan(10);
    expect(() => new RE2(d.pattern, 'g')).not.toThrow();
    expect(groupCount(d.pattern)).toBe(d.valueGroup ? 1 : 0);
    expect(new RE2(d.pattern).test('')).toBe(false);
    if (d.validator) expect(Object.keys(VALIDATORS)).toContain(d.validator);
    for (const r of d.requires ?? []) expect(r).toBe(r.toLowerCase());
  });

  it('all detectors fit in one combined RE2 program, as the engine builds it', () => {
    const all = DETECTOR_NAMES.map((n) => `(${buildDetector(n).pattern})`).join('|');
    expect(() => new RE2(all, 'g')).not.toThrow();
  });

  it('rejects unknown detectors and bad options with a message naming them', () => {
    expect(() => buildDetector('credit_card')).toThrow(/unknown detector "credit_card"/);
    expect(() => buildDetector('email', { strict: true })).toThrow(/email takes no options/);
    expect(() => buildDetector('medical_record_number', { digits: 7 })).toThrow(/unknown option "digits"/);
    expect(() => buildDetector('medical_record_number', { min_digits: 0 })).toThrow(/min_digits must be an integer/);
    expect(() => buildDetector('medical_record_number', { min_digits: 6.5 })).toThrow(/min_digits/);
    expect(() => buildDetector('medical_record_number', { max_digits: '10' })).toThrow(/max_digits/);
    expect(() => buildDetector('medical_record_number', { min_digits: 8, max_digits: 7 })).toThrow(/greater than max_digits/);
    expect(() => buildDetector('medical_record_number', { max_digits: 4 })).toThrow(/greater than max_digits/);
    expect(() => buildDetector('medical_record_number', { prefix: '' })).toThrow(/prefix/);
    expect(() => buildDetector('medical_record_number', { prefix: 42 })).toThrow(/prefix/);
    expect(() => buildDetector('medical_record_number', { prefix: [] })).toThrow(/prefix/);
    expect(() => buildDetector('medical_record_number', { prefix: 'MRN(' })).toThrow(/prefix/);
    expect(() => buildDetector('secret_kv', { keys: ['ok', '(bad)'] })).toThrow(/keys/);
    expect(() => buildDetector('phone_e164', { separators: 'yes' })).toThrow(/separators must be true or false/);
    expect(() => buildDetector('us_ssn', { bare: 1 })).toThrow(/bare/);
    expect(() => buildDetector('ipv4', [] as unknown as Record<string, unknown>)).toThrow(/mapping/);
  });

  it('throws DetectorError carrying the ConfigError code, the detector and the option at fault', () => {
    const caught = (fn: () => unknown): DetectorError => {
      try {
        fn();
      } catch (err) {
        expect(err).toBeInstanceOf(DetectorError);
        return err as DetectorError;
      }
      throw new Error('expected a DetectorError');
    };
    const fields = (e: DetectorError) => [e.code, e.detector, e.option];
    expect(fields(caught(() => buildDetector('credit_card')))).toEqual(['redaction_unknown_detector', 'credit_card', undefined]);
    // an unknown name is reported before its options are looked at
    expect(fields(caught(() => buildDetector('credit_card', [] as unknown as Record<string, unknown>)))[0]).toBe('redaction_unknown_detector');
    expect(fields(caught(() => buildDetector('constructor')))[0]).toBe('redaction_unknown_detector');
    expect(fields(caught(() => buildDetector(['email'] as unknown as string)))[0]).toBe('redaction_unknown_detector');
    expect(fields(caught(() => buildDetector('email', { strict: true })))).toEqual(['redaction_rule_invalid', 'email', 'strict']);
    expect(fields(caught(() => buildDetector('medical_record_number', { min_digits: 0 })))).toEqual([
      'redaction_rule_invalid',
      'medical_record_number',
      'min_digits',
    ]);
    expect(fields(caught(() => buildDetector('secret_kv', { keys: ['(bad)'] })))).toEqual(['redaction_rule_invalid', 'secret_kv', 'keys']);
    expect(fields(caught(() => buildDetector('medical_record_number', { min_digits: 8, max_digits: 7 })))).toEqual([
      'redaction_rule_invalid',
      'medical_record_number',
      undefined,
    ]);
    expect(fields(caught(() => buildDetector('ipv4', [] as unknown as Record<string, unknown>)))).toEqual(['redaction_rule_invalid', 'ipv4', undefined]);
  });

  it('a rule with bad detector options is a ConfigError whose cause is the DetectorError', () => {
    let err: unknown;
    try {
      compileRuleset([{ id: 'mrn', detector: 'medical_record_number', options: { min_digits: 0 } }]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe('redaction_rule_invalid');
    expect((err as ConfigError).message).toBe(
      'rule "mrn": detector "medical_record_number": detector medical_record_number: option min_digits must be an integer from 1 to 32',
    );
    expect((err as ConfigError).cause).toBeInstanceOf(DetectorError);
  });
});

for (const [name, corpus] of Object.entries(CORPORA)) {
  describe(`detector ${name}`, () => {
    const d = buildDetector(name, corpus.options);

    it('has at least 8 positives and 8 negatives', () => {
      expect(corpus.positive.length).toBeGreaterThanOrEqual(8);
      expect(corpus.negative.length).toBeGreaterThanOrEqual(8);
    });

    it.each(corpus.positive.map((p) => (typeof p === 'string' ? [p, [p]] : p)))(
      'redacts in %j exactly %j',
      (text, expected) => {
        expect(redacted(d, text)).toEqual(expected);
      },
    );

    // Same values at the start and end of a longer string, and mid-sentence.
    it.each(corpus.positive.filter((p): p is string => typeof p === 'string'))('finds %j inside text', (value) => {
      expect(redacted(d, `${value} was seen`)).toEqual([value]);
      expect(redacted(d, `seen: ${value}`)).toEqual([value]);
      expect(redacted(d, `we saw (${value}) twice`)).toEqual([value]);
    });

    it.each(corpus.negative)('leaves %j alone', (text) => {
      expect(redacted(d, text)).toEqual([]);
    });

    if (d.requires) {
      it('every positive match holds one of the prefilter literals', () => {
        const re = new RE2(d.pattern, 'g');
        for (const p of corpus.positive) {
          const text = typeof p === 'string' ? p : p[0];
          for (const m of text.matchAll(re)) {
            expect(d.requires!.some((r) => m[0].toLowerCase().includes(r)), m[0]).toBe(true);
          }
        }
      });
    }
  });
}

describe('detector options', () => {
  it('phone_e164 separators: true accepts grouped international numbers', () => {
    const d = buildDetector('phone_e164', { separators: true });
    for (const v of ['+33 1 42 68 53 00', '+49 30 1234567', '+1-415-555-2671', '+44 20 7183 8750', '+31.20.555.1234']) {
      expect(redacted(d, `call ${v} now`)).toEqual([v]);
    }
    for (const v of ['+33 1 42', '+0 20 7183 8750', '+1  415 555 2671', '2024-01-15 +01:00']) {
      expect(redacted(d, v)).toEqual([]);
    }
  });

  it('us_ssn bare: false leaves 9 digits standing alone', () => {
    const d = buildDetector('us_ssn', { bare: false });
    expect(redacted(d, 'ssn 123456789')).toEqual([]);
    expect(redacted(d, 'ssn 123-45-6789 / 123 45 6789')).toEqual(['123-45-6789', '123 45 6789']);
  });

  it('medical_record_number honours prefix, min_digits and max_digits', () => {
    const d = buildDetector('medical_record_number', { prefix: 'Patient ID', min_digits: 5, max_digits: 8 });
    expect(redacted(d, 'patient id: 12345')).toEqual(['12345']);
    expect(redacted(d, 'Patient-ID 12345678')).toEqual(['12345678']);
    expect(redacted(d, 'PatientID#123456')).toEqual(['123456']);
    expect(redacted(d, 'patient_id=1234')).toEqual([]);
    expect(redacted(d, 'patient id: 123456789')).toEqual([]);
    expect(redacted(d, 'MRN 1234567')).toEqual([]);
    expect(d.requires).toEqual(['patient']);
    const many = buildDetector('medical_record_number', { prefix: ['MRN', 'Medical Record Number'] });
    expect(redacted(many, 'Medical Record Number: 1234567; MRN 7654321')).toEqual(['1234567', '7654321']);
    const long = buildDetector('medical_record_number', { min_digits: 12 });
    expect(redacted(long, 'MRN 123456789012')).toEqual(['123456789012']);
    expect(redacted(long, 'MRN 12345678901')).toEqual([]);
  });

  it('medical_record_number escapes RE2 metacharacters in the prefix', () => {
    const d = buildDetector('medical_record_number', { prefix: 'Pt.No#' });
    expect(redacted(d, 'Pt.No# 1234567')).toEqual(['1234567']);
    expect(redacted(d, 'PtxNo# 1234567')).toEqual([]);
  });

  it('secret_kv keys replace the default labels and need a word boundary', () => {
    const d = buildDetector('secret_kv', { keys: ['member_id', 'tin'] });
    expect(redacted(d, 'member_id: ABC123456')).toEqual(['ABC123456']);
    expect(redacted(d, '"memberId":"XYZ-99"')).toEqual(['XYZ-99']);
    expect(redacted(d, 'Member ID = M0001')).toEqual(['M0001']);
    expect(redacted(d, 'tin=123456789')).toEqual(['123456789']);
    expect(redacted(d, 'latin: text')).toEqual([]);
    expect(redacted(d, 'member_id_type: gold')).toEqual([]);
    expect(redacted(d, 'password=hunter2')).toEqual([]);
  });
});

describe('validators', () => {
  it('luhn accepts card networks\' published test numbers and rejects one-digit changes', () => {
    const good = [
      '4111111111111111',
      '4012888888881881',
      '4222222222222',
      '5555555555554444',
      '5105105105105100',
      '2223003122003222',
      '378282246310005',
      '371449635398431',
      '6011111111111117',
      '3530111333300000',
      '30569309025904',
      '79927398713', // the textbook Luhn example
      '4111 1111 1111 1111',
      '4111-1111-1111-1111',
    ];
    for (const v of good) expect(luhn(v), v).toBe(true);
    const bad = ['4111111111111112', '5555555555554445', '378282246310006', '79927398710', '1234567812345678', '', '0', 'abc', '4111x111111111111', '4111+1111+1111+1111'];
    for (const v of bad) expect(luhn(v), v).toBe(false);
  });

  it('ibanMod97 accepts the IBAN registry examples and rejects altered ones', () => {
    const good = [
      'GB82 WEST 1234 5698 7654 32',
      'GB82WEST12345698765432',
      'DE89 3704 0044 0532 0130 00',
      'FR1420041010050500013M02606',
      'NL91ABNA0417164300',
      'NO9386011117947',
      'BE68539007547034',
      'CH9300762011623852957',
      'MT84MALT011000012345MTLCAST001S',
      'AT611904300234573201',
      'ES9121000418450200051332',
      'IT60X0542811101000000123456',
      'PL61109010140000071219812874',
      'SA0380000000608010167519',
      'gb82 west 1234 5698 7654 32',
      'DE89-3704-0044-0532-0130-00',
    ];
    for (const v of good) expect(ibanMod97(v), v).toBe(true);
    const bad = [
      'GB82 WEST 1234 5698 7654 33',
      'GB28 WEST 1234 5698 7654 32', // swapped check digits
      'DE89 3704 0044 0532 0130 01',
      'GB82WEST1234569876543', // too short for the check to hold
      'NO93860111179', // under 15 characters
      `GB82${'1'.repeat(31)}`, // over 34 characters
      '1282WEST12345698765432',
      'GBX2WEST12345698765432',
      'GB82WEST1234569876543!',
      '',
    ];
    for (const v of bad) expect(ibanMod97(v), v).toBe(false);
  });

  it('ibanMod97 refuses check digits 00, 01 and 99 even when the sum works out', () => {
    // Find a BBAN whose correct check digits are 98; "01" is then ≡ 98 (mod 97).
    const mod = (s: string): bigint =>
      BigInt(
        [...s]
          .map((c) => (/[A-Z]/.test(c) ? String(c.charCodeAt(0) - 55) : c))
          .join(''),
      ) % 97n;
    let bban = '';
    for (let n = 10_000_000_000; ; n++) {
      bban = `WEST${n}`;
      if (98n - mod(`${bban}GB00`) === 98n) break;
    }
    expect(ibanMod97(`GB98${bban}`)).toBe(true);
    expect(ibanMod97(`GB01${bban}`)).toBe(false);
    let bban2 = '';
    for (let n = 10_000_000_000; ; n++) {
      bban2 = `WEST${n}`;
      if (98n - mod(`${bban2}GB00`) === 2n) break;
    }
    expect(ibanMod97(`GB02${bban2}`)).toBe(true);
    expect(ibanMod97(`GB99${bban2}`)).toBe(false);
  });

  it('ssnValid follows the SSA rules for numbers never issued', () => {
    for (const v of ['123-45-6789', '123456789', '123 45 6789', '001-01-0001', '665-99-9999', '667-01-0001', '899-99-9999', '078-05-1120']) {
      expect(ssnValid(v), v).toBe(true);
    }
    for (const v of [
      '000-12-3456',
      '666-12-3456',
      '900-12-3456',
      '987-65-4320', // SSA's advertising range, in 9xx
      '123-00-4567',
      '123-45-0000',
      '12345678',
      '1234567890',
      '123-45-678a',
      '123.45.6789',
      '',
    ]) {
      expect(ssnValid(v), v).toBe(false);
    }
  });

  it('VALIDATORS maps every validator name', () => {
    expect(Object.keys(VALIDATORS).sort()).toEqual(['iban_mod97', 'luhn', 'ssn_valid']);
  });
});

const MB = 1 << 20;
const ADVERSARIAL: Record<string, string> = {
  'a@': rep('a@', MB),
  'a@b.': rep('a@b.', MB),
  'digits and dashes': rep('1-', MB),
  'digits and spaces': rep('4111 ', MB),
  digits: rep('1234567890', MB),
  'dots': rep('1.', MB),
  'colons': rep('1:', MB),
  'double colons': rep('a1::', MB),
  'BEGIN': rep('-----BEGIN', MB),
  'BEGIN lines': rep('-----BEGIN PRIVATE KEY-----\n', MB),
  'base64': rep('eyJhbGciOiJIUzI1NiJ9.', MB),
  'key=': rep('password=', MB),
  'key: "': rep('secret: "', MB),
  'Bearer': rep('Bearer ', MB),
  'MRN': rep('MRN #', MB),
  'AKIA': rep('AKIA', MB),
  'ghp_': rep('ghp_', MB),
  'IBAN groups': rep('GB82 ', MB),
  'letters': rep('x', MB),
  'valid matches back to back': rep('alice@example.com 10.0.0.1 4111111111111111 ', MB),
};

describe('linear time on adversarial input (completes; no timing asserted)', () => {
  it.each([...DETECTOR_NAMES])('%s', (name) => {
    const d = buildDetector(name);
    for (const [label, text] of Object.entries(ADVERSARIAL)) {
      expect(Array.isArray(redacted(d, text)), label).toBe(true);
    }
  }, 120_000);
});

// ------------------------------------------------------------------ rule packs

const PACK_DIR = join(import.meta.dirname, '../../config/redaction');
const RULE_ID = /^[a-z0-9_.-]{1,64}$/;

interface PackRule {
  id: string;
  description?: string;
  detector?: string;
  pattern?: string;
  options?: Record<string, unknown>;
  validator?: ValidatorName;
  keys?: boolean;
  scope?: { include?: string[]; exclude?: string[] };
  operator?: string;
  replace?: string;
  keep_last?: number;
  key?: string;
}

interface Pack {
  include?: string[];
  disable?: string[];
  rules: PackRule[];
}

function loadPack(name: string): Pack {
  return parseYaml(readFileSync(join(PACK_DIR, `${name}.yaml`), 'utf8')) as Pack;
}

const PACKS = readdirSync(PACK_DIR)
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => f.slice(0, -'.yaml'.length))
  .sort();

/** All rules a pack brings, includes first, in order. */
function composed(name: string, seen: string[] = []): PackRule[] {
  expect(seen, `include cycle through ${name}`).not.toContain(name);
  const pack = loadPack(name);
  const out: PackRule[] = [];
  for (const inc of pack.include ?? []) {
    expect(inc).toMatch(/^pack:[a-z0-9-]+$/);
    out.push(...composed(inc.slice('pack:'.length), [...seen, name]));
  }
  out.push(...pack.rules);
  return out.filter((r) => !(pack.disable ?? []).includes(r.id));
}

function ruleDef(pack: string, id: string): Pick<DetectorDef, 'pattern' | 'validator' | 'valueGroup'> {
  const rule = composed(pack).find((r) => r.id === id);
  if (!rule) throw new Error(`no rule ${id} in ${pack}`);
  if (rule.pattern) return { pattern: rule.pattern, validator: rule.validator };
  const d = buildDetector(rule.detector!, rule.options);
  return { pattern: d.pattern, validator: rule.validator ?? d.validator, valueGroup: d.valueGroup };
}

describe('rule packs', () => {
  it('ships the five packs', () => {
    expect(PACKS).toEqual(['gdpr', 'hipaa', 'pci', 'pii-basic', 'secrets']);
  });

  it.each(PACKS)('%s is well formed', (name) => {
    const rules = composed(name);
    expect(rules.length).toBeGreaterThan(0);
    const ids = rules.map((r) => r.id);
    expect(new Set(ids).size, 'duplicate ids after composition').toBe(ids.length);
    const combined: string[] = [];
    for (const r of rules) {
      expect(r.id).toMatch(RULE_ID);
      expect(r.description, r.id).toBeTruthy();
      expect((r.detector === undefined) !== (r.pattern === undefined), `${r.id}: exactly one of detector / pattern`).toBe(true);
      // Pseudonym keys are per deployment: a shipped pack cannot name one.
      expect(['replace', 'mask', 'drop_field', undefined], r.id).toContain(r.operator);
      expect(r.key, r.id).toBeUndefined();
      if (r.operator === 'mask') expect(r.keep_last, r.id).toBeGreaterThan(0);
      if (r.validator !== undefined) expect(Object.keys(VALIDATORS), r.id).toContain(r.validator);
      if (r.detector !== undefined) {
        expect(DETECTOR_NAMES, r.id).toContain(r.detector);
        const d = buildDetector(r.detector, r.options);
        if (d.validator) expect(r.validator, `${r.id}: state the detector's validator`).toBe(d.validator);
        combined.push(d.pattern);
      } else {
        const p = r.pattern!;
        expect(() => new RE2(p, 'g'), r.id).not.toThrow();
        expect(new RE2(p).test(''), `${r.id} matches the empty string`).toBe(false);
        expect(p.length, r.id).toBeLessThanOrEqual(4096);
        combined.push(p);
      }
      for (const path of [...(r.scope?.include ?? []), ...(r.scope?.exclude ?? [])]) {
        expect(path, r.id).toMatch(/^\$(?:\.\*\*|\.\*|\.[^.[\]*"'\s]+)+$/);
      }
    }
    expect(() => new RE2(combined.map((p) => `(${p})`).join('|'), 'g')).not.toThrow();
  });

  it('pii-basic keeps the original rule ids first, in their order', () => {
    expect(composed('pii-basic').map((r) => r.id)).toEqual([
      'email',
      'us_ssn',
      'payment_card',
      'phone_e164',
      'ipv4',
      'phone_nanp',
      'phone_uk',
      'ipv6',
    ]);
  });

  it('hipaa and gdpr build on pii-basic; pci and secrets stand alone', () => {
    expect(loadPack('hipaa').include).toEqual(['pack:pii-basic']);
    expect(loadPack('gdpr').include).toEqual(['pack:pii-basic']);
    expect(loadPack('pci').include).toBeUndefined();
    expect(loadPack('secrets').include).toBeUndefined();
  });

  it('pci masks the PAN to its last four', () => {
    const pan = composed('pci').find((r) => r.id === 'pci_pan')!;
    expect(pan).toMatchObject({ detector: 'payment_card', validator: 'luhn', operator: 'mask', keep_last: 4 });
  });

  const PATTERN_CASES: [pack: string, id: string, positive: Positive[], negative: string[]][] = [
    [
      'secrets',
      'basic_auth',
      [
        'Authorization: Basic dXNlcjpwYXNzd29yZA==',
        ['{"h":"authorization: basic YTpi"}', ['authorization: basic YTpi']],
        ['Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==', ['Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==']],
        ['header Basic dXNlcjpwYXNz1 sent', ['Basic dXNlcjpwYXNz1']],
      ],
      ['Basic configuration', 'basic understanding of the task', 'Basic', 'Bearer abc123'],
    ],
    [
      'secrets',
      'slack_webhook_url',
      [`https://hooks.slack.com/services/T00000000/B00000000/${'X'.repeat(24)}`],
      ['https://hooks.slack.com/', 'https://api.slack.com/services/T0/B0/x', 'https://hooks.slack.com/services/T0'],
    ],
    [
      'pci',
      'pci_track1',
      ['%B4111111111111111^DOE/JOHN^2512101000000000000000000000000?', 'B4111111111111111^DOE/JOHN^2512101123456789?'],
      ['%B4111^DOE^2512?', 'Bob^Alice^2512', '4111111111111111'],
    ],
    [
      'pci',
      'pci_track2',
      [';4111111111111111=25121011234567890?', '4111111111111111=2512101123456789'],
      ['4111111111111111', 'a=2512101', '1718000000000=1'],
    ],
    [
      'pci',
      'pci_cvv',
      ['cvv: 123', 'CVV2=4567', ['"cvc": "321"', ['cvc": "321']], 'security code 999', 'Card Verification Value: 1234', ['card 4111111111111111 cvv 123', ['cvv 123']]],
      ['cvv: 12', 'cvv: 12345', 'cvv: abc', 'cvvs are checked', 'security code: 123456'],
    ],
    [
      'pci',
      'pci_expiry',
      ['exp 12/25', 'Expiry: 09/2027', 'expiration date: 1/26', 'valid thru 12-25', ['"exp": "03/28"', ['exp": "03/28']]],
      ['exp 13/25', 'expires soon', 'exp: 3', 'experience 12/25', 'expiry: 2025-12-01'],
    ],
    [
      'pci',
      'pci_pin',
      ['pin: 1234', 'PIN=123456', 'pin_block: 0412AC89ABCDEF67', 'PIN code: 4921'],
      ['pin: true', 'pinned: 1234', 'spin: 1234', 'pin: 12'],
    ],
    [
      'hipaa',
      'hipaa_mbi',
      ['1EG4-TE5-MK73', '1EG4TE5MK73', ['Medicare 1EG4-TE5-MK73.', ['1EG4-TE5-MK73']]],
      ['1SG4-TE5-MK73', '0EG4-TE5-MK73', '1EG4-TE5-MK7', 'ABCDEFGHIJK'],
    ],
    [
      'hipaa',
      'hipaa_url',
      [
        'https://ehr.example.org/patients/12345?tab=labs',
        ['see http://example.com/a.', ['http://example.com/a.']],
        ['"ftp://files.example.org/x"', ['ftp://files.example.org/x']],
      ],
      ['example.com/patients', 'mailto:alice@example.com', 'https:/broken'],
    ],
    [
      'hipaa',
      'hipaa_date',
      [
        'DOB: 01/02/1980',
        'date of birth: 1980-01-02',
        'Admitted on 2024-03-15',
        'discharge date: 15.03.2024',
        'born Jan 2, 1980',
        'DOD 2 January 2024',
        ['"birthDate": "1974-12-25"', ['birthDate": "1974-12-25']],
        'd.o.b. 12/25/74',
      ],
      ['born 1980', 'date of birth: unknown', 'admission: pending', 'date: 2024-01-15', 'dob'],
    ],
    [
      'hipaa',
      'hipaa_age_over_89',
      ['age: 95', 'aged 92', 'Age=100', '93-year-old', '91 years old', '95 y/o', '90yo'],
      ['age: 89', 'page: 95', 'usage: 95', 'average: 93', 'stage 95', '1995 years old', 'age: 1000'],
    ],
    [
      'hipaa',
      'hipaa_zip',
      ['94103-1234', 'zip: 94103', 'ZIP code = 10001-0001', ['"postal_code": "02139"', ['postal_code": "02139']]],
      ['94103', '123-45-6789', 'zip: true', 'zip: 9410', '2024-0115'],
    ],
    [
      'gdpr',
      'uk_nino',
      ['AB123456C', 'AB 12 34 56 C', 'JG103759A', ['NI number: CE 12 34 56 D.', ['CE 12 34 56 D']]],
      ['QQ123456C', 'GB123456A', 'BG123456A', 'AB123456E', 'AB12345C', 'DA123456A', 'AO123456A', 'ab123456c'],
    ],
    [
      'gdpr',
      'it_codice_fiscale',
      ['RSSMRA85T10A562S', ['CF: RSSMRA85T10A562S.', ['RSSMRA85T10A562S']], 'RSSMRA85T10A5Q2S'],
      ['RSSMRA85T10A562', 'RSSMRA85X10A562S', 'ABCDEFGHIJKLMNOP', 'rssmra85t10a562s'],
    ],
    [
      'gdpr',
      'se_personnummer',
      ['811228-9874', ['personnummer 811228-9874.', ['811228-9874']], '811288-9871' /* samordningsnummer */],
      ['811228-9875', '8112289874', '811328-9874', '19811228-9874', '811232-9874'],
    ],
  ];

  for (const [pack, id, positive, negative] of PATTERN_CASES) {
    describe(`${pack}: ${id}`, () => {
      const def = ruleDef(pack, id);
      it.each(positive.map((p) => (typeof p === 'string' ? [p, [p]] : p)))('redacts in %j exactly %j', (text, expected) => {
        expect(redacted(def, text)).toEqual(expected);
      });
      it.each(negative)('leaves %j alone', (text) => {
        expect(redacted(def, text)).toEqual([]);
      });
      it('completes on adversarial input', () => {
        for (const text of Object.values(ADVERSARIAL)) expect(Array.isArray(redacted(def, text))).toBe(true);
      }, 60_000);
    });
  }

  it('kv rules in the packs redact only the value', () => {
    expect(redacted(ruleDef('hipaa', 'hipaa_account_kv'), 'member_id: W123456789, plan: gold')).toEqual(['W123456789']);
    expect(redacted(ruleDef('hipaa', 'hipaa_license_kv'), 'drivers_license=D1234567')).toEqual(['D1234567']);
    expect(redacted(ruleDef('hipaa', 'hipaa_vehicle_kv'), 'VIN: 1HGCM82633A004352')).toEqual(['1HGCM82633A004352']);
    expect(redacted(ruleDef('hipaa', 'hipaa_device_kv'), '"serialNumber": "SN-00042"')).toEqual(['SN-00042']);
    expect(redacted(ruleDef('hipaa', 'hipaa_mrn'), 'MRN: 12345678')).toEqual(['12345678']);
    expect(redacted(ruleDef('gdpr', 'national_id_kv'), 'passport_number: X1234567; dni=12345678Z')).toEqual(['X1234567', '12345678Z']);
    expect(redacted(ruleDef('gdpr', 'phone_intl'), 'Tel. +33 1 42 68 53 00')).toEqual(['+33 1 42 68 53 00']);
    expect(redacted(ruleDef('gdpr', 'iban'), 'IBAN DE89 3704 0044 0532 0130 00')).toEqual(['DE89 3704 0044 0532 0130 00']);
  });
});

describe('documented limits (pinned so a change is a decision)', () => {
  it('false positives', () => {
    // A four-part version string is an IPv4 address as far as shape goes.
    expect(redacted(buildDetector('ipv4'), 'v 1.2.3.4')).toEqual(['1.2.3.4']);
    // Nine digits standing alone with a valid SSN area/group/serial.
    expect(redacted(buildDetector('us_ssn'), 'order 123456789')).toEqual(['123456789']);
    // Ten digits fitting the NANP plan.
    expect(redacted(buildDetector('phone_nanp'), 'id 2125550100')).toEqual(['2125550100']);
    // An SSH remote has the shape of an email address.
    expect(redacted(buildDetector('email'), 'git@github.com:org/repo.git')).toEqual(['git@github.com']);
    // `pwd` as a label also catches the shell's working directory.
    expect(redacted(buildDetector('secret_kv'), 'pwd: /home/agent')).toEqual(['/home/agent']);
    // A truncated key swallows the prose that follows up to the first punctuation other than + / =.
    expect(redacted(buildDetector('pem_private_key'), '-----BEGIN PRIVATE KEY-----\nMIIE and more words, then')).toEqual([
      '-----BEGIN PRIVATE KEY-----\nMIIE and more words',
    ]);
  });

  it('false negatives', () => {
    expect(redacted(buildDetector('iban'), 'gb82 west 1234 5698 7654 32')).toEqual([]); // lowercase
    expect(redacted(buildDetector('iban'), 'FR76 30006 00001 12345678901 89')).toEqual([]); // irregular groups
    expect(redacted(buildDetector('ipv4'), '192.168.001.001')).toEqual([]); // zero-padded
    expect(redacted(buildDetector('us_ssn'), 'ssn123-45-6789')).toEqual([]); // glued to letters
    expect(redacted(buildDetector('payment_card'), '6011 0000 0000 0000 004')).toEqual([]); // 19 digits as 4-4-4-4-3
    expect(redacted(buildDetector('secret_kv'), 'password: "correct horse battery"')).toEqual(['correct']); // spaces end the value
    expect(redacted(buildDetector('bearer_token'), 'Bearer abcdef')).toEqual([]); // short, letters only
    expect(redacted(buildDetector('email'), 'jörg@exämple.de')).toEqual([]); // non-ASCII
  });
});
