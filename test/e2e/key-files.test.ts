import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, freePort, ROOT, runCli } from '../helpers/procs.js';

/**
 * Every key file the sidecar, the collector and the CLI read, when it is
 * missing, unreadable, empty or holds something else: one line naming the
 * path, the config field or flag, and what to do, with a stable code and
 * exit 1, never a stack trace and never the file's content. Real programs,
 * real files.
 *
 * Unreadable: root reads a file of mode 000 anyway, so when the suite runs
 * as root those cases run as nobody (65534), as a non-root pod would; as
 * another user they run as ourselves on mode 000 files, and are skipped
 * (said so) only if even that user can read them.
 */
const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;
const R = mkdtempSync(join(tmpdir(), 'sealtrail-keyfiles-'));
afterAll(() => rmSync(R, { recursive: true, force: true }));
const at = (...p: string[]): string => join(R, ...p);
const RULES = join(ROOT, 'config', 'redaction', 'pii-basic.yaml');
const TOKEN = '0123456789abcdef0123';
const CANARY = 'CANARY-7f3a-not-a-key';

let unreadable: 'nobody' | 'self' | undefined;
/** the signer key's text, in no output */
let secret = '';

async function setup(): Promise<void> {
  chmodSync(R, 0o755);
  expect((await runCli(['keygen', '--name', 'agents', '--out', at('keys'), '--hmac'])).code).toBe(0);
  chmodSync(at('keys'), 0o755);
  secret = readFileSync(at('keys', 'agents.skey'), 'utf8').trim();
  for (const f of ['agents.skey', 'agents.vkey', 'hmac.key']) chmodSync(at('keys', f), 0o644);
  const write = (name: string, text: string, mode = 0o644): void => {
    writeFileSync(at('keys', name), text);
    chmodSync(at('keys', name), mode);
  };
  write('empty.skey', '');
  write('blank.vkey', '\n\n');
  write('garbled.skey', `${CANARY}\n`);
  write('garbled.vkey', `${CANARY}\n`);
  write('garbled.key', `${CANARY}\n`);
  // the halves of a pair swapped: the secret one must not be echoed either
  write('swapped.skey', readFileSync(at('keys', 'agents.vkey'), 'utf8'));
  write('swapped.vkey', readFileSync(at('keys', 'agents.skey'), 'utf8'));
  write('token', `${TOKEN}\n`);
  for (const f of ['locked.skey', 'locked.key', 'locked.vkey', 'locked.token']) {
    const from = f.endsWith('.skey') ? 'agents.skey' : f.endsWith('.vkey') ? 'agents.vkey' : f.endsWith('.key') ? 'hmac.key' : 'token';
    write(f, readFileSync(at('keys', from), 'utf8'), 0o000);
  }
  if (isRoot) unreadable = 'nobody';
  else {
    try {
      readFileSync(at('keys', 'locked.key'));
      unreadable = undefined;
    } catch {
      unreadable = 'self';
    }
  }
}

interface Outcome {
  code: number | null;
  out: string;
}

function run(args: string[], asNobody: boolean): Promise<Outcome> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env, SEALTRAIL_LOG_LEVEL: 'info' };
    delete env.SEALTRAIL_ADMIN_TOKEN;
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: R,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(asNobody ? { uid: NOBODY, gid: NOBODY } : {}),
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

let nCfg = 0;
async function config(section: 'sidecar' | 'collector', over: Record<string, string>): Promise<string> {
  const k = (f: string): string => JSON.stringify(at('keys', f));
  const v = { skey: 'agents.skey', hmac: 'hmac.key', pkey: 'hmac.key', vkey: 'agents.vkey', token: 'token', hmacs: 'hmac.key', own: 'agents.skey', ...over };
  const port = await freePort();
  const file = at(`${section}-${++nCfg}.yaml`);
  const text =
    section === 'sidecar'
      ? `sidecar:
  data_dir: ${JSON.stringify(at(`data-${nCfg}`))}
  stream: { id: key-files }
  sources: [{ id: t, type: file, include: [${JSON.stringify(at('*.jsonl'))}] }]
  redaction: { rules: [${JSON.stringify(RULES)}], pseudonym_keys: [{ id: p1, file: ${k(v.pkey)} }] }
  keys: { signing_key_file: ${k(v.skey)}, hmac_key_file: ${k(v.hmac)} }
  ship: { url: "http://127.0.0.1:1" }
  telemetry: { listen: "127.0.0.1:${port}" }
`
      : `collector:
  listen: "127.0.0.1:${port}"
  store: { type: sqlite, path: ${JSON.stringify(at(`store-${nCfg}`, 'audit.db'))} }
  auth: { admin_tokens: ["${TOKEN}"], admin_token_files: [${k(v.token)}] }
  streams: [{ match: "*", vkey_file: ${k(v.vkey)} }]
  hmac_keys: [{ id: k1, file: ${k(v.hmacs)} }]
  keys: { signing_key_file: ${k(v.own)}, hmac_key_file: ${k('hmac.key')} }
`;
  writeFileSync(file, text, { mode: 0o644 });
  return file;
}

