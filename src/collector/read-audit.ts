import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { canonicalize } from '../core/canonical.js';
import { CHAIN_GENESIS, chainNext } from '../core/chain.js';
import { formatCheckpoint, originForStream } from '../core/checkpoint.js';
import type { ApiCode } from '../core/error-codes.js';
import { HttpError, SealtrailError } from '../core/errors.js';
import { Frontier, leafHashOfText } from '../core/merkle.js';
import { parseVerifierKey, signNote, type NoteVerifier } from '../core/note.js';
import type { SealedBatch, WireRecord } from '../core/types.js';
import { COLLECTOR_STREAM_PREFIX, isCollectorStream } from '../core/reserved-streams.js';
import { uuidv7 } from '../core/uuid.js';
import type { AdminAuth, AuthRequest, Principal } from './auth.js';
import type { KeyedMutex } from './mutex.js';
import type { ReadAuditOptions } from './options.js';
import { StoreConflictError, type AuditStore, type StreamState } from './store/types.js';
import { STREAM_ID } from '../core/wire-ids.js';
import { appendInputOf, verifyBatch } from './verify-batch.js';

/**
 * Read auditing (docs/read-audit.md): every read of the query API becomes an
 * audit record in the collector's own stream, chained and checkpointed like a
 * sidecar's, and committed through store.appendBatch before the read's data
 * is sent. If the write fails, the read fails (503 read_audit_failed).
 */

/** One read, as recorded. Never the token, never the raw query string. */
export interface ReadAuditEntry {
  principal: Principal;
  /** the route pattern, e.g. "/v1/audit" */
  route: string;
  /** e.g. "audit.query" */
  action: string;
  /** the parsed filters and paging parameters the read was answered with */
  filters: Record<string, unknown>;
  /** how many rows (records, checkpoints, streams, ...) the answer holds */
  rows: number;
  /** HTTP status the read answers with when the record commits */
  status?: number;
}

interface Pending {
  entry: ReadAuditEntry;
  time: string;
  resolve(): void;
  reject(err: unknown): void;
}

/** Most reads committed in one batch (one checkpoint signature, one transaction). */
const MAX_GROUP = 500;
/**
 * Attempts when another writer advanced the stream meanwhile (replicas
 * configured with one stream id), each after a random pause of up to
 * 2^attempt ms (at most 100 ms): without the pause, two replicas re-read the
 * head at the same moment and collide again; measured before it, two
 * spawned replicas sharing a stream refused up to 58 of 120 reads.
 */
const MAX_CONFLICT_RETRIES = 12;

/** The default stream id: collector-<POD_NAME or hostname>, made a valid stream id. */
export function defaultReadAuditStream(env: NodeJS.ProcessEnv = process.env): string {
  const base = (env.POD_NAME ?? hostname())
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 100);
  return `collector-${base || 'local'}`;
}

/** Thrown to the route when the audit record of a read could not be committed. */
export function readAuditFailed(cause: unknown): HttpError<ApiCode> {
  const e = new HttpError(503, 'read_audit_failed', 'the read could not be audited, so no data is returned; retry');
  (e as { cause?: unknown }).cause = cause;
  return e;
}

export class ReadAuditor {
  readonly stream: string | undefined;
  private readonly opts: ReadAuditOptions | undefined;
  private readonly verifier: NoteVerifier | undefined;
  private readonly pending: Pending[] = [];
  private running = false;

  /**
   * `opts` undefined, or a store that keeps no records (null store: every
   * read answers nothing, so there is nothing to account for): record() is a
   * no-op.
   */
  constructor(
    private readonly store: AuditStore,
    opts: ReadAuditOptions | undefined,
    private readonly locks: KeyedMutex,
    private readonly logger: Logger,
  ) {
    this.opts = opts && store.keepsRecords ? opts : undefined;
    if (opts) {
      if (!STREAM_ID.test(opts.stream) || !isCollectorStream(opts.stream)) {
        throw new SealtrailError(
          'collector_options_invalid',
          `read_audit.stream must be a valid stream id beginning with "${COLLECTOR_STREAM_PREFIX}"`,
        );
      }
      if (opts.hmac_key.key.length < 16) {
        throw new SealtrailError('collector_options_invalid', 'read_audit.hmac_key shorter than 16 bytes');
      }
      const v = parseVerifierKey(opts.vkey);
      if (v.name !== opts.signer.name || v.keyHash !== opts.signer.keyHash) {
        throw new SealtrailError('collector_options_invalid', 'read_audit.vkey is not the verifier key of read_audit.signer');
      }
      this.verifier = v;
    }
    this.stream = this.opts?.stream;
  }

  get enabled(): boolean {
    return this.opts !== undefined;
  }

