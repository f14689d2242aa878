/**
 * The app's REST client for /api/v1/m. Paths resolve against the app's own
 * URL (`/m/` → `/api/v1/...`), so the same build works behind a reverse proxy
 * under a sub-path. The session token is the handheld session, never a device
 * secret.
 */
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

export interface MeWorker {
  id: string;
  name: string;
  team: string;
  teamName: string;
  deviceId: string;
  gridIds: string[];
  onDuty: boolean;
  status: 'off_duty' | 'available' | 'dispatched' | 'en_route' | 'on_scene';
  caseId: string | null;
  online: boolean;
  position: { lat: number; lon: number; ts: number } | null;
}
export interface Me {
  worker: MeWorker;
  grids: Array<{ id: string; name: string; level: string; geometry: { type: string; coordinates: unknown } }>;
  settings: { positionIntervalS: number; minMoveM: number; minGapS: number; staleAfterS: number; maxPhotos: number };
  session: { id: string; createdAt: number; expiresAt: number; deviceId: string };
  serverTime: number;
}
export interface Task {
  id: string;
  code: string;
  title: string;
  description: string | null;
  status: string;
  category: { code: string; name: string };
  severity: string;
  lat: number;
  lon: number;
  address: string | null;
  gridId: string | null;
  deadline: number;
  overdue: boolean;
  createdAt: number;
  updatedAt: number;
  mine: boolean;
  history: Array<{ ts: number; action: string; from: string | null; to: string | null; by: string; note: string | null }>;
  photos: Array<{ id: string; kind: string; url: string; createdAt: number }>;
}
export interface Report {
  reportId: string | null;
  caseId: string;
  code: string;
  status: string;
  category: { code: string; name: string };
  createdAt: number;
  updatedAt: number;
  lat: number;
  lon: number;
  description: string | null;
  outcome: string | null;
}
export interface Category {
  code: string;
  kind: 'event' | 'component';
  majorCode: string;
  majorName: string;
  name: string;
  nameEn: string;
}
export interface DispatchCommand {
  cmdId: string;
  type: 'dispatch' | 'cancel';
  ts: number;
  case?: { id: string; code: string; title: string; category: string; lat: number; lon: number; address?: string; deadline: number };
  caseId?: string;
}
