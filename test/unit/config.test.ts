import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.js';
import {
  defaultCollectorConfig,
  defaultSidecarConfig,
  loadConfigFile,
  MAX_CONFIG_BYTES,
  parseConfigText,
} from '../../src/config/index.js';
import type { SidecarConfig } from '../../src/config/index.js';

const FIX = join(import.meta.dirname, '../fixtures/config');
const CONFIG = join(import.meta.dirname, '../../config');
const tmp = mkdtempSync(join(tmpdir(), 'sealtrail-config-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const NO_ENV: NodeJS.ProcessEnv = {};

/** Run fn, expect a ConfigError, return it. */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

function expectError(fn: () => unknown, code: string, line?: number, col?: number): ConfigError {
  const err = configError(fn);
  expect(err.code, err.message).toBe(code);
  if (line !== undefined) expect([err.line, err.col], err.message).toEqual([line, col]);
  return err;
}

const SIDECAR_BASE = `sidecar:
  sources:
    - id: app
      type: file
      include: [/var/log/agent/*.jsonl]
  keys:
    signing_key_file: /k/signing.key
    hmac_key_file: /k/hmac.key
  ship:
    url: http://collector:7470
`;

/** Parse SIDECAR_BASE with extra lines appended under `sidecar:` (indented two spaces). */
function sidecarWith(extra: string, env: NodeJS.ProcessEnv = NO_ENV): SidecarConfig {
  return parseConfigText(SIDECAR_BASE + extra, 'test.yaml', env).sidecar!;
}

/** collector.http and sidecar.telemetry.http when not written */
const HTTP_DEFAULTS = { header_timeout: 10_000, request_timeout: 60_000, keep_alive_timeout: 5_000, max_connections: 1024 };

const EXPECTED_SIDECAR_DEFAULTS: SidecarConfig = {
  stream: {},
  data_dir: './.sealtrail/sidecar',
  sources: [
    {
      id: 'app',
      type: 'file',
      include: ['/var/log/agent/*.jsonl'],
      exclude: [],
      max_line_bytes: 1024 * 1024,
      start_at: 'beginning',
      format: 'auto',
    },
  ],
  redaction: { rules: [], pseudonym_keys: [] },
  keys: { signing_key_file: '/etc/sealtrail/keys/signing.key', hmac_key_file: '/etc/sealtrail/hmac/hmac.key', hmac_key_id: 'k1' },
  seal: { max_records: 1000, max_interval: 1000, heartbeat_interval: 30_000 },
  ship: {
    url: 'http://collector:7470',
    timeout: 10_000,
    backoff_initial: 200,
    backoff_max: 30_000,
    max_batch_bytes: 8 * 1024 * 1024,
  },
  buffer: { max_bytes: 1024 ** 3, max_records: 1_000_000 },
  telemetry: { listen: '127.0.0.1:9470', http: HTTP_DEFAULTS },
};

describe('example configs', () => {
  const env = {
    POD_NAME: 'agent-7d9f8c-x2k4q',
    SEALTRAIL_SHIP_TOKEN: 'ship-token-from-secret',
  };

  it('config/sidecar.yaml loads with defaults and units applied', () => {
    const cfg = loadConfigFile(join(CONFIG, 'sidecar.yaml'), env);
    expect(cfg.collector).toBeUndefined();
    const s = cfg.sidecar!;
    expect(s.stream).toEqual({});
    expect(s.sources[0]).toMatchObject({ id: 'agent-traces', include: ['/var/log/agent/*.jsonl', '/var/log/agent/*.jsonl.*'], max_line_bytes: 1048576 });
    expect(s.keys.hmac_key_id).toBe('k1');
    expect(s.ship).toEqual({
      url: 'http://sealtrail-collector.sealtrail.svc.cluster.local:7470',
      timeout: 10_000,
      backoff_initial: 200,
      backoff_max: 30_000,
      max_batch_bytes: 8 * 1024 * 1024,
    });
    expect(s.seal).toEqual({ max_records: 1000, max_interval: 1000, heartbeat_interval: 30_000 });
    expect(s.buffer).toEqual({ max_bytes: 1024 ** 3, max_records: 1_000_000 });
    expect(s.telemetry.listen).toBe('0.0.0.0:9470');
  });

  it('config/collector.yaml loads', () => {
    const cfg = loadConfigFile(join(CONFIG, 'collector.yaml'), env);
    expect(cfg.sidecar).toBeUndefined();
    expect(cfg.collector).toEqual({
      listen: '0.0.0.0:7470',
      http: HTTP_DEFAULTS,
      max_body_bytes: 16 * 1024 * 1024,
      max_record_bytes: 3 * 1024 * 1024,
      store: { type: 'sqlite', path: '/var/lib/sealtrail/audit.db' },
      auth: { admin_tokens: [], admin_token_files: ['/etc/sealtrail/admin/token'] },
      streams: [{ match: 'claims-agent-*', vkey_file: '/etc/sealtrail/vkeys/agents.vkey' }],
      ship_identities: [],
      trust_on_first_use: false,
      hmac_keys: [{ id: 'k1', file: '/etc/sealtrail/hmac/hmac.key' }],
      read_audit: { enabled: true },
    });
  });

  it('config/dev.yaml loads both sections, keeping relative paths as written', () => {
    const cfg = loadConfigFile(join(CONFIG, 'dev.yaml'), {});
    expect(cfg.file).toBe(join(CONFIG, 'dev.yaml'));
    expect(cfg.sidecar!.data_dir).toBe('./.sealtrail/sidecar');
    expect(cfg.sidecar!.redaction.rules).toEqual(['./config/redaction/pii-basic.yaml']);
    expect(cfg.sidecar!.seal.max_interval).toBe(500);
    expect(cfg.sidecar!.buffer.max_bytes).toBe(256 * 1024 * 1024);
    expect(cfg.collector!.auth.admin_tokens).toEqual(['dev-admin-token-not-secret']);
    expect(cfg.collector!.streams).toEqual([{ match: '*', vkey_file: './.sealtrail/keys/sidecar.vkey' }]);
    expect(cfg.sidecar!.keys.signing_key_file).toBe('./.sealtrail/keys/sidecar.skey');
  });

  it('config/sidecar.yaml starts without any ship token variable (the token is optional and commented out)', () => {
    const cfg = loadConfigFile(join(CONFIG, 'sidecar.yaml'), { POD_NAME: 'p' });
    expect(cfg.sidecar!.ship.token).toBeUndefined();
  });
});

describe('defaults', () => {
  it('a minimal sidecar gets every default', () => {
    const cfg = loadConfigFile(join(FIX, 'minimal-sidecar.yaml'), NO_ENV);
    expect(cfg.sidecar).toEqual(EXPECTED_SIDECAR_DEFAULTS);
  });

  it('a minimal collector gets every default', () => {
    expect(loadConfigFile(join(FIX, 'minimal-collector.yaml'), NO_ENV).collector).toEqual({
      listen: '127.0.0.1:7470',
      http: HTTP_DEFAULTS,
      max_body_bytes: 16 * 1024 * 1024,
      max_record_bytes: 3 * 1024 * 1024,
      store: { type: 'sqlite', path: './.sealtrail/collector/audit.db' },
      auth: { admin_tokens: [], admin_token_files: [] },
      streams: [],
      ship_identities: [],
      trust_on_first_use: false,
      hmac_keys: [],
      read_audit: { enabled: true },
    });
  });

  it('durations and sizes in every spelling become numbers', () => {
    const s = sidecarWith(`  seal: { max_interval: 1.5s, max_records: 10 }
  buffer: { max_bytes: 10MB, max_records: 5 }
`);
    expect(s.seal).toEqual({ max_records: 10, max_interval: 1500, heartbeat_interval: 30_000 });
    expect(s.buffer).toEqual({ max_bytes: 10_000_000, max_records: 5 });
    const t = sidecarWith(`  seal: { max_interval: 250 }\n  buffer: { max_bytes: 65536 }\n`);
    expect(t.seal.max_interval).toBe(250);
    expect(t.buffer.max_bytes).toBe(65536);
  });

  it('optional stream id and name are kept when given', () => {
    expect(sidecarWith('  stream: { id: s-1, name: pod.a_b }\n').stream).toEqual({ id: 's-1', name: 'pod.a_b' });
  });

  it('aliases may share a block (within the alias cap)', () => {
    const cfg = parseConfigText(
      `collector:
  streams:
    - &trust { match: "a-*", vkey_file: /k/a.vkey }
  hmac_keys: [{ id: k1, file: /k/h }]
`,
      'alias.yaml',
      NO_ENV,
    );
    expect(cfg.collector!.streams).toEqual([{ match: 'a-*', vkey_file: '/k/a.vkey' }]);
  });
});

describe('${env:...} substitution', () => {
  it('substitutes, applies defaults, and honours the escape', () => {
    const text = `sidecar:
  stream: { name: "\${env:POD}" }
  data_dir: \${env:DIR:-/var/lib/sealtrail}
  sources:
    - { id: app, type: file, include: ["/logs/\${env:APP}/*.jsonl"] }
  keys:
    signing_key_file: /k/\${env:KEYNAME}.key
    hmac_key_file: /k/hmac.key
    hmac_key_id: "\${env:EMPTY:-k9}"
  ship:
    url: \${env:URL}
`;
    const s = parseConfigText(text, 'env.yaml', { POD: 'pod-1', APP: 'agent', KEYNAME: 'signing', EMPTY: '', URL: 'https://c:7470/' })
      .sidecar!;
    expect(s.stream.name).toBe('pod-1');
    expect(s.data_dir).toBe('/var/lib/sealtrail');
    expect(s.sources[0]).toMatchObject({ type: 'file', include: ['/logs/agent/*.jsonl'] });
    expect(s.keys.signing_key_file).toBe('/k/signing.key');
    expect(s.keys.hmac_key_id).toBe('k9');
    expect(s.ship.url).toBe('https://c:7470/');
  });

  it('$${env:X} is a literal ${env:X}', () => {
    const s = sidecarWith('  data_dir: /x/$${env:NOT_SUBSTITUTED}\n', NO_ENV);
    expect(s.data_dir).toBe('/x/${env:NOT_SUBSTITUTED}');
  });

  it('a missing variable is config_env_missing at the scalar', () => {
    const err = expectError(() => loadConfigFile(join(FIX, 'missing-env.yaml'), NO_ENV), 'config_env_missing', 11, 12);
    expect(err.message).toContain('SEALTRAIL_TEST_UNSET_TOKEN');
  });

  it('a malformed reference is an error, not literal text', () => {
    expectError(() => sidecarWith('  data_dir: ${env:BAD-NAME}\n', { 'BAD-NAME': 'x' }), 'config_env_syntax', 11, 13);
  });

  it('a value full of YAML syntax stays one plain string', () => {
    const hostile = 'x\nsidecar:\n  evil: true\n- [1, 2]\n&a *a {a: b} "quoted" # comment ${env:NESTED}';
    const s = parseConfigText(SIDECAR_BASE.replace('    url: http://collector:7470\n', '    url: http://collector:7470\n    token: ${env:TOKEN}\n'), 'x.yaml', {
      TOKEN: hostile,
    }).sidecar!;
    expect(s.ship.token).toBe(hostile);
    const cfg = parseConfigText(
      `collector:
  auth:
    admin_tokens: ["\${env:T}"]
`,
      'hostile.yaml',
      { T: hostile },
    );
    expect(cfg.collector!.auth.admin_tokens).toEqual([hostile]);
    const cfg2 = parseConfigText('collector:\n  store:\n    path: ${env:P}\n', 'hostile.yaml', { P: 'a: b\n  type: postgres' });
    expect(cfg2.collector!.store).toEqual({ type: 'sqlite', path: 'a: b\n  type: postgres' });
  });

  it('an env value becomes an integer or boolean only where the schema wants one', () => {
    const s = sidecarWith('  seal:\n    max_records: ${env:N}\n', { N: '250' });
    expect(s.seal.max_records).toBe(250);
    const c = parseConfigText('collector:\n  trust_on_first_use: ${env:TOFU}\n', 'x.yaml', { TOFU: 'true' });
    expect(c.collector!.trust_on_first_use).toBe(true);
    // An all-digit token stays a string: the schema wants a string there.
    const t = parseConfigText('collector:\n  auth:\n    admin_tokens: ["${env:T}"]\n', 'x.yaml', { T: '1234567890123456' });
    expect(t.collector!.auth.admin_tokens).toEqual(['1234567890123456']);
  });

  it('no coercion for non-numeric env values or for literal strings', () => {
    expectError(() => sidecarWith('  seal:\n    max_records: ${env:N}\n', { N: '25x' }), 'config_schema', 12, 18);
    expectError(() => sidecarWith('  seal:\n    max_records: "250"\n'), 'config_schema', 12, 18);
  });

  it('keys are never substituted', () => {
    expectError(() => parseConfigText('collector:\n  ${env:K}: 1\n', 'x.yaml', { K: 'listen' }), 'config_schema', 2, 3);
  });
});

describe('hostile and malformed files', () => {
  it('bad YAML: config_yaml with line:col, no file content in the message', () => {
    const err = expectError(() => loadConfigFile(join(FIX, 'bad-yaml.yaml'), NO_ENV), 'config_yaml');
    expect(err.file).toBe(join(FIX, 'bad-yaml.yaml'));
    expect(err.line).toBeGreaterThanOrEqual(4);
    expect(err.message).toMatch(/bad-yaml\.yaml:\d+:\d+: /);
    expect(err.message).not.toContain('supersecret');
  });

  it('yaml error messages never quote source tokens', () => {
    const err = expectError(() => parseConfigText('- a\nsecretvalue: 1\n', 'x.yaml', NO_ENV), 'config_yaml', 2, 1);
    expect(err.message).not.toContain('secretvalue');
  });

  it('tabs as indentation', () => {
    expectError(() => loadConfigFile(join(FIX, 'tabs.yaml'), NO_ENV), 'config_yaml', 3, 1);
  });

  it('duplicate keys point at the second occurrence', () => {
    const err = expectError(() => loadConfigFile(join(FIX, 'duplicate-keys.yaml'), NO_ENV), 'config_yaml', 5, 3);
    expect(err.message).toContain('DUPLICATE_KEY');
  });

  it('alias bomb is refused at the node that explodes', () => {
    const err = expectError(() => loadConfigFile(join(FIX, 'alias-bomb.yaml'), NO_ENV), 'config_yaml', 7, 7);
    expect(err.message).toContain('alias bomb');
  });

  it('an alias inside its own anchor is refused', () => {
    expectError(() => parseConfigText('collector:\n  streams: &a [*a]\n', 'x.yaml', NO_ENV), 'config_yaml', 2, 16);
  });

  it('alias to an unknown anchor', () => {
    expectError(() => parseConfigText('collector:\n  listen: *nowhere\n', 'x.yaml', NO_ENV), 'config_yaml', 2, 11);
  });

  it('multiple documents, unknown tags', () => {
    expectError(() => parseConfigText('collector: {}\n---\ncollector: {}\n', 'x.yaml', NO_ENV), 'config_yaml', 2, 1);
    expectError(() => parseConfigText('collector:\n  listen: !secret foo\n', 'x.yaml', NO_ENV), 'config_yaml');
  });

  it('a file over 4 MiB is refused before parsing', () => {
    const big = join(tmp, 'big.yaml');
    writeFileSync(big, `collector:\n  store:\n    path: "${'a'.repeat(5 * 1024 * 1024)}"\n`);
    const err = expectError(() => loadConfigFile(big, NO_ENV), 'config_io');
    expect(err.message).toContain(String(MAX_CONFIG_BYTES));
    expectError(() => parseConfigText(`# ${'x'.repeat(MAX_CONFIG_BYTES)}\ncollector: {}\n`, 'big.yaml', NO_ENV), 'config_io');
  });

  it('binary garbage', () => {
    const bytes = Buffer.alloc(4096);
    let x = 0x12345678;
    for (let i = 0; i < bytes.length; i++) {
      // xorshift32: deterministic noise
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      bytes[i] = x & 0xff;
    }
    const garbage = join(tmp, 'garbage.yaml');
    writeFileSync(garbage, bytes);
    const err = expectError(() => loadConfigFile(garbage, NO_ENV), 'config_yaml');
    expect(err.line).toBeDefined();
  });

  it('valid UTF-8 with control characters', () => {
    expectError(() => parseConfigText('collector:\n  listen: "a\u0000b"\n', 'x.yaml', NO_ENV), 'config_yaml', 2, 13);
    expectError(() => parseConfigText('collector:\n  store: {path: x\u001by}\n', 'x.yaml', NO_ENV), 'config_yaml', 2, 18);
  });

  it('invalid UTF-8 names the line of the bad byte', () => {
    const f = join(tmp, 'latin1.yaml');
    writeFileSync(f, Buffer.concat([Buffer.from('collector:\n  store:\n    path: caf'), Buffer.from([0xe9]), Buffer.from('\n')]));
    expectError(() => loadConfigFile(f, NO_ENV), 'config_yaml', 3, 14);
  });

  it('deep nesting is refused, not a crash', () => {
    const deep = `collector:\n  listen: ${'['.repeat(5000)}${']'.repeat(5000)}\n`;
    expectError(() => parseConfigText(deep, 'deep.yaml', NO_ENV), 'config_yaml');
    const medium = `collector:\n  listen: ${'['.repeat(100)}${']'.repeat(100)}\n`;
    expectError(() => parseConfigText(medium, 'deep.yaml', NO_ENV), 'config_schema');
  });

  it('I/O problems are config_io', () => {
    expectError(() => loadConfigFile(join(tmp, 'does-not-exist.yaml'), NO_ENV), 'config_io');
    expectError(() => loadConfigFile(tmp, NO_ENV), 'config_io');
  });

  it('non-map roots', () => {
    expectError(() => parseConfigText('- collector\n', 'x.yaml', NO_ENV), 'config_schema', 1, 1);
    expectError(() => parseConfigText('just a string\n', 'x.yaml', NO_ENV), 'config_schema', 1, 1);
    expectError(() => parseConfigText('', 'x.yaml', NO_ENV), 'config_schema', 1, 1);
    expectError(() => parseConfigText('# only a comment\n', 'x.yaml', NO_ENV), 'config_schema');
  });

  it('a map with neither section', () => {
    expectError(() => parseConfigText('{}\n', 'x.yaml', NO_ENV), 'config_schema', 1, 1);
  });

  it('non-string keys', () => {
    expectError(() => parseConfigText('collector:\n  1: x\n', 'x.yaml', NO_ENV), 'config_schema', 2, 3);
    expectError(() => parseConfigText('collector:\n  ? [a]\n  : x\n', 'x.yaml', NO_ENV), 'config_schema', 2, 5);
  });
});

describe('schema errors name file:line:col', () => {
  it('unknown key points at the key and suggests the right one', () => {
    const err = expectError(() => loadConfigFile(join(FIX, 'unknown-key.yaml'), NO_ENV), 'config_schema', 11, 5);
    expect(err.message).toContain('sidecar.ship.tiemout');
    expect(err.message).toContain('did you mean "timeout"');
  });

  it('an unknown key is reported before a missing required one', () => {
    const err = expectError(() => parseConfigText('sidecar:\n  sourcez: []\n', 'x.yaml', NO_ENV), 'config_schema', 2, 3);
    expect(err.message).toContain('did you mean "sources"');
  });

  it('wrong type points at the value', () => {
    const err = expectError(() => loadConfigFile(join(FIX, 'wrong-type.yaml'), NO_ENV), 'config_schema', 2, 23);
    expect(err.message).toContain('collector.trust_on_first_use: must be a boolean');
    expect(err.message).not.toContain('yes');
  });

  it('a missing required key points at the parent map', () => {
    const err = expectError(() => loadConfigFile(join(FIX, 'missing-required.yaml'), NO_ENV), 'config_schema', 7, 5);
    expect(err.message).toContain('sidecar.keys: missing required key "hmac_key_file"');
  });

  it('enum, pattern, ranges', () => {
    expectError(() => parseConfigText(SIDECAR_BASE.replace('type: file', 'type: kafka'), 'x.yaml', NO_ENV), 'config_schema', 4, 13);
    // a socket source is checked against the socket fields, not the file ones
    const sock = expectError(() => parseConfigText(SIDECAR_BASE.replace('type: file', 'type: socket'), 'x.yaml', NO_ENV), 'config_schema', 5, 7);
    expect(sock.message).toMatch(/include: unknown key; allowed keys: id, type, path, mode/);
    const base = SIDECAR_BASE.replace('      type: file\n', '      type: file\n      start_at: middle\n');
    expectError(() => parseConfigText(base, 'x.yaml', NO_ENV), 'config_schema', 5, 17);
    expectError(() => parseConfigText(SIDECAR_BASE.replace('id: app', 'id: App!'), 'x.yaml', NO_ENV), 'config_schema', 3, 11);
    expectError(() => sidecarWith('  seal: { max_records: 0 }\n'), 'config_schema', 11, 24);
    expectError(() => sidecarWith('  seal: { max_records: 100001 }\n'), 'config_schema');
    expectError(() => sidecarWith('  seal: { max_interval: 5ms }\n'), 'config_schema', 11, 25);
    expectError(() => sidecarWith('  telemetry: { listen: "localhost:70000" }\n'), 'config_schema', 11, 24);
    expectError(() => sidecarWith('  telemetry: { listen: "localhost" }\n'), 'config_schema', 11, 24);
    expectError(() => sidecarWith('  stream: { id: "has space" }\n'), 'config_schema');
  });

  it('max_line_bytes is capped at 64MiB', () => {
    const ok = SIDECAR_BASE.replace('      type: file\n', '      type: file\n      max_line_bytes: 64MiB\n');
    expect(parseConfigText(ok, 'x.yaml', NO_ENV).sidecar!.sources[0]).toMatchObject({ type: 'file', max_line_bytes: 64 * 1024 * 1024 });
    const over = SIDECAR_BASE.replace('      type: file\n', '      type: file\n      max_line_bytes: 65MiB\n');
    expectError(() => parseConfigText(over, 'x.yaml', NO_ENV), 'config_schema', 5, 23);
  });

  it('duplicate source ids', () => {
    const text = SIDECAR_BASE.replace(
      '  keys:',
      '    - id: app\n      type: file\n      include: [/b/*.jsonl]\n  keys:',
    );
    expectError(() => parseConfigText(text, 'x.yaml', NO_ENV), 'config_schema', 6, 11);
  });

  it('ship.url must be http(s) without credentials', () => {
    expectError(() => parseConfigText(SIDECAR_BASE.replace('http://collector:7470', 'ftp://collector'), 'x.yaml', NO_ENV), 'config_schema', 10, 10);
    expectError(() => parseConfigText(SIDECAR_BASE.replace('http://collector:7470', 'collector:7470'), 'x.yaml', NO_ENV), 'config_schema');
    const err = expectError(
      () => parseConfigText(SIDECAR_BASE.replace('http://collector:7470', 'https://user:pa55word@collector'), 'x.yaml', NO_ENV),
      'config_schema',
    );
    expect(err.message).not.toContain('pa55word');
  });

  it('backoff_max below backoff_initial', () => {
    const text = SIDECAR_BASE.replace('    url: http://collector:7470\n', '    url: http://collector:7470\n    backoff_initial: 10s\n    backoff_max: 1s\n');
    expectError(() => parseConfigText(text, 'x.yaml', NO_ENV), 'config_schema', 12, 18);
  });

  it('collector streams need exactly one of vkey / vkey_file', () => {
    expectError(() => parseConfigText('collector:\n  streams:\n    - match: a\n', 'x.yaml', NO_ENV), 'config_schema', 3, 7);
    expectError(
      () => parseConfigText('collector:\n  streams:\n    - { match: a, vkey: "a+1+x", vkey_file: /k }\n', 'x.yaml', NO_ENV),
      'config_schema',
      3,
      7,
    );
    expectError(() => parseConfigText('collector:\n  streams:\n    - { match: "a*b", vkey: k }\n', 'x.yaml', NO_ENV), 'config_schema', 3, 16);
    const ok = parseConfigText('collector:\n  streams:\n    - { match: "*", vkey: "n+01020304+AQ==" }\n    - { match: s1, vkey_file: /k }\n', 'x.yaml', NO_ENV);
    expect(ok.collector!.streams).toEqual([
      { match: '*', vkey: 'n+01020304+AQ==' },
      { match: 's1', vkey_file: '/k' },
    ]);
  });

  it('duplicate stream matches and hmac key ids', () => {
    expectError(
      () => parseConfigText('collector:\n  streams:\n    - { match: a, vkey: k }\n    - { match: a, vkey: j }\n', 'x.yaml', NO_ENV),
      'config_schema',
      4,
      16,
    );
    expectError(
      () => parseConfigText('collector:\n  hmac_keys:\n    - { id: k1, file: /a }\n    - { id: k1, file: /b }\n', 'x.yaml', NO_ENV),
      'config_schema',
      4,
      13,
    );
  });

  it('admin tokens must be at least 16 characters', () => {
    expectError(() => parseConfigText('collector:\n  auth:\n    admin_tokens: [short]\n', 'x.yaml', NO_ENV), 'config_schema', 3, 20);
  });

  it('a postgres store needs its url', () => {
    expectError(() => parseConfigText('collector:\n  store: { type: postgres }\n', 'x.yaml', NO_ENV), 'config_schema', 2, 18);
  });
});

describe('unit errors', () => {
  it('"10 parsecs" is config_unit at the value', () => {
    const err = expectError(() => loadConfigFile(join(FIX, 'bad-duration.yaml'), NO_ENV), 'config_unit', 11, 14);
    expect(err.message).toContain('sidecar.ship.timeout');
    expect(err.message).not.toContain('parsecs');
  });

  it('fractional base units, negatives, unknown units', () => {
    expectError(() => sidecarWith('  seal: { max_interval: 1.5ms }\n'), 'config_unit', 11, 25);
    expectError(() => sidecarWith('  seal: { max_interval: -5 }\n'), 'config_schema');
    expectError(() => sidecarWith('  buffer: { max_bytes: 1.5B }\n'), 'config_unit');
    expectError(() => sidecarWith('  buffer: { max_bytes: 1mb }\n'), 'config_unit');
    expectError(() => sidecarWith('  buffer: { max_bytes: 1.5 }\n'), 'config_schema');
  });
});

describe('in-memory config (sealtrail dev)', () => {
  const input = {
    sources: [{ id: 'app', type: 'file' as const, include: ['/var/log/agent/*.jsonl'] }],
    keys: { signing_key_file: '/etc/sealtrail/keys/signing.key', hmac_key_file: '/etc/sealtrail/hmac/hmac.key' },
    ship: { url: 'http://collector:7470' },
  };

  it('defaultSidecarConfig fills the same defaults as a file', () => {
    const before = JSON.stringify(input);
    expect(defaultSidecarConfig(input)).toEqual(EXPECTED_SIDECAR_DEFAULTS);
    expect(JSON.stringify(input)).toBe(before);
  });

  it('defaultSidecarConfig parses units and validates through the same schema', () => {
    const s = defaultSidecarConfig({ ...input, seal: { max_interval: '2s' }, buffer: { max_bytes: '1MiB' } });
    expect(s.seal.max_interval).toBe(2000);
    expect(s.buffer.max_bytes).toBe(1024 * 1024);
    const e1 = configError(() => defaultSidecarConfig({ ...input, ship: { url: 'http://c', timeout: '10 parsecs' } }));
    expect(e1.code).toBe('config_unit');
    expect(e1.message).toContain('sidecar.ship.timeout');
    const e2 = configError(() => defaultSidecarConfig({ ...input, extra: 1 } as never));
    expect(e2.code).toBe('config_schema');
    expect(e2.message).toContain('sidecar.extra');
    const e3 = configError(() => defaultSidecarConfig({ ...input, keys: { signing_key_file: '/a' } } as never));
    expect(e3.message).toContain('sidecar.keys: missing required key "hmac_key_file"');
  });

  it('defaultCollectorConfig', () => {
    expect(defaultCollectorConfig({ listen: '0.0.0.0:1', streams: [{ match: '*', vkey: 'x' }] })).toEqual({
      listen: '0.0.0.0:1',
      http: HTTP_DEFAULTS,
      max_body_bytes: 16 * 1024 * 1024,
      max_record_bytes: 3 * 1024 * 1024,
      store: { type: 'sqlite', path: './.sealtrail/collector/audit.db' },
      auth: { admin_tokens: [], admin_token_files: [] },
      streams: [{ match: '*', vkey: 'x' }],
      ship_identities: [],
      trust_on_first_use: false,
      hmac_keys: [],
      read_audit: { enabled: true },
    });
    expect(defaultCollectorConfig().listen).toBe('127.0.0.1:7470');
    expect(configError(() => defaultCollectorConfig({ streams: [{ match: '*' }] })).message).toContain('collector.streams[0]');
  });
});

describe('redaction.pseudonym_keys', () => {
  const base = `sidecar:
  sources: [{ id: t, type: file, include: ["/x/*.jsonl"] }]
  keys: { signing_key_file: /k/s, hmac_key_file: /k/h }
  ship: { url: "http://c:7470" }
`;
  it('loads key ids and files', () => {
    const cfg = parseConfigText(`${base}  redaction:\n    pseudonym_keys: [{ id: p-2026, file: /k/p }]\n`, 'p.yaml', {});
    expect(cfg.sidecar!.redaction.pseudonym_keys).toEqual([{ id: 'p-2026', file: '/k/p' }]);
  });
  it('refuses a duplicate id with file:line:col', () => {
    expect(() =>
      parseConfigText(`${base}  redaction:\n    pseudonym_keys:\n      - { id: p, file: /k/a }\n      - { id: p, file: /k/b }\n`, 'dup.yaml', {}),
    ).toThrowError(/dup\.yaml:\d+:\d+.*duplicate pseudonym key id/);
  });
});

describe('many keys', () => {
  it('a mapping with tens of thousands of keys is checked and refused at its place', () => {
    let text = 'sidecar:\n  x:\n';
    for (let i = 0; i < 40_000; i++) text += `    k${i}: 1\n`;
    expectError(() => parseConfigText(text, 'big.yaml', NO_ENV), 'config_schema', 2, 3);
  });

  it('a duplicate key far down a big mapping is still found, at the second occurrence', () => {
    let text = 'sidecar:\n  x:\n';
    for (let i = 0; i < 20_000; i++) text += `    k${i}: 1\n`;
    text += '    k17: 2\n';
    const err = expectError(() => parseConfigText(text, 'dup.yaml', NO_ENV), 'config_yaml', 20_003, 5);
    expect(err.message).toContain('DUPLICATE_KEY');
  });
});

describe('socket and http sources', () => {
  const withSources = (sources: string): string =>
    SIDECAR_BASE.replace(/  sources:\n[\s\S]*?(?=  keys:)/, `  sources:\n${sources}`);

  it('fill their defaults and parse the socket mode as octal', () => {
    const cfg = parseConfigText(
      withSources('    - { id: sock, type: socket, path: /run/st/events.sock }\n    - { id: api, type: http }\n    - { id: sock2, type: socket, path: /run/st/b.sock, mode: "0660", max_connections: 4, max_line_bytes: 4KiB }\n'),
      'x.yaml',
      NO_ENV,
    ).sidecar!;
    expect(cfg.sources[0]).toEqual({ id: 'sock', type: 'socket', path: '/run/st/events.sock', mode: 0o600, max_line_bytes: 1024 * 1024, max_connections: 1024, format: 'sealtrail' });
    expect(cfg.sources[1]).toEqual({ id: 'api', type: 'http', max_body_bytes: 10 * 1024 * 1024, max_events: 10_000, format: 'sealtrail' });
    expect(cfg.sources[2]).toMatchObject({ mode: 0o660, max_connections: 4, max_line_bytes: 4096 });
  });

  it('refuse a bad mode, a missing path, an over-long socket path and a second http source at their place', () => {
    expectError(() => parseConfigText(withSources('    - { id: s, type: socket, path: /x.sock, mode: "0999" }\n'), 'x.yaml', NO_ENV), 'config_schema', 3, 51);
    expectError(() => parseConfigText(withSources('    - { id: s, type: socket }\n'), 'x.yaml', NO_ENV), 'config_schema', 3, 7);
    expectError(() => parseConfigText(withSources(`    - { id: s, type: socket, path: /${'a'.repeat(120)} }\n`), 'x.yaml', NO_ENV), 'config_schema', 3, 36);
    const two = expectError(
      () => parseConfigText(withSources('    - { id: a, type: http }\n    - { id: b, type: http }\n'), 'x.yaml', NO_ENV),
      'config_schema',
      4,
      22,
    );
    expect(two.message).toMatch(/only one http source/);
  });

  it('heartbeat_interval takes a duration, 0 turns it off', () => {
    expect(sidecarWith('  seal: { heartbeat_interval: 0 }\n').seal.heartbeat_interval).toBe(0);
    expect(sidecarWith('  seal: { heartbeat_interval: 2m }\n').seal.heartbeat_interval).toBe(120_000);
    expectError(() => sidecarWith('  seal: { heartbeat_interval: 2 parsecs }\n'), 'config_unit');
  });
});

describe('source formats and the otlp source', () => {
  const withSources = (sources: string): string =>
    SIDECAR_BASE.replace(/  sources:\n[\s\S]*?(?=  keys:)/, `  sources:\n${sources}`);
  const parse = (sources: string): SidecarConfig => parseConfigText(withSources(sources), 'x.yaml', NO_ENV).sidecar!;

  it('file sources default to auto, socket and http to sealtrail; each takes any format', () => {
    const cfg = parse(
      '    - { id: f, type: file, include: [/a/*.jsonl] }\n' +
        '    - { id: s, type: socket, path: /run/a.sock }\n' +
        '    - { id: h, type: http, format: cloudevents }\n' +
        '    - { id: o, type: file, include: [/b/*.jsonl], format: otlp-json }\n' +
        '    - { id: m, type: file, include: [/c/*.jsonl], format: mapped, mapping: agentmesh }\n',
    );
    expect(cfg.sources.map((x) => ('format' in x ? [x.format, x.mapping] : undefined))).toEqual([
      ['auto', undefined],
      ['sealtrail', undefined],
      ['cloudevents', undefined],
      ['otlp-json', undefined],
      ['mapped', 'agentmesh'],
    ]);
    expect(cfg.sources.map((x) => Object.hasOwn(x, 'mapping'))).toEqual([false, false, false, false, true]);
  });

  it('refuse an unknown format, a mapped format without mapping, and a mapping on another format, at their place', () => {
    const unknown = expectError(() => parse('    - { id: f, type: file, include: [/a], format: jsonl }\n'), 'config_schema', 3, 51);
    expect(unknown.message).toMatch(/sealtrail.*otlp-json.*cloudevents.*mapped.*auto/);
    const missing = expectError(() => parse('    - { id: f, type: file, include: [/a], format: mapped }\n'), 'config_schema', 3, 51);
    expect(missing.message).toMatch(/needs `mapping`/);
    const stray = expectError(() => parse('    - { id: f, type: file, include: [/a], mapping: agentmesh }\n'), 'config_schema', 3, 43);
    expect(stray.message).toMatch(/format: mapped only/);
    expectError(() => parse('    - { id: f, type: file, include: [/a], format: mapped, mapping: "" }\n'), 'config_schema');
  });

  it('an otlp source fills its defaults: 127.0.0.1:4318, 8 MiB decoded bodies, 100,000 items', () => {
    const cfg = parse('    - { id: o, type: otlp }\n');
    expect(cfg.sources[0]).toEqual({ id: 'o', type: 'otlp', listen: '127.0.0.1:4318', max_body_bytes: 8 * 1024 * 1024, max_items: 100_000, http: HTTP_DEFAULTS });
    const set = parse('    - { id: o, type: otlp, listen: "0.0.0.0:14318", max_body_bytes: 1MiB, max_items: 10, http: { request_timeout: 15s } }\n');
    expect(set.sources[0]).toMatchObject({ listen: '0.0.0.0:14318', max_body_bytes: 1024 * 1024, max_items: 10, http: { request_timeout: 15_000 } });
  });

  it('an otlp source refuses a format, a bad listen address, a zero item limit, and two receivers on one address', () => {
    expectError(() => parse('    - { id: o, type: otlp, format: sealtrail }\n'), 'config_schema', 3, 28);
    expectError(() => parse('    - { id: o, type: otlp, listen: "no-port" }\n'), 'config_schema', 3, 36);
    expectError(() => parse('    - { id: o, type: otlp, max_items: 0 }\n'), 'config_schema', 3, 39);
    const two = expectError(() => parse('    - { id: a, type: otlp }\n    - { id: b, type: otlp, listen: 127.0.0.1:4318 }\n'), 'config_schema', 4, 36);
    expect(two.message).toMatch(/sources\[0\] listens on 127.0.0.1:4318 already/);
    const clash = expectError(() => parse('    - { id: o, type: otlp, listen: "0.0.0.0:9470" }\n'), 'config_schema', 3, 36);
    expect(clash.message).toMatch(/listens where telemetry.listen \(127.0.0.1:9470\) does/);
  });
});

describe('reserved source id', () => {
  it('"sealtrail" is refused: heartbeat records carry it', () => {
    const err = expectError(() => parseConfigText(SIDECAR_BASE.replace('id: app', 'id: sealtrail'), 'x.yaml', NO_ENV), 'config_schema', 3, 11);
    expect(err.message).toMatch(/reserved/);
  });
});
