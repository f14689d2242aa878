/**
 * The offline outbox: everything the worker does (fixes, duty, task actions,
 * reports with their photos) is written to IndexedDB first and sent from
 * there, strictly in order, one request at a time. Each entry carries the id
 * that makes it idempotent on the hub (fix `ts`, `opId`, `reportId`), so a
 * request whose answer was lost is simply sent again and applied once.
 * A network failure or a busy hub pauses the queue (retried with backoff and
 * whenever the network or the socket comes back); an answer the hub refuses
 * for good (4xx) drops that entry and is shown to the worker.
 */
import { createStore, del, entries, get, set, type UseStore } from 'idb-keyval';
import type { MobileDutyBody, MobileFix, MobilePositionsBody, MobileTaskActionBody } from '@gridlink/devices/contract';
import { MApiError, mapi } from './api';

/** A position fix as `POST /m/positions` takes it. */
export type Fix = MobileFix;

export type OutboxEntry =
  | { kind: 'positions'; items: Fix[] }
  | { kind: 'duty'; onDuty: boolean }
  | { kind: 'action'; caseId: string; action: MobileTaskActionBody['action']; opId: string; note?: string; ts: number; photos: Blob[] }
  | { kind: 'report'; reportId: string; category: string; categoryName: string; description?: string; lat: number; lon: number; ts: number; photos: Blob[] };

export interface Refused {
  at: number;
  kind: OutboxEntry['kind'];
  code: string;
  message: string;
}

type Listener = () => void;

const MAX_FIXES = 500;

export function newId(prefix: string): string {
  const r = crypto.getRandomValues(new Uint8Array(8));
  return `${prefix}-${Date.now().toString(36)}-${[...r].map((b) => b.toString(16).padStart(2, '0')).join('')}`;
}

export class Outbox {
  private readonly store: UseStore;
  private seq = 0;
  private running: Promise<void> | null = null;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private backoffMs = 1000;
  private listeners = new Set<Listener>();
  /** Entries waiting, in order (mirrors IndexedDB). */
  pending: Array<{ key: number; entry: OutboxEntry }> = [];
  refused: Refused[] = [];
  /** Last send failed for a retryable reason (network down, hub busy). */
  stalled = false;
  /** Paused until a new session exists (401). */
  blocked = false;
  /** Called after entries were sent (refresh tasks and reports). */
  onSent: ((kinds: Set<OutboxEntry['kind']>) => void) | null = null;

  constructor(dbName = 'gridlink-m-outbox') {
    this.store = createStore(dbName, 'outbox');
  }

  async load(): Promise<void> {
    const all = await entries<IDBValidKey, unknown>(this.store);
    this.pending = all
      .filter(([k]) => typeof k === 'number')
      .map(([k, v]) => ({ key: k as number, entry: v as OutboxEntry }))
      .sort((a, b) => a.key - b.key);
    this.refused = ((await get<Refused[]>('refused', this.store)) ?? []).slice(-20);
    this.seq = Math.max(Date.now() * 1000, ...this.pending.map((p) => p.key + 1));
    this.emit();
  }

  subscribe(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private emit(): void {
    for (const l of this.listeners) l();
  }

  /** Items a worker would count: fixes batched into one. */
  get count(): number {
    let n = 0;
    for (const p of this.pending) n += p.entry.kind === 'positions' ? p.entry.items.length : 1;
    return n;
  }

  async add(entry: OutboxEntry): Promise<void> {
    const key = ++this.seq;
    await set(key, entry, this.store);
    this.pending.push({ key, entry });
    this.emit();
    void this.flush();
  }

  /** Sends what is queued; resolves when the queue is empty or paused. */
  flush(): Promise<void> {
    if (this.blocked) return Promise.resolve();
    this.running ??= this.run().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  unblock(): void {
    this.blocked = false;
    void this.flush();
  }

  private schedule(): void {
    if (this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.flush();
    }, this.backoffMs);
    this.backoffMs = Math.min(this.backoffMs * 2, 30_000);
  }

  private async run(): Promise<void> {
    const sent = new Set<OutboxEntry['kind']>();
    while (this.pending.length && !this.blocked) {
      const head = this.pending[0]!;
      // Consecutive fixes go as one array, in order.
      let batch = [head];
      if (head.entry.kind === 'positions') {
        batch = [];
        let n = 0;
        for (const p of this.pending) {
          if (p.entry.kind !== 'positions' || n + p.entry.items.length > MAX_FIXES) break;
          batch.push(p);
          n += p.entry.items.length;
        }
      }
      try {
        await this.send(batch.map((b) => b.entry));
        this.stalled = false;
        this.backoffMs = 1000;
        sent.add(head.entry.kind);
      } catch (err) {
        const e = err instanceof MApiError ? err : new MApiError(0, 'NETWORK', String(err));
        if (e.status === 401) {
          this.blocked = true;
          this.emit();
          break;
        }
        if (e.retryable) {
          this.stalled = true;
          this.emit();
          this.schedule();
          break;
        }
        this.refused = [...this.refused, { at: Date.now(), kind: head.entry.kind, code: e.code, message: e.message }].slice(-20);
        await set('refused', this.refused, this.store);
      }
      for (const b of batch) await del(b.key, this.store);
      this.pending = this.pending.slice(batch.length);
      this.emit();
    }
    if (sent.size) this.onSent?.(sent);
  }

  private async send(batch: OutboxEntry[]): Promise<void> {
    const e = batch[0]!;
    switch (e.kind) {
      case 'positions':
        await mapi('POST', '/m/positions', { items: batch.flatMap((b) => (b.kind === 'positions' ? b.items : [])) } satisfies MobilePositionsBody);
        return;
      case 'duty':
        await mapi('POST', '/m/duty', { onDuty: e.onDuty } satisfies MobileDutyBody);
        return;
      case 'action': {
        const f = new FormData();
        f.append('action', e.action);
        f.append('opId', e.opId);
        f.append('ts', String(e.ts));
        if (e.note) f.append('note', e.note);
        e.photos.forEach((p, i) => f.append('photos', p, `photo-${i + 1}.jpg`));
        await mapi('POST', `/m/tasks/${encodeURIComponent(e.caseId)}/actions`, f);
        return;
      }
      case 'report': {
        const f = new FormData();
        f.append('reportId', e.reportId);
        f.append('category', e.category);
        if (e.description) f.append('description', e.description);
        f.append('lat', String(e.lat));
        f.append('lon', String(e.lon));
        f.append('ts', String(e.ts));
        e.photos.forEach((p, i) => f.append('photos', p, `photo-${i + 1}.jpg`));
        await mapi('POST', '/m/reports', f);
        return;
      }
    }
  }

  /** Drops everything (sign-out of another worker on this phone). */
  async clear(): Promise<void> {
    for (const p of this.pending) await del(p.key, this.store);
    this.pending = [];
    this.emit();
  }
}
