/**
 * HTTPS requests for TLS tests, through node:https so a test sees the socket:
 * which certificate the server presented (serial) and whether a kept-alive
 * connection was reused.
 */
import { readFileSync } from 'node:fs';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';

export interface TlsClient {
  ca: string;
  cert?: string;
  key?: string;
  /** a keep-alive agent to reuse connections across requests */
  agent?: https.Agent;
}

export interface TlsAnswer {
  status: number;
  body: string;
  /** serial of the certificate the server presented on this connection */
  serial: string;
  reused: boolean;
  socket: TLSSocket;
}

export function tlsRequest(url: string, client: TlsClient, opts: { method?: string; body?: string; headers?: Record<string, string> } = {}): Promise<TlsAnswer> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method: opts.method ?? 'GET',
        headers: { ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}), ...opts.headers },
        ca: readFileSync(client.ca),
        ...(client.cert ? { cert: readFileSync(client.cert), key: readFileSync(client.key!) } : {}),
        ...(client.agent ? { agent: client.agent } : { agent: false }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        // The socket goes back to the agent (or is released) once the body ends.
        const socket = res.socket as TLSSocket;
        const serial = socket.getPeerCertificate().serialNumber;
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8'),
            serial,
            reused: req.reusedSocket,
            socket,
          });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}
