/**
 * Which pending emit each line of one socket connection carries.
 *
 * The socket source numbers lines per connection from 1 (every "\n" counts)
 * and answers by number, so this book lives exactly as long as its
 * connection. Durability: none; on a new connection a new book is made from
 * the unanswered entries in emit order, which is how every line not yet
 * acknowledged is resent, in order, with its same bytes (and event_id).
 */
import type { Entry } from './queue.js';

export class LineBook {
  /** the number the next line written gets */
  private nextLine = 1;
  /** entries waiting to be written on this connection, from `head` on */
  private unsent: Entry[];
  private head = 0;
  /** line number -> entry, for lines written and not yet answered */
  private readonly written = new Map<number, Entry>();

  /** `pending`: what the connection starts with, in emit order (the resends). */
  constructor(pending: Iterable<Entry> = []) {
    this.unsent = [...pending];
  }

  /** An entry emitted while this connection is open. */
  enqueue(entry: Entry): void {
    this.unsent.push(entry);
  }

  /** Entries still to be written (settled ones included until skipped). */
  get unsentCount(): number {
    return this.unsent.length - this.head;
  }

  /** Lines written and not answered yet. */
  get unanswered(): number {
    return this.written.size;
  }

  /**
   * The next lines to write, up to about `maxBytes` (at least one line), as
   * one buffer; each is numbered as it is taken. Entries settled meanwhile
   * (timed out under failClosed) are skipped: they are not sent, so nothing
   * stores an event its emit() already reported as failed, unless it was
   * written before the timeout.
   */
  take(maxBytes: number): Buffer | undefined {
    const parts: Buffer[] = [];
    let bytes = 0;
    while (this.head < this.unsent.length) {
      const e = this.unsent[this.head]!;
      if (!e.settled) {
        if (parts.length > 0 && bytes + e.line.length > maxBytes) break;
        this.written.set(this.nextLine++, e);
        parts.push(e.line);
        bytes += e.line.length;
      }
      this.head++;
    }
    // Compacts once the consumed prefix dominates, so a long-lived connection does not keep every entry.
    if (this.head > 1024 && this.head * 2 > this.unsent.length) {
      this.unsent = this.unsent.slice(this.head);
      this.head = 0;
    }
    if (parts.length === 0) return undefined;
    return parts.length === 1 ? parts[0] : Buffer.concat(parts, bytes);
  }

  /** The entry line `n` carried, forgotten here: each line is answered once. */
  answer(n: number): Entry | undefined {
    const e = this.written.get(n);
    if (e) this.written.delete(n);
    return e;
  }
}