interface Case {
  name: string;
  args: () => Promise<string[]>;
  code: string;
  file: string;
  field: string;
  /** what to do, as the message says it */
  remedy: RegExp;
  unreadable?: boolean;
}

const SKEY_REMEDY = /sealtrail keygen --name NAME --out DIR` writes the signer key DIR\/NAME\.skey/;
const HMAC_REMEDY = /sealtrail keygen --hmac --out DIR` writes DIR\/hmac\.key/;
const VKEY_REMEDY = /name the NAME\.vkey that `sealtrail keygen --name NAME` wrote/;
const FSGROUP_REMEDY = /\(uid \d+\) must be allowed to read it.*securityContext\.fsGroup so the file becomes 0440/;

/** One case per command that reads `section`'s config: validate, and the program itself. */
const configField =
  (section: 'sidecar' | 'collector') =>
  (field: string, key: string, file: string, code: string, remedy: RegExp, unreadableCase = false): Case[] =>
    ['validate', section].map((cmd) => ({
      name: `${cmd} --config: ${section}.${field} = ${file}`,
      args: async () => [cmd, '--config', await config(section, { [key]: file })],
      code,
      file,
      field: `${section}.${field}`,
      remedy,
      unreadable: unreadableCase,
    }));
const sidecarField = configField('sidecar');
const collectorField = configField('collector');

