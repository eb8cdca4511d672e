import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SealedBatch } from '../../src/core/types.js';

/**
 * A stand-in collector on 127.0.0.1 whose answers the test scripts: it records
 * every POST /v1/batches (time, batch number, body) and answers with whatever
 * the current responder returns. 'destroy' drops the connection (network error),
 * 'hang' never answers.
 */

export interface Received {
  at: number;
  batch: number;
  stream: string;
  body: SealedBatch & { vkey?: string };
  headers: http.IncomingHttpHeaders;
}

export type Answer =
  | { status: number; body?: unknown; headers?: Record<string, string> }
  | 'destroy'
  | 'hang';

export type Responder = (req: Received, index: number) => Answer;

/** The answer a real collector gives for a stored batch. */
export function ackFor(req: Received): Answer {
  return { status: 200, body: { ack: { stream: req.stream, batch: req.batch, tree_size: req.body.last_seq + 1 } } };
}

export class FakeCollector {
  readonly received: Received[] = [];
  responder: Responder = ackFor;
  private server: http.Server | undefined;
  private port = 0;
  private readonly hanging = new Set<http.ServerResponse>();

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Batches answered with a 2xx, in order. */
  accepted: number[] = [];

  async start(port = 0): Promise<this> {
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        let body: SealedBatch & { vkey?: string };
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as SealedBatch & { vkey?: string };
        } catch {
          res.writeHead(400).end();
          return;
        }
        const rec: Received = { at: Date.now(), batch: body.batch, stream: body.stream, body, headers: req.headers };
        const index = this.received.length;
        this.received.push(rec);
        if (req.url !== '/v1/batches' || req.method !== 'POST') {
          res.writeHead(404).end();
          return;
        }
        const answer = this.responder(rec, index);
        if (answer === 'destroy') {
          req.socket.destroy();
          return;
        }
        if (answer === 'hang') {
          this.hanging.add(res);
          return;
        }
        if (answer.status >= 200 && answer.status < 300) this.accepted.push(rec.batch);
        const text = answer.body === undefined ? '' : typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
        res.writeHead(answer.status, { 'content-type': 'application/json', ...(answer.headers ?? {}) });
        res.end(text);
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    return this;
  }

  /** Stops listening and drops every connection (the collector "dies"). */
  async stop(): Promise<void> {
    const s = this.server;
    if (!s) return;
    this.server = undefined;
    for (const res of this.hanging) res.destroy();
    this.hanging.clear();
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  /** Starts again on the same port (the collector "comes back"). */
  async restart(): Promise<void> {
    await this.start(this.port);
  }

  batches(): number[] {
    return this.received.map((r) => r.batch);
  }
}

/** A port on 127.0.0.1 that nothing listens on (bound, then released). */
export async function deadPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
