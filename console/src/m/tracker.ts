/**
 * Position while on duty: `watchPosition` for movement plus a timer that asks
 * for a fresh fix every `positionIntervalS` when the worker stands still.
 * A fix is sent when the interval has passed or the worker moved `minMoveM`
 * from the last sent fix, never closer than `minGapS` to the previous one,
 * so a phone in a pocket costs one small request per interval. Every fix goes
 * through the outbox, so the track has no hole when the network drops.
 */
import { haversineM } from '@gridlink/devices/geo';
import type { Fix, Outbox } from './outbox';

export type GpsState = 'idle' | 'waiting' | 'ok' | 'stale' | 'denied' | 'unavailable';

export interface TrackerSettings {
  positionIntervalS: number;
  minMoveM: number;
  minGapS: number;
  staleAfterS: number;
}

interface BatteryManager {
  level: number;
  addEventListener(t: 'levelchange', fn: () => void): void;
}

export class Tracker {
  state: GpsState = 'idle';
  last: Fix | null = null;
  lastSent: Fix | null = null;
  battery: number | null = null;
  sent = 0;
  /** Timestamps of the fixes handed to the outbox this session (the track the hub must end up with). */
  readonly sentTs: number[] = [];
  private watchId: number | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;
  private staleTimer: ReturnType<typeof setInterval> | null = null;
  private listeners = new Set<() => void>();

  constructor(private readonly outbox: Outbox, private settings: TrackerSettings) {
    const nav = navigator as Navigator & { getBattery?: () => Promise<BatteryManager> };
    void nav.getBattery?.().then((b) => {
      const read = () => {
        this.battery = Math.round(b.level * 100);
        this.emit();
      };
      read();
      b.addEventListener('levelchange', read);
    }).catch(() => undefined);
  }

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private emit(): void {
    for (const l of this.listeners) l();
  }

  configure(s: TrackerSettings): void {
    const restart = this.running && s.positionIntervalS !== this.settings.positionIntervalS;
    this.settings = s;
    if (restart) {
      this.stop();
      this.start();
    }
  }

  get running(): boolean {
    return this.watchId !== null;
  }

  start(): void {
    if (this.running || !('geolocation' in navigator)) {
      if (!('geolocation' in navigator)) this.set('unavailable');
      return;
    }
    this.set(this.last ? this.state : 'waiting');
    const opts: PositionOptions = { enableHighAccuracy: true, maximumAge: 0, timeout: 30_000 };
    this.watchId = navigator.geolocation.watchPosition((p) => this.onFix(p, false), (e) => this.onError(e), opts);
    this.timer = setInterval(() => {
      // A move that came too soon after the previous send goes now.
      if (this.last && this.lastSent && this.last.ts > this.lastSent.ts) this.send(this.last);
      navigator.geolocation.getCurrentPosition((p) => this.onFix(p, true), (e) => this.onError(e), opts);
    }, this.settings.positionIntervalS * 1000);
    this.staleTimer = setInterval(() => this.checkStale(), 5_000);
  }

  stop(): void {
    if (this.watchId !== null) navigator.geolocation.clearWatch(this.watchId);
    if (this.timer) clearInterval(this.timer);
    if (this.staleTimer) clearInterval(this.staleTimer);
    this.watchId = null;
    this.timer = null;
    this.staleTimer = null;
    this.set('idle');
  }

  private set(s: GpsState): void {
    if (this.state !== s) {
      this.state = s;
      this.emit();
    }
  }

  private checkStale(): void {
    if (this.state === 'ok' && this.last && Date.now() - this.last.ts > this.settings.staleAfterS * 1000) this.set('stale');
  }

  private onError(e: GeolocationPositionError): void {
    if (e.code === e.PERMISSION_DENIED) this.set('denied');
    else if (!this.last) this.set('unavailable');
    else this.checkStale();
  }

  private onFix(p: GeolocationPosition, timed: boolean): void {
    const c = p.coords;
    const fix: Fix = { ts: Math.round(p.timestamp), lat: c.latitude, lon: c.longitude };
    if (c.accuracy !== null && Number.isFinite(c.accuracy)) fix.acc = Math.round(c.accuracy * 10) / 10;
    if (c.speed !== null && Number.isFinite(c.speed)) fix.spd = c.speed;
    if (c.heading !== null && Number.isFinite(c.heading)) fix.hdg = c.heading;
    if (c.altitude !== null && Number.isFinite(c.altitude)) fix.alt = c.altitude;
    if (this.battery !== null) fix.batt = this.battery;
    this.last = fix;
    this.set(Date.now() - fix.ts > this.settings.staleAfterS * 1000 ? 'stale' : 'ok');
    this.emit();
    if (this.shouldSend(fix, timed)) this.send(fix);
  }

  private send(fix: Fix): void {
    this.lastSent = fix;
    this.sent++;
    if (this.sentTs.length < 10_000) this.sentTs.push(fix.ts);
    void this.outbox.add({ kind: 'positions', items: [fix] });
  }

  /** The send policy (exported through the class for tests and the benchmark). */
  shouldSend(fix: Fix, timed: boolean): boolean {
    const prev = this.lastSent;
    if (!prev) return true;
    if (fix.ts <= prev.ts) return false;
    const gap = (fix.ts - prev.ts) / 1000;
    if (gap < this.settings.minGapS) return false;
    // The timer fires every interval; a fix sent by movement just before it is enough.
    if (gap >= this.settings.positionIntervalS * (timed ? 0.9 : 1)) return true;
    return haversineM(prev.lat, prev.lon, fix.lat, fix.lon) >= this.settings.minMoveM;
  }
}
