/**
 * Cameras watched all the time: every registered camera is probed on a
 * schedule with RTSP OPTIONS + DESCRIBE (RFC 2326 10.1, 10.2), whether or
 * not anyone watches it.
 *
 *   online    DESCRIBE answered 200 with a video track (or the stream is live)
 *   degraded  the camera answers but cannot be played: authentication
 *             refused, stream not found, no video track, an RTSP error
 *   offline   no RTSP answer: connection refused, timeout, unreachable
 *
 * A healthy camera is probed every `intervalS`; a failing one backs off from
 * `retryMinS` doubling to `retryMaxS` (minutes), with jitter so a switch
 * coming back does not get every probe at once. At most `concurrency`
 * probes run at once. A camera offline for `alarmAfterS` raises the alarm
 * 摄像头离线 (through the bus, the rules module stores it); its return clears
 * it. State changes are logged once each, with the reason: a camera that
 * stays down costs no log lines.
 */
import { createHash, randomBytes } from 'node:crypto';
import { connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { Logger } from '../core/logger.js';
import { redactText, urlSecrets } from './url.js';

export type Health = 'unknown' | 'online' | 'degraded' | 'offline';

export interface ProbeResult {
  state: 'online' | 'degraded' | 'offline';
  reason: string;
  ms: number;
}

export interface HealthSettings {
  intervalS: number;
  retryMinS: number;
  retryMaxS: number;
  timeoutS: number;
  alarmAfterS: number;
  concurrency: number;
}

export const defaultHealthSettings: HealthSettings = {
  intervalS: 30,
  retryMinS: 5,
  retryMaxS: 300,
  timeoutS: 5,
  alarmAfterS: 120,
  concurrency: 8,
};

interface Response {
  status: number;
  headers: Map<string, string>;
  body: string;
}

const md5 = (s: string) => createHash('md5').update(s).digest('hex');

/** Authorization for a 401 challenge (RFC 2617 Basic or Digest without qop, as RTSP cameras use it; qop=auth when asked). */
function authorization(challenge: string, user: string, pass: string, method: string, uri: string): string | null {
  if (/^basic/i.test(challenge)) return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
  if (!/^digest/i.test(challenge)) return null;
  const p = new Map<string, string>();
  for (const m of challenge.slice(6).matchAll(/(\w+)=(?:"([^"]*)"|([^,\s]*))/g)) p.set(m[1]!.toLowerCase(), m[2] ?? m[3] ?? '');
  const realm = p.get('realm') ?? '';
  const nonce = p.get('nonce') ?? '';
  const ha1 = md5(`${user}:${realm}:${pass}`);
  const ha2 = md5(`${method}:${uri}`);
  if (p.get('qop')?.split(',').map((s) => s.trim()).includes('auth')) {
    const cnonce = randomBytes(8).toString('hex');
    const nc = '00000001';
    const response = md5(`${ha1}:${nonce}:${nc}:${cnonce}:auth:${ha2}`);
    return `Digest username="${user}", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${response}", qop=auth, nc=${nc}, cnonce="${cnonce}"`;
  }
  return `Digest username="${user}", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${md5(`${ha1}:${nonce}:${ha2}`)}"`;
}

/**
 * One probe: connects to `address` (already checked against the allow-list),
 * OPTIONS then DESCRIBE, answering one authentication challenge. Never
 * throws; the reason never contains credentials.
 */
export function probeRtsp(u: URL, address: string, timeoutMs: number): Promise<ProbeResult> {
  const t0 = Date.now();
  const port = Number(u.port || (u.protocol === 'rtsps:' ? 322 : 554));
  const uri = `${u.protocol}//${u.host}${u.pathname}${u.search}`;
  const user = decodeURIComponent(u.username);
  const pass = decodeURIComponent(u.password);
  return new Promise((resolve) => {
    let socket: Socket;
    let done = false;
    let buf = Buffer.alloc(0);
    let cseq = 0;
    let pending: ((r: Response) => void) | null = null;
    const finish = (state: ProbeResult['state'], reason: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ state, reason: redactText(reason, urlSecrets(u)), ms: Date.now() - t0 });
    };
    const timer = setTimeout(() => finish('offline', `no RTSP answer within ${Math.round(timeoutMs / 1000)} s`), timeoutMs);
    const send = (method: string, auth?: string): Promise<Response> =>
      new Promise((res) => {
        pending = res;
        const lines = [`${method} ${uri} RTSP/1.0`, `CSeq: ${++cseq}`, 'User-Agent: GridLink health probe'];
        if (method === 'DESCRIBE') lines.push('Accept: application/sdp');
        if (auth) lines.push(`Authorization: ${auth}`);
        socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      });
    const opts = { host: address, port };
    socket = u.protocol === 'rtsps:'
      ? tlsConnect({ ...opts, servername: u.hostname, rejectUnauthorized: false })
      : tcpConnect(opts);
    socket.on('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'ECONNREFUSED' ? 'connection refused' : err.code === 'EHOSTUNREACH' || err.code === 'ENETUNREACH' ? 'host unreachable' : err.code ?? err.message;
      finish('offline', why);
    });
    socket.on('close', () => finish('offline', 'connection closed by the camera'));
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
        const headers = new Map<string, string>();
        for (const l of lines.slice(1)) {
          const i = l.indexOf(':');
          if (i > 0) headers.set(l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim());
        }
        const len = Number(headers.get('content-length') ?? 0);
        if (buf.length < end + 4 + len) return;
        const body = buf.subarray(end + 4, end + 4 + len).toString('utf8');
        buf = buf.subarray(end + 4 + len);
        const m = /^RTSP\/1\.\d (\d{3})/.exec(lines[0] ?? '');
        const p = pending;
        pending = null;
        if (!m) return finish('degraded', 'not an RTSP answer');
        p?.({ status: Number(m[1]), headers, body });
      }
    });
    socket.once(u.protocol === 'rtsps:' ? 'secureConnect' : 'connect', () => {
      void (async () => {
        const o = await send('OPTIONS');
        // Some cameras want authentication for OPTIONS too; DESCRIBE decides.
        if (o.status >= 500) return finish('degraded', `OPTIONS answered ${o.status}`);
        let d = await send('DESCRIBE');
        if (d.status === 401) {
          const challenge = d.headers.get('www-authenticate') ?? '';
          const auth = u.username ? authorization(challenge, user, pass, 'DESCRIBE', uri) : null;
          if (!auth) return finish('degraded', u.username ? 'unsupported authentication scheme' : 'camera requires credentials');
          d = await send('DESCRIBE', auth);
          if (d.status === 401) return finish('degraded', 'credentials refused (401)');
        }
        if (d.status === 404) return finish('degraded', 'stream not found (404)');
        if (d.status !== 200) return finish('degraded', `DESCRIBE answered ${d.status}`);
        if (!/^m=video /m.test(d.body)) return finish('degraded', 'no video track in the SDP');
        finish('online', 'DESCRIBE ok');
      })();
    });
  });
}

