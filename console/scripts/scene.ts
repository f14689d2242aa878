/**
 * A populated hub for screenshots and the benchmark: the simulators' demo
 * district (grids, sensors, cameras, handhelds and workers), a few cases in
 * different states, live worker positions pushed through the hub's real
 * Socket.IO fan-out, and optionally a real RTSP camera for the video wall.
 */
import type { Browser } from 'playwright-core';
import { productModules } from '@gridlink/hub';
import { generateDistrict, type DeviceLink } from '@gridlink/simulators';
import { buildConsole, launch } from '../test/e2e/harness';
import { startHub, type ScriptHub } from './hub';

export interface Scene {
  hub: ScriptHub;
  dir: string;
  district: ReturnType<typeof generateDistrict>;
  /** Connected MQTT links of the first smoke sensors (screenshots raise an alarm through them). */
  sensors: Map<string, DeviceLink>;
  /** Synthetic live workers (ids `sim-N`) moving in the district, one burst per second. */
  startMovers(n: number): () => void;
  stop(): Promise<void>;
}

export async function startScene(opts: { devices?: boolean; cases?: boolean } = {}): Promise<Scene> {
  const dir = await buildConsole();
  const hub = await startHub({ consoleDir: dir }, { modules: productModules() });
  const district = generateDistrict();
  const put = await hub.api('PUT', '/grids', district.grids);
  if (put.status !== 200) throw new Error(`grids: ${put.status} ${JSON.stringify(put.body)}`);
  const sensors = new Map<string, DeviceLink>();
  if (opts.devices !== false) {
    for (const d of district.devices) {
      if (d.type === 'camera') {
        await hub.api('POST', '/cameras', { id: d.id, name: d.name, rtspUrl: `rtsp://127.0.0.1:1/${d.id}`, lat: d.lat, lon: d.lon });
        continue;
      }
      const r = await hub.registerDevice(d.type, d.id, { name: d.name, lat: d.lat, lon: d.lon, gridId: d.gridId });
      if (d.type === 'sensor.smoke' && sensors.size < 2) sensors.set(d.id, await hub.link(d.id, r.secret));
      if (d.type === 'handheld') {
        const w = district.workers.find((x) => x.deviceId === d.id);
        if (w) {
          await hub.api('POST', '/workers', { name: w.name, deviceId: d.id, gridIds: w.gridIds, onDuty: true });
          const link = await hub.link(d.id, r.secret);
          await link.publish('location', { lat: d.lat, lon: d.lon, acc: 5 });
          await link.close({ announce: false });
        }
      }
    }
  }
  if (opts.cases !== false) {
    const c = district.meta.center;
    const cats = ['E0101', 'E0401', 'E0402', 'E0201', 'C0101', 'E0101', 'E0401'];
    for (const [i, cat] of cats.entries()) {
      const r = await hub.api<{ id: string }>('POST', '/cases', { category: cat, lat: c.lat + (i - 3) * 0.004, lon: c.lon + ((i * 7) % 5 - 2) * 0.005 });
      if (r.status !== 201) continue;
      if (i % 2 === 0) await hub.api('POST', `/cases/${r.body.id}/actions`, { action: 'register', note: 'verified' });
    }
  }
  let timers: ReturnType<typeof setInterval>[] = [];
  return {
    hub,
    dir,
    district,
    sensors,
    startMovers(n) {
      const rt = hub.hub.ctx.services.realtime;
      if (!rt) throw new Error('realtime module missing');
      const { lat, lon } = district.meta.center;
      const statuses = ['available', 'available', 'available', 'en_route', 'dispatched', 'on_scene', 'off_duty'] as const;
      const ws = Array.from({ length: n }, (_, i) => ({
        workerId: `sim-${i}`, deviceId: `sim-hh-${i}`,
        lat: lat + (Math.random() - 0.5) * 0.06, lon: lon + (Math.random() - 0.5) * 0.07,
        hdg: Math.random() * 360, status: statuses[i % statuses.length]!,
      }));
      const tick = () => {
        const ts = Date.now();
        for (const w of ws) {
          // ~1.5 m/s walk with a slowly wandering heading.
          w.hdg = (w.hdg + (Math.random() - 0.5) * 30 + 360) % 360;
          w.lat += Math.cos((w.hdg * Math.PI) / 180) * 1.5e-5;
          w.lon += Math.sin((w.hdg * Math.PI) / 180) * 1.7e-5;
        }
        rt.sendFiltered('positions', ws.map((w) => ({ workerId: w.workerId, deviceId: w.deviceId, lat: w.lat, lon: w.lon, ts, status: w.status, gridId: null })));
      };
      tick();
      const t = setInterval(tick, 1000);
      timers.push(t);
      return () => clearInterval(t);
    },
    async stop() {
      for (const t of timers) clearInterval(t);
      timers = [];
      await hub.stop();
      const { rmSync } = await import('node:fs');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** For the CLI scripts: runs `fn` with a scene and a browser, closes both, exits 1 on failure. */
export function runWithScene(opts: Parameters<typeof startScene>[0], fn: (scene: Scene, browser: Browser) => Promise<void>): void {
  const run = async () => {
    const scene = await startScene(opts);
    const browser = await launch();
    try {
      await fn(scene, browser);
    } finally {
      await browser.close();
      await scene.stop();
    }
  };
  run().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
