import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHub, testConfig, type Hub } from '@gridlink/hub';
import { HubClient } from '../src/hub-client.js';
import { parseDuration, parseScenario, ScenarioError, type Scenario } from '../src/scenario/schema.js';
import { runScenario } from '../src/scenario/runner.js';
import { SimState } from '../src/state.js';

const SCENARIOS = new URL('../scenarios/', import.meta.url).pathname;
const ROOT = new URL('../../', import.meta.url).pathname;

describe('scenario schema', () => {
  it('should validate every example scenario', async () => {
    const files = (await readdir(SCENARIOS)).filter((f) => /\.(ya?ml|json)$/.test(f));
    expect(files.length).toBeGreaterThanOrEqual(4);
    for (const f of files) {
      const sc = parseScenario(await readFile(join(SCENARIOS, f), 'utf8'), f);
      expect(sc.steps.length, f).toBeGreaterThan(0);
    }
  });

  it('should list every problem with its path at once', () => {
    const text = `
name: broken
steps:
  - at: "0:3"
    water: { grid: "1", level: "high" }
  - at: 5s
    expect: { within: 5s }
  - at: 1m
    teleport: { x: 1 }
`;
    let err: ScenarioError | undefined;
    try {
      parseScenario(text, 'broken.yaml');
    } catch (e) {
      err = e as ScenarioError;
    }
    expect(err).toBeInstanceOf(ScenarioError);
    const msg = err!.message;
    expect(msg).toContain('broken.yaml is invalid');
    expect(msg).toMatch(/\/steps\/0\/at: expected a duration/);
    expect(msg).toMatch(/\/steps\/0\/water\/level: Expected number/);
    expect(msg).toMatch(/\/steps\/2: a step has "at" and exactly one of/);
    expect(() => parseScenario('name: x\nsteps:\n  - at: 1s\n    expect: { within: 1s }\n')).toThrow(/needs exactly one of case, device, reading, worker/);
    expect(() => parseScenario('name: x\nsteps:\n  - at: 1s\n    water: { level: 3 }\n')).toThrow(/needs device or grid/);
    expect(() => parseScenario('{ not yaml')).toThrow(ScenarioError);
  });

  it('should parse durations in every documented form', () => {
    expect(parseDuration('00:30')).toBe(30_000);
    expect(parseDuration('1:02:03')).toBe(3_723_000);
    expect(parseDuration('1m30s')).toBe(90_000);
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('2h')).toBe(7_200_000);
    expect(parseDuration(1.5)).toBe(1500);
    expect(() => parseDuration('soon')).toThrow(RangeError);
  });
});

describe('scenario runner against a real hub', () => {
  let hub: Hub;
  let client: HubClient;
  let mqttUrl: string;
  let dir: string;
  let state: SimState;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gridlink-scn-'));
    hub = await createHub(testConfig());
    const ports = await hub.start();
    client = new HubClient(`http://127.0.0.1:${ports.http}`);
    await client.login('admin', 'admin-test-password');
    mqttUrl = `mqtt://127.0.0.1:${ports.mqtt}`;
    state = await SimState.open(join(dir, 'secrets.json'));
  });

  afterAll(async () => {
    await hub?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const run = (sc: Scenario) => runScenario(sc, { hub: client, state, mqttUrl, minWallMs: 1000 });

  it('should pass the worker report example: a worker-sourced case appears and nothing else', async () => {
    const sc = parseScenario(await readFile(join(SCENARIOS, 'worker-report.yaml'), 'utf8'));
    const res = await run(sc);
    expect(res.expectations.map((e) => [e.ok, e.detail])).toEqual([[true, expect.stringContaining('1 matching')], [true, 'no matching case']]);
    expect(res.ok).toBe(true);
  });

  it('should pass the flooding and camera examples (rules module: water level and alert confidence)', async () => {
    for (const f of ['flooding.yaml', 'camera-alerts.yaml']) {
      const res = await run(parseScenario(await readFile(join(SCENARIOS, f), 'utf8'), f));
      expect(res.expectations.filter((e) => !e.ok), f).toEqual([]);
      expect(res.expectations.length, f).toBeGreaterThanOrEqual(2);
    }
  });

  it('should fail an expectation that is not met, naming what it saw', async () => {
    const res = await run({
      name: 'must fail',
      speed: 10,
      steps: [
        { at: '00:01', water: { grid: '510106001001009', level: 12 } },
        { at: '00:01', expect: { reading: { device: 'water-510106001001009', metric: 'water_level_cm', min: 12, max: 12 }, within: '10s' } },
        { at: '00:02', expect: { case: { category: '火灾', grid: '510106001001009' }, within: '2s' } },
      ],
    });
    expect(res.ok).toBe(false);
    const [reading, fire] = res.expectations;
    expect(reading!.ok).toBe(true);
    expect(fire!.ok).toBe(false);
    expect(fire!.detail).toMatch(/^not within 00:02/);
  });

  it('should fail a `none` expectation when such a case does appear', async () => {
    const res = await run({
      name: 'none violated',
      speed: 10,
      steps: [
        { at: '00:01', worker: { id: 'w-510106001001002-1', report: { category: 'street_vending', description: '占道' } } },
        { at: '00:01', expect: { case: { category: '占道经营', grid: '510106001001002', none: true }, within: '5s' } },
      ],
    });
    expect(res.ok).toBe(false);
    expect(res.expectations[0]!.detail).toContain('matching');
  });

  it('should reject a scenario naming a device the district does not have before running', async () => {
    await expect(run({ name: 'typo', steps: [{ at: 1, water: { grid: '510106001001001', level: 40 } }] })).rejects.toThrow(/grid 510106001001001 has no sensor.water_level \(grids with one: 510106001001009/);
  });

  it('should exit 0 from `sim run` when expectations pass and 1 when one fails', async () => {
    const exec = promisify(execFile);
    const base = ['--import', 'tsx', join(ROOT, 'simulators/src/cli.ts'), 'run'];
    const conn = ['--hub', client.base, '--mqtt', mqttUrl, '--user', 'admin', '--password', 'admin-test-password', '--state', join(dir, 'cli-secrets.json'), '-q'];
    const ok = await exec(process.execPath, [...base, join(SCENARIOS, 'worker-report.yaml'), ...conn, '--speed', '20'], { cwd: ROOT });
    expect(ok.stderr).toMatch(/PASS 网格员上报: 2\/2 expectations met/);
    const failing = join(dir, 'failing.yaml');
    await writeFile(failing, 'name: fails\nsteps:\n  - at: 1s\n    expect:\n      case: { category: 路面塌陷 }\n      within: 1s\n');
    const bad = await exec(process.execPath, [...base, failing, ...conn], { cwd: ROOT }).then(() => null, (err: { code: number; stderr: string }) => err);
    expect(bad?.code).toBe(1);
    expect(bad?.stderr).toMatch(/FAIL fails: 0\/1 expectations met/);
  });
});