export interface WatchedCamera {
  url: URL;
  address: string;
}

export interface HealthInfo {
  state: Health;
  reason: string;
  since: number;
  lastProbeAt: number | null;
  nextProbeAt: number | null;
  failures: number;
  alarmed: boolean;
}

interface Entry extends HealthInfo {
  probing: boolean;
}

export interface HealthChange {
  cameraId: string;
  state: Health;
  from: Health;
  reason: string;
  ts: number;
}

export class CameraHealth {
  private readonly entries = new Map<string, Entry>();
  private timer: NodeJS.Timeout | null = null;
  private running = 0;
  /** Probes sent so far (the benchmark reads it). */
  probes = 0;

  constructor(
    private readonly deps: {
      settings: HealthSettings;
      logger: Logger;
      /** Where to probe; throws (allow-list, bad URL) → degraded with that reason. */
      target: (cameraId: string) => Promise<WatchedCamera>;
      /** The camera's stream is live: it is online without a probe. */
      live: (cameraId: string) => boolean;
      ids: () => string[];
      onChange: (c: HealthChange) => void;
      onAlarm: (cameraId: string, raised: boolean, reason: string, ts: number) => void;
      probe?: typeof probeRtsp;
      now?: () => number;
      random?: () => number;
    },
  ) {}

  private now(): number {
    return this.deps.now ? this.deps.now() : Date.now();
  }

