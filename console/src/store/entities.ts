/**
 * State per entity keyed by id (traccar-web store/ style), outside React so
 * the socket can write to it at any rate; components read it through
 * useSyncExternalStore and re-render only when its version changes.
 */
import { useSyncExternalStore } from 'react';

type Listener = () => void;

export class Observable {
  private listeners = new Set<Listener>();
  version = 0;
  subscribe = (l: Listener): (() => void) => {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  };
  protected emit(): void {
    this.version++;
    for (const l of this.listeners) l();
  }
}

export class EntityStore<T extends { id: string }> extends Observable {
  readonly map = new Map<string, T>();
  private snapshot: T[] | null = null;

  setAll(items: readonly T[]): void {
    this.map.clear();
    for (const it of items) this.map.set(it.id, it);
    this.changed();
  }
  upsert(item: T): void {
    this.map.set(item.id, { ...(this.map.get(item.id) ?? {}), ...item });
    this.changed();
  }
  /** Several upserts, one change for the subscribers (a burst of socket events renders once). */
  upsertMany(list: readonly T[]): void {
    for (const item of list) this.map.set(item.id, { ...(this.map.get(item.id) ?? {}), ...item });
    if (list.length) this.changed();
  }
  patch(id: string, p: Partial<T>): void {
    const cur = this.map.get(id);
    if (!cur) return;
    this.map.set(id, { ...cur, ...p });
    this.changed();
  }
  remove(id: string): void {
    if (this.map.delete(id)) this.changed();
  }
  get(id: string | null | undefined): T | undefined {
    return id ? this.map.get(id) : undefined;
  }
  list(): T[] {
    this.snapshot ??= [...this.map.values()];
    return this.snapshot;
  }
  private changed(): void {
    this.snapshot = null;
    this.emit();
  }
}

/** A single value with subscribers. */
export class Value<T> extends Observable {
  constructor(private v: T) {
    super();
  }
  get(): T {
    return this.v;
  }
  set(v: T): void {
    if (Object.is(v, this.v)) return;
    this.v = v;
    this.emit();
  }
}

export function useEntities<T extends { id: string }>(store: EntityStore<T>): T[] {
  return useSyncExternalStore(store.subscribe, () => store.list());
}
export function useEntity<T extends { id: string }>(store: EntityStore<T>, id: string | null | undefined): T | undefined {
  return useSyncExternalStore(store.subscribe, () => store.get(id));
}
export function useValue<T>(v: Value<T>): T {
  return useSyncExternalStore(v.subscribe, () => v.get());
}
