/**
 * A small REST client for the hub (CONTRACT section 5). Errors keep the
 * hub's `{code, message}` so callers match on code; a route the hub does
 * not have yet (another module still being built) is told apart from a
 * missing resource so provisioning can skip it with a clear message.
 */
export class HubError extends Error {
  constructor(readonly status: number, readonly code: string, readonly hubMessage: string, readonly method: string, readonly path: string) {
    super(`${method} ${path}: ${status} ${code}: ${hubMessage}`);
    this.name = 'HubError';
  }

  /** The hub answered "no such route": the module that serves it is not loaded. */
  get routeMissing(): boolean {
    return this.status === 404 && (this.code === 'NOT_FOUND' || this.code === 'FST_ERR_NOT_FOUND') && /^(no route|Route )/.test(this.hubMessage);
  }
}

export interface CaseView {
  id: string;
  code: string;
  title?: string;
  status: string;
  category: { code: string; name: string; nameEn?: string } | string;
  severity?: string;
  gridId: string | null;
  workerId?: string | null;
  source?: string;
  lat: number;
  lon: number;
  createdAt?: number;
  updatedAt?: number;
  history?: Array<{ action?: string; status?: string; from?: string; to?: string; actor?: unknown; ts?: number; at?: number }>;
}

export interface WorkerView {
  id: string;
  name: string;
  deviceId: string;
  gridIds?: string[];
  status: string;
  position?: { lat: number; lon: number; ts: number } | null;
}

export class HubClient {
  private token: string | null = null;
  readonly base: string;

  constructor(baseUrl: string, private readonly timeoutMs = 30_000) {
    this.base = baseUrl.replace(/\/+$/, '');
  }

  get api(): string {
    return `${this.base}/api/v1`;
  }

  async login(username: string, password: string): Promise<void> {
    const res = await this.request<{ token: string }>('POST', '/auth/login', { username, password }, { auth: false });
    this.token = res.token;
  }

  setToken(token: string): void {
    this.token = token;
  }

  async request<T>(method: string, path: string, body?: unknown, opts: { auth?: boolean } = {}): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (opts.auth !== false && this.token) headers.authorization = `Bearer ${this.token}`;
    const res = await fetch(this.api + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    const text = await res.text();
    let json: unknown = undefined;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      /* not JSON: reported below */
    }
    if (!res.ok) {
      const e = (json ?? {}) as { code?: string; message?: string };
      throw new HubError(res.status, e.code ?? `HTTP_${res.status}`, e.message ?? text.slice(0, 200), method, path);
    }
    return json as T;
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  post<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>('POST', path, body ?? {});
  }

  put<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PUT', path, body);
  }

  async healthy(): Promise<boolean> {
    try {
      await this.request('GET', '/healthz', undefined, { auth: false });
      return true;
    } catch {
      return false;
    }
  }

  // ---- typed helpers for what the simulators use ------------------------------------------

  listCases(query: { status?: string; gridId?: string } = {}): Promise<{ items: CaseView[] }> {
    const q = new URLSearchParams(Object.entries(query).filter(([, v]) => v !== undefined) as Array<[string, string]>);
    return this.get(`/cases${q.size ? `?${q}` : ''}`);
  }

  getCase(id: string): Promise<CaseView> {
    return this.get(`/cases/${encodeURIComponent(id)}`);
  }

  caseAction(id: string, action: string, extra: { workerId?: string; note?: string } = {}): Promise<CaseView> {
    return this.post(`/cases/${encodeURIComponent(id)}/actions`, { action, ...extra });
  }

  candidates(caseId: string, limit = 5): Promise<{ items: Array<{ workerId: string; distanceM: number; etaS?: number; status: string }> }> {
    return this.get(`/cases/${encodeURIComponent(caseId)}/candidates?limit=${limit}`);
  }

  listWorkers(): Promise<{ items: WorkerView[] }> {
    return this.get('/workers');
  }

  setDuty(workerId: string, onDuty: boolean): Promise<unknown> {
    return this.post(`/workers/${encodeURIComponent(workerId)}/duty`, { onDuty });
  }
}

/** Category of a case as one comparable string set: code, name and English name. */
export function categoryNames(c: CaseView['category']): string[] {
  if (typeof c === 'string') return [c];
  return [c.code, c.name, c.nameEn].filter((x): x is string => typeof x === 'string');
}
