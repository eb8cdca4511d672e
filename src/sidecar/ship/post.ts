/**
 * How the shipper sends one batch: POST, then the status, Retry-After and
 * at most MAX_ANSWER_BYTES of the answer. Nothing here decides what an
 * answer means (shipper.ts does), and nothing retries.
 *
 * Without ship.tls the batches go through Node's own HTTP client (node:http,
 * node:https with Node's roots and host-name check, as for any https URL):
 * it is loaded with the telemetry server anyway, while undici kept ~7 MiB
 * resident in a sidecar that sends one request a second. With ship.tls the
 * client certificate and CA bundle are followed on disk by
 * src/tls/client-tls.ts, an undici connector: that client (post-undici.ts)
 * is loaded only then, on the first batch.
 *
 * Contract of post(): resolves once the whole answer (or its first
 * MAX_ANSWER_BYTES) is read; rejects on a network error or when `signal`
 * aborts, at any point of the attempt, so the caller's one deadline bounds
 * connect, send and answer together. Connections are kept alive (at most
 * two, idle ones closed after KEEP_ALIVE_MS).
 */
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Logger } from '../../log.js';
import type { ClientTlsConfig } from '../../tls/types.js';
import { readClientMaterial } from '../../tls/material.js';

/** Enough for any ack or error body; a longer answer is not one the collector gives. */
export const MAX_ANSWER_BYTES = 64 * 1024;
/** idle keep-alive connections are closed after this long */
export const KEEP_ALIVE_MS = 10_000;
/** connections to the collector at most */
export const CONNECTIONS = 2;
export const SHIP_TLS_FIELD = 'sidecar.ship.tls';

export interface PostAnswer {
  status: number;
  retryAfter: string | string[] | undefined;
  /** the answer's text; undefined when it was longer than MAX_ANSWER_BYTES (the rest is discarded) */
  text: string | undefined;
}

export interface Poster {
  post(body: string, headers: Record<string, string>, signal: AbortSignal): Promise<PostAnswer>;
  close(): Promise<void>;
}

/**
 * The poster for `endpoint`. With `tls` (ship.tls) its files are read and
 * checked here, synchronously, so a bad ship.tls stops the sidecar at start
 * with the error naming the file, as client-tls.ts would; client-tls.ts
 * reads them again when it is loaded and follows them from then on.
 */
export function posterFor(endpoint: string, tls: ClientTlsConfig | undefined, logger: Logger, timeoutMs: number): Poster {
  if (!tls) return nodePoster(endpoint);
  readClientMaterial(tls, SHIP_TLS_FIELD);
  let loaded: Promise<Poster> | undefined;
  let closed = false;
  const load = (): Promise<Poster> => (loaded ??= import('./post-undici.js').then((m) => m.undiciPoster(endpoint, tls, logger, timeoutMs)));
  return {
    post: async (body, headers, signal) => (await load()).post(body, headers, signal),
    close: async () => {
      if (closed) return;
      closed = true;
      if (loaded) await (await loaded.catch(() => undefined))?.close();
    },
  };
}

function nodePoster(endpoint: string): Poster {
  const url = new URL(endpoint);
  const secure = url.protocol === 'https:';
  const agentOptions = { keepAlive: true, maxSockets: CONNECTIONS, timeout: KEEP_ALIVE_MS };
  const agent = secure ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions);
  const send = secure ? httpsRequest : httpRequest;
  return {
    post: (body, headers, signal) =>
      new Promise<PostAnswer>((resolve, reject) => {
        // Encoded once: its length and the bytes sent (a batch is up to max_body_bytes).
        const bytes = Buffer.from(body, 'utf8');
        const req = send(url, { method: 'POST', agent, signal, headers: { ...headers, 'content-length': String(bytes.length) } }, (res) => {
          readCapped(res, MAX_ANSWER_BYTES).then((text) => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'], text }), reject);
        });
        req.on('error', reject);
        req.end(bytes);
      }),
    close: async () => agent.destroy(),
  };
}

/** The answer's text, or undefined (and the rest discarded) when it is longer than `cap` bytes. */
export async function readCapped(body: AsyncIterable<Buffer> & { destroy(): void }, cap: number): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > cap) {
      body.destroy();
      return undefined;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
