/**
 * The app's REST client for /api/v1/m. Paths resolve against the app's own
 * URL (`/m/` → `/api/v1/...`), so the same build works behind a reverse proxy
 * under a sub-path. The session token is the handheld session, never a device
 * secret.
 */
import type { Command, DispatchCommand as DispatchOnly, MobileCategory, MobileMe, MobileReport, MobileTask } from '@gridlink/devices/contract';

export class MApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
    this.name = 'MApiError';
  }
  /** Worth retrying later (network, hub busy) rather than dropping. */
  get retryable(): boolean {
    return this.status === 0 || this.status === 408 || this.status === 429 || this.status >= 500;
  }
}

export const apiBase = (): string => new URL('../api/v1', document.baseURI).pathname;

let token: string | null = null;
let onUnauthorized: (() => void) | null = null;
export const setMToken = (t: string | null) => {
  token = t;
};
export const getMToken = () => token;
export const setUnauthorized = (fn: (() => void) | null) => {
  onUnauthorized = fn;
};

export async function mapi<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  let payload: FormData | string | undefined;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let res: Response;
  try {
    res = await fetch(apiBase() + path, { method, headers, body: payload, cache: 'no-store' });
  } catch (err) {
    throw new MApiError(0, 'NETWORK', (err as Error).message);
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let data: unknown = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { code: 'BAD_RESPONSE', message: text.slice(0, 200) };
  }
  if (!res.ok) {
    const e = (data ?? {}) as { code?: string; message?: string };
    if (res.status === 401 && path !== '/m/session') onUnauthorized?.();
    throw new MApiError(res.status, e.code ?? `HTTP_${res.status}`, e.message ?? res.statusText);
  }
  return data as T;
}

/** An evidence image as an object URL (the token travels in a header, not the URL). */
export async function imageUrl(evidenceId: string): Promise<string> {
  const res = await fetch(`${apiBase()}/m/evidence/${encodeURIComponent(evidenceId)}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  if (!res.ok) throw new MApiError(res.status, `HTTP_${res.status}`, res.statusText);
  return URL.createObjectURL(await res.blob());
}

// ---- shapes ----------------------------------------------------------------------------------

// What the app reads and sends is the contract's (types only: erased from the bundle).
export type Me = MobileMe;
export type MeWorker = MobileMe['worker'];
export type Task = MobileTask;
export type Report = MobileReport;
export type Category = MobileCategory;
/** A downlink command as the app receives it on its socket (dispatch or cancel). */
export type DispatchCommand = Command;
/** The case a dispatch command carries. */
export type DispatchedCase = DispatchOnly['case'];
