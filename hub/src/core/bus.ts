/**
 * Typed event bus between domains (zigbee2mqtt lib/eventBus.ts). Listeners
 * are keyed by owner so a module's stop() removes exactly its own.
 *
 * Domains add their events by augmenting EventMap:
 *   declare module '../core/bus.js' { interface EventMap { 'case.changed': CaseSummary } }
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
