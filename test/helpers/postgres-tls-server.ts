/**
 * A private, temporary Postgres 15 server that speaks TLS, for tests of what
 * the collector's `sslmode` settings do against a real server. The shared
 * test server (127.0.0.1:5432) has ssl off and is not ours to reconfigure.
 *
 * startPostgresTlsServer runs initdb into a fresh temporary directory, puts
 * the given certificate and key in it, turns `ssl` on, listens on 127.0.0.1
 * at a free port (and on a Unix socket in that directory), and writes a
 * pg_hba.conf with `hostssl` lines only, so a connection without TLS is
 * refused by the server itself. The superuser `postgres` is trusted on the
 * Unix socket only (admin()); TCP logins use scram-sha-256, so a password in
 * a URL is really sent and really checked.
 *
 * It needs root: initdb and the server must run as the `postgres` user
 * (runuser), and the key file must be owned by it. Without root, or without
 * the Postgres 15 binaries, it throws PostgresTlsUnavailable saying so: a TLS
 * test must fail loudly, never pass without having made a TLS connection.
 * stop() stops the server (immediate shutdown) and removes the directory; an
 * exit hook does the same for a worker that dies before its afterAll.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from '../harness/deployment.js';

export const PG15_BIN = '/usr/lib/postgresql/15/bin';

export class PostgresTlsUnavailable extends Error {
  override name = 'PostgresTlsUnavailable';
}

export interface PostgresTlsServerOptions {
  /** PEM server certificate (its SANs decide which URL hosts verify) */
  cert: string;
  /** its PEM private key */
  key: string;
  /** pg_hba.conf lines for TCP; default: hostssl for 127.0.0.1 with scram-sha-256, and nothing else */
  hba?: string[];
}

export interface PostgresTlsServer {
  readonly dir: string;
  readonly host: '127.0.0.1';
  readonly port: number;
  /** a client as the superuser over the Unix socket (no TLS, trust); the caller ends it */
  admin(database?: string): Promise<pg.Client>;
  /** the server's log so far (for failure messages) */
  log(): string;
  /** Immediate shutdown and removal of the directory. Safe to call twice. */
  stop(): void;
}

function sh(cmd: string, args: string[], cwd: string): string {
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new PostgresTlsUnavailable(`${cmd} ${args.join(' ')} failed: ${(e.stderr || e.stdout || e.message).trim().slice(0, 2000)}`);
  }
}

function asPostgres(bin: string, args: string[], cwd: string): string {
  return sh('runuser', ['-u', 'postgres', '--', join(PG15_BIN, bin), ...args], cwd);
}

const running = new Map<string, () => void>();
let exitHook = false;

export async function startPostgresTlsServer(opts: PostgresTlsServerOptions): Promise<PostgresTlsServer> {
  const uid = typeof process.getuid === 'function' ? process.getuid() : -1;
  if (uid !== 0) {
    throw new PostgresTlsUnavailable(
      `a private TLS Postgres needs root (uid ${uid}): initdb and postgres must run as the postgres user. ` +
        'The TLS tests do not pass without a TLS server; run them as root.',
    );
  }
  if (!existsSync(join(PG15_BIN, 'initdb'))) {
    throw new PostgresTlsUnavailable(`no Postgres 15 binaries in ${PG15_BIN}: the TLS tests need them to start their own server`);
  }
  let pgUid: number;
  let pgGid: number;
  try {
    pgUid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    pgGid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  } catch {
    throw new PostgresTlsUnavailable('no `postgres` user to run a private Postgres as');
  }

  const dir = mkdtempSync(join(tmpdir(), 'sealtrail-pgtls-server-'));
  const data = join(dir, 'data');
  chownSync(dir, pgUid, pgGid);
  let started = false;
  const stop = (): void => {
    if (started) {
      try {
        asPostgres('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop'], dir);
      } catch {
        // Already gone; nothing else holds the directory.
      }
      started = false;
    }
    running.delete(dir);
    rmSync(dir, { recursive: true, force: true });
  };
  running.set(dir, stop);
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const s of [...running.values()]) s();
    });
  }

  try {
    // -N: nothing here needs to survive a crash, and fsync is most of initdb's time.
    asPostgres('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '-N'], dir);
    for (const [from, to] of [
      [opts.cert, 'server.crt'],
      [opts.key, 'server.key'],
    ] as const) {
      copyFileSync(from, join(data, to));
      chownSync(join(data, to), pgUid, pgGid);
      // Postgres refuses a key readable by others.
      chmodSync(join(data, to), 0o600);
    }
    const port = await freePort();
    writeFileSync(
      join(data, 'postgresql.conf'),
      [
        readFileSync(join(data, 'postgresql.conf'), 'utf8'),
        "listen_addresses = '127.0.0.1'",
        `port = ${port}`,
        `unix_socket_directories = '${dir}'`,
        'ssl = on',
        "ssl_cert_file = 'server.crt'",
        "ssl_key_file = 'server.key'",
        "password_encryption = 'scram-sha-256'",
        'fsync = off',
        'log_connections = on',
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(data, 'pg_hba.conf'),
      ['local all postgres trust', ...(opts.hba ?? ['hostssl all all 127.0.0.1/32 scram-sha-256']), ''].join('\n'),
    );
    const log = join(dir, 'log');
    writeFileSync(log, '');
    chownSync(log, pgUid, pgGid);
    started = true;
    try {
      asPostgres('pg_ctl', ['-D', data, '-l', log, '-w', '-t', '30', 'start'], dir);
    } catch (err) {
      throw new PostgresTlsUnavailable(`${(err as Error).message}\nserver log:\n${readFileSync(log, 'utf8').slice(-4000)}`);
    }
    return {
      dir,
      host: '127.0.0.1',
      port,
      async admin(database = 'postgres') {
        const c = new pg.Client({ host: dir, port, user: 'postgres', database, connectionTimeoutMillis: 10_000 });
        c.on('error', () => {});
        await c.connect();
        return c;
      },
      log: () => (existsSync(log) ? readFileSync(log, 'utf8') : ''),
      stop,
    };
  } catch (err) {
    stop();
    throw err;
  }
}
