import net from 'node:net';

/**
 * HTTP/1.1 over a plain TCP socket, for tests that must control every byte
 * and every pause (slow clients, repeated headers) or must not share a
 * pooled connection (connection caps).
 */
export interface RawConnection {
  socket: net.Socket;
  /** ms from connect() to the close of the socket, whoever closed it */
  closed: Promise<number>;
  /** everything received so far, as latin1 text */
  received(): string;
  /** resolves once `received()` matches */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** writes `text` one byte every `everyMs` until the socket closes or stop() */
  trickle(text: string, everyMs?: number): void;
  stop(): void;
}

export function rawConnect(baseUrl: string): RawConnection {
  const { hostname, port } = new URL(baseUrl);
  const started = Date.now();
  const socket = net.connect(Number(port), hostname.replace(/^\[|\]$/g, ''));
  let data = '';
  const waiters = new Set<() => void>();
  let timer: NodeJS.Timeout | undefined;
  socket.on('data', (d: Buffer) => {
    data += d.toString('latin1');
    for (const w of waiters) w();
  });
  // a server that drops the connection may reset it; that is a close too
  socket.on('error', () => undefined);
  const closed = new Promise<number>((resolve) => {
    socket.on('close', () => {
      clearInterval(timer);
      for (const w of waiters) w();
      resolve(Date.now() - started);
    });
  });
  return {
    socket,
    closed,
    received: () => data,
    waitFor(pattern, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (pattern.test(data)) {
            waiters.delete(check);
            clearTimeout(t);
            resolve();
          } else if (socket.destroyed) {
            waiters.delete(check);
            clearTimeout(t);
            reject(new Error(`connection closed before ${pattern} arrived; got ${JSON.stringify(data.slice(0, 200))}`));
          }
        };
        const t = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting for ${pattern}; got ${JSON.stringify(data.slice(0, 200))}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    trickle(text, everyMs = 1000) {
      let i = 0;
      const next = (): void => {
        if (socket.destroyed || i >= text.length) {
          clearInterval(timer);
          return;
        }
        socket.write(text[i++]!);
      };
      next();
      timer = setInterval(next, everyMs);
    },
    stop() {
      clearInterval(timer);
      socket.destroy();
    },
  };
}

/** One request on its own connection (Connection: close): the status, or 0 when the server closed without answering. */
export async function rawStatus(baseUrl: string, path: string, head = ''): Promise<{ status: number; text: string }> {
  const c = rawConnect(baseUrl);
  c.socket.write(`GET ${path} HTTP/1.1\r\nHost: test\r\n${head}Connection: close\r\n\r\n`);
  await c.closed;
  const m = /^HTTP\/1\.1 (\d{3}) /.exec(c.received());
  return { status: m ? Number(m[1]) : 0, text: c.received() };
}

/** The JSON body of a complete raw response, if any. */
export function rawJsonBody(response: string): any {
  const at = response.indexOf('\r\n\r\n');
  try {
    return JSON.parse(response.slice(at + 4));
  } catch {
    return undefined;
  }
}
