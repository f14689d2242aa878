/**
 * Work per key, one at a time and in the order it was queued; different
 * keys run concurrently. A failing step is reported to `onError` and never
 * blocks the next one of its key. Used where a later event must see the
 * effect of an earlier one for the same thing: handheld messages per device
 * (cases), case changes per case (dispatch).
 */
export class KeyedQueue {
  private readonly chains = new Map<string, Promise<void>>();

  constructor(private readonly onError: (err: unknown, key: string) => void) {}

  /** Queues `fn` after everything queued for `key`; resolves when it ran (errors go to onError). */
  run(key: string, fn: () => Promise<void>): Promise<void> {
    const prev = this.chains.get(key) ?? Promise.resolve();
    const next = prev.then(fn).catch((err: unknown) => this.onError(err, key));
    this.chains.set(key, next);
    void next.finally(() => {
      if (this.chains.get(key) === next) this.chains.delete(key);
    });
    return next;
  }

  /** Keys with work queued or running. */
  get size(): number {
    return this.chains.size;
  }

  /** Resolves when what is queued now has run. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.chains.values()]);
  }

  /** Resolves when nothing is queued, including work queued by the work itself. */
  async idle(): Promise<void> {
    while (this.chains.size) await this.settled();
  }
}
