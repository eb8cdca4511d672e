/**
 * Serialises async work per key (a stream id) within this process. Batches of
 * one stream must be verified against the head the previous one produced;
 * the store's optimistic check covers other processes.
 */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = prev.then(() => mine);
    this.tails.set(key, tail);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      // Drop the entry once nobody queued behind us, so idle streams cost nothing.
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  /** number of keys with work running or queued */
  get size(): number {
    return this.tails.size;
  }
}
