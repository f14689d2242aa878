/**
 * A small REST client for the hub (docs/contract.md section 5). Every body it
 * sends and every answer it reads is a type of `@gridlink/devices/contract`,
 * so a change there that breaks the simulators fails the type check. Errors keep the
 * hub's `{code, message}` so callers match on code; a route the hub does
 * not have yet (another module still being built) is told apart from a
 * missing resource so provisioning can skip it with a clear message.
 */
import type {
  CandidatesQuery, Camera, CaseActionBody, CaseCounts, CaseDetail, CaseFilterQuery, CaseListQuery, CaseSummary, Candidate, CreateCameraBody, CreateWorkerBody,
  Device, DeviceSecret, DevicesQuery, DutyBody, GridsReplaced, GridUpload, LoginBody, LoginResponse, Page, RegisteredCamera,
  RegisteredDevice, RegisterDeviceBody, Telemetry, TelemetryQuery, Worker, WorkersQuery,
} from '@gridlink/devices/contract';

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

export class HubClient {
  private token: string | null = null;
  readonly base: string;

  constructor(baseUrl: string, private readonly timeoutMs = 30_000) {
    this.base = baseUrl.replace(/\/+$/, '');
  }

  get api(): string {
    return `${this.base}/api/v1`;
  }

  async login(username: string, password: string): Promise<LoginResponse> {
    const body: LoginBody = { username, password };
    const res = await this.request<LoginResponse>('POST', '/auth/login', body, { auth: false });
    this.token = res.token;
    return res;
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

  // ---- typed calls: the contract's bodies and answers ----------------------------------------

  /** `PUT /grids`: replaces the hierarchy. */
  putGrids(body: GridUpload): Promise<GridsReplaced> {
    return this.put('/grids', body);
  }

  /** `GET /devices` (not paged). */
  listDevices(query: DevicesQuery = {}): Promise<Page<Device>> {
    return this.get(`/devices${qs(query)}`);
  }

  getDevice(id: string): Promise<Device> {
    return this.get(`/devices/${encodeURIComponent(id)}`);
  }

  /** `POST /devices`: the answer carries the secret once. */
  registerDevice(body: RegisterDeviceBody): Promise<RegisteredDevice> {
    return this.post('/devices', body);
  }

  rotateSecret(deviceId: string): Promise<DeviceSecret> {
    return this.post(`/devices/${encodeURIComponent(deviceId)}/rotate-secret`);
  }

  telemetry(deviceId: string, query: TelemetryQuery = {}): Promise<Telemetry> {
    return this.get(`/devices/${encodeURIComponent(deviceId)}/telemetry${qs(query)}`);
  }

  /** `GET /cameras` (answers 404 "no route" while the video module is not loaded). */
  listCameras(): Promise<Page<Camera>> {
    return this.get('/cameras');
  }

  /** `POST /cameras`: also a `camera` device; the answer carries its MQTT secret once. */
  createCamera(body: CreateCameraBody): Promise<RegisteredCamera> {
    return this.post('/cameras', body);
  }

  /** One page of `GET /cases`, newest first. */
  listCases(query: CaseListQuery = {}): Promise<Page<CaseSummary>> {
    return this.get(`/cases${qs(query)}`);
  }

  /** Every case the filters select, following `nextCursor` past the first page. */
  async allCases(query: CaseListQuery = {}): Promise<CaseSummary[]> {
    const out: CaseSummary[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.listCases({ ...query, ...(cursor ? { cursor } : {}) });
      out.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor);
    return out;
  }

  /** `GET /cases/counts`: exact counts of what the filters select (by status, overdue, ...), however many pages that is. */
  caseCounts(query: CaseFilterQuery = {}): Promise<CaseCounts> {
    return this.get(`/cases/counts${qs(query)}`);
  }

  getCase(id: string): Promise<CaseDetail> {
    return this.get(`/cases/${encodeURIComponent(id)}`);
  }

  caseAction(id: string, action: CaseActionBody['action'], extra: Omit<CaseActionBody, 'action'> = {}): Promise<CaseSummary> {
    const body: CaseActionBody = { action, ...extra };
    return this.post(`/cases/${encodeURIComponent(id)}/actions`, body);
  }

  candidates(caseId: string, limit: CandidatesQuery['limit'] = 5): Promise<Page<Candidate>> {
    return this.get(`/cases/${encodeURIComponent(caseId)}/candidates${qs({ limit })}`);
  }

  listWorkers(query: WorkersQuery = {}): Promise<Page<Worker>> {
    return this.get(`/workers${qs(query)}`);
  }

  getWorker(id: string): Promise<Worker> {
    return this.get(`/workers/${encodeURIComponent(id)}`);
  }

  createWorker(body: CreateWorkerBody): Promise<Worker> {
    return this.post('/workers', body);
  }

  setDuty(workerId: string, onDuty: boolean): Promise<Worker> {
    const body: DutyBody = { onDuty };
    return this.post(`/workers/${encodeURIComponent(workerId)}/duty`, body);
  }
}

/** A query string from a contract query object (undefined members left out); empty when nothing is set. */
function qs(query: Record<string, string | number | boolean | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) q.set(k, String(v));
  return q.size ? `?${q}` : '';
}

/** Category of a case as one comparable string set: code, name and English name. */
export function categoryNames(c: CaseSummary['category']): string[] {
  return [c.code, c.name, c.nameEn].filter((x): x is string => typeof x === 'string');
}
