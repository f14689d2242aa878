/**
 * `npm run sim -- <command>`: the simulator CLI for integrators.
 *
 *   generate   write the demo district (GeoJSON grids + streets, JSON devices + workers)
 *   provision  load a district into a hub through REST, keep the secrets in .sim/
 *   district   run the simulated district against a hub until Ctrl-C
 *   run        play a scenario file; exits 1 when an expectation fails
 *   validate   check scenario files against the schema
 *   load       connect N devices and publish at a target rate; JSON summary
 */
import { readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { SimClock } from './clock.js';
import { DEFAULT_OPTIONS, generateDistrict, PRESETS, type DistrictOptions } from './district/generate.js';
import { readDistrict, writeDistrict } from './district/files.js';
import { DemoDispatcher } from './dispatcher.js';
import { HubClient } from './hub-client.js';
import { runLoad, parseRate } from './load/load.js';
import { provision } from './provision.js';
import { parseDuration, parseScenario, ScenarioError } from './scenario/schema.js';
import { runScenario } from './scenario/runner.js';
import { DEFAULT_STATE_PATH, SimState } from './state.js';
import { SimWorld } from './world.js';

export const DEFAULT_DISTRICT_DIR = '.sim/district';

const HELP = `GridLink simulators — npm run sim -- <command> [options]

  generate   [--out ${DEFAULT_DISTRICT_DIR}] [--seed N] [--preset jinniu|haidian] [--lat --lon --admin 510106]
             [--digits 15|14] [--streets 4] [--communities 3] [--block 3x3] [--cell 300]
  provision  --hub http://127.0.0.1:8080 --user admin --password ... [--mqtt mqtt://127.0.0.1:1883]
             [--district dir] [--state ${DEFAULT_STATE_PATH}] [--rotate] [--duty] [--rtsp-host 127.0.0.1]
  district   --hub ... --user ... --password ... [--speed 1] [--exclude id,id] [--dispatcher]
             [--anomalies] [--rtsp N] [--provision]      runs the simulated district until Ctrl-C
  run        <scenario.yaml> --hub ... --user ... --password ... [--speed 10] [--report out.json]
  validate   <scenario.yaml> [...]
  load       --hub ... --user ... --password ... --devices 20000 --rate 5000/s --duration 60s
             [--qos 1] [--metrics 1] [--connect-rate 1000/s] [--prefix load] [--json out.json]

Hub and credentials also come from GRIDLINK_HUB, GRIDLINK_USER, GRIDLINK_PASSWORD, GRIDLINK_MQTT.
`;

const common = {
  hub: { type: 'string' },
  user: { type: 'string' },
  password: { type: 'string' },
  mqtt: { type: 'string' },
  state: { type: 'string' },
  district: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  quiet: { type: 'boolean', short: 'q' },
} satisfies ParseArgsConfig['options'];

type Values = Record<string, string | boolean | undefined>;

function args(argv: string[], options: ParseArgsConfig['options']): { values: Values; positionals: string[] } {
  const r = parseArgs({ args: argv, options: { ...common, ...options }, allowPositionals: true, strict: true });
  return { values: r.values as Values, positionals: r.positionals };
}

const str = (v: Values, k: string) => (typeof v[k] === 'string' ? (v[k] as string) : undefined);
const num = (v: Values, k: string, d: number) => {
  const s = str(v, k);
  if (s === undefined) return d;
  const n = Number(s);
  if (!Number.isFinite(n)) throw new UsageError(`--${k} must be a number, got ${s}`);
  return n;
};

class UsageError extends Error {}

/** Hub URL, credentials and MQTT URL from flags, then environment. */
export function connection(v: Values): { hub: string; user: string; password: string; mqtt: string } {
  const hub = str(v, 'hub') ?? process.env.GRIDLINK_HUB ?? 'http://127.0.0.1:8080';
  const user = str(v, 'user') ?? process.env.GRIDLINK_USER ?? 'admin';
  const password = str(v, 'password') ?? process.env.GRIDLINK_PASSWORD ?? process.env.GRIDLINK_ADMIN_PASSWORD;
  if (!password) throw new UsageError('--password (or GRIDLINK_PASSWORD) is required');
  const mqtt = str(v, 'mqtt') ?? process.env.GRIDLINK_MQTT ?? `mqtt://${new URL(hub).hostname}:1883`;
  return { hub, user, password, mqtt };
}

async function login(v: Values): Promise<{ client: HubClient; mqtt: string }> {
  const c = connection(v);
  const client = new HubClient(c.hub);
  try {
    await client.login(c.user, c.password);
  } catch (err) {
    throw new Error(`cannot log in to ${c.hub} as ${c.user}: ${(err as Error).message}`);
  }
  return { client, mqtt: c.mqtt };
}

async function loadOrGenerate(v: Values, log: (m: string) => void) {
  const dir = str(v, 'district') ?? DEFAULT_DISTRICT_DIR;
  try {
    return await readDistrict(dir);
  } catch {
    log(`no district in ${dir}; generating the default one there`);
    const d = generateDistrict();
    await writeDistrict(dir, d);
    return d;
  }
}

function districtOptions(v: Values): Partial<DistrictOptions> {
  const o: Partial<DistrictOptions> = {};
  const preset = str(v, 'preset');
  if (preset) {
    const p = PRESETS[preset as keyof typeof PRESETS];
    if (!p) throw new UsageError(`--preset must be one of ${Object.keys(PRESETS).join(', ')}`);
    Object.assign(o, p);
  }
  if (str(v, 'seed')) o.seed = num(v, 'seed', DEFAULT_OPTIONS.seed);
  if (str(v, 'lat')) o.lat = num(v, 'lat', 0);
  if (str(v, 'lon')) o.lon = num(v, 'lon', 0);
  if (str(v, 'admin')) o.adminCode = str(v, 'admin')!;
  if (str(v, 'name')) o.name = str(v, 'name')!;
  if (str(v, 'digits')) {
    const d = num(v, 'digits', 15);
    if (d !== 14 && d !== 15) throw new UsageError('--digits must be 14 or 15');
    o.codeDigits = d;
  }
  if (str(v, 'streets')) o.streets = num(v, 'streets', 4);
  if (str(v, 'communities')) o.communitiesPerStreet = num(v, 'communities', 3);
  if (str(v, 'cell')) o.cellM = num(v, 'cell', 300);
  const block = str(v, 'block');
  if (block) {
    const m = /^(\d+)x(\d+)$/.exec(block);
    if (!m) throw new UsageError('--block must look like 3x3');
    o.communityCols = Number(m[1]);
    o.communityRows = Number(m[2]);
  }
  return o;
}

/** Stops on the first Ctrl-C; a second one exits at once. */
function onStop(fn: () => Promise<void>): void {
  let stopping = false;
  const handler = () => {
    if (stopping) process.exit(130);
    stopping = true;
    process.stderr.write('\nstopping…\n');
    fn().then(() => process.exit(0), (err) => {
      process.stderr.write(`${(err as Error).message}\n`);
      process.exit(1);
    });
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  const log = (m: string) => process.stderr.write(`${m}\n`);
  switch (cmd) {
    case 'generate': {
      const { values: v } = args(rest, {
        out: { type: 'string' }, seed: { type: 'string' }, preset: { type: 'string' }, lat: { type: 'string' }, lon: { type: 'string' }, admin: { type: 'string' },
        name: { type: 'string' }, digits: { type: 'string' }, streets: { type: 'string' }, communities: { type: 'string' }, block: { type: 'string' }, cell: { type: 'string' },
      });
      const d = generateDistrict(districtOptions(v));
      const out = str(v, 'out') ?? DEFAULT_DISTRICT_DIR;
      const files = await writeDistrict(out, d);
      log(`${d.meta.name} (seed ${d.meta.seed}) at ${d.meta.center.lat}N ${d.meta.center.lon}E, ${d.meta.codeScheme.admin} + ${d.meta.codeScheme.street}/${d.meta.codeScheme.community}/${d.meta.codeScheme.grid}-digit codes`);
      log(Object.entries(d.meta.counts).map(([k, n]) => `${k} ${n}`).join(', '));
      for (const f of files) log(`  wrote ${f}`);
      return 0;
    }
    case 'provision': {
      const { values: v } = args(rest, { rotate: { type: 'boolean' }, duty: { type: 'boolean' }, 'rtsp-host': { type: 'string' } });
      const { client, mqtt } = await login(v);
      const district = await loadOrGenerate(v, log);
      const state = await SimState.open(str(v, 'state') ?? DEFAULT_STATE_PATH);
      const rep = await provision({ hub: client, state, district, mqttUrl: mqtt, rotate: v.rotate === true, onDuty: v.duty === true, rtspHost: str(v, 'rtsp-host'), log });
      process.stdout.write(`${JSON.stringify(rep, null, 2)}\n`);
      log(`secrets for ${client.base} kept in ${state.path}`);
      return 0;
    }
    case 'district': {
      const { values: v } = args(rest, {
        speed: { type: 'string' }, exclude: { type: 'string' }, dispatcher: { type: 'boolean' }, anomalies: { type: 'boolean' }, rtsp: { type: 'string' }, provision: { type: 'boolean' }, seed: { type: 'string' },
      });
      const { client, mqtt } = await login(v);
      const district = await loadOrGenerate(v, log);
      const state = await SimState.open(str(v, 'state') ?? DEFAULT_STATE_PATH);
      const hs = state.hub(client.base);
      if (v.provision || Object.keys(hs.devices).length === 0) await provision({ hub: client, state, district, mqttUrl: mqtt, onDuty: true, log });
      const { world, dispatcher, clock } = await startDistrict({
        client, mqtt: hs.mqttUrl && !str(v, 'mqtt') ? hs.mqttUrl : mqtt, district, state, speed: num(v, 'speed', 1), exclude: str(v, 'exclude')?.split(',').filter(Boolean) ?? [],
        dispatcher: v.dispatcher === true, anomalies: v.anomalies === true, rtsp: num(v, 'rtsp', 0), log,
      });
      onStop(async () => {
        await dispatcher?.stop();
        clock.dispose();
        await world.stop();
      });
      await new Promise(() => undefined);
      return 0;
    }
    case 'run': {
      const { values: v, positionals } = args(rest, { speed: { type: 'string' }, report: { type: 'string' } });
      if (!positionals[0]) throw new UsageError('run needs a scenario file');
      const file = positionals[0];
      const sc = parseScenario(await readFile(file, 'utf8'), file);
      const { client, mqtt } = await login(v);
      const state = await SimState.open(str(v, 'state') ?? DEFAULT_STATE_PATH);
      const district = str(v, 'district') ? await readDistrict(str(v, 'district')!) : undefined;
      const res = await runScenario(sc, {
        hub: client, state, mqttUrl: mqtt, baseDir: dirname(file), log: v.quiet ? undefined : log,
        ...(str(v, 'speed') ? { speed: num(v, 'speed', 1) } : {}),
        ...(district ? { district } : {}),
      });
      const failed = res.expectations.filter((e) => !e.ok);
      log(`${res.ok ? 'PASS' : 'FAIL'} ${res.name}: ${res.expectations.length - failed.length}/${res.expectations.length} expectations met in ${(res.wallMs / 1000).toFixed(1)} s at ${res.speed}x`);
      for (const f of failed) log(`  ✘ step ${f.step} at ${f.at}: ${f.what} — ${f.detail}`);
      if (str(v, 'report')) await writeFile(str(v, 'report')!, JSON.stringify(res, null, 2));
      return res.ok ? 0 : 1;
    }
    case 'validate': {
      const { positionals } = args(rest, {});
      if (!positionals.length) throw new UsageError('validate needs scenario files');
      let bad = 0;
      for (const f of positionals) {
        try {
          const sc = parseScenario(await readFile(f, 'utf8'), f);
          log(`ok   ${f}: ${sc.name} (${sc.steps.length} steps)`);
        } catch (err) {
          bad++;
          log(`FAIL ${(err as Error).message}`);
        }
      }
      return bad ? 1 : 0;
    }
    case 'load': {
      const { values: v } = args(rest, {
        devices: { type: 'string' }, rate: { type: 'string' }, duration: { type: 'string' }, qos: { type: 'string' }, 'connect-rate': { type: 'string' }, prefix: { type: 'string' }, json: { type: 'string' }, metrics: { type: 'string' },
      });
      // Flags are checked before the hub is asked, so a typo is reported as such, not as a login failure.
      const qos = num(v, 'qos', 1);
      if (qos !== 0 && qos !== 1) throw new UsageError('--qos must be 0 or 1');
      const opts = {
        devices: num(v, 'devices', 1000),
        rate: parseRate(str(v, 'rate') ?? '1000/s'),
        durationMs: parseDuration(str(v, 'duration') ?? '30s'),
        qos,
        connectRate: parseRate(str(v, 'connect-rate') ?? '1000/s'),
        prefix: str(v, 'prefix') ?? 'load',
        metrics: num(v, 'metrics', 1),
        progress: !v.quiet,
        log,
      } as const;
      const { client, mqtt } = await login(v);
      const state = await SimState.open(str(v, 'state') ?? DEFAULT_STATE_PATH);
      const summary = await runLoad({ hub: client, state, mqttUrl: mqtt, ...opts });
      const json = JSON.stringify(summary, null, 2);
      process.stdout.write(`${json}\n`);
      if (str(v, 'json')) await writeFile(str(v, 'json')!, json);
      return summary.errors > 0 && summary.acked === 0 ? 1 : 0;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(HELP);
      return cmd === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command ${cmd}`);
  }
}

export interface DistrictRun {
  world: SimWorld;
  dispatcher: DemoDispatcher | null;
  clock: SimClock;
}

/** Starts a provisioned district: the shared path of `sim district` and the demo. */
export async function startDistrict(o: {
  client: HubClient;
  mqtt: string;
  district: Awaited<ReturnType<typeof readDistrict>>;
  state: SimState;
  speed: number;
  exclude?: string[];
  dispatcher?: boolean;
  anomalies?: boolean;
  rtsp?: number;
  /** Handhelds driven through the worker app's API, by device id. */
  appLogins?: Record<string, { username: string; password: string }>;
  log: (m: string) => void;
}): Promise<DistrictRun> {
  const clock = new SimClock(o.speed);
  const world = new SimWorld({
    district: o.district,
    state: o.state.hub(o.client.base),
    mqttUrl: o.mqtt,
    clock,
    hub: o.client,
    exclude: o.exclude ?? [],
    rtsp: o.rtsp ?? 0,
    ...(o.appLogins ? { appLogins: o.appLogins, httpUrl: o.client.base } : {}),
    log: o.log,
    // Living-district rates: per device, in simulated time.
    ...(o.anomalies
      ? {
          sensor: { anomalyEveryMs: 24 * 3600_000 },
          camera: { alertEveryMs: 12 * 3600_000 },
          handheld: { problemEveryMs: 12 * 3600_000 },
        }
      : {}),
  });
  if (world.missing.length) o.log(`! ${world.missing.length} devices have no secret for ${o.client.base} (not provisioned there); run \`sim provision\``);
  const t0 = Date.now();
  await world.start();
  o.log(`district running: ${world.sensors.size} sensors, ${world.handhelds.size} handhelds, ${world.cameras.size} cameras connected in ${((Date.now() - t0) / 1000).toFixed(1)} s at ${o.speed}x`);
  await resumeOpenCases(o.client, world, o.log);
  let dispatcher: DemoDispatcher | null = null;
  if (o.dispatcher) {
    dispatcher = new DemoDispatcher({ hub: o.client, log: o.log });
    dispatcher.start();
  }
  return { world, dispatcher, clock };
}

/** Hands cases the hub still has assigned to simulated workers back to their (restarted) handhelds. */
async function resumeOpenCases(client: HubClient, world: SimWorld, log: (m: string) => void): Promise<void> {
  let open;
  try {
    open = await client.allCases({ status: 'dispatched,accepted,on_scene' });
  } catch {
    return; // no cases module: nothing to resume
  }
  let n = 0;
  for (const c of open) {
    const h = c.workerId ? world.handheldOf(c.workerId) : undefined;
    if (!h) continue;
    n++;
    void h.resume(c).catch(() => undefined);
  }
  if (n) log(`resumed ${n} open case(s) assigned to simulated workers`);
}

if (process.argv[1] && /cli\.[jt]s$/.test(process.argv[1])) {
  main(process.argv.slice(2)).then(
    (code) => {
      if (process.argv[2] !== 'district') process.exit(code);
    },
    (err) => {
      if (err instanceof UsageError) process.stderr.write(`${err.message}\n\n${HELP}`);
      else if (err instanceof ScenarioError) process.stderr.write(`${err.message}\n`);
      else process.stderr.write(`error: ${(err as Error).message}\n`);
      process.exit(2);
    },
  );
}
