import { rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { makeDeployment, startSidecarProc, stop, type Deployment } from './deployment.js';
import type { Proc } from './procs.js';

/** A record as the sidecar stored it: the fields the adapter tests read. */
export interface StoredRecord {
  event_type: string;
  seq: number;
  source: string;
  time: string;
  trace_id?: string;
  span_id?: string;
  session_id?: string;
  outcome?: string;
  action?: string;
  agent?: { id?: string; name?: string };
  actor?: { id: string; type: string };
  tool?: { name: string; arguments?: unknown; call_id?: string };
  model?: { provider?: string; name?: string };
  policy?: { decision?: string; rule?: string };
  approval?: { status?: string; approver?: string };
  details: Record<string, unknown>;
}

/**
 * A real sidecar process (from a test deployment in a temp dir) with a
 * socket source `agent` at `sock`; its records are read back from its
 * buffer. No collector runs, so nothing is shipped away from it.
 */
export class SocketSidecar {
  private constructor(
    readonly deployment: Deployment,
    readonly sock: string,
    private proc: Proc | undefined,
  ) {}

  /** Makes the deployment (temp dir named with `prefix`) and starts its sidecar, waiting until it is ready. */
  static async start(prefix: string): Promise<SocketSidecar> {
    const d = await makeDeployment({ prefix, extraSources: (dir) => [`{ id: agent, type: socket, path: ${join(dir, 'agent.sock')} }`] });
    const s = new SocketSidecar(d, join(d.dir, 'agent.sock'), undefined);
    s.proc = await startSidecarProc(d);
    return s;
  }

  get dir(): string {
    return this.deployment.dir;
  }

  /** The records in the sidecar's buffer, by seq: all of them, or those of one session_id. */
  records(session?: string): StoredRecord[] {
    const db = new Database(this.deployment.bufferDb, { readonly: true, fileMustExist: true });
    try {
      const rows = db.prepare('SELECT canonical FROM records ORDER BY seq').all() as Array<{ canonical: string }>;
      const recs = rows.map((r) => JSON.parse(r.canonical) as StoredRecord);
      return session === undefined ? recs : recs.filter((r) => r.session_id === session);
    } finally {
      db.close();
    }
  }

  /** Kills the sidecar and removes the deployment's dir. */
  async stop(): Promise<void> {
    // SIGKILL: on SIGTERM the sidecar would first try to ship to the collector this test does not run
    if (this.proc) await stop(this.proc, 'SIGKILL');
    rmSync(this.deployment.dir, { recursive: true, force: true });
  }
}
