import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { createHmacKeyFile, createSigningKeyFiles } from '../../src/keyfiles.js';
import { freePort, spawnCli, stop, waitFor, type Proc } from './procs.js';
import { FakeCollector } from './sidecar-collector.js';

/** A stored record as the client tests read it. */
export interface StoredRecord {
  seq: number;
  event_type: string;
  event_id: string | undefined;
}

function stored(canonical: string, seq: number): StoredRecord {
  const rec = JSON.parse(canonical) as { event_type: string; event_id?: string };
  return { seq, event_type: rec.event_type, event_id: rec.event_id };
}

export interface ClientSidecarOptions {
  /** prefix of the temp dir */
  prefix: string;
  /** the stream name (and signing key id) */
  stream: string;
  /** the sidecar's sources, each a YAML flow mapping; the function gets the temp dir */
  sources: (dir: string) => readonly string[];
  /** what else must hold, besides /readyz answering 200, before the sidecar counts as ready */
  ready?: () => boolean;
}

/**
 * A real sidecar process (`sealtrail sidecar --config`) shipping to a
 * FakeCollector, with keys, config and data in a temp dir: start() spawns
 * it (again after a stop), dispose() stops everything and removes the dir.
 */
export class ClientSidecar {
  /** The sidecar last started. */
  proc: Proc | undefined;

  private constructor(
    readonly dir: string,
    readonly config: string,
    readonly telemetryUrl: string,
    readonly collector: FakeCollector,
    private readonly ready: () => boolean,
  ) {}

  /** Makes the temp dir, keys and config and starts the FakeCollector; the sidecar is not started. */
  static async create(opts: ClientSidecarOptions): Promise<ClientSidecar> {
    const dir = mkdtempSync(join(tmpdir(), opts.prefix));
    const keys = join(dir, 'keys');
    mkdirSync(keys);
    createSigningKeyFiles(join(keys, 's.skey'), join(keys, 's.vkey'), opts.stream);
    createHmacKeyFile(join(keys, 'hmac.key'));
    const collector = await new FakeCollector().start();
    const port = await freePort();
    const config = join(dir, 'sidecar.yaml');
    writeFileSync(
      config,
      `sidecar:
  stream: { name: ${opts.stream} }
  data_dir: ${join(dir, 'data')}
  sources:
${opts.sources(dir).map((s) => `    - ${s}\n`).join('')}  keys: { signing_key_file: ${join(keys, 's.skey')}, hmac_key_file: ${join(keys, 'hmac.key')} }
  seal: { max_records: 1000, max_interval: 200ms, heartbeat_interval: '0' }
  ship: { url: "${collector.url}", backoff_initial: 50ms, backoff_max: 1s }
  telemetry: { listen: 127.0.0.1:${port} }
`,
    );
    return new ClientSidecar(dir, config, `http://127.0.0.1:${port}`, collector, opts.ready ?? (() => true));
  }

  /** Spawns the sidecar and waits until it is ready. */
  async start(): Promise<Proc> {
    const p = spawnCli(['sidecar', '--config', this.config], { env: { SEALTRAIL_LOG_LEVEL: 'warn' } });
    this.proc = p;
    await waitFor(
      'sidecar ready',
      async () => {
        if (p.child.exitCode !== null) throw new Error(`sidecar exited: ${p.stderr()}`);
        return (await fetch(`${this.telemetryUrl}/readyz`)).status === 200 && this.ready();
      },
      30_000,
      20,
    );
    return p;
  }

  /** The sidecar's buffer, read-only (the sidecar may be running). */
  openBuffer(): Database.Database {
    return new Database(join(this.dir, 'data', 'buffer.db'), { readonly: true, fileMustExist: true });
  }

  /** The records still in the sidecar's buffer, by seq. Shipped ones are pruned. */
  buffer(): StoredRecord[] {
    const db = this.openBuffer();
    try {
      const rows = db.prepare('SELECT seq, canonical FROM records ORDER BY seq').all() as Array<{ seq: number; canonical: string }>;
      return rows.map((r) => stored(r.canonical, r.seq));
    } finally {
      db.close();
    }
  }

  /** Every record the sidecar stored: those shipped to the collector and those still in the buffer, by seq. */
  allRecords(): StoredRecord[] {
    const bySeq = new Map<number, StoredRecord>();
    // The buffer first: a record pruned from it before this read was shipped before it, so the collector has it.
    for (const r of this.buffer()) bySeq.set(r.seq, r);
    for (const b of this.collector.received) for (const w of b.body.records) bySeq.set(w.seq, stored(w.canonical, w.seq));
    return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
  }

  /** The rows of the buffer's quarantine table: the given columns, by id. */
  quarantine<T>(columns: string): T[] {
    const db = this.openBuffer();
    try {
      return db.prepare(`SELECT ${columns} FROM quarantine ORDER BY id`).all() as T[];
    } finally {
      db.close();
    }
  }

  /** Stops the sidecar (SIGTERM; SIGCONT first, in case a test left it stopped) and the collector, and removes the dir. */
  async dispose(): Promise<void> {
    if (this.proc) {
      this.proc.child.kill('SIGCONT');
      await stop(this.proc);
    }
    await this.collector.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
