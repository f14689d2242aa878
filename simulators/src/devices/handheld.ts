/**
 * A grid worker with a handheld: patrols the street network around their
 * grid at walking or cycling speed, reports GPS every few seconds with
 * jitter, goes on and off duty, reports problems they see with a photo, and
 * answers dispatches like a person: accepts after a while (or declines),
 * travels along the streets to the case, arrives, handles it and resolves
 * it with a photo.
 */
import type { CaseAction, Command, DispatchCommand, LocationItem } from '@gridlink/devices';
import { photoBase64 } from '../assets/photos.js';
import type { SimDevice, SimWorker } from '../district/generate.js';
import { bearingDeg, haversineM, offsetLonLat } from '../district/geo.js';
import type { StreetGraph } from '../district/streets.js';
import { isAbort } from '../clock.js';
import type { Rng } from '../util/rng.js';
import type { AppLink } from './app-link.js';
import { DeviceLink } from './link.js';
import type { DeviceContext } from './sensor.js';

export interface HandheldBehaviour {
  /** Simulated ms between GPS reports while on duty. */
  reportEveryMs?: number;
  /** Simulated ms between reports while off duty. */
  offDutyReportEveryMs?: number;
  acceptDelayMs?: [number, number];
  declineRate?: number;
  handlingMs?: [number, number];
  /** Pause at a node during a patrol (talking to residents, checking a site). */
  pauseMs?: [number, number];
  /** Mean simulated ms between problem reports; 0 disables them. */
  problemEveryMs?: number;
  /** GPS noise, metres (1 sigma). */
  gpsSigmaM?: number;
  /** Patrol stays within this distance of home before heading back. */
  leashM?: number;
  /** Speed going to a case: grid workers take the e-bike (电动车) when dispatched. */
  dispatchSpeedMps?: number;
}

const DEFAULTS: Required<HandheldBehaviour> = {
  reportEveryMs: 5_000,
  offDutyReportEveryMs: 60_000,
  acceptDelayMs: [5_000, 20_000],
  declineRate: 0.08,
  handlingMs: [60_000, 180_000],
  pauseMs: [15_000, 60_000],
  problemEveryMs: 0,
  gpsSigmaM: 4,
  leashM: 450,
  dispatchSpeedMps: 4.5,
};

/** Problems a worker reports on patrol (category keys of the hub's catalogue). */
export const PROBLEMS: ReadonlyArray<{ category: string; text: string }> = [
  { category: 'garbage', text: '路边有暴露垃圾堆放' },
  { category: 'garbage_overflow', text: '垃圾桶满溢未清运' },
  { category: 'road_dirty', text: '路面油污不洁' },
  { category: 'illegal_posters', text: '墙面张贴非法小广告' },
  { category: 'street_vending', text: '路口流动摊贩占道经营' },
  { category: 'illegal_parking', text: '非机动车乱停放堵塞人行道' },
  { category: 'street_lamp', text: '路灯不亮' },
  { category: 'manhole_cover', text: '井盖松动' },
  { category: 'road_obstruction', text: '道路遗撒建筑材料' },
];

export type HandheldMode = 'off_duty' | 'patrol' | 'to_case' | 'on_scene';

export interface CaseLogEntry {
  caseId: string;
  action: CaseAction;
  at: number;
}

interface Task {
  caseId: string;
  lat: number;
  lon: number;
  abort: AbortController;
}

export class SimHandheld {
  /** MQTT as a handheld, or the worker app's REST API (AppLink) as 网格通 on a phone. */
  readonly link: DeviceLink | AppLink;
  readonly b: Required<HandheldBehaviour>;
  mode: HandheldMode = 'off_duty';
  lat: number;
  lon: number;
  battery: number;
  /** Everything this handheld answered on its case channel, in order (tests, demo log). */
  readonly caseLog: CaseLogEntry[] = [];
  /** Called when the worker goes on or off duty (the runtime mirrors it to REST). */
  onDutyChange?: (on: boolean) => Promise<void> | void;
  private route: Array<{ lat: number; lon: number }> = [];
  private node: string;
  private speed: number;
  private heading = 0;
  private lastMove = 0;
  private seq = 0;
  private reports = 0;
  private task: Task | null = null;
  private pausedUntil = 0;
  private running = false;
  private cancelTick: (() => void) | null = null;
  private cancelProblem: (() => void) | null = null;
  private life = new AbortController();
  private readonly rng: Rng;

