import { spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/collector/store/sqlite.js';
import { createHmacKeyFile, createSigningKeyFiles } from '../../src/keyfiles.js';
import { CLI, freePort, ROOT } from '../helpers/procs.js';

/**
 * Every command, and every flag, positional and config field that takes a
 * path, run with paths that cannot work: missing, a directory where a file
 * belongs, a file where a directory belongs, unreadable (or unwritable) for
 * the user running it, and /proc. Each must end in one line naming the path
 * or flag, exit 1 or 2, no stack trace, no "internal error" — and the
 * commands that run servers must fail before they serve.
 *
 * (`query` and `token-hash` take no path.)
 *
 * Unreadable cases run as nobody (65534) when the suite runs as root (root
 * reads anything); otherwise as ourselves, on files chmod 000.
 */

const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;
const SERVER_TIMEOUT_MS = 15_000;
const CLI_TIMEOUT_MS = 30_000;

const R = mkdtempSync(join(tmpdir(), 'sealtrail-badpaths-'));
afterAll(() => rmSync(R, { recursive: true, force: true }));

// ---- fixture ----------------------------------------------------------------

const at = (...p: string[]): string => join(R, ...p);
const KEYS = at('keys');
const RULES = join(ROOT, 'config', 'redaction', 'pii-basic.yaml');
const AFILE = at('afile');
const ADIR = at('adir');
/** everything in it mode 000: unreadable for whoever runs the case */
const LOCKED = at('locked');
/** a directory nobody may list or enter */
const LOCKED_DIR = at('locked-dir');
/** the auditor's case: verifier keys readable, hmac.key beside them not */
const KEYS_HMAC_LOCKED = at('keys-hmac-locked');
/** a directory the case's user may read but not write */
const RO_DIR = at('ro-dir');
const STORE = at('store', 'audit.db');
const TOKEN = '0123456789abcdef0123';

/** Decided once the fixture exists: can an "unreadable" case be run at all? */
let unreadableAs: 'nobody' | 'self' | undefined;

function setup(): void {
  chmodSync(R, 0o755);
  mkdirSync(KEYS);
  createSigningKeyFiles(join(KEYS, 'sealtrail.skey'), join(KEYS, 'sealtrail.vkey'), 'sealtrail');
  createHmacKeyFile(join(KEYS, 'hmac.key'));
  writeFileSync(join(KEYS, 'admin.token'), `${TOKEN}\n`);
  for (const f of ['sealtrail.skey', 'sealtrail.vkey', 'hmac.key', 'admin.token']) chmodSync(join(KEYS, f), 0o644);
  chmodSync(KEYS, 0o755);
  writeFileSync(AFILE, 'not what anything expects\n');
  mkdirSync(ADIR);
  mkdirSync(LOCKED, { mode: 0o755 });
  for (const [f, from] of [
    ['sealtrail.skey', join(KEYS, 'sealtrail.skey')],
    ['sealtrail.vkey', join(KEYS, 'sealtrail.vkey')],
    ['hmac.key', join(KEYS, 'hmac.key')],
    ['admin.token', join(KEYS, 'admin.token')],
    ['rules.yaml', RULES],
  ] as const) {
    writeFileSync(join(LOCKED, f), readFileSync(from));
  }
  writeFileSync(join(LOCKED, 'input.jsonl'), '{"a":1}\n');
  writeFileSync(join(LOCKED, 'config.yaml'), 'collector: {}\n');
  writeFileSync(join(LOCKED, 'checkpoint'), 'sealtrail/x\n1\nAAAA\n');
  writeFileSync(join(LOCKED, 'report.json'), '{}\n');
  mkdirSync(at('store'));
  const store = openSqliteStore(STORE);
  void store.close();
  writeFileSync(join(LOCKED, 'audit.db'), readFileSync(STORE));
  chmodSync(at('store'), 0o777);
  chmodSync(STORE, 0o666);
  mkdirSync(LOCKED_DIR);
  writeFileSync(join(LOCKED_DIR, 'sealtrail.vkey'), readFileSync(join(KEYS, 'sealtrail.vkey')));
  mkdirSync(KEYS_HMAC_LOCKED);
  writeFileSync(join(KEYS_HMAC_LOCKED, 'sealtrail.vkey'), readFileSync(join(KEYS, 'sealtrail.vkey')), { mode: 0o644 });
  writeFileSync(join(KEYS_HMAC_LOCKED, 'hmac.key'), readFileSync(join(KEYS, 'hmac.key')), { mode: 0o000 });
  chmodSync(join(KEYS_HMAC_LOCKED, 'hmac.key'), 0o000);
  chmodSync(KEYS_HMAC_LOCKED, 0o755);
  mkdirSync(RO_DIR);
  mkdirSync(at('cfg'));
  mkdirSync(at('data'));
  mkdirSync(at('traces'));
  for (const f of ['sealtrail.skey', 'sealtrail.vkey', 'hmac.key', 'admin.token', 'rules.yaml', 'input.jsonl', 'config.yaml', 'checkpoint', 'report.json', 'audit.db']) {
    chmodSync(join(LOCKED, f), 0o000);
  }
  chmodSync(LOCKED_DIR, 0o000);
  if (isRoot) {
    unreadableAs = 'nobody';
    // the nobody runs read everything else, and write their data here
    for (const d of [at('cfg'), at('traces'), ADIR, RO_DIR]) chmodSync(d, 0o755);
    chmodSync(RO_DIR, 0o555);
    chownSync(at('data'), NOBODY, NOBODY);
    chownSync(at('store'), NOBODY, NOBODY);
    chownSync(STORE, NOBODY, NOBODY);
  } else {
    chmodSync(RO_DIR, 0o555);
    try {
      readFileSync(join(LOCKED, 'hmac.key'));
      unreadableAs = undefined; // mode 000 does not stop us (CAP_DAC_OVERRIDE): cannot test
    } catch {
      unreadableAs = 'self';
    }
  }
}
setup();

// ---- running ----------------------------------------------------------------

interface Outcome {
  code: number | null;
  out: string;
  timedOut: boolean;
}

function run(args: string[], opts: { nobody: boolean; server: boolean }): Promise<Outcome> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env, SEALTRAIL_LOG_LEVEL: 'info', HOME: R };
    delete env.SEALTRAIL_ADMIN_TOKEN;
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: R,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(opts.nobody ? { uid: NOBODY, gid: NOBODY } : {}),
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.server ? SERVER_TIMEOUT_MS : CLI_TIMEOUT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, timedOut });
    });
  });
}

