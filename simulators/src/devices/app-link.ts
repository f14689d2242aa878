/**
 * A simulated handheld that speaks the worker app's API (/api/v1/m) instead
 * of MQTT, as 网格通 on a phone does: it signs in with the worker's own user
 * (no device secret), sends fixes, duty, task actions and reports over REST
 * (photos as multipart parts, every write with its idempotency key), and
 * learns of dispatches by re-reading its task list. Same surface as
 * DeviceLink, so SimHandheld drives either.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Channel, ChannelPayloads, Command, LocationItem } from '@gridlink/devices';
import type {
  MobileDutyBody, MobileFix, MobileMe, MobilePositionsBody, MobileReport, MobileReportBody, MobileSignedIn, MobileSignInBody, MobileTask,
  MobileTaskActionBody, MobileTaskActionResult, Page,
} from '@gridlink/devices/contract';
import type { LinkEvents, LinkStats } from './link.js';

export interface AppLinkOptions {
  /** Hub base URL, e.g. http://127.0.0.1:8080 */
  base: string;
  deviceId: string;
  username: string;
  password: string;
  /** How often the task list is re-read for new dispatches (wall ms). */
  pollMs?: number;
}

const FIX_FIELDS = ['acc', 'alt', 'spd', 'hdg', 'batt'] as const satisfies ReadonlyArray<keyof MobileFix & keyof LocationItem>;
const opId = () => `op-${Date.now().toString(36)}${randomBytes(5).toString('hex')}`;

export class AppLink extends EventEmitter<LinkEvents> {
  readonly stats: LinkStats = { connects: 0, disconnects: 0, published: 0, acked: 0, errors: 0, authFailures: 0 };
  private token: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  private pausedUntil = 0;
  /** Dispatches already announced: case id + dispatch count. */
  private seen = new Set<string>();
  private active = new Set<string>();

  constructor(readonly opts: AppLinkOptions) {
    super();
  }

  get deviceId(): string {
    return this.opts.deviceId;
  }

