/**
 * Everything the console shows, one store per entity kind. Written by the
 * REST re-sync (on login and on every socket reconnect) and by socket events;
 * read by pages through hooks. Position bursts bypass React entirely
 * (map/positions.ts).
 */
import { DEFAULT_CALENDAR, WorkCalendar } from '@gridlink/devices/calendar';
import { items, get } from '../api/client';
import type { Alarm, Camera, CaseSummary, Department, Device, GridCollection, Linkage, Page, PositionUpdate, Worker, WorkingCalendar } from '../api/types';
import type { CameraStateEvent } from '@gridlink/devices/contract';
import { PositionBatcher, PositionIndex } from '../map/positions';
import { EntityStore, Value } from './entities';

export type ConnState = 'connecting' | 'online' | 'offline';

export const devices = new EntityStore<Device>();
export const workers = new EntityStore<Worker>();
export const cases = new EntityStore<CaseSummary>();
export const alarms = new EntityStore<Alarm>();
export const cameras = new EntityStore<Camera>();
export const grids = new Value<GridCollection>({ type: 'FeatureCollection', features: [] });
export const connection = new Value<ConnState>('connecting');
export const lastSync = new Value<number>(0);
/** Backend modules that answered 404 at the last sync (their screens say so). */
export const missing = new Value<ReadonlySet<string>>(new Set());
export const linkage = new Value<Linkage | null>(null);
/** The hub's working calendar: countdowns of categories limited in working hours count only working time. */
export const calendar = new Value<WorkCalendar>(new WorkCalendar(DEFAULT_CALENDAR));
/** Departments the signed-in user belongs to: non-empty makes the console a department workbench. */
export const myDepartments = new Value<Department[]>([]);

/** `camera.state` from the hub: a camera's RTSP health and stream changed; the camera list and its marker follow without a reload. */
export function applyCameraState(e: CameraStateEvent): void {
  const cur = cameras.get(e.cameraId);
  if (!cur) return;
  cameras.patch(e.cameraId, { health: { ...cur.health, state: e.state, reason: e.reason, since: e.since }, stream: { ...cur.stream, state: e.stream }, buffering: e.buffering });
}

/** A camera's state for the list and the map: its RTSP health once probed (live streaming wins), else its device connection. */
export function cameraState(c: Camera): 'live' | 'online' | 'degraded' | 'offline' | 'unknown' {
  if (c.stream.state === 'live') return 'live';
  if (c.health.state !== 'unknown') return c.health.state;
  return c.online ? 'online' : 'offline';
}

export const positions = new PositionIndex('wgs84');
export const batcher = new PositionBatcher(
  (batch) => applyPositions(batch),
  // When no map is on screen nothing drains per frame; a timer keeps cards current.
  (cb) => setTimeout(cb, 250),
);

function applyPositions(batch: PositionUpdate[]): void {
  positions.apply(batch, performance.now());
  // Status changes are rare; only they reach React (cards, candidate lists).
  for (const u of batch) {
    const w = u.status ? workers.map.get(u.workerId) : undefined;
    if (w && w.status !== u.status) workers.patch(u.workerId, { status: u.status!, position: { lat: u.lat, lon: u.lon, ts: u.ts } });
  }
}

/** Merge a REST worker list into the live index (REST is authoritative after a reconnect). */
function seedPositions(list: Worker[]): void {
  const seed: PositionUpdate[] = [];
  for (const w of list) {
    if (w.position) seed.push({ workerId: w.id, lat: w.position.lat, lon: w.position.lon, ts: w.position.ts, status: w.status });
    else positions.byId.delete(w.id);
  }
  positions.apply(seed, performance.now());
  for (const w of list) positions.setStatus(w.id, w.status);
}

const OPEN = 'reported,registered,dispatched,accepted,on_scene,resolved';

/** Every open case, page by page (a reconnect restores exactly what is open, not one page of it), plus the latest 200 of any status. */
async function loadOpenCases(): Promise<void> {
  const all: CaseSummary[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < 100; page++) {
    const r = await get<Page<CaseSummary>>('/cases', { status: OPEN, limit: 1000, ...(cursor ? { cursor } : {}) });
    all.push(...r.items);
    cursor = r.nextCursor;
    if (!cursor) break;
  }
  const recent = await get<Page<CaseSummary>>('/cases', { limit: 200 });
  const ids = new Set(all.map((c) => c.id));
  for (const c of recent.items) if (!ids.has(c.id)) all.push(c);
  cases.setAll(all);
}

/** Re-fetch everything shown (login, reconnect). Missing backend modules degrade to empty. */
export async function resync(): Promise<void> {
  const gone = new Set<string>();
  const load = async <T extends { id: string }>(name: string, path: string, store: EntityStore<T>, query?: Record<string, string>) => {
    try {
      const r = await items<T>(path, query);
      if (r.missing) gone.add(name);
      store.setAll(r.items);
      return r.items;
    } catch {
      gone.add(name);
      return [];
    }
  };
  await Promise.all([
    load('devices', '/devices', devices),
    load('workers', '/workers', workers).then(seedPositions),
    loadOpenCases().catch(() => gone.add('cases')),
    load('alarms', '/alarms', alarms),
    load('cameras', '/cameras', cameras),
    get<WorkingCalendar>('/calendar').then((c) => calendar.set(new WorkCalendar(c))).catch(() => undefined),
    items<Department>('/departments/mine').then((r) => myDepartments.set(r.items)).catch(() => myDepartments.set([])),
    get<GridCollection>('/grids')
      .then((g) => grids.set(g && Array.isArray(g.features) ? g : { type: 'FeatureCollection', features: [] }))
      .catch(() => gone.add('grids')),
  ]);
  missing.set(gone);
  lastSync.set(Date.now());
}

export function resetAll(): void {
  for (const s of [devices, workers, cases, alarms, cameras]) s.setAll([]);
  grids.set({ type: 'FeatureCollection', features: [] });
  positions.clear();
  linkage.set(null);
}
