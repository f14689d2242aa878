import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import type { CaseSummary, Worker } from '@gridlink/devices/contract';
import { HubClient, HubError } from '../src/hub-client.js';
import { until } from './until.js';

const ROOT = new URL('../../', import.meta.url).pathname;

describe('npm run demo', () => {
  let child: ChildProcess | undefined;
  let dir: string | undefined;
  const stderr: string[] = [];

  afterAll(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('should start a living district: fresh worker positions and stored readings, a case reported → closed by a simulated worker', async () => {
    dir = await mkdtemp(join(tmpdir(), 'gridlink-demo-'));
    // The demo entry point exactly as `npm run demo` runs it, on free ports and a throwaway data dir.
    child = spawn(process.execPath, ['--import', 'tsx', 'simulators/src/demo.ts', '--size', 'small', '--state', join(dir, 'sim/secrets.json'), '--district', join(dir, 'sim/district')], {
      cwd: ROOT,
      env: { ...process.env, GRIDLINK_HTTP_PORT: '0', GRIDLINK_MQTT_PORT: '0', GRIDLINK_HOST: '127.0.0.1', GRIDLINK_DATA_DIR: join(dir, 'data'), GRIDLINK_ADMIN_PASSWORD: '', DATABASE_URL: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    createInterface({ input: child.stderr! }).on('line', (l) => stderr.push(l));
    const ready = await new Promise<{ http: number; mqtt: number }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`demo not ready in 300 s:\n${stderr.slice(-20).join('\n')}`)), 300_000);
      createInterface({ input: child!.stdout! }).on('line', (line) => {
        if (!line.startsWith('{')) return;
        const m = JSON.parse(line) as { msg?: string; http: number; mqtt: number };
        if (m.msg === 'demo ready') {
          clearTimeout(timer);
          resolve(m);
        }
      });
      child!.once('exit', (code) => reject(new Error(`demo exited ${code}:\n${stderr.slice(-20).join('\n')}`)));
    });

    // Log in the way a person would: admin with the demo's first-run password.
    const { adminPassword } = JSON.parse(await readFile(join(dir, 'sim/demo.json'), 'utf8')) as { adminPassword: string };
    const hub = new HubClient(`http://127.0.0.1:${ready.http}`);
    await hub.login('admin', adminPassword);

    // Moving workers with live positions (handhelds report every few seconds; a minute tells live from seeded on a
    // busy machine), and sensor readings stored. How fast they come is bench:city's and bench:latency's to measure;
    // the waits here only guard against a hang.
    const withFix = await until(async () => {
      const ws = (await hub.listWorkers()).items.filter((w) => w.position && Date.now() - w.position.ts < 60_000);
      return ws.length >= 10 ? ws : null;
    }, 120_000, 'workers with positions younger than a minute');
    expect(withFix.length).toBeGreaterThanOrEqual(10);
    const first = new Map(withFix.map((w) => [w.id, w.position!]));
    const devices = (await hub.listDevices()).items;
    const sensors = devices.filter((d) => d.type.startsWith('sensor.'));
    expect(sensors.length).toBeGreaterThan(20);
    const readings = await until(async () => {
      let n = 0;
      for (const s of sensors.slice(0, 10)) n += (await hub.telemetry(s.id)).points.length;
      return n > 0 ? n : null;
    }, 120_000, 'stored readings');
    expect(readings).toBeGreaterThan(0);
    // Positions keep moving.
    const moved = await until(async () => {
      const ws: Worker[] = (await hub.listWorkers()).items;
      return ws.filter((w) => w.position && first.has(w.id) && (w.position.lat !== first.get(w.id)!.lat || w.position.lon !== first.get(w.id)!.lon)).length >= 5;
    }, 120_000, 'workers to move');
    expect(moved).toBe(true);

    // Within about a minute: a case that went reported → closed through a simulated worker.
    const closed = await until(async () => {
      let items: CaseSummary[];
      try {
        items = (await hub.listCases({ status: 'closed' })).items;
      } catch (err) {
        if (err instanceof HubError && err.routeMissing) throw new Error('the hub has no cases module');
        throw err;
      }
      for (const c of items) {
        const full = await hub.getCase(c.id);
        const h = full.history;
        const byWorker = h.filter((x) => x.actor.kind === 'worker').map((x) => x.action);
        if (h[0]?.to === 'reported' && ['accept', 'arrive', 'resolve'].every((a) => byWorker.includes(a))) return full;
      }
      return null;
    }, 120_000, 'a case closed through a simulated worker');
    expect(closed.status).toBe('closed');
    expect(closed.workerId).toBeTruthy();

    // Ctrl-C stops everything cleanly.
    const exited = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)));
    child.kill('SIGINT');
    const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('timeout'), 90_000))]);
    expect(code).toBe(0);
    expect(stderr.join('\n')).toContain('stopping the demo');
  }, 600_000);
});
