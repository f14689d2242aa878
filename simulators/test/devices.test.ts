import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commandTopic, decodeCommand } from '@gridlink/devices';
import { createHub, testConfig, type Hub } from '@gridlink/hub';
import { SimClock } from '../src/clock.js';
import { generateDistrict } from '../src/district/generate.js';
import { StreetGraph } from '../src/district/streets.js';
import { SimHandheld } from '../src/devices/handheld.js';
import { SimSensor } from '../src/devices/sensor.js';
import { SimCamera } from '../src/devices/camera.js';
import { HubClient } from '../src/hub-client.js';
import { until as waitFor } from './until.js';
import { Rng } from '../src/util/rng.js';

/** Polls `fn` until it returns a truthy value; `ms` guards a hang only (what: for the error message). */
const until = <T>(fn: () => Promise<T> | T, ms = 10_000, what = 'condition') => waitFor(fn, ms, what, 100);

describe('simulated devices against a real hub', () => {
  const district = generateDistrict({ streets: 1, communitiesPerStreet: 1, communityCols: 2, communityRows: 2 });
  const graph = new StreetGraph(district.streets);
  let dir: string;
  let hub: Hub;
  let client: HubClient;
  let ports: { http: number; mqtt: number };
  const secrets = new Map<string, string>();
  const cfg = () => testConfig({ databaseUrl: undefined, dataDir: dir, httpPort: ports?.http ?? 0, mqttPort: ports?.mqtt ?? 0 });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gridlink-sim-'));
    hub = await createHub(cfg(), { modules: [] });
    ports = await hub.start();
    client = new HubClient(`http://127.0.0.1:${ports.http}`);
    await client.login('admin', 'admin-test-password');
    for (const d of district.devices) {
      const r = await client.registerDevice({ id: d.id, type: d.type, name: d.name, lat: d.lat, lon: d.lon, gridId: d.gridId });
      secrets.set(d.id, r.secret);
    }
  });

  afterAll(async () => {
    await hub?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const def = (type: string) => {
    const d = district.devices.find((x) => x.type === type)!;
    return { ...d, secret: secrets.get(d.id)! };
  };

  it('should report telemetry on schedule with its own credentials and reflect a set level', async () => {
    const clock = new SimClock(100);
    const s = new SimSensor(def('sensor.water_level'), { mqttUrl: `mqtt://127.0.0.1:${ports.mqtt}`, clock, rng: new Rng(1) }, { intervalMs: 60_000, missRate: 0, dropoutRate: 0 });
    await s.start();
    try {
      // 60 s interval at 100x: a report every 0.6 s of wall time.
      const pts = await until(async () => {
        const r = await client.telemetry(s.id, { metric: 'water_level_cm' });
        return r.points.length >= 3 ? r.points : null;
      }, 15_000, 'three scheduled readings');
      for (const p of pts) expect(p.value).toBeLessThan(0);
      await s.set('water_level_cm', 35);
      await until(async () => (await client.telemetry(s.id, { metric: 'water_level_cm' })).points.some((p) => p.value === 35), 5000, 'the 35 cm reading');
      const battery = await client.telemetry(s.id, { metric: 'battery_pct' });
      expect(battery.points.length).toBeGreaterThan(0);
      expect((await client.getDevice(s.id)).online).toBe(true);
    } finally {
      clock.dispose();
      await s.stop();
    }
  });

  it('should publish a camera alert with a valid JPEG snapshot', async () => {
    const clock = new SimClock(1);
    const cam = new SimCamera(def('camera'), { mqttUrl: `mqtt://127.0.0.1:${ports.mqtt}`, clock, rng: new Rng(2) });
    await cam.start();
    try {
      const body = await cam.alert('garbage_overflow', 0.8);
      const jpeg = Buffer.from(body.snapshot!, 'base64');
      expect(jpeg.subarray(0, 2).toString('hex')).toBe('ffd8');
      expect(jpeg.subarray(-2).toString('hex')).toBe('ffd9');
    } finally {
      clock.dispose();
      await cam.stop();
    }
  });

  it('should walk the street network, answer a dispatch like a person and resolve with a photo', async () => {
    const clock = new SimClock(50);
    const hh = def('handheld');
    const worker = district.workers.find((w) => w.deviceId === hh.id)!;
    const h = new SimHandheld(hh, worker, graph, { mqttUrl: `mqtt://127.0.0.1:${ports.mqtt}`, clock, rng: new Rng(3) }, { declineRate: 0, acceptDelayMs: [2000, 3000], handlingMs: [5000, 6000] });
    await h.start();
    try {
      const start = { lat: h.lat, lon: h.lon };
      await until(() => Math.abs(h.lat - start.lat) + Math.abs(h.lon - start.lon) > 1e-5, 10_000, 'the worker to move');
      // Act as the hub's dispatch: a command on the handheld's topic through the broker.
      const target = graph.node([...graph.nodes.keys()].at(-1)!);
      const answers: string[] = [];
      await hub.ctx.broker.sendCommand(hh.id, { cmdId: 'c1', type: 'dispatch', ts: Date.now(), case: { id: 'case-1', code: 'T1', title: '测试', category: 'garbage', lat: target.lat, lon: target.lon, deadline: Date.now() + 3600_000 } });
      await until(() => h.caseLog.some((e) => e.action === 'resolve'), 20_000, 'accept → arrive → resolve');
      answers.push(...h.caseLog.map((e) => e.action));
      expect(answers).toEqual(['accept', 'arrive', 'resolve']);
      expect(Math.hypot(h.lat - target.lat, h.lon - target.lon)).toBeLessThan(1e-4);
      // The answers went over MQTT and were stored as the device's messages.
      const dev = await client.getDevice(hh.id);
      expect(dev.lastSeen).toBeGreaterThan(Date.now() - 10_000);
      expect(decodeCommand(JSON.stringify({ cmdId: 'x', type: 'cancel', ts: 1, caseId: 'case-1' }))?.type).toBe('cancel');
      expect(commandTopic(hh.id)).toBe(`gridlink/v1/${hh.id}/cmd`);
    } finally {
      clock.dispose();
      await h.stop();
    }
  });

  it('should survive a hub restart: reconnect with backoff and deliver what was published while it was down', async () => {
    const clock = new SimClock(1);
    const d = def('sensor.gas');
    const s = new SimSensor(d, { mqttUrl: `mqtt://127.0.0.1:${ports.mqtt}`, clock, rng: new Rng(4) }, { intervalMs: 3_600_000, missRate: 0, dropoutRate: 0 });
    s.link.opts.backoffMinMs = 200;
    s.link.opts.backoffMaxMs = 1000;
    await s.start();
    try {
      await until(() => s.link.stats.acked >= 1, 5000, 'the first reading');
      await hub.stop();
      await until(() => !s.link.connected, 5000, 'the link to notice');
      // Published while the hub is down: QoS 1 keeps it queued in the client.
      const during = s.set('ch4_pct_lel', 42);
      hub = await createHub(cfg(), { modules: [] });
      await hub.start();
      await client.login('admin', 'admin-test-password');
      await during;
      await until(() => s.link.connected, 15_000, 'the reconnect');
      expect(s.link.stats.connects).toBeGreaterThanOrEqual(2);
      await until(async () => (await client.telemetry(d.id, { metric: 'ch4_pct_lel' })).points.some((p) => p.value === 42), 10_000, 'the reading made during the outage');
      // And it carries on reporting after the restart.
      await s.report();
      expect((await client.getDevice(d.id)).online).toBe(true);
    } finally {
      clock.dispose();
      await s.stop();
    }
  });

  it('should go offline through its will message when the connection drops, and come back', async () => {
    const clock = new SimClock(1);
    const d = def('sensor.smoke');
    const s = new SimSensor(d, { mqttUrl: `mqtt://127.0.0.1:${ports.mqtt}`, clock, rng: new Rng(5) }, { intervalMs: 3_600_000 });
    await s.start();
    try {
      await until(async () => (await client.getDevice(d.id)).online, 5000, 'online');
      s.link.dropFor(1500);
      await until(async () => !(await client.getDevice(d.id)).online, 5000, 'offline after the drop');
      await until(async () => (await client.getDevice(d.id)).online, 10_000, 'online again');
    } finally {
      clock.dispose();
      await s.stop();
    }
  });
});
