/**
 * The running simulated district: one simulated device per provisioned
 * device, each with its own MQTT connection and credentials, sharing a clock
 * and a seeded random source.
 */
import type { DeviceType } from '@gridlink/devices';
import type { Clock } from './clock.js';
import type { District, SimDevice, SimWorker } from './district/generate.js';
import { StreetGraph } from './district/streets.js';
import { startRtspCamera, type RtspCamera } from './camera/index.js';
import { SimCamera, type CameraBehaviour } from './devices/camera.js';
import { AppLink } from './devices/app-link.js';
import { SimHandheld, type HandheldBehaviour } from './devices/handheld.js';
import { SimSensor, type SensorBehaviour } from './devices/sensor.js';
import { HubError, type HubClient } from './hub-client.js';
import { RTSP_BASE_PORT } from './provision.js';
import type { HubState } from './state.js';
import { mapPool } from './util/pool.js';
import { Rng } from './util/rng.js';

export interface WorldOptions {
  district: District;
  state: HubState;
  mqttUrl: string;
  clock: Clock;
  seed?: number;
  /** Logged-in REST client; used to mirror duty changes (POST /workers/{id}/duty). */
  hub?: HubClient;
  sensor?: SensorBehaviour;
  handheld?: HandheldBehaviour;
  camera?: CameraBehaviour;
  /** Serve real RTSP streams for the first N cameras. */
  rtsp?: number;
  /** Simulate only these devices / types / grids (default: everything provisioned). */
  only?: { deviceIds?: string[]; types?: DeviceType[]; gridIds?: string[] };
  /** Leave these devices out, e.g. the one a real device replaces. */
  exclude?: string[];
  /** Handhelds driven through the worker app's API (/api/v1/m) with these worker logins, by device id. */
  appLogins?: Record<string, { username: string; password: string }>;
  /** Hub base URL for appLogins. */
  httpUrl?: string;
  /** Workers start on duty (default true). */
  onDuty?: boolean;
  log?: (msg: string) => void;
}

export type AnySim = SimSensor | SimHandheld | SimCamera;

export class SimWorld {
  readonly graph: StreetGraph;
  readonly sensors = new Map<string, SimSensor>();
  readonly handhelds = new Map<string, SimHandheld>();
  readonly cameras = new Map<string, SimCamera>();
  /** Provisioned devices without a secret for this hub (not simulated). */
  readonly missing: string[] = [];
  private started: AnySim[] = [];
  /**
   * Cameras past the first `rtsp` share one small encoder: each still answers
   * RTSP at its own URL, so the hub's probes find it online and a click on it
   * plays (a picture labelled as shared, with its clock), at the cost of one
   * encoder instead of one per camera.
   */
  private readonly sharedPaths: Array<{ path: string; port: number }> = [];
  private shared: RtspCamera | null = null;

  constructor(readonly o: WorldOptions) {
    const { district, state } = o;
    this.graph = new StreetGraph(district.streets);
    const rng = new Rng(o.seed ?? district.meta.seed);
    const ctx = { mqttUrl: o.mqttUrl, clock: o.clock, rng, ...(o.log ? { log: o.log } : {}) };
    const workers = new Map(district.workers.map((w) => [w.deviceId, w]));
    const exclude = new Set(o.exclude ?? []);
    const only = o.only;
    const cameraIndex = new Map(district.devices.filter((d) => d.type === 'camera').map((d, i) => [d.id, i]));
    for (const d of district.devices) {
      if (exclude.has(d.id)) continue;
      if (only?.deviceIds && !only.deviceIds.includes(d.id)) continue;
      if (only?.types && !only.types.includes(d.type)) continue;
      if (only?.gridIds && !only.gridIds.includes(d.gridId)) continue;
      const secret = state.devices[d.id];
      if (!secret) {
        this.missing.push(d.id);
        continue;
      }
      const def = { ...d, secret };
      if (d.type === 'handheld') {
        const w = workers.get(d.id);
        if (!w) continue;
        const login = o.appLogins?.[d.id];
        const app = login && o.httpUrl ? new AppLink({ base: o.httpUrl, deviceId: d.id, ...login }) : undefined;
        const h = new SimHandheld(def, w, this.graph, ctx, o.handheld, app);
        const workerId = state.workers[w.key];
        if (o.hub && workerId) h.onDutyChange = (on) => this.mirrorDuty(workerId, on);
        this.handhelds.set(d.id, h);
      } else if (d.type === 'camera') {
        const i = cameraIndex.get(d.id) ?? 0;
        const own = o.rtsp !== undefined && i < o.rtsp;
        if (o.rtsp !== undefined && !own) this.sharedPaths.push({ path: d.id, port: RTSP_BASE_PORT + i });
        this.cameras.set(d.id, new SimCamera(def, ctx, { ...o.camera, ...(own ? { rtspPort: RTSP_BASE_PORT + i } : {}) }));
      } else {
        this.sensors.set(d.id, new SimSensor(def, ctx, o.sensor));
      }
    }
  }