// ---- the cases --------------------------------------------------------------

type Kind = 'missing' | 'directory' | 'file' | 'unreadable' | 'proc';

interface Case {
  name: string;
  args: string[];
  kind: Kind;
  /** any of these in the output counts as naming the place */
  names: string[];
  server: boolean;
}

const cases: Case[] = [];
let nCfg = 0;

function add(name: string, kind: Kind, args: string[], names: string[], server = false): void {
  cases.push({ name: `${name} [${kind}: ${names[0]}]`, args, kind, names, server });
}

const FROM_TO = ['--from', '2026-01-01T00:00:00Z', '--to', '2026-01-02T00:00:00Z'];
const NOURL = 'http://127.0.0.1:1';

/** A path that takes a file: missing, a directory, unreadable, /proc. */
function fileFlag(name: string, build: (p: string) => string[], locked: string, server = false, flag = name.split(' ').pop()!): void {
  const paths: [Kind, string][] = [
    ['missing', at('no-such-file')],
    ['directory', ADIR],
    ['unreadable', locked],
    ['proc', '/proc'],
  ];
  for (const [kind, p] of paths) add(name, kind, build(p), [p, flag], server);
}

/** A path that takes a directory that must exist: missing, a file, unreadable, /proc. */
function dirFlag(name: string, build: (p: string) => string[], flag: string, extra: [Kind, string][] = []): void {
  const paths: [Kind, string][] = [
    ['missing', at('no-such-dir')],
    ['file', AFILE],
    ['unreadable', LOCKED_DIR],
    ['proc', '/proc'],
    ...extra,
  ];
  for (const [kind, p] of paths) add(name, kind, build(p), [p, flag]);
}

/** A directory the command creates when missing: under a file, a file, unwritable, /proc. */
function outDirFlag(name: string, build: (p: string) => string[], flag: string, server = false): void {
  const paths: [Kind, string][] = [
    ['missing', join(AFILE, 'sub')],
    ['file', AFILE],
    ['unreadable', join(RO_DIR, 'new')],
    ['unreadable', LOCKED_DIR],
    ['proc', '/proc'],
  ];
  for (const [kind, p] of paths) add(name, kind, build(p), [p, flag], server);
}