  constructor(
    readonly def: SimDevice & { secret: string },
    readonly worker: SimWorker,
    readonly graph: StreetGraph,
    readonly ctx: DeviceContext,
    behaviour: HandheldBehaviour = {},
    link?: AppLink,
  ) {
    this.b = { ...DEFAULTS, ...behaviour };
    this.rng = ctx.rng.fork(`hh:${def.id}`);
    this.node = worker.homeNode;
    const home = graph.node(worker.homeNode);
    this.lat = home.lat;
    this.lon = home.lon;
    this.speed = worker.speedMps;
    this.battery = Math.round(ctx.rng.fork(def.id).range(70, 100));
    this.link = link ?? new DeviceLink({ url: ctx.mqttUrl, deviceId: def.id, secret: def.secret, persistent: true, commands: true, random: () => this.rng.next() });
  }

  get id(): string {
    return this.def.id;
  }

  get onDuty(): boolean {
    return this.mode !== 'off_duty';
  }

  get busyWith(): string | null {
    return this.task?.caseId ?? null;
  }

  async start(opts: { onDuty?: boolean } = {}): Promise<void> {
    this.running = true;
    this.life = new AbortController();
    this.link.on('error', () => undefined);
    this.link.on('command', (cmd) => this.onCommand(cmd));
    await this.link.connect();
    this.lastMove = this.ctx.clock.elapsed();
    await this.setDuty(opts.onDuty !== false, true);
    this.scheduleProblem();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.life.abort();
    this.task?.abort.abort();
    this.cancelTick?.();
    this.cancelProblem?.();
    await this.link.close();
  }

  async setDuty(on: boolean, force = false): Promise<void> {
    if (on === this.onDuty && !force) return;
    if (!on) {
      this.task?.abort.abort();
      this.task = null;
      this.route = [];
    }
    this.mode = on ? 'patrol' : 'off_duty';
    // At power-up the duty state is announced without waiting: a fleet starting must not queue on REST.
    const mirrored = Promise.resolve(this.onDutyChange?.(on)).catch(() => undefined);
    const announced = this.link.publish('status', { online: true, duty: on }).catch(() => undefined);
    if (!force) await Promise.all([mirrored, announced]);
    // Report at once and switch to the on/off duty reporting period.
    this.cancelTick?.();
    this.tick();
  }

  /** Moves the worker instantly (scenarios: "worker W is at node X"). */
  teleport(lat: number, lon: number): void {
    this.lat = lat;
    this.lon = lon;
    this.route = [];
    this.node = this.graph.nearest(lat, lon).id;
  }

  // ---- movement ------------------------------------------------------------------------

  private tick(): void {
    if (!this.running) return;
    this.advance();
    void this.sendLocation();
    const every = this.onDuty ? this.b.reportEveryMs : this.b.offDutyReportEveryMs;
    this.cancelTick = this.ctx.clock.after(every * this.rng.range(0.95, 1.05), () => this.tick());
  }

