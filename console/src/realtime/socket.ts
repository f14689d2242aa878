/**
 * The console's one Socket.IO connection (CONTRACT 6). socket.io-client
 * reconnects with backoff; every (re)connect re-fetches everything over REST
 * so nothing missed while offline stays stale. Handlers only write stores;
 * position bursts go to the batcher, never straight to React.
 */
import { io, type Socket } from 'socket.io-client';
// The contract's event map (types only: erased from the bundle).
import type { ServerToClientEvents } from '@gridlink/devices/contract';
import { alarms, applyCameraState, batcher, cameras, cases, connection, devices, linkage, resync } from '../store/data';
import { onAlarm } from '../store/alarm-queue';

type ServerEvents = ServerToClientEvents;

let socket: Socket<ServerEvents> | null = null;
let pendingCases: Array<Parameters<ServerToClientEvents['case']>[0]> = [];
let caseTimer: ReturnType<typeof setTimeout> | null = null;

function flushCases(): void {
  caseTimer = null;
  const list = pendingCases;
  pendingCases = [];
  cases.upsertMany(list);
}

/** Base path the console is served under, so /socket.io works behind a sub-path too. */
export function basePath(): string {
  return location.pathname.replace(/[^/]*$/, '');
}

export function connect(token: string): void {
  disconnect();
  connection.set('connecting');
  const s: Socket<ServerEvents> = io({ path: `${basePath()}socket.io`, auth: { token }, transports: ['websocket', 'polling'], reconnectionDelayMax: 5000 });
  socket = s;
  s.on('connect', () => {
    connection.set('online');
    void resync();
  });
  s.on('disconnect', () => connection.set('offline'));
  s.on('connect_error', () => connection.set('offline'));
  s.on('alarm', (a) => {
    alarms.upsert(a);
    onAlarm(alarms.get(a.id) ?? a);
  });
  // Case events come in bursts (the supervision pass flags thousands at once after a holiday): applied together
  // every 100 ms, so the board sorts and renders once per batch, not once per event.
  s.on('case', (c) => {
    pendingCases.push(c);
    caseTimer ??= setTimeout(flushCases, 100);
  });
  s.on('positions', (list) => {
    if (!Array.isArray(list)) return;
    batcher.push(list);
  });
  s.on('device', (d) => {
    devices.patch(d.deviceId, { online: d.online, lastSeen: d.lastSeen });
    cameras.patch(d.deviceId, { online: d.online });
  });
  s.on('camera.state', (e) => applyCameraState(e));
  s.on('linkage', (l) => linkage.set(l));
}

export function disconnect(): void {
  if (caseTimer) clearTimeout(caseTimer);
  caseTimer = null;
  pendingCases = [];
  socket?.removeAllListeners();
  socket?.disconnect();
  socket = null;
}
