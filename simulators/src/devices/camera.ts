/**
 * A "天网" AI camera as seen over MQTT: health telemetry, and `alert`s with a
 * JPEG snapshot, at a random rate or on demand. With `rtsp` set it also
 * serves a real RTSP stream through the video engineer's simulated cameras
 * (simulators/src/camera), and the snapshot is a frame of that same picture.
 */
import type { AlertBody } from '@gridlink/devices';
import { photoBase64 } from '../assets/photos.js';
import type { SimDevice } from '../district/generate.js';
import { snapshotJpeg, startRtspCamera, type RtspCamera } from '../camera/index.js';
import type { Rng } from '../util/rng.js';
import { DeviceLink } from './link.js';
import type { DeviceContext } from './sensor.js';

export interface CameraBehaviour {
  telemetryEveryMs?: number;
  /** Mean simulated ms between random alerts; 0 disables them. */
  alertEveryMs?: number;
  /** Serve a real RTSP stream on this port. */
  rtspPort?: number;
  /** Snapshots from ffmpeg (same picture as the stream) instead of the built-in JPEG. */
  ffmpegSnapshots?: boolean;
}

const ALERT_ZH: Record<string, string> = {
  fire: '疑似火情', smoke: '疑似烟雾', crowd: '人员聚集', intrusion: '区域入侵', illegal_parking: '违章停车', street_vending: '占道经营',
  garbage_overflow: '暴露垃圾', fall: '人员倒地', road_obstruction: '道路遗撒',
};

/** Alert types a street camera sees, weighted by how often they happen. */
const ALERT_MIX: ReadonlyArray<[string, number]> = [
  ['garbage_overflow', 5], ['illegal_parking', 5], ['street_vending', 4], ['crowd', 2], ['road_obstruction', 1], ['smoke', 0.5], ['fire', 0.2],
];

export class SimCamera {
  readonly link: DeviceLink;
  readonly rng: Rng;
  rtsp: RtspCamera | null = null;
  private seq = 0;
  private running = false;
  private storage = 80;
  private cancelTelemetry: (() => void) | null = null;
  private cancelAlert: (() => void) | null = null;
  readonly b: Required<Omit<CameraBehaviour, 'rtspPort'>> & { rtspPort?: number };

  constructor(readonly def: SimDevice & { secret: string }, readonly ctx: DeviceContext, behaviour: CameraBehaviour = {}) {
    this.rng = ctx.rng.fork(`cam:${def.id}`);
    this.b = { telemetryEveryMs: 60_000, alertEveryMs: 0, ffmpegSnapshots: false, ...behaviour };
    this.link = new DeviceLink({ url: ctx.mqttUrl, deviceId: def.id, secret: def.secret, random: () => this.rng.next() });
  }

  get id(): string {
    return this.def.id;
  }

  async start(): Promise<void> {
    this.running = true;
    this.link.on('error', () => undefined);
    if (this.b.rtspPort !== undefined) {
      try {
        // 480x270 at 10 fps: a readable picture for a few % of a core per camera (docs/video.md).
        this.rtsp = await startRtspCamera({
          id: this.id, name: this.def.name, scene: /交叉口|路口/.test(this.def.name) ? 'intersection' : 'street',
          port: this.b.rtspPort, width: 480, height: 270, fps: 10, bitrateK: 600,
        });
      } catch (err) {
        this.ctx.log?.(`${this.id}: RTSP stream not started (${(err as Error).message}); alerts only`);
      }
    }
    await this.link.connect();
    this.telemetry();
    this.scheduleAlert();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.cancelTelemetry?.();
    this.cancelAlert?.();
    await Promise.all([this.link.close(), this.rtsp?.stop()]);
    this.rtsp = null;
  }

  private telemetry(): void {
    if (!this.running) return;
    this.storage = Math.max(5, this.storage - 0.01);
    void this.link.publish('telemetry', {
      ts: this.ctx.clock.wallNow(),
      seq: this.seq++,
      values: { fps: this.rtsp ? 10 : 25, bitrate_kbps: Math.round(this.rng.gauss(2048, 120)), storage_free_pct: Math.round(this.storage * 10) / 10 },
    }).catch(() => undefined);
    this.cancelTelemetry = this.ctx.clock.after(this.b.telemetryEveryMs * this.rng.range(0.9, 1.1), () => this.telemetry());
  }

  private scheduleAlert(): void {
    if (!this.b.alertEveryMs) return;
    this.cancelAlert = this.ctx.clock.after(this.rng.exp(this.b.alertEveryMs), () => {
      if (!this.running) return;
      void this.alert(weighted(this.rng, ALERT_MIX), Math.round(this.rng.range(0.55, 0.98) * 100) / 100).catch(() => undefined);
      this.scheduleAlert();
    });
  }

  /** Publishes one alert with a snapshot; resolves on PUBACK. */
  async alert(type: string, confidence = 0.9, extra: Partial<AlertBody> = {}): Promise<AlertBody> {
    const label = `${this.id} ${type} ${new Date(this.ctx.clock.wallNow()).toISOString()}`;
    // What the alert says is in the picture too: the clip of this moment shows the marked object.
    this.rtsp?.mark(`${type.toUpperCase()} ${confidence.toFixed(2)}`, 30_000, ALERT_ZH[type] ?? '');
    let snapshot: string;
    if (this.b.ffmpegSnapshots || this.rtsp) {
      snapshot = await snapshotJpeg(this.id, { width: 320, height: 180, name: this.def.name }).then((b) => b.toString('base64'), () => photoBase64(label, this.seq));
    } else {
      snapshot = photoBase64(label, this.seq);
    }
    const body: AlertBody = {
      ts: this.ctx.clock.wallNow(),
      seq: this.seq++,
      type,
      confidence,
      snapshot,
      objects: [{ label: type, score: confidence, box: [0.3, 0.4, 0.25, 0.3] }],
      ...extra,
    };
    await this.link.publish('alert', body);
    return body;
  }
}

function weighted(rng: Rng, mix: ReadonlyArray<[string, number]>): string {
  const total = mix.reduce((s, [, w]) => s + w, 0);
  let r = rng.range(0, total);
  for (const [t, w] of mix) if ((r -= w) <= 0) return t;
  return mix[0]![0];
}