// commands and flags
fileFlag('sidecar --config', (p) => ['sidecar', '--config', p], join(LOCKED, 'config.yaml'), true);
fileFlag('collector --config', (p) => ['collector', '--config', p], join(LOCKED, 'config.yaml'), true);
fileFlag('migrate --config', (p) => ['migrate', '--config', p], join(LOCKED, 'config.yaml'));
fileFlag('validate --config', (p) => ['validate', '--config', p], join(LOCKED, 'config.yaml'));
fileFlag('validate --rules', (p) => ['validate', '--rules', p], join(LOCKED, 'rules.yaml'));
fileFlag('validate --pseudonym-key', (p) => ['validate', '--rules', RULES, '--pseudonym-key', `p=${p}`], join(LOCKED, 'hmac.key'));
fileFlag('redact --rules', (p) => ['redact', '--rules', p], join(LOCKED, 'rules.yaml'));
fileFlag('redact --pseudonym-key', (p) => ['redact', '--rules', RULES, '--pseudonym-key', `p=${p}`], join(LOCKED, 'hmac.key'));
fileFlag('redact INPUT', (p) => ['redact', '--rules', RULES, p], join(LOCKED, 'input.jsonl'), false, 'INPUT');
fileFlag('verify --db', (p) => ['verify', '--db', p, '--keys', KEYS], join(LOCKED, 'audit.db'));
fileFlag('verify --vkey', (p) => ['verify', '--db', STORE, '--vkey', p], join(LOCKED, 'sealtrail.vkey'));
fileFlag('verify --hmac-key', (p) => ['verify', '--db', STORE, '--keys', KEYS, '--hmac-key', p], join(LOCKED, 'hmac.key'));
fileFlag('verify --checkpoint', (p) => ['verify', '--db', STORE, '--keys', KEYS, '--checkpoint', p], join(LOCKED, 'checkpoint'));
fileFlag('report --db', (p) => ['report', '--db', p, ...FROM_TO], join(LOCKED, 'audit.db'));
fileFlag('export --vkey', (p) => ['export', '--url', NOURL, '--token', TOKEN, '--bundle', at('never'), '--vkey', p], join(LOCKED, 'sealtrail.vkey'));
for (const [kind, p] of [
  ['missing', at('no-such-dir', 'r.json')],
  ['directory', ADIR],
  ['unreadable', join(RO_DIR, 'r.json')],
  ['unreadable', join(LOCKED, 'report.json')],
  ['proc', '/proc'],
  ['proc', '/proc/r.json'],
] as [Kind, string][]) {
  add('report --out', kind, ['report', '--db', STORE, ...FROM_TO, '--out', p], [p, '--out']);
}
dirFlag('verify --keys', (p) => ['verify', '--db', STORE, '--keys', p], '--keys', [['unreadable', KEYS_HMAC_LOCKED]]);
dirFlag('verify --bundle', (p) => ['verify', '--bundle', p], '--bundle');
dirFlag('export --keys', (p) => ['export', '--url', NOURL, '--token', TOKEN, '--bundle', at('never'), '--keys', p], '--keys');
outDirFlag('export --bundle', (p) => ['export', '--url', NOURL, '--token', TOKEN, '--keys', KEYS, '--bundle', p], '--bundle');
outDirFlag('keygen --out', (p) => ['keygen', '--out', p], '--out');
outDirFlag('dev --dir', (p) => ['dev', '--dir', p, '--collector-listen', '127.0.0.1:PORT', '--telemetry-listen', '127.0.0.1:PORT'], '--dir', true);

// paths named inside a config file
function sidecarYaml(over: Record<string, string>): string {
  const v = {
    data_dir: at('data', `d${nCfg}`),
    rules: RULES,
    pkey: join(KEYS, 'hmac.key'),
    skey: join(KEYS, 'sealtrail.skey'),
    hmac: join(KEYS, 'hmac.key'),
    socket: '',
    ...over,
  };
  return `sidecar:
  data_dir: ${JSON.stringify(v.data_dir)}
  stream: { id: bad-paths }
  sources:
    - { id: t, type: file, include: [${JSON.stringify(at('traces', '*.jsonl'))}] }
${v.socket ? `    - { id: s, type: socket, path: ${JSON.stringify(v.socket)} }\n` : ''}  redaction:
    rules: [${JSON.stringify(v.rules)}]
    pseudonym_keys: [{ id: p, file: ${JSON.stringify(v.pkey)} }]
  keys: { signing_key_file: ${JSON.stringify(v.skey)}, hmac_key_file: ${JSON.stringify(v.hmac)} }
  ship: { url: "${NOURL}" }
  telemetry: { listen: "127.0.0.1:PORT" }
`;
}

