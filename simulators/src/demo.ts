/**
 * `npm run demo`: the hub on the embedded database plus a living simulated
 * district, in one process. Provisions the district on first run (secrets
 * kept in .sim/), then runs every sensor, camera and handheld over real MQTT,
 * plants a first incident so a case goes reported → closed within a minute,
 * and plays the duty officer (the demo dispatcher) through REST. Ctrl-C stops
 * the devices, then the hub, cleanly.
 *
 * Flags: --speed N (simulation speed, default 5), --no-dispatcher,
 * --video N|all (real RTSP streams for the first N cameras; default 4, the
 * first page of the video wall; --rtsp N is the same), --size small
 * (16 grids instead of 108, when the district is generated), --state and
 * --district (where secrets and the district live), --quiet.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import type { Department, HotlineOrderBody, HotlineOrderResult, Open311Created, Open311RequestBody, UpdateDepartmentBody } from '@gridlink/devices/contract';
import { ConfigError, createHub, createLogger, loadConfig, type Config, type Hub } from '@gridlink/hub';
import { DEFAULT_DISTRICT_DIR, startDistrict, type DistrictRun } from './cli.js';
import { generateDistrict, type District } from './district/generate.js';
import { readDistrict, writeDistrict } from './district/files.js';
import { HubClient, HubError } from './hub-client.js';
import { provision } from './provision.js';
import { SimState } from './state.js';

const DEMO_USER = 'demo-sim';
/** After the cameras' rolling buffers have filled, so the first clip has its pre-roll. */
const DEMO_FIRST_ALERT_MS = Number(process.env.GRIDLINK_DEMO_FIRST_ALERT_MS ?? 25_000);
/** Cameras streaming by default: the video wall's first page. */
export const DEFAULT_DEMO_STREAMS = 4;

/** What to undo on Ctrl-C, even when it comes while the demo is still starting. */
const cleanups: Array<() => Promise<void> | void> = [];
let aborted = false;

async function cleanup(): Promise<void> {
  aborted = true;
  while (cleanups.length) await Promise.resolve(cleanups.pop()!()).catch(() => undefined);
}

interface DemoFile {
  adminPassword: string;
  /** Passwords of the worker users whose handhelds go through the worker app's API (网格通). */
  appWorkers?: Record<string, string>;
  /** Password of the 城管局 department user (分流 workbench). */
  deptPassword?: string;
}

/** Simulated workers that use 网格通's API (/api/v1/m) instead of MQTT, so both paths stay alive in the demo. */
const APP_WORKERS = 2;

async function demoFile(path: string): Promise<DemoFile> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as DemoFile;
  } catch {
    const d = { adminPassword: randomBytes(9).toString('base64url') };
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, JSON.stringify(d, null, 1), { mode: 0o600 });
    return d;
  }
}

