import { pino, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;

export function createLogger(level: string, name = 'hub'): Logger {
  return pino({ name, level, base: undefined, timestamp: pino.stdTimeFunctions.epochTime });
}

/**
 * Logs at most `perInterval` lines per key per interval and reports how many
 * were suppressed, so a flooding device cannot flood the log.
 */
export class RateLimitedLog {
  private readonly counts = new Map<string, { n: number; since: number }>();

  constructor(
    private readonly logger: Logger,
    private readonly perInterval = 5,
    private readonly intervalMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  warn(key: string, obj: Record<string, unknown>, msg: string): void {
    const t = this.now();
    let c = this.counts.get(key);
    if (!c || t - c.since >= this.intervalMs) {
      if (c && c.n > this.perInterval) this.logger.warn({ key, suppressed: c.n - this.perInterval }, 'log lines suppressed');
      c = { n: 0, since: t };
      this.counts.set(key, c);
      if (this.counts.size > 10_000) this.counts.clear();
    }
    c.n++;
    if (c.n <= this.perInterval) this.logger.warn(obj, msg);
  }
}
