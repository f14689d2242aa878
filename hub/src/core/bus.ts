/**
 * Typed event bus between domains (zigbee2mqtt lib/eventBus.ts). Listeners
 * are keyed by owner so a module's stop() removes exactly its own.
 *
 * One map, `EventMap`: the room that emits an event declares its one payload
 * type by augmenting it, so every emit and every listener is checked by the
 * compiler against that type (no casts, no second shape):
 *   'message.stored'                          ingest/index.ts
 *   'device.changed', 'device.status'          registry/index.ts
 *   'case.changed', 'case.overdue', 'case.refused'  cases/service.ts
 *   'alarm.changed'                            rules/alarms.ts
 *   'dispatch.alarm', 'dispatch.command'       dispatch/dispatch.engine.ts
 *   'worker.changed'                           dispatch/workers.service.ts (bridged between nodes by cluster/index.ts)
 *   'handheld.session'                         mobile/sessions.ts (bridged between nodes by cluster/index.ts)
 *   'camera.alarm', 'video.linkage'            video/index.ts
 */
import type { Logger } from './logger.js';

// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface EventMap {}

type Listener<T> = (payload: T) => void | Promise<void>;

export class EventBus {
  private readonly listeners = new Map<keyof EventMap, Array<{ owner: string; fn: Listener<never> }>>();

  constructor(private readonly logger?: Logger) {}

  on<K extends keyof EventMap>(event: K, owner: string, fn: Listener<EventMap[K]>): void {
    let list = this.listeners.get(event);
    if (!list) this.listeners.set(event, (list = []));
    list.push({ owner, fn: fn as Listener<never> });
  }

  /** Synchronous fan-out; a throwing or rejecting listener is logged and never hurts the others. */
  emit<K extends keyof EventMap>(event: K, payload: EventMap[K]): void {
    const list = this.listeners.get(event);
    if (!list) return;
    for (const { owner, fn } of list) {
      try {
        const r = (fn as Listener<EventMap[K]>)(payload);
        if (r && typeof (r as Promise<void>).catch === 'function') {
          (r as Promise<void>).catch((err: unknown) => this.logger?.error({ err, event, owner }, 'event listener failed'));
        }
      } catch (err) {
        this.logger?.error({ err, event, owner }, 'event listener failed');
      }
    }
  }

  removeOwner(owner: string): void {
    for (const [event, list] of this.listeners) {
      const kept = list.filter((l) => l.owner !== owner);
      if (kept.length) this.listeners.set(event, kept);
      else this.listeners.delete(event);
    }
  }

  listenerCount<K extends keyof EventMap>(event: K): number {
    return this.listeners.get(event)?.length ?? 0;
  }
}