export async function runDemo(argv: string[]): Promise<{ hub: Hub; run: DistrictRun; stop: () => Promise<void> }> {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      speed: { type: 'string' }, 'no-dispatcher': { type: 'boolean' }, rtsp: { type: 'string' }, video: { type: 'string' }, quiet: { type: 'boolean', short: 'q' },
      state: { type: 'string' }, district: { type: 'string' }, size: { type: 'string' },
    },
    strict: true,
  });
  const say = (m: string) => {
    if (!v.quiet) process.stderr.write(`${m}\n`);
  };
  const speed = Number(v.speed ?? 5);
  // Video out of the box: the first wall page (4 tiles) streams by default; each stream costs a few % of a core.
  const videoFlag = v.video ?? v.rtsp ?? String(DEFAULT_DEMO_STREAMS);
  const streams = videoFlag === 'all' ? Number.MAX_SAFE_INTEGER : Number(videoFlag);
  if (!Number.isInteger(streams) || streams < 0) {
    process.stderr.write(`--video takes a count or "all", not ${videoFlag}\n`);
    process.exit(2);
  }
  const statePath = v.state ?? '.sim/secrets.json';
  const demo = await demoFile(`${dirname(statePath)}/demo.json`);

  let config: Config;
  try {
    config = loadConfig({ GRIDLINK_LOG_LEVEL: 'warn', ...process.env }, { adminPassword: process.env.GRIDLINK_ADMIN_PASSWORD || demo.adminPassword });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const hub = await createHub(config, { logger: createLogger(config.logLevel) });
  cleanups.push(() => hub.stop());
  const ports = await hub.start();
  process.stdout.write(`${JSON.stringify({ msg: 'listening', ...ports })}\n`);
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const base = `http://${host}:${ports.http}`;
  const mqttUrl = `mqtt://${host}:${ports.mqtt}`;

  // The simulators act through REST with their own admin account; in-process we can sign its token.
  const auth = hub.ctx.auth;
  let user = (await auth.listUsers()).find((u) => u.username === DEMO_USER);
  user ??= await auth.createUser({ username: DEMO_USER, password: randomBytes(24).toString('base64url'), role: 'admin', displayName: '演示模拟器' });
  const client = new HubClient(base);
  client.setToken(auth.sign(user));
  const refresh = setInterval(() => client.setToken(auth.sign(user)), 3600_000);
  cleanups.push(() => clearInterval(refresh));

  const dir = v.district ?? DEFAULT_DISTRICT_DIR;
  let district: District;
  try {
    district = await readDistrict(dir);
  } catch {
    // --size small: 2 streets x 2 communities x 2x2 grids, for quick starts and the smoke test.
    district = generateDistrict(v.size === 'small' ? { streets: 2, communitiesPerStreet: 2, communityCols: 2, communityRows: 2 } : {});
    await writeDistrict(dir, district);
    say(`generated the demo district in ${dir}`);
  }
  const state = await SimState.open(statePath);
  // The first workers sign in as 网格通 does: their own user, bound to their worker when it is created.
  demo.appWorkers ??= {};
  const users = await auth.listUsers();
  const appUsers: Record<string, string> = {};
  for (const w of district.workers.slice(0, APP_WORKERS)) {
    const username = `app-${w.key}`.slice(0, 64);
    let u = users.find((x) => x.username === username);
    if (!u) {
      const password = randomBytes(12).toString('base64url');
      u = await auth.createUser({ username, password, role: 'worker', displayName: w.name });
      demo.appWorkers[username] = password;
    }
    if (demo.appWorkers[username]) appUsers[w.key] = u.id;
  }
  await writeFile(`${dirname(statePath)}/demo.json`, JSON.stringify(demo, null, 1), { mode: 0o600 });
  const t0 = Date.now();
  const rep = await provision({ hub: client, state, district, mqttUrl, onDuty: true, appUsers, log: (m) => (m.startsWith('!') ? say(m) : undefined) });
  // A worker reused from an earlier run without that binding stays on MQTT.
  const appLogins: Record<string, { username: string; password: string }> = {};
  for (const w of district.workers.slice(0, APP_WORKERS)) {
    const username = `app-${w.key}`.slice(0, 64);
    const bound = appUsers[w.key] && hub.ctx.services.workers?.byUser?.(appUsers[w.key]!)?.deviceId === w.deviceId;
    if (bound) appLogins[w.deviceId] = { username, password: demo.appWorkers[username]! };
  }
  say(`provisioned in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${rep.devices.created} new devices, ${rep.devices.reused} reused, ${rep.devices.rotated} rotated`);

  if (aborted) throw new Error('stopped');
  const run = await startDistrict({
    client, mqtt: mqttUrl, district, state, speed, dispatcher: !v['no-dispatcher'], anomalies: true, rtsp: streams, appLogins,
    log: say,
  });
  // Demo timing: quicker hands than the defaults, so the first case closes within a minute.
  for (const h of run.world.handhelds.values()) Object.assign(h.b, { acceptDelayMs: [4_000, 12_000], handlingMs: [30_000, 90_000] });

  // Plant the first incidents: a worker reports what they see, and the lowest point floods.
  const planted = setTimeout(() => {
    const reporter = [...run.world.handhelds.values()].find((h) => h.onDuty);
    void reporter?.reportProblem({ category: 'garbage', text: '小区门口暴露垃圾堆放（演示）' }).then(() => say(`demo: ${reporter.worker.name} reported 暴露垃圾 in ${reporter.def.gridId}`), () => undefined);
    const water = [...run.world.sensors.values()].find((s) => s.def.type === 'sensor.water_level');
    void water?.set('water_level_cm', 38, 20_000).then(() => say(`demo: water rising at ${water.def.name}`), () => undefined);
  }, 3000);

  // Citizens report too (12345 hotline orders, idempotent by order number, and an Open311 request), and 城管局 has a
  // login of its own: route a case to it and sign in as that user to see the department workbench.
  const deptUser = 'dept-chengguan';
  if (!(await auth.listUsers()).some((u) => u.username === deptUser)) {
    demo.deptPassword = randomBytes(12).toString('base64url');
    const u = await auth.createUser({ username: deptUser, password: demo.deptPassword, role: 'officer', displayName: '城管局值班' });
    await client.request<Department>('PATCH', '/departments/chengguan', { userIds: [u.id], leaderUserId: u.id } satisfies UpdateDepartmentBody).catch(() => undefined);
    await writeFile(`${dirname(statePath)}/demo.json`, JSON.stringify(demo, null, 1), { mode: 0o600 });
  }
  const citizen = setTimeout(() => {
    const spots = [...run.world.sensors.values()].map((x) => x.def);
    const at = (i: number) => spots[(i * 7) % Math.max(1, spots.length)];
    const day = new Date(Date.now() + 8 * 3600_000).toISOString().slice(0, 10).replaceAll('-', '');
    const orders = [
      { orderNo: `RX${day}0001`, category: '占道经营', content: '早市摊贩占用人行道，行人只能走机动车道（12345 演示工单）', caller: { name: '李女士' } },
      { orderNo: `RX${day}0002`, category: 'illegal_posters', content: '小区单元门贴满小广告（12345 演示工单）', caller: { name: '王先生' } },
    ];
    orders.forEach((o, i) => {
      const p = at(i + 1);
      if (!p) return;
      void client.post<HotlineOrderResult>('/intake/12345', { ...o, lat: p.lat, lon: p.lon } satisfies HotlineOrderBody).then(() => say(`demo: 12345 order ${o.orderNo} (${o.category}) became a citizen case`), () => undefined);
    });
    const p = at(3);
    if (p) void client.post<Open311Created>('/open311/v2/requests.json', { service_code: 'C0102', lat: p.lat, long: p.lon, description: '路灯不亮（Open311 演示）', last_name: '赵' } satisfies Open311RequestBody).then(() => say('demo: an Open311 request (路灯) became a citizen case'), () => undefined);
  }, 8000);
  cleanups.push(() => clearTimeout(citizen));

  // A camera that streams sees something: its alert opens a case, the linkage popup plays it with the object marked,
  // and the case's evidence clip holds the seconds before the alert from the camera's rolling buffer.
  const streaming = [...run.world.cameras.values()].filter((c) => c.rtsp);
  let alertN = 0;
  const cameraAlert = () => {
    const cam = streaming[alertN++ % Math.max(1, streaming.length)];
    if (!cam?.rtsp) return;
    void cam.alert(alertN % 2 ? 'garbage_overflow' : 'illegal_parking', 0.9).then(() => say(`demo: ${cam.def.name} (${cam.id}) raised a camera alert`), () => undefined);
  };
  const firstAlert = setTimeout(cameraAlert, DEMO_FIRST_ALERT_MS);
  const moreAlerts = setInterval(cameraAlert, 5 * 60_000);
  cleanups.push(() => {
    clearTimeout(firstAlert);
    clearInterval(moreAlerts);
  });

  const cons = `http://localhost:${ports.http}/`;
  say('');
  say(`GridLink demo — ${district.meta.name}, ${district.meta.counts.grids} grids, ${run.world.size} simulated devices at ${speed}x`);
  say(`  console  ${cons}   (login admin / ${process.env.GRIDLINK_ADMIN_PASSWORD ? '$GRIDLINK_ADMIN_PASSWORD' : `${demo.adminPassword} on a fresh ./data; otherwise the password of your first run`})`);
  say(`  MQTT     ${mqttUrl}   REST ${base}/api/v1   OpenAPI ${base}/docs`);
  if (demo.deptPassword) say(`  部门工作台 ${cons}   (login dept-chengguan / ${demo.deptPassword}: cases routed to 城管局)`);
  for (const [deviceId, l] of Object.entries(appLogins)) say(`  网格通   http://localhost:${ports.http}/m/   (login ${l.username} / ${l.password}; ${deviceId} runs through the app's API)`);
  say('  Ctrl-C stops everything.');
  say('');
  process.stdout.write(`${JSON.stringify({ msg: 'demo ready', http: ports.http, mqtt: ports.mqtt, user: DEMO_USER, devices: run.world.size })}\n`);

  const status = setInterval(() => {
    void (async () => {
      const d = run.dispatcher?.stats;
      let cases = '';
      try {
        // The counts route, not a list: a list is one page of the newest cases.
        const counts = await client.caseCounts();
        cases = Object.entries(counts.byStatus).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ');
      } catch (err) {
        cases = err instanceof HubError && err.routeMissing ? 'cases module not loaded' : (err as Error).message;
      }
      say(`[demo] ${hub.ctx.broker.connectedCount} devices connected | cases: ${cases || 'none yet'}${d ? ` | dispatcher: ${d.registered} registered, ${d.dispatched + d.redispatched} dispatched, ${d.verified} closed` : ''}`);
    })();
  }, 15_000);

  cleanups.push(async () => {
    clearTimeout(planted);
    clearInterval(status);
    clearInterval(refresh);
    await run.dispatcher?.stop();
    run.clock.dispose();
    await run.world.stop();
  });
  return { hub, run, stop: cleanup };
}

if (process.argv[1] && /demo\.[jt]s$/.test(process.argv[1])) {
  let stopping = false;
  const handler = () => {
    if (stopping) process.exit(130);
    stopping = true;
    process.stderr.write('\nstopping the demo…\n');
    const force = setTimeout(() => process.exit(1), 20_000);
    force.unref();
    cleanup().then(() => process.exit(0), (err) => {
      process.stderr.write(`${(err as Error).message}\n`);
      process.exit(1);
    });
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  runDemo(process.argv.slice(2)).catch((err) => {
    if (stopping) return;
    process.stderr.write(`demo failed: ${(err as Error).stack ?? err}\n`);
    void cleanup().finally(() => process.exit(1));
  });
}
