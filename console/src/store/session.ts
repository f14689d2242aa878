/** The signed-in user and token; kept in localStorage so a wall screen survives a reload. */
import { post, setToken, setUnauthorizedHandler } from '../api/client';
import type { LoginResponse, Role } from '../api/types';
import { connect, disconnect } from '../realtime/socket';
import { resetAll } from './data';
import { Value } from './entities';
import { setForcedPopups } from './alarm-queue';

/** What `POST /auth/login` answers. */
export type Session = LoginResponse;

const KEY = 'gridlink.session';
export const session = new Value<Session | null>(null);

function begin(s: Session): void {
  setToken(s.token);
  session.set(s);
  setForcedPopups(watchesAlarms(s.user.role));
  connect(s.token);
}

export async function login(username: string, password: string): Promise<void> {
  const s = await post<Session>('/auth/login', { username, password });
  localStorage.setItem(KEY, JSON.stringify(s));
  begin(s);
}

export function logout(): void {
  localStorage.removeItem(KEY);
  disconnect();
  setToken(null);
  setForcedPopups(false);
  resetAll();
  session.set(null);
}

export function restore(): void {
  try {
    const s = JSON.parse(localStorage.getItem(KEY) ?? 'null') as Session | null;
    if (s?.token && s.user) begin(s);
  } catch {
    localStorage.removeItem(KEY);
  }
}

setUnauthorizedHandler(() => logout());

/** Roles and what they may do in the console (the hub enforces the same on every route). */
export const watchesAlarms = (r: Role) => r === 'officer' || r === 'dispatcher' || r === 'admin';
