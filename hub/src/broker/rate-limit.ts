/** Per-device token bucket plus a count of recent drops (to disconnect a device that keeps flooding). */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private dropWindowStart = 0;
  private dropsInWindow = 0;

  constructor(private readonly ratePerS: number, private readonly burst: number, now: number) {
    this.tokens = burst;
    this.last = now;
  }

  take(now: number): boolean {
    const elapsed = now - this.last;
    if (elapsed > 0) {
      this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.ratePerS) / 1000);
      this.last = now;
    }
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    return false;
  }

  /** Records a dropped message; returns the drops within the last minute. */
  drop(now: number): number {
    if (now - this.dropWindowStart > 60_000) {
      this.dropWindowStart = now;
      this.dropsInWindow = 0;
    }
    return ++this.dropsInWindow;
  }
}
