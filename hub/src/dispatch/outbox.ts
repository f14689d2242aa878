/**
 * The downlink outbox: a command is written to `dispatch_commands` before it
 * is published at QoS 1 on the handheld's `cmd` topic, and stays open until
 * the handheld answers (accept, arrive, decline ...) or the dispatch ends.
 *
 * aedes keeps the queue of an offline persistent session in memory only: a
 * hub restart loses it, and a clean session never had one. Open commands are
 * therefore re-sent after the handheld reconnects (after a delay that lets it
 * re-subscribe). QoS 1 is at-least-once anyway: handhelds dedupe by cmdId.
 *
 * A dispatch's command, and the cancel of a cancelled or rejected case, is
 * written in the case's transaction (the engine's `writeDispatch`,
 * `writeCancel`) and published from here after the commit
 * (`sendCommitted`). A process killed between the two leaves it committed
 * and never sent (`sent_at` null): `sendUnsent` publishes such commands, at
 * start and, in a cluster, on the `dispatch.timers` holder. A first send is
 * claimed (`dispatch.send:<cmdId>`) in a cluster so exactly one node makes
 * it; every send of a command is its stored body, the same cmdId.
 */
import type { Command } from '@gridlink/devices';
import type { Broker } from '../broker/index.js';
import type { Leases } from '../cluster/index.js';
import type { EventBus } from '../core/bus.js';
import type { Logger } from '../core/logger.js';
import type { DispatchRepo } from './dispatch.repo.js';

export interface OutboxDeps {
  repo: DispatchRepo;
  broker: Pick<Broker, 'isConnected' | 'sendCommand'>;
  bus: EventBus;
  log: Logger;
  /** Delay after a handheld comes online before its open commands are re-sent. */
  resendDelayMs: number;
  /** The hub's clock: a command's first send is stamped with it (a dispatch's accept timeout counts from there). */
  now: () => number;
  /** Only handhelds of workers have an outbox. */
  isWorkerDevice(deviceId: string): boolean;
  /** Cluster: the first send of a command is claimed once across nodes (cluster/leases.ts `claim`); absent or not shared on the single process. */
  leases?: Pick<Leases, 'shared' | 'claim' | 'settle' | 'release'>;
  /**
   * A command committed by a process that died before publishing it was just
   * published here: what that process owed after its commit besides the
   * publish (the assignment's announcement, in a cluster) is done now.
   */
  sentLate?(deviceId: string, caseId: string, cmd: Command): Promise<void>;
}

/** The claim key of a command's first send. */
export const sendKey = (cmdId: string): string => `dispatch.send:${cmdId}`;

export class CommandOutbox {
  private readonly resendTimers = new Map<string, NodeJS.Timeout>();
  /** The pass after a routing outage, and the span it covers (outages heard before it runs are merged). */
  private outage: { timer: NodeJS.Timeout; since: number; at: number } | null = null;

  constructor(private readonly d: OutboxDeps) {}

  /** Writes the command, then publishes it (a failed publish leaves it open for the next resend). */
  async send(deviceId: string, workerId: string, caseId: string, cmd: Command): Promise<void> {
    await this.d.repo.insertCommand(deviceId, workerId, caseId, cmd);
    await this.first(deviceId, caseId, cmd, false);
  }

  /**
   * Publishes the commands of a case that were committed with the case and
   * not sent yet: for one handheld (a dispatch's), or of one type for any
   * handheld (a cancel's, committed for whichever worker's row held the case).
   */
  async sendCommitted(caseId: string, only: { deviceId?: string; type?: Command['type'] }): Promise<number> {
    const rows = await this.d.repo.unsentCommands({ only: { caseId, ...only } });
    let n = 0;
    for (const r of rows) if (await this.first(r.deviceId, r.caseId, r.command, false)) n++;
    return n;
  }

  /**
   * Publishes every command committed more than `olderThanMs` ago and never
   * sent: the process that committed it died before publishing (or its
   * publish failed). In a cluster each is claimed first, so a command a live
   * node is sending right now, or another node recovers, goes out once.
   * Marked `resend` on the bus: it is late, whatever its first try was.
   */
  async sendUnsent(olderThanMs: number): Promise<number> {
    const rows = await this.d.repo.unsentCommands({ olderThanMs });
    let n = 0;
    for (const r of rows) {
      if (await this.first(r.deviceId, r.caseId, r.command, true)) {
        n++;
        await this.late(r.deviceId, r.caseId, r.command);
        this.d.log.info({ deviceId: r.deviceId, caseId: r.caseId, cmdId: r.command.cmdId }, 'command committed and never sent: sent now');
      }
    }
    return n;
  }

  /** A first send: claimed once across nodes in a cluster (settled once published), as it is on one process. */
  private async first(deviceId: string, caseId: string, cmd: Command, late: boolean): Promise<boolean> {
    const l = this.d.leases;
    const key = l?.shared ? sendKey(cmd.cmdId) : null;
    if (key && !(await l!.claim(key))) return false;
    const sent = await this.publish(deviceId, caseId, cmd, late);
    if (sent && key) await l!.settle(key);
    // A failed publish (Redis away) gives its claim up: the next try, wherever it runs, is a first send again.
    else if (key) await l!.release(key).catch((err: unknown) => this.d.log.warn({ err, cmdId: cmd.cmdId }, 'claim of a failed send not released; it runs out on its own'));
    return sent;
  }

