import { describe, expect, it } from 'vitest';
import { defaultSidecarConfig, parseConfigText } from '../../src/config/index.js';
import { ConfigError } from '../../src/core/errors.js';
import { thrown } from '../helpers/errors.js';

/** A sidecar config with `telemetry` and `sources` as given (YAML lines, indented under sidecar:). */
const SIDECAR = (parts: { telemetry?: string; sources?: string }): string => `sidecar:
  sources:
    - { id: t, type: file, include: [/tmp/x.jsonl] }
${parts.sources ?? ''}
  keys: { signing_key_file: /k/a.skey, hmac_key_file: /k/hmac.key }
  ship: { url: http://c:7470 }
${parts.telemetry ?? ''}
`;

const refused = (text: string): ConfigError => thrown(() => parseConfigText(text, 'test.yaml', {}), ConfigError, 'accepted');

const PAIR = '{ cert_file: /t/tls.crt, key_file: /t/tls.key }';

describe('sidecar.telemetry.tls', () => {
  it('beside listen, with client_ca_file or without', () => {
    const cfg = parseConfigText(
      SIDECAR({ telemetry: '  telemetry:\n    listen: 0.0.0.0:9470\n    tls: { cert_file: /t/tls.crt, key_file: /t/tls.key, client_ca_file: /t/ca.crt }' }),
      'test.yaml',
      {},
    );
    expect(cfg.sidecar!.telemetry.tls).toEqual({ cert_file: '/t/tls.crt', key_file: '/t/tls.key', client_ca_file: '/t/ca.crt' });
    const plain = parseConfigText(SIDECAR({ telemetry: `  telemetry:\n    tls: ${PAIR}` }), 'test.yaml', {});
    expect(plain.sidecar!.telemetry.tls).toEqual({ cert_file: '/t/tls.crt', key_file: '/t/tls.key' });
  });

  it('absent: plain HTTP, and no tls member at all', () => {
    const cfg = parseConfigText(SIDECAR({ telemetry: '  telemetry:\n    listen: 127.0.0.1:9470' }), 'test.yaml', {});
    expect('tls' in cfg.sidecar!.telemetry).toBe(false);
  });

  it('refuses a missing key_file, an unknown member and a wrong type, at their line', () => {
    const half = refused(SIDECAR({ telemetry: '  telemetry:\n    tls:\n      cert_file: /t/tls.crt' }));
    expect(half.code).toBe('config_schema');
    expect(half.message).toContain('key_file');
    expect(half.message).toContain('telemetry.tls');

    const unknown = refused(SIDECAR({ telemetry: `  telemetry:\n    tls:\n      cert_file: /a\n      key_file: /b\n      ca_file: /c` }));
    expect(unknown.code).toBe('config_schema');
    expect(unknown.message).toContain('ca_file');
    expect(unknown.line).toBe(11);

    const wrongType = refused(SIDECAR({ telemetry: '  telemetry:\n    tls:\n      cert_file: 42\n      key_file: /b' }));
    expect(wrongType.code).toBe('config_schema');
    expect(wrongType.message).toContain('cert_file');
    expect(wrongType.line).toBe(9);

    expect(refused(SIDECAR({ telemetry: '  telemetry:\n    tls: yes' })).code).toBe('config_schema');
    expect(refused(SIDECAR({ telemetry: '  telemetry:\n    tls: { cert_file: "", key_file: /b }' })).code).toBe('config_schema');
  });
});

describe('tls on an otlp source', () => {
  it('beside its listen', () => {
    const cfg = parseConfigText(
      SIDECAR({ sources: `    - { id: otel, type: otlp, listen: "0.0.0.0:4318", tls: { cert_file: /t/tls.crt, key_file: /t/tls.key, client_ca_file: /t/ca.crt } }` }),
      'test.yaml',
      {},
    );
    expect(cfg.sidecar!.sources[1]).toMatchObject({ id: 'otel', type: 'otlp', tls: { cert_file: '/t/tls.crt', key_file: '/t/tls.key', client_ca_file: '/t/ca.crt' } });
    const none = parseConfigText(SIDECAR({ sources: '    - { id: otel, type: otlp }' }), 'test.yaml', {});
    expect('tls' in none.sidecar!.sources[1]!).toBe(false);
  });

  it('refuses a missing key_file, an unknown member and a wrong type', () => {
    const half = refused(SIDECAR({ sources: '    - id: otel\n      type: otlp\n      tls: { cert_file: /t/tls.crt }' }));
    expect(half.code).toBe('config_schema');
    expect(half.message).toContain('key_file');
    expect(half.message).toContain('sources[1].tls');

    const unknown = refused(SIDECAR({ sources: '    - id: otel\n      type: otlp\n      tls: { cert_file: /a, key_file: /b, verify: true }' }));
    expect(unknown.code).toBe('config_schema');
    expect(unknown.message).toContain('verify');

    const wrongType = refused(SIDECAR({ sources: '    - id: otel\n      type: otlp\n      tls: [/a, /b]' }));
    expect(wrongType.code).toBe('config_schema');
    expect(wrongType.message).toContain('sources[1].tls');
  });

  it('is refused on the sources that have no listener of their own', () => {
    const onHttp = refused(SIDECAR({ sources: `    - { id: api, type: http, tls: ${PAIR} }` }));
    expect(onHttp.code).toBe('config_schema');
    expect(onHttp.message).toContain('tls');
    const onFile = refused(`sidecar:
  sources: [{ id: t, type: file, include: [/tmp/x.jsonl], tls: ${PAIR} }]
  keys: { signing_key_file: /k/a.skey, hmac_key_file: /k/hmac.key }
  ship: { url: http://c:7470 }
`);
    expect(onFile.code).toBe('config_schema');
  });
});

describe('in-memory config (sealtrail dev, embedding)', () => {
  it('takes the same tls blocks', () => {
    const tls = { cert_file: '/t/tls.crt', key_file: '/t/tls.key' };
    const cfg = defaultSidecarConfig({
      sources: [{ id: 'otel', type: 'otlp', tls }],
      keys: { signing_key_file: '/k/a.skey', hmac_key_file: '/k/hmac.key' },
      ship: { url: 'http://c:7470' },
      telemetry: { tls },
    });
    expect(cfg.telemetry.tls).toEqual(tls);
    expect(cfg.sources[0]).toMatchObject({ tls });
  });
});