  /** Moves along the current route by the simulated time since the last move. */
  private advance(): void {
    const now = this.ctx.clock.elapsed();
    const speed = this.mode === 'to_case' ? Math.max(this.speed, this.b.dispatchSpeedMps) : this.speed;
    let left = ((now - this.lastMove) / 1000) * speed;
    this.lastMove = now;
    if (this.mode === 'off_duty' || this.mode === 'on_scene') return;
    if (this.mode === 'patrol' && this.route.length === 0) {
      if (now < this.pausedUntil) return;
      this.planPatrol();
    }
    while (left > 0 && this.route.length > 0) {
      const next = this.route[0]!;
      const d = haversineM(this.lat, this.lon, next.lat, next.lon);
      if (d > 0.01) this.heading = bearingDeg(this.lat, this.lon, next.lat, next.lon);
      if (d <= left) {
        this.lat = next.lat;
        this.lon = next.lon;
        left -= d;
        this.route.shift();
      } else {
        const f = left / d;
        this.lat += (next.lat - this.lat) * f;
        this.lon += (next.lon - this.lon) * f;
        left = 0;
      }
    }
    if (this.route.length === 0) {
      if (this.mode === 'to_case') void this.arrived();
      else if (this.mode === 'patrol' && this.rng.chance(0.5)) this.pausedUntil = now + this.rng.range(...this.b.pauseMs);
    }
  }

  private planPatrol(): void {
    const home = this.graph.node(this.worker.homeNode);
    const here = this.graph.nearest(this.lat, this.lon);
    const far = haversineM(here.lat, here.lon, home.lat, home.lon) > this.b.leashM;
    const path = far ? this.graph.shortestPath(here.id, home.id) ?? [here.id] : this.graph.randomWalk(here.id, this.rng.int(3, 8), this.rng);
    this.route = path.map((id) => this.graph.node(id));
    this.node = path[path.length - 1]!;
  }

  private async sendLocation(): Promise<void> {
    const [lon, lat] = offsetLonLat(this.lon, this.lat, this.rng.gauss(0, this.b.gpsSigmaM), this.rng.gauss(0, this.b.gpsSigmaM));
    this.battery = Math.max(1, this.battery - (this.onDuty ? 0.02 : 0.005));
    const moving = this.route.length > 0 && (this.mode === 'patrol' || this.mode === 'to_case');
    const item: LocationItem = {
      ts: this.ctx.clock.wallNow(),
      seq: this.seq++,
      lat: Math.round(lat * 1e7) / 1e7,
      lon: Math.round(lon * 1e7) / 1e7,
      acc: Math.round(Math.abs(this.rng.gauss(this.b.gpsSigmaM * 1.5, 1)) * 10) / 10 + 1,
      spd: moving ? Math.round((this.mode === 'to_case' ? Math.max(this.speed, this.b.dispatchSpeedMps) : this.speed) * this.rng.range(0.85, 1.1) * 10) / 10 : 0,
      hdg: Math.round(this.heading),
      batt: Math.round(this.battery),
      duty: this.onDuty,
    };
    await this.link.publish('location', item).catch(() => undefined);
  }

  // ---- problem reports -----------------------------------------------------------------

  private scheduleProblem(): void {
    if (!this.b.problemEveryMs) return;
    this.cancelProblem = this.ctx.clock.after(this.rng.exp(this.b.problemEveryMs), () => {
      if (!this.running) return;
      if (this.mode === 'patrol') void this.reportProblem().catch(() => undefined);
      this.scheduleProblem();
    });
  }

  /** Publishes a `report` (a new case seen on patrol) with a photo. Returns its reportId. */
  async reportProblem(problem = this.rng.pick(PROBLEMS), at?: { lat: number; lon: number }): Promise<string> {
    const reportId = `${this.id}-r${Date.now().toString(36)}${this.reports++}`;
    await this.link.publish('report', {
      reportId,
      ts: this.ctx.clock.wallNow(),
      category: problem.category,
      description: `${this.worker.name}巡查发现：${problem.text}`,
      lat: at?.lat ?? Math.round(this.lat * 1e7) / 1e7,
      lon: at?.lon ?? Math.round(this.lon * 1e7) / 1e7,
      photos: [photoBase64(`${reportId} ${problem.category}`, this.reports)],
    });
    return reportId;
  }

  // ---- dispatches ----------------------------------------------------------------------

