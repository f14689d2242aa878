/**
 * App state outside React: session, worker, tasks, reports, categories,
 * connection and the outbox. One small store with subscribe/snapshot for
 * useSyncExternalStore; the last synced tasks, reports and categories are
 * kept in IndexedDB so the app opens offline with what it last knew.
 * On every (re)connect the app re-reads over REST: the socket only says
 * "something changed" quickly.
 */
import { get as idbGet, set as idbSet } from 'idb-keyval';
import { io, type Socket } from 'socket.io-client';
import type { CaseStatus, MobileSignedIn, MobileSignInBody, Page } from '@gridlink/devices/contract';
import { WORKFLOW } from '@gridlink/devices/workflow';
import { MApiError, mapi, setMToken, setUnauthorized, type Category, type DispatchCommand, type Me, type Report, type Task } from './api';
import { alertNewTask } from './notify';
import { Outbox } from './outbox';
import { Tracker } from './tracker';

export interface AppState {
  token: string | null;
  me: Me | null;
  tasks: Task[];
  reports: Report[];
  categories: Category[];
  /** Socket to the hub is up. */
  live: boolean;
  /** navigator.onLine */
  online: boolean;
  /** Showing cached data (the last sync failed or has not happened). */
  cached: boolean;
  /** Task ids that arrived while the app was open and have not been opened. */
  fresh: string[];
  error: string | null;
  sessionEnded: boolean;
}

const SESSION_KEY = 'gridlink.m.session';
const SEEN_CMDS = 'gridlink.m.cmds';

let state: AppState = {
  token: null, me: null, tasks: [], reports: [], categories: [], live: false, online: navigator.onLine, cached: true, fresh: [], error: null, sessionEnded: false,
};
const listeners = new Set<() => void>();
export const subscribe = (fn: () => void) => {
  listeners.add(fn);
  return () => listeners.delete(fn);
};
export const snapshot = () => state;
function update(patch: Partial<AppState>): void {
  state = { ...state, ...patch };
  for (const l of listeners) l();
}

export const outbox = new Outbox();
export const tracker = new Tracker(outbox, { positionIntervalS: 15, minMoveM: 25, minGapS: 3, staleAfterS: 60 });
let socket: Socket | null = null;
// For end-to-end tests and support: what the phone queued and sent (like the console's window.__gridlink).
(window as unknown as { __gridlinkM: unknown }).__gridlinkM = { tracker, outbox };

// ---- session ----------------------------------------------------------------------------------

export async function restore(): Promise<void> {
  setUnauthorized(() => endSession());
  await outbox.load();
  outbox.onSent = (kinds) => {
    if (kinds.has('action') || kinds.has('duty')) void refreshTasks();
    if (kinds.has('report')) void refreshReports();
    if (kinds.has('duty')) void refreshMe();
  };
  const raw = localStorage.getItem(SESSION_KEY);
  const [tasks, reports, categories] = await Promise.all([idbGet<Task[]>('m.tasks'), idbGet<Report[]>('m.reports'), idbGet<Category[]>('m.categories')]);
  update({ tasks: tasks ?? [], reports: reports ?? [], categories: categories ?? [] });
  if (raw) {
    try {
      const s = JSON.parse(raw) as { token: string; me: Me };
      setMToken(s.token);
      update({ token: s.token, me: s.me });
      applyDuty(s.me);
      connect();
      void syncAll();
    } catch {
      localStorage.removeItem(SESSION_KEY);
    }
  }
  window.addEventListener('online', () => {
    update({ online: true });
    void outbox.flush();
    void syncAll();
  });
  window.addEventListener('offline', () => update({ online: false }));
}

export async function login(username: string, password: string): Promise<void> {
  const r = await mapi<MobileSignedIn>('POST', '/m/session', { username, password } satisfies MobileSignInBody);
  // Another worker on this phone: their queue is not ours to send.
  const prev = state.me?.worker.id;
  if (prev && prev !== r.me.worker.id) await outbox.clear();
  setMToken(r.token);
  localStorage.setItem(SESSION_KEY, JSON.stringify(r));
  update({ token: r.token, me: r.me, sessionEnded: false, error: null });
  applyDuty(r.me);
  connect();
  outbox.unblock();
  await syncAll();
}

export async function logout(): Promise<void> {
  await mapi('DELETE', '/m/session').catch(() => undefined);
  endSession(false);
}

function endSession(ended = true): void {
  tracker.stop();
  socket?.close();
  socket = null;
  setMToken(null);
  localStorage.removeItem(SESSION_KEY);
  update({ token: null, live: false, sessionEnded: ended });
}

function saveMe(me: Me): void {
  const raw = localStorage.getItem(SESSION_KEY);
  if (raw) localStorage.setItem(SESSION_KEY, JSON.stringify({ ...(JSON.parse(raw) as object), me }));
  update({ me });
}

function applyDuty(me: Me): void {
  tracker.configure(me.settings);
  if (me.worker.onDuty) tracker.start();
  else tracker.stop();
}

// ---- sync -------------------------------------------------------------------------------------

