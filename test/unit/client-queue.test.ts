import { describe, expect, it } from 'vitest';
import { ClientError } from '../../src/client/errors.js';
import { PendingQueue, type Entry } from '../../src/client/queue.js';

/** The client's pending queue: emit order, a bound on events and on bytes, an immediate typed refusal when full. */

function entry(id: string, bytes = 10): Entry {
  return { eventId: id, line: Buffer.alloc(bytes, 0x61), settled: false, timer: undefined, resolve: () => undefined, reject: () => undefined };
}

function refusal(f: () => void): ClientError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(ClientError);
    return err as ClientError;
  }
  throw new Error('expected a refusal');
}

describe('PendingQueue', () => {
  it('keeps emit order while entries leave out of order', () => {
    const q = new PendingQueue(10, 1000);
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((id) => entry(id));
    for (const e of [a!, b!, c!, d!]) q.add(e);
    expect(q.delete(c!)).toBe(true);
    expect(q.delete(c!)).toBe(false);
    expect([...q].map((e) => e.eventId)).toEqual(['a', 'b', 'd']);
    expect(q.size).toBe(3);
    expect(q.byteSize).toBe(30);
  });

  it('refuses the event past maxQueue at once, naming the option, and takes events again once answers free room', () => {
    const q = new PendingQueue(3, 1_000_000);
    const es = ['a', 'b', 'c'].map((id) => entry(id));
    for (const e of es) q.add(e);
    const err = refusal(() => q.add(entry('d')));
    expect(err.code).toBe('client_queue_full');
    expect(err.message).toContain('maxQueue 3');
    expect(q.size).toBe(3);
    q.delete(es[0]!);
    q.add(entry('d'));
    expect([...q].map((e) => e.eventId)).toEqual(['b', 'c', 'd']);
  });

  it('refuses by bytes too, naming maxQueueBytes, but never refuses an event into an empty queue', () => {
    const q = new PendingQueue(100, 25);
    q.add(entry('a', 10));
    q.add(entry('b', 10));
    const err = refusal(() => q.add(entry('c', 10)));
    expect(err.code).toBe('client_queue_full');
    expect(err.message).toContain('maxQueueBytes (25)');
    const empty = new PendingQueue(100, 25);
    empty.add(entry('big', 1000));
    expect(empty.byteSize).toBe(1000);
  });

  it('drained() resolves when the last entry leaves, and at once when empty', async () => {
    const q = new PendingQueue(10, 1000);
    await q.drained();
    const a = entry('a');
    const b = entry('b');
    q.add(a);
    q.add(b);
    let done = false;
    const p = q.drained().then(() => (done = true));
    q.delete(a);
    await Promise.resolve();
    expect(done).toBe(false);
    q.delete(b);
    await p;
    expect(done).toBe(true);
  });
});