  private onCommand(cmd: Command): void {
    if (cmd.type === 'dispatch') void this.onDispatch(cmd).catch((err) => { if (!isAbort(err)) this.ctx.log?.(`${this.id}: ${(err as Error).message}`); });
    else if (cmd.type === 'cancel' && this.task?.caseId === cmd.caseId) {
      this.task.abort.abort();
      this.task = null;
      this.route = [];
      if (this.mode !== 'off_duty') this.mode = 'patrol';
    }
  }

  private async answer(caseId: string, action: CaseAction, extra: { note?: string; photos?: string[] } = {}): Promise<void> {
    this.caseLog.push({ caseId, action, at: this.ctx.clock.elapsed() });
    await this.link.publish('case', { caseId, action, ts: this.ctx.clock.wallNow(), ...extra });
  }

  private async onDispatch(cmd: DispatchCommand): Promise<void> {
    const c = cmd.case;
    if (this.task?.caseId === c.id) return; // a redelivered command
    const sleep = (ms: number, signal: AbortSignal) => this.ctx.clock.sleep(ms, AbortSignal.any([signal, this.life.signal]));
    if (this.task || !this.onDuty) {
      await sleep(this.rng.range(2_000, 6_000), this.life.signal);
      await this.answer(c.id, 'decline', { note: this.onDuty ? '正在处理其他案件' : '不在岗' });
      return;
    }
    const task: Task = { caseId: c.id, lat: c.lat, lon: c.lon, abort: new AbortController() };
    this.task = task;
    await sleep(this.rng.range(...this.b.acceptDelayMs), task.abort.signal);
    if (this.rng.chance(this.b.declineRate)) {
      this.task = null;
      await this.answer(c.id, 'decline', { note: this.rng.pick(['距离较远，建议派最近网格员', '手头有紧急事务', '不属于本网格职责']) });
      return;
    }
    await this.answer(c.id, 'accept', { note: '收到，马上前往' });
    this.travelTo(c.lat, c.lon);
  }

  /**
   * Picks up a case the hub still has assigned to this worker after the
   * handheld restarted (a real app restores its task list): accept if it
   * was only dispatched, travel if accepted, handle it if already on scene.
   */
  async resume(c: { id: string; lat: number; lon: number; status: string }): Promise<void> {
    if (this.task || !this.onDuty) return;
    const task: Task = { caseId: c.id, lat: c.lat, lon: c.lon, abort: new AbortController() };
    this.task = task;
    if (c.status === 'dispatched') await this.answer(c.id, 'accept', { note: '收到，马上前往' });
    if (c.status === 'on_scene') {
      this.teleport(c.lat, c.lon);
      this.task = task;
      this.mode = 'to_case';
      this.route = [];
      await this.arrived(true);
      return;
    }
    this.travelTo(c.lat, c.lon);
  }

  private travelTo(lat: number, lon: number): void {
    const here = this.graph.nearest(this.lat, this.lon);
    const there = this.graph.nearest(lat, lon);
    const path = this.graph.shortestPath(here.id, there.id) ?? [];
    this.route = [...path.map((id) => this.graph.node(id)), { lat, lon }];
    this.mode = 'to_case';
    this.pausedUntil = 0;
  }

  private async arrived(alreadyThere = false): Promise<void> {
    const task = this.task;
    if (!task || this.mode !== 'to_case') return;
    this.mode = 'on_scene';
    const sleep = (ms: number) => this.ctx.clock.sleep(ms, AbortSignal.any([task.abort.signal, this.life.signal]));
    try {
      if (!alreadyThere) await this.answer(task.caseId, 'arrive');
      await sleep(this.rng.range(...this.b.handlingMs));
      await this.answer(task.caseId, 'resolve', { note: '已现场处置完毕', photos: [photoBase64(`${task.caseId} resolved by ${this.worker.name}`, this.seq)] });
    } catch (err) {
      if (!isAbort(err)) throw err;
    } finally {
      if (this.task === task) {
        this.task = null;
        if (this.mode === 'on_scene') this.mode = 'patrol';
        this.node = this.graph.nearest(this.lat, this.lon).id;
      }
    }
  }
}
