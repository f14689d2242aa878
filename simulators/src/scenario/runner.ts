/**
 * Plays a scenario against a hub: provisions what it needs, starts the
 * simulated devices it names, runs the timeline on the simulation clock and
 * checks each expectation through REST. The result says which expectations
 * failed and why; the CLI exits non-zero on any failure, so integrators can
 * run scenarios in their own CI.
 */
import type { DeviceType } from '@gridlink/devices';
import { SimClock } from '../clock.js';
import { generateDistrict, type District } from '../district/generate.js';
import { readDistrict } from '../district/files.js';
import { DemoDispatcher } from '../dispatcher.js';
import { categoryNames, HubError, type HubClient } from '../hub-client.js';
import { provision } from '../provision.js';
import type { SimState } from '../state.js';
import { SimWorld } from '../world.js';
import { SimCamera } from '../devices/camera.js';
import { SimHandheld } from '../devices/handheld.js';
import { SimSensor } from '../devices/sensor.js';
import { parseDuration, stepKind, type Scenario, type Step } from './schema.js';

export interface RunOptions {
  hub: HubClient;
  state: SimState;
  mqttUrl: string;
  speed?: number;
  /** District to use when the scenario names none (default: generated from the scenario seed). */
  district?: District;
  /** Directory scenario-relative paths resolve against. */
  baseDir?: string;
  /** Never wait less than this much wall time for an expectation (the hub runs in real time). */
  minWallMs?: number;
  log?: (msg: string) => void;
}

export interface ExpectResult {
  step: number;
  at: string;
  what: string;
  ok: boolean;
  detail: string;
  /** Scenario ms after `at` when it passed. */
  afterMs?: number;
}

export interface RunResult {
  name: string;
  ok: boolean;
  expectations: ExpectResult[];
  steps: number;
  wallMs: number;
  speed: number;
  /** Cases created during the run (ids), for reports. */
  cases: string[];
}

const STEP_TYPE: Record<string, DeviceType> = { water: 'sensor.water_level', smoke: 'sensor.smoke', gas: 'sensor.gas', manhole: 'sensor.manhole_cover', camera: 'camera' };

