import type { FastifyInstance } from 'fastify';
import type { BatchCode } from '../../core/error-codes.js';
import { HttpError } from '../../core/errors.js';
import { parseVerifierKey, type NoteVerifier } from '../../core/note.js';
import { registerBodyEncoding } from '../body-encoding.js';
import type { CollectorContext } from '../context.js';
import { COLLECTOR_STREAM_PREFIX, isCollectorStream } from '../../core/reserved-streams.js';
import { StoreConflictError, type StoredBatch, type StreamState } from '../store/types.js';
import { batchDigest, parseBatch, type BatchLimits, type ParsedBatch } from '../../core/wire-batch.js';
import { appendInputOf, verifyBatch, verifyCheckpointSignature } from '../verify-batch.js';

interface Ack {
  ack: { stream: string; batch: number; tree_size: number };
  duplicate?: true;
}

interface StreamTrust {
  verifiers: NoteVerifier[];
  /** set when this batch establishes trust on first use */
  pin?: string;
}

/**
 * Which key may sign this stream's checkpoints: configuration first, then a
 * key pinned on first use, then (only for a brand-new stream's batch 0 and
 * only with TOFU enabled) the key the batch brings along.
 */
function trustFor(ctx: CollectorContext, batch: ParsedBatch, state: StreamState | undefined): StreamTrust {
  // The keys valid at receive time (rotation); throws when only an expired key signed.
  const configured = ctx.streamKeys.resolve(batch);
  if (configured) return { verifiers: configured };
  const where = `stream ${batch.stream} batch ${batch.batch}`;
  if (!ctx.opts.trust_on_first_use) {
    throw new HttpError(403, 'stream_unknown', `${where}: no key configured for this stream`);
  }
  if (state?.pinnedVkey) return { verifiers: [parseVerifierKey(state.pinnedVkey)] };
  if (state === undefined && batch.batch === 0 && batch.vkey !== undefined) {
    let verifier: NoteVerifier;
    try {
      verifier = parseVerifierKey(batch.vkey);
    } catch {
      throw new HttpError(422, 'batch_malformed', `${where}: field "vkey" is not a signed-note verifier key`);
    }
    return { verifiers: [verifier], pin: batch.vkey };
  }
  throw new HttpError(
    403,
    'stream_unknown',
    `${where}: no key configured or pinned for this stream (trust on first use needs batch 0 with "vkey")`,
  );
}

/** The ack for a resend of `stored` when it is the identical batch; undefined otherwise. */
function duplicateAck(batch: ParsedBatch, stored: StoredBatch | undefined, digest: () => string): Ack | undefined {
  if (!stored || stored.digest !== digest()) return undefined;
  return { ack: { stream: batch.stream, batch: batch.batch, tree_size: stored.lastSeq + 1 }, duplicate: true };
}

function forkAlert(ctx: CollectorContext, batch: ParsedBatch): HttpError<BatchCode> {
  const where = `stream ${batch.stream} batch ${batch.batch}`;
  ctx.logger.error(
    { alert: 'batch_fork', stream: batch.stream, batch: batch.batch },
    `ALERT fork: ${where} differs from the stored batch with the same number`,
  );
  return new HttpError(409, 'batch_fork', `${where}: a different batch with this number is stored`);
}

/** Fastify's own error codes for these, so the app's error handler answers them as for every route. */
function jsonBodyError(empty: boolean): Error {
  return Object.assign(new Error(empty ? 'request body is empty' : 'request body is not valid JSON'), {
    code: empty ? 'FST_ERR_CTP_EMPTY_JSON_BODY' : 'FST_ERR_CTP_INVALID_JSON_BODY',
    statusCode: 400,
  });
}

/**
 * Batches are parsed with plain JSON.parse instead of Fastify's
 * prototype-poisoning scan, which runs two regular expressions over every
 * megabyte of every batch. That scan guards code that later merges the body
 * into other objects; parseBatch merges nothing: it refuses any member it
 * does not know ("__proto__" and "constructor" included) and copies the
 * known ones into fresh objects, and JSON.parse itself only ever creates
 * own properties.
 */