  /** Closes the open commands of one type for a case on a handheld. */
  complete(caseId: string, deviceId: string, type: Command['type'], reason: string): Promise<void> {
    return this.d.repo.completeCommands(caseId, deviceId, type, reason);
  }

  private async publish(deviceId: string, caseId: string, cmd: Command, resend: boolean): Promise<boolean> {
    const connected = this.d.broker.isConnected(deviceId);
    try {
      await this.d.broker.sendCommand(deviceId, cmd);
    } catch (err) {
      this.d.log.warn({ err: (err as Error).message, deviceId, cmdId: cmd.cmdId }, 'command publish failed; stays pending');
      return false;
    }
    // A cancel needs no answer: once handed to a live session aedes retries it itself.
    await this.d.repo.markSent(cmd.cmdId, cmd.type === 'cancel' && connected, this.d.now());
    this.d.bus.emit('dispatch.command', { deviceId, caseId, command: cmd, resend });
    return true;
  }

  /** A handheld came online: its open commands go out again after the resend delay. */
  scheduleResend(deviceId: string): void {
    if (!this.d.isWorkerDevice(deviceId)) return;
    clearTimeout(this.resendTimers.get(deviceId));
    // Wall clock on purpose: compared with sent_at, which the database stamps.
    const onlineAt = Date.now();
    const t = setTimeout(() => {
      this.resendTimers.delete(deviceId);
      void this.resendPending(deviceId, onlineAt).catch((err) => this.d.log.error({ err, deviceId }, 'resend failed'));
    }, this.d.resendDelayMs);
    t.unref();
    this.resendTimers.set(deviceId, t);
  }

  /** Re-sends what is pending and was not already published to the session that came online at `onlineAt`. */
  async resendPending(deviceId: string, onlineAt = Date.now()): Promise<number> {
    if (!this.d.broker.isConnected(deviceId)) return 0;
    const pending = await this.d.repo.pendingCommands(deviceId, onlineAt);
    // One never sent (its committer died, or is sending it right now) is a first send: claimed, as everywhere.
    for (const p of pending) {
      if (p.sent) await this.publish(deviceId, p.caseId, p.command, true);
      else if (await this.first(deviceId, p.caseId, p.command, true)) await this.late(deviceId, p.caseId, p.command);
    }
    return pending.length;
  }

  private async late(deviceId: string, caseId: string, cmd: Command): Promise<void> {
    await this.d.sentLate?.(deviceId, caseId, cmd).catch((err: unknown) => this.d.log.warn({ err, deviceId, caseId, cmdId: cmd.cmdId }, 'follow-up of a command sent late failed'));
  }

  /**
   * Cluster: this node's MQTT routing is back after an outage: its Redis
   * connection dropped at `since` and its subscriptions are in effect again
   * since `at` (wall clock, compared with sent_at). After the resend delay
   * (publishes held by the Redis client land meanwhile), the open commands
   * of the handhelds connected here that were never sent, or sent between
   * the two (their publish failed, or went out before this node listened
   * again), are sent again with their cmdId; a never-sent one is claimed as
   * any first send. A command the handheld answered is closed and never
   * sent again; one sent after `at` was routed here and is not repeated.
   */
  resendAfterOutage(since: number, at: number): void {
    const o = this.outage;
    if (o) clearTimeout(o.timer);
    const span = { since: Math.min(since, o?.since ?? since), at: Math.max(at, o?.at ?? at) };
    const timer = setTimeout(() => {
      this.outage = null;
      void this.resendSentIn(span.since, span.at).catch((err: unknown) => this.d.log.error({ err }, 'resend after the routing outage failed'));
    }, this.d.resendDelayMs);
    timer.unref();
    this.outage = { timer, ...span };
  }

  /** The pass of `resendAfterOutage`: returns the commands sent. */
  async resendSentIn(since: number, at: number): Promise<number> {
    let n = 0;
    for (const r of await this.d.repo.commandsSentIn(since, at)) {
      if (!this.d.isWorkerDevice(r.deviceId) || !this.d.broker.isConnected(r.deviceId)) continue;
      if (r.sent) {
        if (await this.publish(r.deviceId, r.caseId, r.command, true)) n++;
      } else if (await this.first(r.deviceId, r.caseId, r.command, true)) {
        n++;
        await this.late(r.deviceId, r.caseId, r.command);
      }
    }
    this.d.log.info({ commands: n }, 'open commands sent again after the routing outage');
    return n;
  }

  stop(): void {
    if (this.outage) clearTimeout(this.outage.timer);
    this.outage = null;
    for (const t of this.resendTimers.values()) clearTimeout(t);
    this.resendTimers.clear();
  }
}