export async function runScenario(sc: Scenario, o: RunOptions): Promise<RunResult> {
  const log = o.log ?? (() => undefined);
  const speed = o.speed ?? sc.speed ?? 1;
  const minWall = o.minWallMs ?? 1500;
  const district = sc.district ? await readDistrict(resolvePath(sc.district, o.baseDir)) : (o.district ?? generateDistrict(sc.seed !== undefined ? { seed: sc.seed } : {}));
  const steps = sc.steps.map((s, i) => ({ s, i, atMs: parseDuration(s.at) })).sort((a, b) => a.atMs - b.atMs || a.i - b.i);

  // Resolve every device reference before anything runs: a typo fails fast.
  const problems: string[] = [];
  const deviceOf = (kind: string, ref: { device?: string; grid?: string }, i: number): string => {
    const type = STEP_TYPE[kind]!;
    if (ref.device) {
      const d = district.devices.find((x) => x.id === ref.device);
      if (!d) problems.push(`step ${i} (${kind}): no device ${ref.device} in the district`);
      else if (d.type !== type) problems.push(`step ${i} (${kind}): ${ref.device} is a ${d.type}, not a ${type}`);
      return ref.device;
    }
    const d = district.devices.find((x) => x.gridId === ref.grid && x.type === type);
    if (!d) {
      const grids = [...new Set(district.devices.filter((x) => x.type === type).map((x) => x.gridId))].slice(0, 5);
      problems.push(`step ${i} (${kind}): grid ${ref.grid} has no ${type}${grids.length ? ` (grids with one: ${grids.join(', ')} ...)` : ''}`);
      return '';
    }
    return d.id;
  };
  const workerDevice = (id: string, i: number): string => {
    const hs = o.state.hub(o.hub.base);
    const w = district.workers.find((x) => x.key === id || x.deviceId === id || x.name === id || hs.workers[x.key] === id);
    if (!w) problems.push(`step ${i}: no worker ${id} in the district`);
    return w?.deviceId ?? '';
  };
  const resolved = new Map<number, string>();
  const referenced = new Set<string>();
  for (const { s, i } of steps) {
    const kind = stepKind(s);
    let id = '';
    if (kind in STEP_TYPE) id = deviceOf(kind, (s as Record<string, { device?: string; grid?: string }>)[kind]!, i);
    else if (kind === 'sensor') id = (s as { sensor: { device: string } }).sensor.device;
    else if (kind === 'dropout') id = (s as { dropout: { device: string } }).dropout.device;
    else if (kind === 'worker') id = workerDevice((s as { worker: { id: string } }).worker.id, i);
    if (id) {
      resolved.set(i, id);
      referenced.add(id);
    }
    if (kind === 'expect') {
      const e = (s as { expect: { device?: { id: string }; reading?: { device: string }; worker?: { id: string } } }).expect;
      if (e.worker) workerDevice(e.worker.id, i);
    }
    if ((kind === 'sensor' || kind === 'dropout') && id && !district.devices.some((d) => d.id === id)) problems.push(`step ${i} (${kind}): no device ${id} in the district`);
  }
  if (problems.length) throw new Error(`scenario ${sc.name}: ${problems.join('; ')}`);

  const simulateIds = sc.simulate === 'all' ? undefined : Array.isArray(sc.simulate) ? [...new Set([...sc.simulate, ...referenced])] : [...referenced];
  // A scenario with a dispatcher needs workers to answer: run every handheld too.
  const needHandhelds = sc.dispatcher === true;

  // Provision (idempotent): grids, the devices that will run, workers.
  const hs = o.state.hub(o.hub.base);
  const subset: District = simulateIds && !needHandhelds
    ? { ...district, devices: district.devices.filter((d) => simulateIds.includes(d.id)), workers: district.workers.filter((w) => simulateIds.includes(w.deviceId)) }
    : simulateIds
      ? { ...district, devices: district.devices.filter((d) => simulateIds.includes(d.id) || d.type === 'handheld'), workers: district.workers }
      : district;
  const rep = await provision({ hub: o.hub, state: o.state, district: subset, mqttUrl: o.mqttUrl, onDuty: true, log });
  const casesAvailable = !rep.skipped.some((x) => x.startsWith('grids'));

  const clock = new SimClock(speed);
  const world = new SimWorld({
    district: subset,
    state: hs,
    mqttUrl: o.mqttUrl,
    clock,
    hub: o.hub,
    log,
    // Scenario devices do only what the timeline says: no random anomalies, dropouts or reports.
    sensor: { missRate: 0, dropoutRate: 0 },
    handheld: { declineRate: 0, acceptDelayMs: [3_000, 8_000], handlingMs: [20_000, 40_000] },
  });
  const dispatcher = sc.dispatcher ? new DemoDispatcher({ hub: o.hub, pollMs: 300, graceMs: 500, log }) : null;
  const results: ExpectResult[] = [];
  const checks: Array<Promise<void>> = [];
  const startWall = Date.now();
  const t0 = performance.now();
  const seenCases = new Set<string>();
  try {
    await world.start();
    // Re-based: the timeline starts once every device is connected.
    const base = clock.elapsed();
    dispatcher?.start();
    log(`▶ ${sc.name}: ${steps.length} steps, ${world.size} devices, speed ${speed}x`);
    for (const { s, i, atMs } of steps) {
      const wait = atMs - (clock.elapsed() - base);
      if (wait > 0) await clock.sleep(wait);
      const kind = stepKind(s);
      const stamp = fmt(atMs);
      if (kind === 'expect') {
        checks.push(expect(s as Extract<Step, { expect: unknown }>, i, stamp).then((r) => {
          results.push(r);
          log(`${r.ok ? '✔' : '✘'} ${stamp} expect ${r.what}: ${r.detail}`);
        }));
        continue;
      }
      log(`· ${stamp} ${describe(s)}`);
      await act(s, resolved.get(i) ?? '', world).catch((err) => {
        results.push({ step: i, at: stamp, what: describe(s), ok: false, detail: `action failed: ${(err as Error).message}` });
      });
    }
    await Promise.all(checks);
    if (sc.tail) await clock.sleep(parseDuration(sc.tail));
  } finally {
    await dispatcher?.stop();
    clock.dispose();
    await world.stop();
  }
  results.sort((a, b) => a.step - b.step);
  return { name: sc.name, ok: results.every((r) => r.ok), expectations: results, steps: steps.length, wallMs: Math.round(performance.now() - t0), speed, cases: [...seenCases] };

  async function expect(s: Extract<Step, { expect: unknown }>, i: number, stamp: string): Promise<ExpectResult> {
    const e = s.expect;
    const withinMs = e.within !== undefined ? parseDuration(e.within) : 5000;
    const deadline = performance.now() + Math.max(minWall, clock.toWall(withinMs));
    const started = clock.elapsed();
    const what = describeExpect(e);
    let detail = '';
    const negative = Boolean(e.case?.none);
    for (;;) {
      let ok = false;
      try {
        [ok, detail] = await checkOnce(e);
      } catch (err) {
        if (err instanceof HubError && err.routeMissing) return { step: i, at: stamp, what, ok: false, detail: `the hub cannot answer: ${err.hubMessage}` };
        detail = (err as Error).message;
      }
      if (negative && ok) return { step: i, at: stamp, what, ok: false, detail };
      if (!negative && ok) return { step: i, at: stamp, what, ok: true, detail, afterMs: Math.round(clock.elapsed() - started) };
      if (performance.now() >= deadline) break;
      await new Promise((r) => setTimeout(r, 150));
    }
    return negative
      ? { step: i, at: stamp, what, ok: true, detail: 'no matching case' }
      : { step: i, at: stamp, what, ok: false, detail: `not within ${fmt(withinMs)}: ${detail}` };
  }

  /** [matched, detail]; for `case.none` matched means a forbidden case exists. */
  async function checkOnce(e: Extract<Step, { expect: unknown }>['expect']): Promise<[boolean, string]> {
    if (e.case) {
      const m = e.case;
      if (!casesAvailable) throw new Error('cases module not loaded');
      // Cases made since the start, every page of them (the list is paged, newest first).
      const items = await o.hub.allCases({ from: startWall - 1000, ...(m.grid ? { gridId: m.grid } : {}) });
      const fresh = items.filter((c) => c.createdAt >= startWall - 1000);
      for (const c of fresh) seenCases.add(c.id);
      const statuses = m.status === undefined ? null : Array.isArray(m.status) ? m.status : [m.status];
      const hits = fresh.filter((c) =>
        (!m.category || categoryNames(c.category).includes(m.category)) &&
        (!m.grid || c.gridId === m.grid) &&
        (!statuses || statuses.includes(c.status)) &&
        (!m.source || c.source === m.source));
      const need = m.none ? 1 : (m.count ?? 1);
      const summary = fresh.length ? fresh.slice(0, 5).map((c) => `${c.code} ${categoryNames(c.category)[1] ?? categoryNames(c.category)[0]} ${c.status} grid ${c.gridId}`).join('; ') : 'no cases since the start';
      return [hits.length >= need, hits.length ? `${hits.length} matching: ${hits.slice(0, 3).map((c) => `${c.code} (${c.status})`).join(', ')}` : `seen: ${summary}`];
    }
    if (e.device) {
      const d = await o.hub.getDevice(e.device.id);
      const want = e.device.online ?? true;
      return [d.online === want, `online=${d.online}`];
    }
    if (e.reading) {
      const r = e.reading;
      const res = await o.hub.telemetry(r.device, { metric: r.metric, from: startWall - 1000 });
      const vals = res.points.map((p) => Number(p.value)).filter(Number.isFinite);
      const hit = vals.some((v) => (r.min === undefined || v >= r.min) && (r.max === undefined || v <= r.max));
      return [hit, vals.length ? `latest ${vals[vals.length - 1]} (${vals.length} readings)` : 'no readings'];
    }
    if (e.worker) {
      const w = e.worker;
      const h = world.handheldOf(w.id);
      const id = (h && world.workerId(h)) ?? w.id;
      const wv = await o.hub.getWorker(id);
      const statuses = w.status === undefined ? null : Array.isArray(w.status) ? w.status : [w.status];
      const freshMs = w.fresh !== undefined ? Math.max(parseDuration(w.fresh), minWall) : null;
      const okStatus = !statuses || statuses.includes(wv.status);
      const okFresh = freshMs === null || (wv.position != null && Date.now() - wv.position.ts <= freshMs);
      return [okStatus && okFresh, `status ${wv.status}, position ${wv.position ? `${Math.round((Date.now() - wv.position.ts) / 100) / 10}s old` : 'none'}`];
    }
    return [false, 'nothing to check'];
  }
}