const cases: Case[] = [
  ...sidecarField('keys.signing_key_file', 'skey', 'missing.skey', 'key_file_missing', SKEY_REMEDY),
  ...sidecarField('keys.signing_key_file', 'skey', 'locked.skey', 'key_file_permission_denied', FSGROUP_REMEDY, true),
  ...sidecarField('keys.signing_key_file', 'skey', 'empty.skey', 'key_file_invalid', /is empty; `sealtrail keygen/),
  ...sidecarField('keys.signing_key_file', 'skey', 'garbled.skey', 'key_file_invalid', /does not hold a signed-note Ed25519 signer key/),
  ...sidecarField('keys.signing_key_file', 'skey', 'swapped.skey', 'key_file_invalid', /holds a verifier key \(NAME\.vkey\), not a signer key; name the signer key NAME\.skey/),
  ...sidecarField('keys.hmac_key_file', 'hmac', 'missing.key', 'key_file_missing', HMAC_REMEDY),
  ...sidecarField('keys.hmac_key_file', 'hmac', 'locked.key', 'key_file_permission_denied', FSGROUP_REMEDY, true),
  ...sidecarField('keys.hmac_key_file', 'hmac', 'garbled.key', 'key_file_invalid', /must hold base64 or hex text/),
  ...sidecarField('redaction.pseudonym_keys', 'pkey', 'missing.key', 'key_file_missing', HMAC_REMEDY),
  ...collectorField('streams[0].vkey_file', 'vkey', 'missing.vkey', 'key_file_missing', VKEY_REMEDY),
  ...collectorField('streams[0].vkey_file', 'vkey', 'locked.vkey', 'key_file_permission_denied', FSGROUP_REMEDY, true),
  ...collectorField('streams[0].vkey_file', 'vkey', 'blank.vkey', 'key_file_invalid', /is empty; name the NAME\.vkey/),
  ...collectorField('streams[0].vkey_file', 'vkey', 'garbled.vkey', 'key_file_invalid', /is not a signed-note verifier key "NAME\+HASH\+KEY"/),
  ...collectorField('streams[0].vkey_file', 'vkey', 'swapped.vkey', 'key_file_invalid', /holds a signer key, which is secret; name the verifier key NAME\.vkey/),
  ...collectorField('hmac_keys', 'hmacs', 'missing.key', 'key_file_missing', HMAC_REMEDY),
  ...collectorField('keys.signing_key_file', 'own', 'locked.skey', 'key_file_permission_denied', FSGROUP_REMEDY, true),
  ...collectorField('keys.signing_key_file', 'own', 'swapped.skey', 'key_file_invalid', /holds a verifier key/),
  ...collectorField('auth.admin_token_files', 'token', 'missing.token', 'key_file_missing', /check the path/),
  ...collectorField('auth.admin_token_files', 'token', 'locked.token', 'key_file_permission_denied', FSGROUP_REMEDY, true),
  {
    name: 'verify --hmac-key unreadable',
    args: async () => ['verify', '--db', at('none.db'), '--vkey', at('keys', 'agents.vkey'), '--hmac-key', at('keys', 'locked.key')],
    code: 'key_file_permission_denied',
    file: 'locked.key',
    field: '--hmac-key',
    remedy: FSGROUP_REMEDY,
    unreadable: true,
  },
  {
    name: 'verify --hmac-key garbled',
    args: async () => ['verify', '--db', at('none.db'), '--vkey', at('keys', 'agents.vkey'), '--hmac-key', at('keys', 'garbled.key')],
    code: 'key_file_invalid',
    file: 'garbled.key',
    field: '--hmac-key',
    remedy: HMAC_REMEDY,
  },
];

describe('key files that cannot be used', () => {
  it('stop every program with one line: code, path, config field or flag, what to do; no stack, no content', async () => {
    await setup();
    const remedy = cases.filter((c) => !c.unreadable || unreadable !== undefined);
    if (unreadable === undefined) console.warn('key-files: unreadable cases skipped (not root, and mode 000 does not stop this user)');
    expect(remedy.filter((c) => c.unreadable).length).toBe(unreadable === undefined ? 0 : 11);
    const failures: string[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < remedy.length) {
        const c = remedy[next++]!;
        const asNobody = c.unreadable === true && unreadable === 'nobody';
        const r = await run(await c.args(), asNobody);
        const problems: string[] = [];
        if (r.code !== 1) problems.push(`exit ${r.code}`);
        if (!r.out.includes(`error [${c.code}]`)) problems.push(`no [${c.code}]`);
        if (!r.out.includes(at('keys', c.file))) problems.push('no path');
        if (!r.out.includes(c.field)) problems.push(`no ${c.field}`);
        if (!c.remedy.test(r.out)) problems.push(`no ${c.remedy}`);
        if (/^\s+at /m.test(r.out) || /internal error/.test(r.out)) problems.push('a stack trace');
        if (r.out.includes(CANARY) || r.out.includes(secret) || r.out.includes(secret.split('+').pop()!)) problems.push('the content');
        if (r.out.trim().split('\n').length !== 1) problems.push('more than one line');
        if (problems.length) failures.push(`${c.name}${asNobody ? ' (as nobody)' : ''}: ${problems.join(', ')}\n    ${r.out.trim()}`);
      }
    };
    await Promise.all([worker(), worker(), worker()]);
    expect(failures, failures.join('\n')).toEqual([]);
  }, 300_000);

  it('verify: a --keys directory whose hmac.key is unreadable names the directory and how to go without it', async () => {
    if (unreadable === undefined) return;
    const dir = at('auditor');
    expect((await runCli(['keygen', '--name', 'agents', '--out', dir, '--hmac'])).code).toBe(0);
    chmodSync(dir, 0o755);
    chmodSync(join(dir, 'agents.vkey'), 0o644);
    chmodSync(join(dir, 'hmac.key'), 0o000);
    const r = await run(['verify', '--db', at('none.db'), '--keys', dir], unreadable === 'nobody');
    expect(r.code).toBe(1);
    expect(r.out).toContain(`error [key_file_permission_denied]: HMAC key file (in --keys ${dir}) ${join(dir, 'hmac.key')}`);
    expect(r.out).toMatch(/pass --vkey FILE instead of --keys/);
  });
});
