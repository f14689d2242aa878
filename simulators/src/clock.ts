/**
 * The simulation clock. Behaviour is written in simulated time (a sensor
 * reports every 60 s, a worker takes 20 s to accept); the clock runs it
 * `speed` times faster than wall time, so a 10-minute scenario plays in one
 * minute at --speed 10 and tests run fast without fake timers (the hub on
 * the other end of the socket runs in real time).
 *
 * Payload timestamps stay wall-clock (`wallNow`): the hub rejects future
 * timestamps, and integrators compare what they see with their own clocks.
 */
export interface Clock {
  readonly speed: number;
  /** Simulated milliseconds since the clock started. */
  elapsed(): number;
  /** Wall-clock epoch ms, for payload `ts`. */
  wallNow(): number;
  /** Runs fn after `simMs` simulated milliseconds; cancelled by dispose(). */
  after(simMs: number, fn: () => void): () => void;
  /** Resolves after `simMs` simulated ms; rejects with AbortError when disposed or aborted. */
  sleep(simMs: number, signal?: AbortSignal): Promise<void>;
  /** Converts simulated ms to wall ms. */
  toWall(simMs: number): number;
  dispose(): void;
  readonly disposed: boolean;
}

export class SimClock implements Clock {
  private readonly start = performance.now();
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private readonly sleepers = new Set<() => void>();
  private done = false;

  constructor(readonly speed = 1) {
    if (!(speed > 0 && Number.isFinite(speed))) throw new RangeError(`speed must be a positive number, got ${speed}`);
  }

  elapsed(): number {
    return (performance.now() - this.start) * this.speed;
  }

  wallNow(): number {
    return Date.now();
  }

  toWall(simMs: number): number {
    return Math.max(0, simMs / this.speed);
  }

  after(simMs: number, fn: () => void): () => void {
    if (this.done) return () => undefined;
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, this.toWall(simMs));
    this.timers.add(t);
    return () => {
      clearTimeout(t);
      this.timers.delete(t);
    };
  }

  sleep(simMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const abort = () => {
        cancel();
        this.sleepers.delete(abort);
        reject(abortError());
      };
      if (this.done || signal?.aborted) return reject(abortError());
      const cancel = this.after(simMs, () => {
        this.sleepers.delete(abort);
        signal?.removeEventListener('abort', abort);
        resolve();
      });
      this.sleepers.add(abort);
      signal?.addEventListener('abort', abort, { once: true });
    });
  }

  get disposed(): boolean {
    return this.done;
  }

  dispose(): void {
    this.done = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const s of [...this.sleepers]) s();
  }
}

export function abortError(): Error {
  return Object.assign(new Error('aborted'), { name: 'AbortError' });
}

export function isAbort(err: unknown): boolean {
  return (err as Error)?.name === 'AbortError';
}