async function act(s: Step, deviceId: string, world: SimWorld): Promise<void> {
  const dev = world.device(deviceId);
  const sensor = () => {
    if (!(dev instanceof SimSensor)) throw new Error(`${deviceId} is not a running sensor`);
    return dev;
  };
  const ms = (d: string | number | undefined) => (d === undefined ? 0 : parseDuration(d));
  if ('water' in s) return sensor().set('water_level_cm', s.water.level, ms(s.water.ramp));
  if ('smoke' in s) return s.smoke.clear ? sensor().normal() : sensor().anomaly();
  if ('gas' in s) {
    if (s.gas.clear) return sensor().normal();
    if (s.gas.lel === undefined) return sensor().anomaly();
    await sensor().set('ch4_pct_lel', s.gas.lel);
    return sensor().event('gas_leak', 'critical', { ch4_pct_lel: s.gas.lel });
  }
  if ('manhole' in s) return s.manhole.open ? sensor().anomaly() : sensor().normal();
  if ('sensor' in s) {
    const x = sensor();
    if (s.sensor.normal) await x.normal();
    for (const [k, v] of Object.entries(s.sensor.set ?? {})) await x.set(k, v, ms(s.sensor.ramp));
    if (s.sensor.event) await x.event(s.sensor.event.type, s.sensor.event.severity ?? 'info', s.sensor.event.data);
    return;
  }
  if ('camera' in s) {
    if (!(dev instanceof SimCamera)) throw new Error(`${deviceId} is not a running camera`);
    await dev.alert(s.camera.alert, s.camera.confidence ?? 0.9);
    return;
  }
  if ('worker' in s) {
    if (!(dev instanceof SimHandheld)) throw new Error(`${deviceId} is not a running handheld`);
    const w = s.worker;
    if (w.moveTo) dev.teleport(w.moveTo.lat, w.moveTo.lon);
    if (w.duty !== undefined) await dev.setDuty(w.duty === true || w.duty === 'on');
    if (w.report) await dev.reportProblem({ category: w.report.category, text: w.report.description ?? w.report.category });
    return;
  }
  if ('dropout' in s) {
    if (!dev) throw new Error(`${deviceId} is not running`);
    dev.link.dropFor(world.o.clock.toWall(parseDuration(s.dropout.for)));
    return;
  }
  if ('log' in s) return;
}

function describe(s: Step): string {
  const kind = stepKind(s);
  const body = (s as Record<string, unknown>)[kind];
  return `${kind} ${typeof body === 'string' ? body : JSON.stringify(body)}${s.note ? ` — ${s.note}` : ''}`;
}

function describeExpect(e: Extract<Step, { expect: unknown }>['expect']): string {
  const { within: _w, ...rest } = e;
  return JSON.stringify(rest);
}

function fmt(ms: number): string {
  const s = Math.floor(ms / 1000);
  const frac = ms % 1000 ? `.${String(Math.round(ms % 1000)).padStart(3, '0')}` : '';
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}${frac}`;
}

function resolvePath(p: string, base?: string): string {
  if (!base || p.startsWith('/')) return p;
  return `${base.replace(/\/+$/, '')}/${p}`;
}