  private dutyRouteMissing = false;

  private async mirrorDuty(workerId: string, on: boolean): Promise<void> {
    if (!this.o.hub || this.dutyRouteMissing) return;
    try {
      await this.o.hub.setDuty(workerId, on);
    } catch (err) {
      if (err instanceof HubError && err.routeMissing) this.dutyRouteMissing = true;
      else this.o.log?.(`duty for ${workerId}: ${(err as Error).message}`);
    }
  }

  /** Handhelds first: moving workers are what people look for when a district comes up. */
  all(): AnySim[] {
    return [...this.handhelds.values(), ...this.cameras.values(), ...this.sensors.values()];
  }

  get size(): number {
    return this.sensors.size + this.handhelds.size + this.cameras.size;
  }

  /** Connects every device (a bounded number at a time, as a real fleet powers up). */
  async start(concurrency = 32): Promise<void> {
    const [first, ...rest] = this.sharedPaths;
    if (first) {
      try {
        this.shared = await startRtspCamera({
          id: 'shared', name: '共享模拟画面', aliases: [first.path], port: first.port, mirrors: rest,
          width: 320, height: 180, fps: 5, gop: 5, bitrateK: 200,
        });
      } catch (err) {
        this.o.log?.(`shared camera feed not started (${(err as Error).message}); cameras past --video have no picture`);
      }
    }
    const failures: string[] = [];
    await mapPool(this.all(), concurrency, async (d) => {
      try {
        if (d instanceof SimHandheld) await d.start({ onDuty: this.o.onDuty !== false });
        else await d.start();
        this.started.push(d);
      } catch (err) {
        failures.push(`${d.id}: ${(err as Error).message}`);
        await d.stop().catch(() => undefined);
      }
    });
    if (failures.length) {
      this.o.log?.(`! ${failures.length} device(s) failed to connect, e.g. ${failures.slice(0, 3).join('; ')}`);
      if (failures.length === this.size) throw new Error(`no simulated device could connect: ${failures[0]}`);
    }
  }

  async stop(): Promise<void> {
    const list = this.started;
    this.started = [];
    await mapPool(list, 64, (d) => d.stop().catch(() => undefined));
    await this.shared?.stop().catch(() => undefined);
    this.shared = null;
  }

  // ---- lookups used by scenarios and the demo ------------------------------------------

  sensorIn(gridId: string, type: DeviceType): SimSensor | undefined {
    for (const s of this.sensors.values()) if (s.def.gridId === gridId && s.def.type === type) return s;
    return undefined;
  }

  cameraIn(gridId: string): SimCamera | undefined {
    for (const c of this.cameras.values()) if (c.def.gridId === gridId) return c;
    return undefined;
  }

  handheldOf(worker: string): SimHandheld | undefined {
    for (const h of this.handhelds.values()) {
      if (h.worker.key === worker || h.id === worker || this.o.state.workers[h.worker.key] === worker || h.worker.name === worker) return h;
    }
    return undefined;
  }

  workerId(h: SimHandheld): string | undefined {
    return this.o.state.workers[h.worker.key];
  }

  device(id: string): AnySim | undefined {
    return this.sensors.get(id) ?? this.handhelds.get(id) ?? this.cameras.get(id);
  }
}

export type { SimDevice, SimWorker };