  start(tickMs = 1000): void {
    this.timer = setInterval(() => this.tick(), tickMs);
    this.timer.unref();
    this.tick();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  get(id: string): HealthInfo {
    const e = this.entries.get(id);
    if (!e) return { state: 'unknown', reason: 'not probed yet', since: this.now(), lastProbeAt: null, nextProbeAt: null, failures: 0, alarmed: false };
    const { probing: _p, ...info } = e;
    return info;
  }

  forget(id: string): void {
    const e = this.entries.get(id);
    if (e?.alarmed) this.deps.onAlarm(id, false, 'camera removed', this.now());
    this.entries.delete(id);
  }

  /** Probe this camera at the next tick (its stream stalled, or it was just registered). */
  probeSoon(id: string): void {
    const e = this.entry(id);
    if (e.nextProbeAt !== null && e.nextProbeAt > this.now()) e.nextProbeAt = this.now();
  }

  /** Probes now and answers with the fresh verdict (someone asked to watch a camera the schedule thinks is down). */
  async probeNow(id: string): Promise<HealthInfo> {
    const e = this.entry(id);
    if (!e.probing) {
      e.probing = true;
      try {
        await this.probeOne(id, e);
      } finally {
        e.probing = false;
      }
    }
    return this.get(id);
  }

  private entry(id: string): Entry {
    let e = this.entries.get(id);
    if (!e) {
      const now = this.now();
      // First probes spread over the first second or so of each interval slot.
      e = { state: 'unknown', reason: 'not probed yet', since: now, lastProbeAt: null, nextProbeAt: now + Math.floor(this.rand() * 1000), failures: 0, alarmed: false, probing: false };
      this.entries.set(id, e);
    }
    return e;
  }

  private rand(): number {
    return this.deps.random ? this.deps.random() : Math.random();
  }

  tick(): void {
    const now = this.now();
    const ids = new Set(this.deps.ids());
    for (const id of [...this.entries.keys()]) if (!ids.has(id)) this.forget(id);
    const s = this.deps.settings;
    for (const id of ids) {
      const e = this.entry(id);
      if (this.deps.live(id)) {
        // A live stream is the best probe there is.
        if (e.state !== 'online') this.apply(id, e, { state: 'online', reason: 'streaming', ms: 0 });
        e.nextProbeAt = Math.max(e.nextProbeAt ?? 0, now + s.intervalS * 1000);
        continue;
      }
      if (e.state === 'offline' && !e.alarmed && now - e.since >= s.alarmAfterS * 1000) {
        e.alarmed = true;
        this.deps.onAlarm(id, true, e.reason, now);
      }
      if (e.probing || this.running >= s.concurrency || e.nextProbeAt === null || e.nextProbeAt > now) continue;
      e.probing = true;
      this.running++;
      void this.probeOne(id, e).finally(() => {
        e.probing = false;
        this.running--;
      });
    }
  }

  private async probeOne(id: string, e: Entry): Promise<void> {
    let r: ProbeResult;
    try {
      const t = await this.deps.target(id);
      this.probes++;
      r = await (this.deps.probe ?? probeRtsp)(t.url, t.address, this.deps.settings.timeoutS * 1000);
    } catch (err) {
      r = { state: 'degraded', reason: (err as Error).message, ms: 0 };
    }
    if (!this.entries.has(id)) return;
    this.apply(id, e, r);
  }

  private apply(id: string, e: Entry, r: ProbeResult): void {
    const now = this.now();
    const s = this.deps.settings;
    e.lastProbeAt = now;
    if (r.state === 'online') {
      e.failures = 0;
      e.nextProbeAt = now + s.intervalS * 1000 * (0.9 + this.rand() * 0.2);
    } else {
      e.failures++;
      const base = Math.min(s.retryMaxS, s.retryMinS * 2 ** (e.failures - 1)) * 1000;
      e.nextProbeAt = now + base / 2 + this.rand() * (base / 2);
    }
    if (r.state !== e.state) {
      const from = e.state;
      e.state = r.state;
      e.reason = r.reason;
      e.since = now;
      const line = { cameraId: id, from, to: r.state, reason: r.reason };
      // A first verdict of "down" is an inventory fact (info); a camera that was seen and went away is a warning.
      if (r.state === 'online' || from === 'unknown') this.deps.logger.info(line, `camera ${r.state}`);
      else this.deps.logger.warn(line, `camera ${r.state}`);
      this.deps.onChange({ cameraId: id, state: r.state, from, reason: r.reason, ts: now });
      if (r.state === 'online' && e.alarmed) {
        e.alarmed = false;
        this.deps.onAlarm(id, false, r.reason, now);
      }
    } else {
      e.reason = r.reason;
    }
  }
}