function collectorYaml(over: Record<string, string>): string {
  const v = {
    store: at('data', `c${nCfg}`, 'audit.db'),
    token: join(KEYS, 'admin.token'),
    vkey: join(KEYS, 'sealtrail.vkey'),
    hmac: join(KEYS, 'hmac.key'),
    cskey: join(KEYS, 'sealtrail.skey'),
    chmac: join(KEYS, 'hmac.key'),
    ...over,
  };
  return `collector:
  listen: "127.0.0.1:PORT"
  store: { type: sqlite, path: ${JSON.stringify(v.store)} }
  auth: { admin_tokens: ["${TOKEN}"], admin_token_files: [${JSON.stringify(v.token)}] }
  streams: [{ match: "*", vkey_file: ${JSON.stringify(v.vkey)} }]
  hmac_keys: [{ id: k1, file: ${JSON.stringify(v.hmac)} }]
  keys: { signing_key_file: ${JSON.stringify(v.cskey)}${v.chmac ? `, hmac_key_file: ${JSON.stringify(v.chmac)}` : ''} }
`;
}

/** Writes a config (PORT filled in at run time) and adds one case per command that reads it. */
function configField(
  section: 'sidecar' | 'collector',
  field: string,
  key: string,
  kind: Kind,
  p: string,
  commands: string[],
  more: Record<string, string> = {},
): void {
  nCfg++;
  const file = at('cfg', `${section}-${nCfg}.yaml`);
  const over = { [key]: p, ...more };
  writeFileSync(file, section === 'sidecar' ? sidecarYaml(over) : collectorYaml(over), { mode: 0o644 });
  for (const cmd of commands) add(`${cmd} --config (${section}.${field})`, kind, [cmd, '--config', file], [p, field], cmd !== 'validate' && cmd !== 'migrate');
}

const KEY_KINDS = (locked: string): [Kind, string][] => [
  ['missing', at('no-such-file')],
  ['directory', ADIR],
  ['unreadable', locked],
  ['proc', '/proc'],
];
for (const [field, key, locked] of [
  ['keys.signing_key_file', 'skey', join(LOCKED, 'sealtrail.skey')],
  ['keys.hmac_key_file', 'hmac', join(LOCKED, 'hmac.key')],
  ['redaction.rules', 'rules', join(LOCKED, 'rules.yaml')],
  ['redaction.pseudonym_keys.file', 'pkey', join(LOCKED, 'hmac.key')],
] as const) {
  for (const [kind, p] of KEY_KINDS(locked)) configField('sidecar', field, key, kind, p, ['sidecar', 'validate']);
}
for (const [kind, p] of [
  ['missing', join(AFILE, 'sub')],
  ['file', AFILE],
  ['unreadable', join(RO_DIR, 'new')],
  ['proc', '/proc'],
] as [Kind, string][]) {
  configField('sidecar', 'data_dir', 'data_dir', kind, p, ['sidecar']);
}
for (const [kind, p] of [
  ['missing', at('no-such-dir', 's.sock')],
  ['directory', ADIR],
  ['file', AFILE],
  ['unreadable', join(RO_DIR, 's.sock')],
  ['proc', '/proc/s.sock'],
] as [Kind, string][]) {
  configField('sidecar', 'sources.path', 'socket', kind, p, ['sidecar']);
}
for (const [field, key, locked] of [
  ['auth.admin_token_files', 'token', join(LOCKED, 'admin.token')],
  ['streams.vkey_file', 'vkey', join(LOCKED, 'sealtrail.vkey')],
  ['hmac_keys.file', 'hmac', join(LOCKED, 'hmac.key')],
  ['keys.signing_key_file', 'cskey', join(LOCKED, 'sealtrail.skey')],
  ['keys.hmac_key_file', 'chmac', join(LOCKED, 'hmac.key')],
] as const) {
  for (const [kind, p] of KEY_KINDS(locked)) configField('collector', field, key, kind, p, ['collector', 'validate']);
}
// without keys.hmac_key_file the collector generates one beside the signing key: not beside a bad one
for (const [kind, p] of KEY_KINDS(join(LOCKED, 'sealtrail.skey'))) {
  configField('collector', 'keys.signing_key_file', 'cskey', kind, p, ['collector'], { chmac: '' });
}
for (const [kind, p] of [
  ['missing', join(AFILE, 'sub', 'audit.db')],
  ['directory', ADIR],
  ['unreadable', join(RO_DIR, 'audit.db')],
  ['unreadable', join(LOCKED, 'audit.db')],
  ['proc', '/proc'],
  ['proc', '/proc/audit.db'],
] as [Kind, string][]) {
  configField('collector', 'store.path', 'store', kind, p, ['collector', 'migrate']);
}