  /**
   * Resolves once the read's record is committed to the store; rejects with
   * HttpError 503 read_audit_failed otherwise. Concurrent reads share a batch.
   */
  record(entry: ReadAuditEntry): Promise<void> {
    if (!this.opts) return Promise.resolve();
    const time = new Date().toISOString();
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ entry, time, resolve, reject });
      this.kick();
    });
  }

  private kick(): void {
    if (this.running) return;
    this.running = true;
    void (async () => {
      try {
        while (this.pending.length > 0) {
          const group = this.pending.splice(0, MAX_GROUP);
          try {
            await this.commit(group);
            for (const p of group) p.resolve();
          } catch (err) {
            this.logger.error(
              { alert: 'read_audit_failed', stream: this.stream, reads: group.length, err: { type: (err as Error).name, code: (err as { code?: unknown }).code, message: (err as Error).message } },
              'ALERT read audit: could not commit the audit record of a read; the read is refused',
            );
            const refused = readAuditFailed(err);
            for (const p of group) p.reject(refused);
          }
        }
      } finally {
        this.running = false;
      }
    })();
  }

  private async commit(group: readonly Pending[]): Promise<void> {
    const opts = this.opts!;
    await this.locks.run(opts.stream, async () => {
      for (let attempt = 0; ; attempt++) {
        // Read the head each time: another replica configured with the same
        // stream id and keys may have appended (optimistic check in the store).
        const state = await this.store.getStreamState(opts.stream);
        const batch = this.buildBatch(group, state);
        const verified = verifyBatch(batch, state, {
          verifiers: [this.verifier!],
          hmacKeys: new Map([[opts.hmac_key.id, opts.hmac_key.key]]),
        });
        try {
          await this.store.appendBatch(appendInputOf(verified));
          return;
        } catch (err) {
          if (!(err instanceof StoreConflictError) || attempt + 1 >= MAX_CONFLICT_RETRIES) throw err;
        }
        await sleep(Math.random() * Math.min(100, 2 ** attempt));
      }
    });
  }

  /** The next batch of the stream: one record per read, chained and signed like a sidecar's seal(). */
  private buildBatch(group: readonly Pending[], state: StreamState | undefined): SealedBatch {
    const opts = this.opts!;
    const stream = opts.stream;
    const firstSeq = state?.treeSize ?? 0;
    const frontier = state ? Frontier.fromBytes(state.treeSize, state.frontier) : Frontier.empty();
    let prevMac: Buffer = state?.chainHead ? Buffer.from(state.chainHead, 'hex') : CHAIN_GENESIS;
    const records: WireRecord[] = group.map((p, i) => {
      const seq = firstSeq + i;
      const canonical = canonicalize(this.recordOf(p, stream, seq));
      const leaf = leafHashOfText(canonical);
      const mac = chainNext(opts.hmac_key.key, prevMac, leaf);
      prevMac = mac;
      frontier.append(leaf);
      return { seq, canonical, mac: mac.toString('hex'), key_id: opts.hmac_key.id };
    });
    const text = formatCheckpoint({ origin: originForStream(stream), size: frontier.size, root: frontier.root(), extensions: [] });
    return {
      v: 1,
      stream,
      batch: state?.nextBatch ?? 0,
      first_seq: firstSeq,
      last_seq: firstSeq + records.length - 1,
      records,
      chain_head: records[records.length - 1]!.mac,
      prev_checkpoint: state?.lastCheckpoint ?? null,
      checkpoint: signNote(text, [opts.signer]),
    };
  }

  private recordOf(p: Pending, stream: string, seq: number): Record<string, unknown> {
    const { principal, route, action, filters, rows, status } = p.entry;
    return {
      id: uuidv7(Date.parse(p.time)),
      stream,
      seq,
      time: p.time,
      received_at: p.time,
      source: 'collector',
      event_type: 'data_accessed',
      ...(principal.role === 'reader' ? { tenant: principal.tenant } : {}),
      actor: { id: principal.id, type: principal.role === 'admin' ? 'admin' : 'user' },
      action,
      resource: { type: 'audit_log', id: route },
      outcome: 'success',
      details: { role: principal.role, filters, rows, status: status ?? 200 },
    };
  }
}

/**
 * A strictly parsed query (routes/query.ts readQuery: only allowed names)
 * as recorded: every parameter as given except the opaque cursor, which is
 * recorded as present (it only repeats a position), plus what the server
 * forced (a reader's tenant).
 */
export function auditedParams(q: ReadonlyMap<string, string>, forced: Record<string, string> = {}): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of q) out[k] = k === 'cursor' ? true : v;
  return { ...out, ...forced };
}

// The principal a preHandler authenticated, for the handler's audit record
// (calling check() twice would spend two rate-limit tokens).
const principals = new WeakMap<object, Principal>();

/** Remembers the principal the request authenticated as; returns it. */
export function rememberPrincipal(req: object, p: Principal): Principal {
  principals.set(req, p);
  return p;
}

/**
 * The preHandler of the admin-only routes (they span tenants): 403 for
 * reader tokens, and the principal remembered for the read's audit record.
 */
export function adminOnly(auth: Pick<AdminAuth, 'requireAdmin'>): (req: AuthRequest) => Promise<void> {
  return async (req) => void rememberPrincipal(req, auth.requireAdmin(req));
}

/** The principal remembered for `req` (set by an auth preHandler). */
export function principalOf(req: object): Principal {
  const p = principals.get(req);
  if (!p) throw new Error('read audit: no principal remembered for this request');
  return p;
}
