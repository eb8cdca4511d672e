import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseVerifierKey } from '../../src/core/note.js';
import { ROOT, runCli } from '../helpers/procs.js';

describe('sealtrail keygen and validate', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sealtrail-cli-'));

  it('keygen writes a 0600 signer key and a parsable verifier key, and refuses to overwrite', async () => {
    const r = await runCli(['keygen', '--name', 'pod-a', '--out', dir, '--hmac']);
    expect(r.code).toBe(0);
    expect(statSync(join(dir, 'pod-a.skey')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'hmac.key')).mode & 0o777).toBe(0o600);
    const vkey = readFileSync(join(dir, 'pod-a.vkey'), 'utf8').trim();
    expect(parseVerifierKey(vkey).name).toBe('pod-a');
    expect(r.stdout).toContain(vkey);
    expect(r.stdout).not.toContain(readFileSync(join(dir, 'pod-a.skey'), 'utf8').trim());
    const again = await runCli(['keygen', '--name', 'pod-a', '--out', dir]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/key_file_exists/);
    expect(readFileSync(join(dir, 'pod-a.vkey'), 'utf8').trim()).toBe(vkey);
    expect((await runCli(['keygen', '--name', 'bad name'])).code).toBe(2);
  });

  it('validate accepts the shipped dev config', async () => {
    const cfg = join(dir, 'ok.yaml');
    writeFileSync(
      cfg,
      `sidecar:
  sources: [{ id: t, type: file, include: ["${dir}/*.jsonl"] }]
  redaction: { rules: ["${ROOT}config/redaction/pii-basic.yaml"] }
  keys: { signing_key_file: ${dir}/pod-a.skey, hmac_key_file: ${dir}/hmac.key }
  ship: { url: "http://127.0.0.1:7470" }
collector:
  auth: { admin_tokens: ["0123456789abcdef0123"] }
  streams: [{ match: "pod-*", vkey_file: ${dir}/pod-a.vkey }]
`,
    );
    const r = await runCli(['validate', '--config', cfg]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/ok/);
  });

  it('validate reads rotation key lists and refuses a missing key file in one', async () => {
    const cfg = join(dir, 'rotation.yaml');
    const write = (second: string): void =>
      writeFileSync(
        cfg,
        `collector:
  auth: { admin_tokens: ["0123456789abcdef0123"] }
  streams:
    - match: "pod-*"
      keys:
        - { vkey_file: ${dir}/pod-a.vkey, not_after: "2027-01-01T00:00:00Z" }
        - { vkey_file: ${second}, not_before: "2026-12-01T00:00:00Z" }
`,
      );
    expect((await runCli(['keygen', '--name', 'pod-b', '--out', dir])).code).toBe(0);
    write(`${dir}/pod-b.vkey`);
    const ok = await runCli(['validate', '--config', cfg]);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    write(`${dir}/pod-a.vkey`);
    const twice = await runCli(['validate', '--config', cfg]);
    expect(twice.code).toBe(1);
    expect(twice.stderr).toMatch(/collector_options_invalid.*listed twice/);
    expect(twice.stderr).not.toMatch(/internal error/);
    write(`${dir}/missing.vkey`);
    const bad = await runCli(['validate', '--config', cfg]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('missing.vkey');
  });

  it('validate names file:line:col for a bad key and a bad rule', async () => {
    const cfg = join(dir, 'typo.yaml');
    writeFileSync(cfg, `sidecar:\n  sources: []\n  sael: {}\n`);
    const r = await runCli(['validate', '--config', cfg]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${cfg}:`);
    expect(r.stderr).toMatch(/:\d+:\d+/);

    const rules = join(dir, 'rules.yaml');
    writeFileSync(rules, `rules:\n  - id: backref\n    pattern: '(a)\\1'\n`);
    const cfg2 = join(dir, 'badrule.yaml');
    writeFileSync(
      cfg2,
      `sidecar:
  sources: [{ id: t, type: file, include: ["${dir}/*.jsonl"] }]
  redaction: { rules: ["${rules}"] }
  keys: { signing_key_file: ${dir}/pod-a.skey, hmac_key_file: ${dir}/hmac.key }
  ship: { url: "http://127.0.0.1:7470" }
`,
    );
    const r2 = await runCli(['validate', '--config', cfg2]);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toContain(`${rules}:3:`);

    // a mapping file is read as the sidecar reads it at start: a broken one is named at its line
    const mapping = join(dir, 'broken-mapping.yaml');
    writeFileSync(mapping, 'format: mapped\nversion: 1\nrules:\n  - fields:\n      event_type: { path: a }\n      no_such_field: { path: b }\n');
    const cfg3 = join(dir, 'badmapping.yaml');
    const withMapping = (m: string): string => `sidecar:
  sources: [{ id: t, type: file, include: ["${dir}/*.jsonl"], format: mapped, mapping: "${m}" }]
  keys: { signing_key_file: ${dir}/pod-a.skey, hmac_key_file: ${dir}/hmac.key }
  ship: { url: "http://127.0.0.1:7470" }
`;
    writeFileSync(cfg3, withMapping(mapping));
    const r3 = await runCli(['validate', '--config', cfg3]);
    expect(r3.code).toBe(1);
    expect(r3.stderr).toMatch(new RegExp(`${mapping.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:6:`));
    expect(r3.stderr).not.toMatch(/internal error|\n\s+at /);
    writeFileSync(cfg3, withMapping('agentmesh'));
    const ok3 = await runCli(['validate', '--config', cfg3]);
    expect([ok3.code, ok3.stdout]).toEqual([0, expect.stringContaining('1 mapping(s)')]);
  });

  it('validate and the programs refuse binary garbage and missing files clearly', async () => {
    const junk = join(dir, 'junk.yaml');
    writeFileSync(junk, Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x9c, 0x80, 0x0a]));
    const r = await runCli(['validate', '--config', junk]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/junk\.yaml/);
    expect(r.stderr).not.toMatch(/internal error/);
    expect((await runCli(['validate', '--config', join(dir, 'missing.yaml')])).code).toBe(2);
    expect((await runCli(['sidecar', '--config', junk])).code).toBe(1);
    expect((await runCli(['collector'])).code).toBe(2);
  });

  it('refuses a key file holding something else, without printing its contents', async () => {
    const secretish = 'PRIVATE+KEY+not-really-a-key-canary-7f3a';
    writeFileSync(join(dir, 'bad.skey'), secretish);
    const cfg = join(dir, 'badkey.yaml');
    writeFileSync(
      cfg,
      `sidecar:
  sources: [{ id: t, type: file, include: ["${dir}/*.jsonl"] }]
  keys: { signing_key_file: ${dir}/bad.skey, hmac_key_file: ${dir}/hmac.key }
  ship: { url: "http://127.0.0.1:7470" }
`,
    );
    const r = await runCli(['validate', '--config', cfg]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/key_file_invalid/);
    expect(r.stderr).not.toContain('canary');
  });
});