async function guarded<T>(fn: () => Promise<T>): Promise<T | null> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof MApiError && err.retryable) update({ cached: true });
    else if (err instanceof MApiError && err.status !== 401) update({ error: err.message });
    return null;
  }
}

export async function refreshMe(): Promise<void> {
  const me = await guarded(() => mapi<Me>('GET', '/m/me'));
  if (me) {
    // While a duty change waits in the outbox, the phone's choice stands.
    const queued = [...outbox.pending].reverse().find((p) => p.entry.kind === 'duty')?.entry;
    if (queued && queued.kind === 'duty') me.worker.onDuty = queued.onDuty;
    saveMe(me);
    applyDuty(me);
  }
}

export async function refreshTasks(): Promise<void> {
  const r = await guarded(() => mapi<Page<Task>>('GET', '/m/tasks'));
  if (r) {
    // Actions still in the outbox stay visible as done.
    // The status an action leads to is the workflow table's.
    const queued = new Map<string, CaseStatus>();
    for (const p of outbox.pending) if (p.entry.kind === 'action') queued.set(p.entry.caseId, WORKFLOW[p.entry.action].to!);
    const items = r.items.map((t) => (queued.has(t.id) ? { ...t, status: queued.get(t.id)! } : t));
    update({ tasks: items, cached: false });
    await idbSet('m.tasks', items);
  }
}

export async function refreshReports(): Promise<void> {
  const r = await guarded(() => mapi<Page<Report>>('GET', '/m/reports'));
  if (r) {
    update({ reports: r.items });
    await idbSet('m.reports', r.items);
  }
}

async function refreshCategories(): Promise<void> {
  const r = await guarded(() => mapi<Page<Category>>('GET', '/m/categories'));
  if (r) {
    update({ categories: r.items });
    await idbSet('m.categories', r.items);
  }
}

export async function syncAll(): Promise<void> {
  if (!state.token) return;
  await outbox.flush();
  await Promise.all([refreshMe(), refreshTasks(), refreshReports(), state.categories.length ? Promise.resolve() : refreshCategories()]);
}

// ---- realtime ---------------------------------------------------------------------------------

function seenCommand(cmdId: string): boolean {
  const seen = JSON.parse(localStorage.getItem(SEEN_CMDS) ?? '[]') as string[];
  if (seen.includes(cmdId)) return true;
  localStorage.setItem(SEEN_CMDS, JSON.stringify([...seen.slice(-49), cmdId]));
  return false;
}

function connect(): void {
  if (socket || !state.token) return;
  const path = new URL('../socket.io', document.baseURI).pathname;
  socket = io({ path, auth: { token: state.token }, transports: ['websocket', 'polling'] });
  socket.on('connect', () => {
    update({ live: true });
    outbox.unblock();
    void syncAll();
  });
  socket.on('disconnect', () => update({ live: false }));
  socket.on('connect_error', (err: Error & { data?: { code?: string } }) => {
    update({ live: false });
    if (err.data?.code === 'TOKEN_INVALID') endSession();
  });
  socket.on('command', (cmd: DispatchCommand) => {
    if (seenCommand(cmd.cmdId)) return;
    if (cmd.type === 'dispatch' && cmd.case) {
      update({ fresh: [...new Set([...state.fresh, cmd.case.id])] });
      alertNewTask(cmd.case);
    }
    void refreshTasks();
    void refreshMe();
  });
  socket.on('task', () => {
    void refreshTasks();
    void refreshReports();
    void refreshMe();
  });
}

export function markSeen(taskId: string): void {
  if (state.fresh.includes(taskId)) update({ fresh: state.fresh.filter((id) => id !== taskId) });
}

// ---- actions ----------------------------------------------------------------------------------

export async function setDuty(onDuty: boolean): Promise<void> {
  if (!state.me) return;
  const me = { ...state.me, worker: { ...state.me.worker, onDuty, status: onDuty ? (state.me.worker.caseId ? state.me.worker.status : 'available') : 'off_duty' } } as Me;
  saveMe(me);
  applyDuty(me);
  await outbox.add({ kind: 'duty', onDuty });
}

/** Applies an action locally at once (so the worker sees it offline) and queues it. */
export async function taskAction(task: Task, action: 'accept' | 'decline' | 'arrive' | 'resolve', note: string | undefined, photos: Blob[], opId: string): Promise<void> {
  const next = WORKFLOW[action].to!;
  const now = Date.now();
  const tasks = state.tasks.map((t) => (t.id === task.id
    ? { ...t, status: next, mine: action !== 'decline', history: [...t.history, { ts: now, action, from: t.status, to: next, by: state.me?.worker.name ?? '', note: note ?? null }] }
    : t));
  update({ tasks });
  await idbSet('m.tasks', tasks);
  await outbox.add({ kind: 'action', caseId: task.id, action, opId, ...(note ? { note } : {}), ts: now, photos });
}

export async function submitReport(r: { reportId: string; category: Category; description?: string; lat: number; lon: number; photos: Blob[] }): Promise<void> {
  await outbox.add({ kind: 'report', reportId: r.reportId, category: r.category.code, categoryName: r.category.name, ...(r.description ? { description: r.description } : {}), lat: r.lat, lon: r.lon, ts: Date.now(), photos: r.photos });
}