// ---- the test ---------------------------------------------------------------

async function check(c: Case): Promise<string | undefined> {
  const nobody = c.kind === 'unreadable' && unreadableAs === 'nobody';
  // Fresh ports per run: a case that wrongly starts a server must not collide with another.
  const args: string[] = [];
  for (const a of c.args) args.push(a.includes('PORT') ? a.replace('PORT', String(await freePort())) : a);
  const i = args.indexOf('--config');
  const cfg = i >= 0 ? args[i + 1] : undefined;
  if (cfg?.startsWith(at('cfg'))) {
    const text = readFileSync(cfg, 'utf8');
    if (text.includes('PORT')) {
      const live = `${cfg}.${Math.random().toString(36).slice(2)}.yaml`;
      writeFileSync(live, text.replace('PORT', String(await freePort())), { mode: 0o644 });
      args[i + 1] = live;
    }
  }
  const r = await run(args, { nobody, server: c.server });
  const problems: string[] = [];
  if (r.timedOut) problems.push(`still running after ${c.server ? SERVER_TIMEOUT_MS : CLI_TIMEOUT_MS} ms (killed)`);
  if (r.code !== 1 && r.code !== 2) problems.push(`exit ${r.code}`);
  if (/^\s+at /m.test(r.out)) problems.push('a stack trace');
  if (/internal error/.test(r.out)) problems.push('"internal error"');
  if (!c.names.some((n) => r.out.includes(n))) problems.push(`no mention of ${c.names.join(' or ')}`);
  return problems.length ? `${c.name}${nobody ? ' as nobody' : ''}: ${problems.join(', ')}\n    ${r.out.trim().split('\n').slice(-3).join('\n    ')}` : undefined;
}

describe('every CLI path argument, when the path cannot work', () => {
  it(`fails in one line naming it, exit 1 or 2, no stack (${cases.length} runs)`, async () => {
    const todo = cases.filter((c) => c.kind !== 'unreadable' || unreadableAs !== undefined);
    if (unreadableAs === undefined) console.warn('cli-bad-paths: unreadable cases skipped (not root, and chmod 000 does not stop this user)');
    const failures: string[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < todo.length) {
        const c = todo[next++]!;
        const f = await check(c);
        if (f) failures.push(f);
      }
    };
    await Promise.all([worker(), worker(), worker()]);
    expect(failures, failures.join('\n')).toEqual([]);
    // nothing was generated beside a bad signing key path
    expect(readdirSync(R).filter((f) => f.endsWith('.hmac'))).toEqual([]);
    expect(existsSync('/proc.hmac')).toBe(false);
    expect(todo.length).toBeGreaterThan(150);
  }, 900_000);
});

describe('a listen address in use', () => {
  it('collector, sidecar and dev fail in one line naming the address and the setting, exit 1, no stack', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const busy = `127.0.0.1:${(blocker.address() as AddressInfo).port}`;
    try {
      nCfg++;
      const sidecarCfg = at('cfg', `busy-sidecar-${nCfg}.yaml`);
      writeFileSync(sidecarCfg, sidecarYaml({}).replace('127.0.0.1:PORT', busy), { mode: 0o644 });
      const collectorCfg = at('cfg', `busy-collector-${nCfg}.yaml`);
      writeFileSync(collectorCfg, collectorYaml({}).replace('127.0.0.1:PORT', busy), { mode: 0o644 });
      const free = async (): Promise<string> => `127.0.0.1:${await freePort()}`;
      const runs: Array<[string[], string]> = [
        [['collector', '--config', collectorCfg], 'collector.listen'],
        [['sidecar', '--config', sidecarCfg], 'sidecar.telemetry.listen'],
        [['dev', '--dir', at('data', 'busy-dev-1'), '--collector-listen', busy, '--telemetry-listen', await free()], '--collector-listen'],
        [['dev', '--dir', at('data', 'busy-dev-2'), '--collector-listen', await free(), '--telemetry-listen', busy], '--telemetry-listen'],
      ];
      for (const [args, setting] of runs) {
        const r = await run(args, { nobody: false, server: true });
        expect(r.timedOut, args.join(' ')).toBe(false);
        expect(r.code, r.out).toBe(1);
        expect(r.out).not.toMatch(/^\s+at /m);
        expect(r.out).not.toMatch(/internal error/);
        expect(r.out).toMatch(/error \[listen_failed\]/);
        expect(r.out).toContain(busy);
        expect(r.out).toContain(setting);
      }
    } finally {
      blocker.close();
    }
  }, 120_000);
});
