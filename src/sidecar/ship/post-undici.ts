/**
 * The poster for a ship.tls client: undici, with the connector of
 * src/tls/client-tls.ts, which re-reads changed certificate files before
 * each new connection. Loaded only when ship.tls is configured (post.ts).
 */
import { Agent, request } from 'undici';
import type { Logger } from '../../log.js';
import { ReloadingClientTls } from '../../tls/client-tls.js';
import type { ClientTlsConfig } from '../../tls/types.js';
import { CONNECTIONS, KEEP_ALIVE_MS, MAX_ANSWER_BYTES, readCapped, SHIP_TLS_FIELD, type Poster } from './post.js';

export function undiciPoster(endpoint: string, cfg: ClientTlsConfig, logger: Logger, timeoutMs: number): Poster {
  const tls = new ReloadingClientTls(cfg, { field: SHIP_TLS_FIELD, logger });
  const agent = new Agent({ keepAliveTimeout: KEEP_ALIVE_MS, connections: CONNECTIONS, connect: tls.connect });
  return {
    post: async (body, headers, signal) => {
      const res = await request(endpoint, { method: 'POST', body, headers, dispatcher: agent, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, signal });
      const text = await readCapped(res.body as unknown as AsyncIterable<Buffer> & { destroy(): void }, MAX_ANSWER_BYTES);
      return { status: res.statusCode, retryAfter: res.headers['retry-after'], text };
    },
    close: () => agent.close(),
  };
}
