/**
 * The downlink outbox: a command is written to `dispatch_commands` before it
 * is published at QoS 1 on the handheld's `cmd` topic, and stays open until
 * the handheld answers (accept, arrive, decline ...) or the dispatch ends.
 *
 * aedes keeps the queue of an offline persistent session in memory only: a
 * hub restart loses it, and a clean session never had one. Open commands are
 * therefore re-sent after the handheld reconnects (after a delay that lets it
 * re-subscribe). QoS 1 is at-least-once anyway: handhelds dedupe by cmdId.
 */
import type { Command } from '@gridlink/devices';
import type { Broker } from '../broker/index.js';
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
  /** Only handhelds of workers have an outbox. */
  isWorkerDevice(deviceId: string): boolean;
}

export class CommandOutbox {
  private readonly resendTimers = new Map<string, NodeJS.Timeout>();

  constructor(private readonly d: OutboxDeps) {}

  /** Writes the command, then publishes it (a failed publish leaves it open for the next resend). */
  async send(deviceId: string, workerId: string, caseId: string, cmd: Command): Promise<void> {
    await this.d.repo.insertCommand(deviceId, workerId, caseId, cmd);
    await this.publish(deviceId, caseId, cmd, false);
  }

  /** Closes the open commands of one type for a case on a handheld. */
  complete(caseId: string, deviceId: string, type: Command['type'], reason: string): Promise<void> {
    return this.d.repo.completeCommands(caseId, deviceId, type, reason);
  }

  private async publish(deviceId: string, caseId: string, cmd: Command, resend: boolean): Promise<void> {
    const connected = this.d.broker.isConnected(deviceId);
    try {
      await this.d.broker.sendCommand(deviceId, cmd);
    } catch (err) {
      this.d.log.warn({ err: (err as Error).message, deviceId, cmdId: cmd.cmdId }, 'command publish failed; stays pending');
      return;
    }
    // A cancel needs no answer: once handed to a live session aedes retries it itself.
    await this.d.repo.markSent(cmd.cmdId, cmd.type === 'cancel' && connected);
    this.d.bus.emit('dispatch.command', { deviceId, caseId, command: cmd, resend });
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
    for (const p of pending) await this.publish(deviceId, p.caseId, p.command, true);
    return pending.length;
  }

  stop(): void {
    for (const t of this.resendTimers.values()) clearTimeout(t);
    this.resendTimers.clear();
  }
}
