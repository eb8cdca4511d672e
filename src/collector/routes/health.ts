import type { FastifyInstance } from 'fastify';
import type { CollectorContext } from '../context.js';
import { HttpError } from '../../core/errors.js';

/** How long /readyz waits for the store: well inside a kubelet probe's default 1 s timeout is too tight for Postgres under load, so 2 s (set the probe's timeoutSeconds above it). */
export const READY_TIMEOUT_MS = 2_000;

const PROBES = new Set(['/healthz', '/readyz']);

/** GET/HEAD of a probe path: what the kubelet asks without a client certificate. */
export function isProbe(method: string, url: string): boolean {
  return (method === 'GET' || method === 'HEAD') && PROBES.has(url.split('?')[0]!);
}

/** A readiness answer is reused for this long, so probes and scrapes cost the store one read at most per second. */
const READY_CACHE_MS = 1_000;

const lastCheck = new WeakMap<CollectorContext, { at: number; answer: Promise<string | undefined> }>();

/**
 * Whether the store answers within READY_TIMEOUT_MS; the reason when it does
 * not. One check at a time per app, its answer shared for READY_CACHE_MS:
 * the probes need no credentials, so their rate must not become the
 * store's load.
 */
function storeAnswers(ctx: CollectorContext): Promise<string | undefined> {
  const last = lastCheck.get(ctx);
  if (last && Date.now() - last.at < READY_CACHE_MS) return last.answer;
  const answer = pingWithin(ctx);
  lastCheck.set(ctx, { at: Date.now(), answer });
  return answer;
}

async function pingWithin(ctx: CollectorContext): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`the store did not answer within ${READY_TIMEOUT_MS} ms`), READY_TIMEOUT_MS);
  });
  try {
    return await Promise.race([ctx.store.ping().then(() => undefined), late]);
  } catch (err) {
    return (err as Error).message;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * GET /healthz: the process serves (liveness; never tied to the store, so a
 * database outage does not restart every replica). GET /readyz: the store
 * answers a read now (readiness: a replica that cannot store is taken out of
 * the Service). GET /metrics: Prometheus text. None needs a token; with
 * collector.tls client_ca_file, /metrics needs a client certificate like
 * every route but the two probes (app.ts). Because anyone who reaches the
 * port may ask the probes, /readyz says only ready or not; why not (the
 * store's URL, the driver's error) goes to the log.
 */
export function registerHealthRoute(app: FastifyInstance, ctx: CollectorContext): void {
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async () => {
    const why = await storeAnswers(ctx);
    ctx.metrics.storeReady.set(why === undefined ? 1 : 0);
    if (why !== undefined) {
      ctx.logger.warn({ code: 'store_unavailable', reason: why }, 'not ready: the store does not answer');
      throw new HttpError(503, 'store_unavailable', 'not ready: the store does not answer (the collector log says why)');
    }
    return { status: 'ready' };
  });
  app.get('/metrics', async (_req, reply) => {
    ctx.metrics.storeReady.set((await storeAnswers(ctx)) === undefined ? 1 : 0);
    const text = await ctx.metrics.registry.metrics();
    return reply.header('content-type', ctx.metrics.registry.contentType).send(text);
  });
}