  get connected(): boolean {
    return this.token !== null && Date.now() >= this.pausedUntil;
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {};
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    let payload: FormData | string | undefined;
    if (body instanceof FormData) payload = body;
    else if (body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    const res = await fetch(`${this.opts.base}/api/v1${path}`, { method, headers, body: payload });
    const text = await res.text();
    if (!res.ok) throw new Error(`${this.deviceId}: ${method} ${path} → ${res.status} ${text.slice(0, 200)}`);
    return (text ? JSON.parse(text) : null) as T;
  }

  async connect(): Promise<void> {
    try {
      const body: MobileSignInBody = { username: this.opts.username, password: this.opts.password };
      const r = await this.call<MobileSignedIn>('POST', '/m/session', body);
      this.token = r.token;
    } catch (err) {
      this.stats.authFailures++;
      throw err;
    }
    this.stats.connects++;
    this.emit('connect');
    this.timer = setInterval(() => void this.poll().catch((err: Error) => this.emit('error', err)), this.opts.pollMs ?? 3_000);
    this.timer.unref();
    await this.poll();
  }

  /** New dispatches become `dispatch` commands; a task taken away becomes `cancel`. */
  private async poll(): Promise<void> {
    if (!this.connected) return;
    const { items } = await this.call<Page<MobileTask>>('GET', '/m/tasks');
    const nowActive = new Set<string>();
    for (const t of items) {
      if (!t.mine || !['dispatched', 'accepted', 'on_scene'].includes(t.status)) continue;
      nowActive.add(t.id);
      const key = `${t.id}:${t.history.filter((h) => h.action === 'dispatch' || h.action === 'rework').length}`;
      if (t.status !== 'dispatched' || this.seen.has(key)) continue;
      this.seen.add(key);
      const cmd: Command = {
        cmdId: `app-${key}`, type: 'dispatch', ts: Date.now(),
        case: { id: t.id, code: t.code, title: t.title, category: t.category.code, lat: t.lat, lon: t.lon, ...(t.address ? { address: t.address } : {}), deadline: t.deadline },
      } as Command;
      this.emit('command', cmd);
    }
    for (const id of this.active) {
      if (!nowActive.has(id)) this.emit('command', { cmdId: `app-cancel-${id}-${Date.now()}`, type: 'cancel', ts: Date.now(), caseId: id } as Command);
    }
    this.active = nowActive;
  }

  /** A multipart body from a contract body: its fields as strings, then the photos as JPEG parts. */
  private form(fields: Omit<MobileReportBody, 'photos'> | Omit<MobileTaskActionBody, 'photos'>, photos: readonly string[] | undefined): FormData {
    const f = new FormData();
    for (const [k, v] of Object.entries(fields)) if (v !== undefined) f.append(k, String(v));
    this.photosForm(f, photos);
    return f;
  }

  private photosForm(f: FormData, photos: readonly string[] | undefined): void {
    for (const [i, b64] of (photos ?? []).entries()) {
      f.append('photos', new Blob([Buffer.from(b64.replace(/^data:[^,]*,/, ''), 'base64')], { type: 'image/jpeg' }), `photo-${i + 1}.jpg`);
    }
  }

  async publish<C extends Channel>(channel: C, body: ChannelPayloads[C]): Promise<void> {
    if (!this.token) throw new Error(`${this.deviceId}: not started`);
    // A dropped "radio": writes wait until it is back, in order (the app's outbox).
    const wait = this.pausedUntil - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    this.stats.published++;
    try {
      // The device channels' bodies (a union keyed by channel) become the worker app's REST bodies.
      const p = { channel, body } as { [K in Channel]: { channel: K; body: ChannelPayloads[K] } }[Channel];
      switch (p.channel) {
        case 'location': {
          const list = Array.isArray(p.body) ? p.body : [p.body];
          const items = list.map((x) => {
            const fix: MobileFix = { ts: epochMs(x.ts), lat: x.lat, lon: x.lon };
            for (const k of FIX_FIELDS) if (x[k] !== undefined) fix[k] = x[k];
            return fix;
          });
          const positions: MobilePositionsBody = { items };
          await this.call('POST', '/m/positions', positions);
          break;
        }
        case 'status':
          if (typeof p.body.duty === 'boolean') await this.call<MobileMe>('POST', '/m/duty', { onDuty: p.body.duty } satisfies MobileDutyBody);
          break;
        case 'report': {
          const { photos, ts, ...r } = p.body;
          const fields: Omit<MobileReportBody, 'photos'> = { ...r, ...(ts !== undefined ? { ts: epochMs(ts) } : {}) };
          await this.call<MobileReport>('POST', '/m/reports', this.form(fields, photos));
          break;
        }
        case 'case': {
          const { caseId, photos, ts, ...c } = p.body;
          const fields: Omit<MobileTaskActionBody, 'photos'> = { ...c, opId: opId(), ...(ts !== undefined ? { ts: epochMs(ts) } : {}) };
          await this.call<MobileTaskActionResult>('POST', `/m/tasks/${encodeURIComponent(caseId)}/actions`, this.form(fields, photos));
          break;
        }
        default:
          break;
      }
      this.stats.acked++;
    } catch (err) {
      this.stats.errors++;
      throw err;
    }
  }

  dropFor(ms: number): void {
    this.pausedUntil = Date.now() + Math.max(1, Math.round(ms));
    this.stats.disconnects++;
    this.emit('disconnect');
    setTimeout(() => {
      this.stats.connects++;
      this.emit('connect');
    }, ms).unref();
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.token) await this.call('DELETE', '/m/session').catch(() => undefined);
    this.token = null;
  }
}

/** The device channels take epoch ms or ISO-8601 (absent: now); the worker app's API takes epoch ms only. */
function epochMs(ts: number | string | undefined): number {
  if (ts === undefined) return Date.now();
  return typeof ts === 'number' ? ts : Date.parse(ts);
}
