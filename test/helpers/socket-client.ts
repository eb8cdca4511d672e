/**
 * A client of the sidecar's socket source (docs/socket-source.md) for e2e
 * tests: NDJSON lines out, one answer per non-blank line back. It keeps every
 * answer, the raw bytes received (to check nothing of the input is echoed),
 * and which line got which seq.
 */
import net from 'node:net';
import { waitFor } from './procs.js';

export interface SocketAnswer {
  ack?: number;
  seq?: number;
  line?: number;
  error?: { code: string; message: string };
}

export class SocketClient {
  readonly answers: SocketAnswer[] = [];
  /** line number (1-based, per connection) → seq it was stored as */
  readonly acks = new Map<number, number>();
  /** line number → error code */
  readonly lineErrors = new Map<number, string>();
  /** connection errors (no line number), e.g. source_closed */
  readonly connectionErrors: string[] = [];
  /** lines written so far (every "\n" counts, as the sidecar numbers them) */
  sent = 0;
  /** resolves when the socket is fully closed */
  readonly closed: Promise<void>;
  private rawText = '';
  private rest = '';
  private isClosed = false;

  private constructor(readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    // EPIPE / ECONNRESET after the sidecar closed its side: the answers tell what happened
    socket.on('error', () => undefined);
    this.closed = new Promise<void>((r) =>
      socket.once('close', () => {
        this.isClosed = true;
        r();
      }),
    );
    socket.on('data', (d: string) => {
      this.rawText += d;
      this.rest += d;
      let nl: number;
      while ((nl = this.rest.indexOf('\n')) !== -1) {
        const a = JSON.parse(this.rest.slice(0, nl)) as SocketAnswer;
        this.rest = this.rest.slice(nl + 1);
        this.answers.push(a);
        if (a.ack !== undefined && a.seq !== undefined) this.acks.set(a.ack, a.seq);
        else if (a.line !== undefined && a.error) this.lineErrors.set(a.line, a.error.code);
        else if (a.error) this.connectionErrors.push(a.error.code);
      }
    });
  }

  static connect(path: string): Promise<SocketClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(path);
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new SocketClient(socket));
      });
    });
  }

  /** Every byte received so far. */
  raw(): string {
    return this.rawText;
  }

  get isOpen(): boolean {
    return !this.isClosed && !this.socket.destroyed && !this.socket.writableEnded;
  }

  /** Writes raw text; resolves once Node handed it to the kernel. */
  write(text: string | Buffer): Promise<void> {
    for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) this.sent++;
    return new Promise<void>((resolve, reject) => {
      if (!this.isOpen) {
        reject(new Error('socket closed'));
        return;
      }
      // The callback runs once the bytes are handed to the kernel (after any backpressure).
      this.socket.write(text, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Writes each line followed by "\n", in one write. */
  sendLines(lines: readonly string[]): Promise<void> {
    return this.write(lines.map((l) => `${l}\n`).join(''));
  }

  /** Waits until at least `n` answers arrived. */
  async waitAnswers(n: number, timeoutMs = 60_000): Promise<void> {
    await waitFor(`${n} socket answers (have ${this.answers.length})`, () => this.answers.length >= n, timeoutMs, 20);
  }

  /**
   * Sends `lines` in windows of `window` lines, waiting for every answer of a
   * window before writing the next: a fail-closed writer that keeps at most one
   * window unanswered. Resolves when all are answered; rejects if the
   * connection closes first (the answers tell what was stored).
   */
  async sendWindowed(lines: readonly string[], window: number, timeoutMs = 120_000): Promise<void> {
    const base = this.answers.length;
    for (let i = 0; i < lines.length; i += window) {
      const part = lines.slice(i, i + window);
      await this.sendLines(part);
      const want = base + i + part.length;
      // (waitFor retries on a throw, so closing is returned, not thrown)
      const done = await waitFor(
        `answers to ${want - base} windowed lines`,
        () => (this.answers.length >= want ? 'answered' : this.isClosed ? 'closed' : false),
        timeoutMs,
        10,
      );
      if (done === 'closed') throw new Error(`connection closed after ${this.answers.length - base} answers`);
    }
  }

  /** Half-closes (no more lines) and waits until the sidecar has answered everything and closed. */
  async end(): Promise<void> {
    this.socket.end();
    await this.closed;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/**
 * Source of a standalone Node client (ESM) for tests that SIGKILL the writer:
 * `node client.mjs <socket path> <key prefix> <lines> <window>` writes `lines`
 * events (details.k = `<prefix>-<i>`, line i+1) in windows of `window`
 * lines and copies every answer byte to stdout as it arrives (stdout to a
 * pipe is synchronous on Linux, so what was printed survives the kill).
 */
export const KILLABLE_CLIENT_SOURCE = `
import net from 'node:net';
const [path, prefix, total, window] = [process.argv[2], process.argv[3], Number(process.argv[4]), Number(process.argv[5])];
const socket = net.connect(path);
socket.setEncoding('utf8');
let answered = 0;
let sent = 0;
let wake = () => {};
socket.on('data', (d) => {
  process.stdout.write(d);
  answered += d.split('\\n').length - 1;
  wake();
});
socket.on('error', (e) => { process.stderr.write('client error ' + e.code + '\\n'); process.exit(3); });
socket.on('connect', async () => {
  while (sent < total) {
    let chunk = '';
    const n = Math.min(window, total - sent);
    for (let i = 0; i < n; i++) {
      const k = sent + i;
      chunk += JSON.stringify({ event_type: 'tool_invoked', actor: { id: 'killable', type: 'agent' }, tool: { name: 'lookup', arguments: { k } }, details: { k: prefix + '-' + k } }) + '\\n';
    }
    sent += n;
    socket.write(chunk);
    while (answered < sent) await new Promise((r) => (wake = r));
  }
  socket.end();
});
`;
