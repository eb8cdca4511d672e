import { spawn } from 'node:child_process';
import { lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { getJson } from '../helpers/deployment.js';
import { CLI, freePort, procOf, ROOT, stop, waitFor, type Proc } from '../helpers/procs.js';
import { SocketClient } from '../helpers/socket-client.js';

/**
 * After a real run, every file sealtrail made is 0600 and every directory it
 * made 0700, even under umask 000. Two ways in: the CLI from a shell with
 * `umask 000` (what a user runs), and the command functions called directly
 * in a process whose umask is 000, so the CLI's own umask 077 is not what
 * makes the test pass: the explicit modes are.
 */

const tmp = mkdtempSync(join(tmpdir(), 'sealtrail-private-e2e-'));
const procs: Proc[] = [];
afterAll(async () => {
  for (const p of procs) await stop(p, 'SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
});

function track(child: ReturnType<typeof spawn>): Proc {
  const p = procOf(child);
  procs.push(p);
  return p;
}

/** `sealtrail ARGS` from `sh -c 'umask 000; exec ...'`. */
function cliUnderUmask000(args: string[]): Proc {
  const quoted = [process.execPath, CLI, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  return track(spawn('/bin/sh', ['-c', `umask 000; exec ${quoted}`], { cwd: tmp, env: { ...process.env, SEALTRAIL_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] }));
}

/** A command function (dist/src/cli/<file>.js) run in a process with umask 000, bypassing main.ts. */
function commandUnderUmask000(file: string, fn: string, args: string[]): Proc {
  const url = pathToFileURL(join(ROOT, 'dist', 'src', 'cli', `${file}.js`)).href;
  const script = `process.umask(0); const m = await import(${JSON.stringify(url)}); process.exitCode = await m[${JSON.stringify(fn)}](process.argv.slice(1));`;
  return track(
    spawn(process.execPath, ['--input-type=module', '-e', script, '--', ...args], {
      cwd: tmp,
      env: { ...process.env, SEALTRAIL_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
}

async function finished(p: Proc): Promise<number | null> {
  const { code } = await p.exited;
  if (code !== 0) throw new Error(`exit ${code}: ${p.stderr()}`);
  return code;
}

/** Every entry under dir that is not 0600 (files, sockets) or 0700 (directories); empty when all are private. */
function notPrivate(dir: string, skip: (p: string) => boolean = () => false): string[] {
  const bad: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (skip(p)) continue;
      const st = lstatSync(p);
      const m = st.mode & 0o777;
      if (st.isDirectory()) {
        if (m !== 0o700) bad.push(`${p}: directory ${m.toString(8)}`);
        walk(p);
      } else if (m !== 0o600) {
        bad.push(`${p}: ${st.isSocket() ? 'socket' : st.isFile() ? 'file' : 'other'} ${m.toString(8)}`);
      }
    }
  };
  walk(dir);
  return bad;
}

function list(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string): void => {
    for (const name of readdirSync(d).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      out.push(r);
      if (lstatSync(join(d, name)).isDirectory()) walk(join(d, name), r);
    }
  };
  walk(dir, '');
  return out;
}

const EVENT = { event_type: 'tool_invoked', actor: { id: 'u1', type: 'user' }, tool: { name: 'search', arguments: { q: 'mail bob@example.com' } } };

/**
 * Starts dev on D, writes one event, waits until the collector stores it,
 * checks D while running (-wal and -shm exist only then), then stops it with
 * `signal` and checks D again. `during` runs while it is up.
 */
async function devRun(
  start: (args: string[]) => Proc,
  dir: string,
  signal: NodeJS.Signals,
  during?: (url: string, token: string) => Promise<void>,
): Promise<void> {
  const [cport, tport] = [await freePort(), await freePort()];
  const p = start(['--dir', dir, '--collector-listen', `127.0.0.1:${cport}`, '--telemetry-listen', `127.0.0.1:${tport}`]);
  await waitFor('dev banner', () => p.stdout().includes('admin token'), 60_000);
  const token = readFileSync(join(dir, 'admin.token'), 'utf8').trim();
  // the trace file is the agent's, not sealtrail's: it is written private here so the walk can cover all of D
  writeFileSync(join(dir, 'traces', 'agent.jsonl'), `${JSON.stringify(EVENT)}\n`, { mode: 0o600 });
  const url = `http://127.0.0.1:${cport}`;
  await waitFor('the event at the collector', async () => {
    const { body } = await getJson(`${url}/v1/audit?event_type=tool_invoked`, token);
    return body.items?.length === 1 ? true : undefined;
  }, 60_000);
  const running = list(dir);
  for (const f of ['admin.token', 'keys/hmac.key', 'keys/sidecar.skey', 'keys/sidecar.vkey', 'keys/collector.skey', 'keys/collector.vkey',
    'collector/audit.db', 'collector/audit.db-wal', 'collector/audit.db-shm', 'sidecar/buffer.db', 'sidecar/buffer.db-wal', 'sidecar/buffer.db-shm']) {
    expect(running).toContain(f);
  }
  expect(notPrivate(dir)).toEqual([]);
  if (during) await during(url, token);
  p.child.kill(signal);
  expect((await p.exited).code).toBe(0);
  expect(list(dir)).toContain('collector/audit.db');
  expect(notPrivate(dir)).toEqual([]);
}

describe('files sealtrail creates are private whatever the umask', () => {
  it('sealtrail dev from a shell with umask 000: every file 0600, every directory 0700, running and after SIGINT', async () => {
    await devRun(
      (args) => cliUnderUmask000(['dev', ...args]),
      join(tmp, 'cli-run', '.sealtrail'),
      'SIGINT',
    );
    expect(lstatSync(join(tmp, 'cli-run')).mode & 0o777).toBe(0o700);
  });

  it('the dev, keygen, export and report code in a umask-000 process (no CLI umask): the same, bundle and report too; SIGTERM', async () => {
    const dir = join(tmp, 'direct', 'state');
    const out = join(tmp, 'direct-out');
    await devRun(
      (args) => commandUnderUmask000('dev', 'devCommand', args),
      dir,
      'SIGTERM',
      async (url, token) => {
        const keys = join(dir, 'keys');
        await finished(commandUnderUmask000('export', 'exportCommand', ['--url', url, '--token', token, '--keys', keys, '--bundle', join(out, 'bundles', 'b1')]));
        const day = new Date().toISOString().slice(0, 10);
        const from = new Date(Date.now() - 3_600_000).toISOString();
        const to = new Date(Date.now() + 3_600_000).toISOString();
        await finished(commandUnderUmask000('report', 'reportCommand', ['--url', url, '--token', token, '--from', from, '--to', to, '--out', join(out, `report-${day}.json`)]));
        await finished(commandUnderUmask000('report', 'reportCommand', ['--url', url, '--token', token, '--from', from, '--to', to, '--format', 'html', '--out', join(out, 'report.html')]));
      },
    );
    // keygen into a new nested directory
    await finished(commandUnderUmask000('keygen', 'keygenCommand', ['--name', 'auditor', '--out', join(out, 'keys', 'new'), '--hmac']));

    const made = list(out);
    for (const f of ['bundles/b1/manifest.json', 'bundles/b1/records.jsonl', 'keys/new/auditor.skey', 'keys/new/auditor.vkey', 'keys/new/hmac.key', 'report.html']) {
      expect(made).toContain(f);
    }
    expect(made.some((f) => f.startsWith('bundles/b1/checkpoints/'))).toBe(true);
    expect(made.some((f) => /^report-.*\.json$/.test(f))).toBe(true);
    expect(notPrivate(out)).toEqual([]);
    expect(lstatSync(out).mode & 0o777).toBe(0o700);
  });

  it('sidecar (with a socket source at its default mode) and collector from configs, in umask-000 processes: the socket is 0600 too', async () => {
    const base = join(tmp, 'deploy');
    const keys = join(base, 'keys');
    await finished(commandUnderUmask000('keygen', 'keygenCommand', ['--name', 'pod', '--out', keys, '--hmac']));
    const [cport, tport] = [await freePort(), await freePort()];
    const token = 'private-files-admin-token-0123';
    const sock = join(base, 'sidecar', 'events.sock');
    writeFileSync(
      join(tmp, 'deploy.yaml'),
      `collector:
  listen: "127.0.0.1:${cport}"
  store: { type: sqlite, path: ${JSON.stringify(join(base, 'collector', 'audit.db'))} }
  auth: { admin_tokens: ["${token}"] }
  streams: [{ match: "*", vkey_file: ${JSON.stringify(join(keys, 'pod.vkey'))} }]
  hmac_keys: [{ id: k1, file: ${JSON.stringify(join(keys, 'hmac.key'))} }]
sidecar:
  stream: { id: pod-private }
  data_dir: ${JSON.stringify(join(base, 'sidecar'))}
  sources: [{ id: s, type: socket, path: ${JSON.stringify(sock)} }]
  redaction: { rules: [${JSON.stringify(join(ROOT, 'config', 'redaction', 'pii-basic.yaml'))}] }
  keys: { signing_key_file: ${JSON.stringify(join(keys, 'pod.skey'))}, hmac_key_file: ${JSON.stringify(join(keys, 'hmac.key'))} }
  ship: { url: "http://127.0.0.1:${cport}" }
  telemetry: { listen: "127.0.0.1:${tport}" }
`,
    );
    const collector = commandUnderUmask000('collector', 'collectorCommand', ['--config', join(tmp, 'deploy.yaml')]);
    await waitFor('collector', async () => (await getJson(`http://127.0.0.1:${cport}/healthz`)).status === 200, 60_000);
    const sidecar = commandUnderUmask000('sidecar', 'sidecarCommand', ['--config', join(tmp, 'deploy.yaml')]);
    await waitFor('sidecar ready', async () => (await getJson(`http://127.0.0.1:${tport}/readyz`)).status === 200, 60_000);
    const client = await SocketClient.connect(sock);
    await client.sendLines([JSON.stringify(EVENT)]);
    await client.waitAnswers(1);
    expect(client.acks.get(1)).toBe(0);
    await waitFor('the event at the collector', async () => {
      const { body } = await getJson(`http://127.0.0.1:${cport}/v1/audit?event_type=tool_invoked`, token);
      return body.items?.length === 1 ? true : undefined;
    }, 60_000);
    client.socket.end();
    expect(lstatSync(sock).isSocket()).toBe(true);
    const running = list(base);
    for (const f of ['sidecar/events.sock', 'sidecar/buffer.db-wal', 'collector/audit.db-wal', 'collector/collector-keys/collector.skey']) {
      expect(running).toContain(f);
    }
    expect(notPrivate(base)).toEqual([]);
    sidecar.child.kill('SIGTERM');
    expect((await sidecar.exited).code).toBe(0);
    collector.child.kill('SIGTERM');
    expect((await collector.exited).code).toBe(0);
    expect(notPrivate(base)).toEqual([]);
  });
});