export function registerBatchesRoute(app: FastifyInstance, ctx: CollectorContext): void {
  void app.register(async (scope) => {
    // JSON only: fastify's default text/plain parser would hand the route a
    // string it can only refuse, after reading a body of any encoding as text.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
      const text = body as string;
      if (text.length === 0) return done(jsonBodyError(true), undefined);
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        return done(jsonBodyError(false), undefined);
      }
      done(null, parsed);
    });
    // Content-Encoding and charset are checked before the body is read; gzip is decoded within max_body_bytes.
    registerBodyEncoding(scope, ctx.opts.max_body_bytes);
    registerBatchesPost(scope, ctx);
  });
}

function registerBatchesPost(app: FastifyInstance, ctx: CollectorContext): void {
  const log = ctx.logger;
  const limits: BatchLimits = {};
  if (ctx.opts.max_batch_records !== undefined) limits.maxRecords = ctx.opts.max_batch_records;
  if (ctx.opts.max_record_bytes !== undefined) limits.maxRecordBytes = ctx.opts.max_record_bytes;

  app.post('/v1/batches', { bodyLimit: ctx.opts.max_body_bytes }, async (req): Promise<Ack> => {
    const batch = parseBatch(req.body, limits);
    const where = `stream ${batch.stream} batch ${batch.batch}`;
    // Who sent it, before anything about the batch is looked up (ship-identities.ts).
    ctx.shipIdentities?.authorize({ headers: req.headers, socket: req.raw.socket }, batch.stream);
    // Collectors append to their own streams in-process (read-audit.ts);
    // over HTTP nobody may, so no sidecar can write into any replica's stream.
    if (isCollectorStream(batch.stream)) {
      throw new HttpError(403, 'stream_reserved', `${where}: stream ids beginning with "${COLLECTOR_STREAM_PREFIX}" belong to collectors`);
    }

    // One batch per stream at a time: each is verified against the head the
    // previous one left, and a duplicate must see the stored original.
    return ctx.streamLocks.run(batch.stream, async (): Promise<Ack> => {
      const state = await ctx.store.getStreamState(batch.stream);

      if (state && batch.batch < state.nextBatch) {
        // A byte-identical resend of a stored batch is acknowledged before
        // keys are looked at: it changes nothing, and a sidecar retrying a
        // batch whose key has expired since it was stored must not halt.
        const stored = await ctx.store.getBatch(batch.stream, batch.batch);
        const known = duplicateAck(batch, stored, () => batchDigest(batch));
        if (known) {
          ctx.metrics.batchesDuplicate.inc();
          return known;
        }
        // Only a batch signed by a key of the stream (current, expired or
        // pinned) is a fork worth an alert; anything else is a bad request.
        const everyKey = ctx.streamKeys.anyEver(batch.stream);
        verifyCheckpointSignature(batch, everyKey ?? trustFor(ctx, batch, state).verifiers);
        throw forkAlert(ctx, batch);
      }
      const trust = trustFor(ctx, batch, state);

      const verified = verifyBatch(batch, state, {
        verifiers: trust.verifiers,
        hmacKeys: ctx.hmacKeys,
        ...(trust.pin !== undefined ? { pinVkey: trust.pin } : {}),
      });
      try {
        await ctx.store.appendBatch(appendInputOf(verified));
      } catch (err) {
        if (!(err instanceof StoreConflictError)) throw err;
        // Another replica stored this batch number meanwhile (e.g. a sidecar
        // retry that raced its own first attempt). The signature is already
        // verified, so the stored batch decides: same digest, a duplicate;
        // different, a genuine fork.
        const stored = await ctx.store.getBatch(batch.stream, batch.batch);
        const known = duplicateAck(batch, stored, () => verified.digest);
        if (known) {
          ctx.metrics.batchesDuplicate.inc();
          return known;
        }
        if (stored) throw forkAlert(ctx, batch);
        throw new HttpError(503, 'batch_conflict', `${where}: stream advanced concurrently, retry`);
      }
      ctx.metrics.batchesStored.inc();
      ctx.metrics.recordsStored.inc(verified.records.length);
      if (trust.pin !== undefined) {
        log.warn({ stream: batch.stream, tofu: true }, `trusting stream ${batch.stream} on first use`);
      }
      log.info(
        {
          stream: batch.stream,
          batch: batch.batch,
          records: verified.records.length,
          tree_size: verified.newState.treeSize,
          macs_checked: verified.macsChecked,
        },
        'batch stored',
      );
      return { ack: { stream: batch.stream, batch: batch.batch, tree_size: verified.newState.treeSize } };
    });
  });
}
