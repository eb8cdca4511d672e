import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/index.js';
import { ConfigError } from '../../src/core/errors.js';
import { thrown } from '../helpers/errors.js';

const SIDECAR = (ship: string): string => `sidecar:
  sources: [{ id: t, type: file, include: [/tmp/x.jsonl] }]
  keys: { signing_key_file: /k/a.skey, hmac_key_file: /k/hmac.key }
  ship:
${ship}
`;

const refused = (text: string): ConfigError => thrown(() => parseConfigText(text, 'test.yaml', {}), ConfigError, 'accepted');

describe('collector.tls and ship.tls', () => {
  it('collector.tls beside listen', () => {
    const cfg = parseConfigText('collector:\n  listen: 0.0.0.0:7470\n  tls: { cert_file: /t/tls.crt, key_file: /t/tls.key, client_ca_file: /t/ca.crt }\n', 'test.yaml', {});
    expect(cfg.collector!.tls).toEqual({ cert_file: '/t/tls.crt', key_file: '/t/tls.key', client_ca_file: '/t/ca.crt' });
  });

  it('collector.tls needs cert_file and key_file, and knows no other key', () => {
    expect(refused('collector:\n  tls: { cert_file: /t/tls.crt }\n').code).toBe('config_schema');
    expect(refused('collector:\n  tls: { cert_file: /a, key_file: /b, ca_file: /c }\n').code).toBe('config_schema');
  });

  it('ship.tls on an https url', () => {
    const cfg = parseConfigText(SIDECAR('    url: https://c:7470\n    tls: { ca_file: /t/ca.crt, cert_file: /t/tls.crt, key_file: /t/tls.key }'), 'test.yaml', {});
    expect(cfg.sidecar!.ship.tls).toEqual({ ca_file: '/t/ca.crt', cert_file: '/t/tls.crt', key_file: '/t/tls.key' });
  });

  it('ship.tls cert_file without key_file, and ship.tls with an http:// url, are refused at their line', () => {
    const half = refused(SIDECAR('    url: https://c:7470\n    tls: { cert_file: /t/tls.crt }'));
    expect(half.message).toContain('ship.tls.key_file');
    expect(half.line).toBe(6);
    const plain = refused(SIDECAR('    url: http://c:7470\n    tls: { ca_file: /t/ca.crt }'));
    expect(plain.message).toContain('https://');
  });
});

describe('collector.ship_identities', () => {
  const H = 'a'.repeat(64);
  it('loads, ids defaulted', () => {
    const cfg = parseConfigText(`collector:\n  ship_identities:\n    - { token_sha256: "${H}", streams: ["tok-*"] }\n    - { id: pod-a, san_uri: "spiffe://t/ns/a/sa/pod-a", streams: [pod-a] }\n`, 'test.yaml', {});
    expect(cfg.collector!.ship_identities).toEqual([
      { id: 'ship_identities[0]', token_sha256: H, streams: ['tok-*'] },
      { id: 'pod-a', san_uri: 'spiffe://t/ns/a/sa/pod-a', streams: ['pod-a'] },
    ]);
  });

  it('refuses an entry with two ways or none, a duplicate token, and no streams', () => {
    expect(refused(`collector:\n  ship_identities:\n    - { token_sha256: "${H}", san_dns: x, streams: [a] }\n`).message).toContain('exactly one of');
    expect(refused('collector:\n  ship_identities:\n    - { streams: [a] }\n').message).toContain('exactly one of');
    expect(refused(`collector:\n  ship_identities:\n    - { token_sha256: "${H}", streams: [a] }\n    - { token_sha256: "${H}", streams: [b] }\n`).message).toContain('same token');
    expect(refused('collector:\n  ship_identities:\n    - { san_dns: x, streams: [] }\n').code).toBe('config_schema');
  });
});
