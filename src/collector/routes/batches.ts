import type { FastifyInstance } from 'fastify';
import { BatchError } from '../../core/errors.js';
import { parseVerifierKey, type NoteVerifier } from '../../core/note.js';
import type { CollectorContext } from '../context.js';
import { StoreConflictError, type StoredBatch, type StreamState } from '../store/types.js';
import { appendInputOf, batchDigest, parseBatch, verifyBatch, verifyCheckpointSignature, type ParsedBatch } from '../verify-batch.js';

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
    throw new BatchError(403, 'stream_unknown', `${where}: no key configured for this stream`);
  }
  if (state?.pinnedVkey) return { verifiers: [parseVerifierKey(state.pinnedVkey)] };
  if (state === undefined && batch.batch === 0 && batch.vkey !== undefined) {
    let verifier: NoteVerifier;
    try {
      verifier = parseVerifierKey(batch.vkey);
    } catch {
      throw new BatchError(422, 'batch_malformed', `${where}: field "vkey" is not a signed-note verifier key`);
    }
    return { verifiers: [verifier], pin: batch.vkey };
  }
  throw new BatchError(
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

function forkAlert(ctx: CollectorContext, batch: ParsedBatch): BatchError {
  const where = `stream ${batch.stream} batch ${batch.batch}`;
  ctx.logger.error(
    { alert: 'batch_fork', stream: batch.stream, batch: batch.batch },
    `ALERT fork: ${where} differs from the stored batch with the same number`,
  );
  return new BatchError(409, 'batch_fork', `${where}: a different batch with this number is stored`);
}

export function registerBatchesRoute(app: FastifyInstance, ctx: CollectorContext): void {
  const log = ctx.logger;
  const limits = { maxRecords: ctx.opts.max_batch_records };

  app.post('/v1/batches', { bodyLimit: ctx.opts.max_body_bytes }, async (req): Promise<Ack> => {
    const batch = parseBatch(req.body, limits);
    const where = `stream ${batch.stream} batch ${batch.batch}`;

    // One batch per stream at a time: each is verified against the head the
    // previous one left, and a duplicate must see the stored original.
    return ctx.streamLocks.run(batch.stream, async (): Promise<Ack> => {
      const state = await ctx.store.getStreamState(batch.stream);
      const trust = trustFor(ctx, batch, state);

      if (state && batch.batch < state.nextBatch) {
        const stored = await ctx.store.getBatch(batch.stream, batch.batch);
        const known = duplicateAck(batch, stored, () => batchDigest(batch));
        if (known) return known;
        // Only a batch signed by the stream's own key is a fork worth an
        // alert; anything else is just a bad request.
        verifyCheckpointSignature(batch, trust.verifiers);
        throw forkAlert(ctx, batch);
      }

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
        if (known) return known;
        if (stored) throw forkAlert(ctx, batch);
        throw new BatchError(503, 'batch_conflict', `${where}: stream advanced concurrently, retry`);
      }
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
