/**
 * The duty officer's and dispatcher's loop, end to end in real Chromium
 * against a real hub (PGlite, real MQTT broker, rules, cases, dispatch):
 * a smoke_alarm over MQTT forces a popup with sound until acknowledged; the
 * case is registered, dispatched to the nearest worker from the candidate
 * list, worked by a simulated handheld and closed; a worker moving over MQTT
 * moves on the map; repainting only what moved gives the same pixels as a
 * full repaint.
 */
import type { MqttClient } from 'mqtt';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishAck, until } from '@gridlink/hub/testing';
import { productModules, skipE2E, startE2E, testGrids, type E2E } from './harness';

const LAT = 30.66;
const LON = 104.06;
/**
 * Guards against a hang only: a busy 2-core machine may take seconds for what
 * takes milliseconds on a quiet one. Latency is measured by `npm run bench:console`.
 */
const GUARD = 30_000;

describe.skipIf(skipE2E)('console flows (e2e, chromium, MQTT)', () => {
  let e: E2E;
  let page: Page;
  let smoke: MqttClient;
  const hands = new Map<string, MqttClient>();
  const workerIds: Record<string, string> = {};
  let caseId = '';

  beforeAll(async () => {
    e = await startE2E({}, { modules: await productModules() });
    const { hub } = e;
    expect((await hub.api('PUT', '/grids', testGrids(LAT, LON))).status).toBe(200);
    // Smoke sensor in the east grid; two handhelds: one 150 m away, one ~900 m away.
    const s = await hub.registerDevice('sensor.smoke', 'smoke-e2e-1', { lat: LAT + 0.001, lon: LON + 0.004, name: 'Smoke 1' });
    smoke = await hub.connect(s.id, s.secret);
    for (const [key, dLat, grid] of [['near', 0.0023, 'G-E'], ['far', 0.009, 'G-W']] as const) {
      const dev = await hub.registerDevice('handheld', `hh-${key}`);
      const w = await hub.api<{ id: string }>('POST', '/workers', { name: `Worker ${key}`, deviceId: dev.id, gridIds: [grid], onDuty: true });
      expect(w.status).toBe(201);
      workerIds[key] = w.body.id;
      const c = await hub.connect(dev.id, dev.secret);
      hands.set(key, c);
      // Stamped two minutes ago, so the ~300 m move of the map test is a plausible walk
      // (the hub flags a fix implying more than 70 m/s as a jump), however fast the tests run.
      await publishAck(c, `gridlink/v1/${dev.id}/location`, { ts: Date.now() - 120_000, lat: LAT + dLat, lon: key === 'near' ? LON + 0.004 : LON - 0.002, acc: 5 });
    }
    const officer = await e.user('officer', 'duty-officer', 'Duty Officer');
    page = await e.page();
    await e.login(page, officer);
    await page.waitForSelector('[data-testid=conn][data-state=online]', { timeout: GUARD });
  }, 180_000);

  afterAll(async () => {
    await e?.stop();
  });

  it('should pop up a new critical smoke alarm with sound and stop when acknowledged', async () => {
    await publishAck(smoke, 'gridlink/v1/smoke-e2e-1/event', { type: 'smoke_alarm', severity: 'critical', data: { smoke: 0.42 } });
    const modal = await page.waitForSelector('[data-testid=critical-alarm][data-sound=playing]', { timeout: GUARD });
    const alarmId = (await modal.getAttribute('data-alarm-id'))!;
    await page.fill('[data-testid=ack-comment]', 'crew informed');
    await page.click('[data-testid=ack-critical]');
    await page.waitForSelector('[data-testid=critical-alarm]', { state: 'detached', timeout: GUARD });
    const a = await e.hub.api<{ acknowledged: boolean; ackBy: string; caseId: string | null }>('GET', `/alarms/${alarmId}`);
    expect(a.body.acknowledged).toBe(true);
    expect(a.body.ackBy).toContain('duty-officer');
    caseId = a.body.caseId ?? (await until(async () => (await e.hub.api<{ caseId: string | null }>('GET', `/alarms/${alarmId}`)).body.caseId));
  });

  it('should show the case on the board, dispatch the nearest candidate and close it through the handheld', async () => {
    await page.click('[data-nav=cases]');
    await page.waitForSelector(`[data-status=reported] [data-case-id="${caseId}"]`, { timeout: GUARD });
    await page.click(`[data-status=reported] [data-case-id="${caseId}"]`);
    await page.waitForSelector(`[data-testid=case-detail][data-case-id="${caseId}"]`);
    await page.fill('[data-testid=action-note]', 'confirmed on camera');
    await page.click('button[data-action=register]');
    await page.waitForSelector('[data-testid=case-detail][data-status=registered]');
    // Candidates come nearest first; the first one is the near worker.
    const first = await page.waitForSelector('[data-testid=candidates] .cand[data-rank="0"]', { timeout: GUARD });
    expect(await first.getAttribute('data-worker-id')).toBe(workerIds.near);
    const near = hands.get('near')!;
    const cmds: Array<{ type: string; case?: { id: string } }> = [];
    near.on('message', (_t, buf) => cmds.push(JSON.parse(buf.toString())));
    await near.subscribeAsync('gridlink/v1/hh-near/cmd', { qos: 1 });
    await page.click('[data-testid=candidates] .cand[data-rank="0"] [data-testid=dispatch-btn]');
    await page.waitForSelector('[data-testid=case-detail][data-status=dispatched]', { timeout: GUARD });
    const cmd = await until(() => cmds.find((c) => c.type === 'dispatch'), GUARD);
    expect(cmd.case!.id).toBe(caseId);
    // The handheld works the case; the console follows over Socket.IO.
    for (const [action, status] of [['accept', 'accepted'], ['arrive', 'on_scene'], ['resolve', 'resolved']] as const) {
      await publishAck(near, 'gridlink/v1/hh-near/case', { caseId, action, note: action });
      await page.waitForSelector(`[data-testid=case-detail][data-status=${status}]`, { timeout: GUARD });
    }
    await page.click('button[data-action=verify]');
    await page.waitForSelector('[data-testid=case-detail][data-status=closed]', { timeout: GUARD });
    const c = await e.hub.api<{ status: string; workerId: string }>('GET', `/cases/${caseId}`);
    expect(c.body.status).toBe('closed');
    expect(c.body.workerId).toBe(workerIds.near);
    expect(await page.locator('[data-testid=timeline] li').count()).toBeGreaterThanOrEqual(5);
  });

  it('should move a worker on the map when its handheld reports a new position', async () => {
    await page.click('[data-nav=map]');
    await page.waitForSelector('[data-testid=map] canvas');
    const id = workerIds.far!;
    const before = await until(() => page.evaluate((w) => (window.__gridlink as { workerScreen(id: string): { x: number; y: number } | null }).workerScreen(w), id), GUARD);
    // ~300 m north: up on the screen.
    await publishAck(hands.get('far')!, 'gridlink/v1/hh-far/location', { ts: Date.now(), lat: LAT + 0.009 + 0.0027, lon: LON - 0.002, acc: 5 });
    const after = await until(async () => {
      const p = await page.evaluate((w) => (window.__gridlink as { workerScreen(id: string): { x: number; y: number } | null }).workerScreen(w), id);
      return p && before.y - p.y > 5 ? p : null;
    }, GUARD);
    expect(after.y).toBeLessThan(before.y);
    expect(Math.abs(after.x - before.x)).toBeLessThan(2);
  });

  it('should repaint only what moved and leave the same pixels as a full repaint', async () => {
    const r = await page.evaluate(async ({ lat, lon }) => {
      const g = window.__gridlink as {
        ingestPositions(list: unknown[]): void;
        stats(): { partialFrames: number; unchangedFrames: number };
        engine: { invalidate(kind: 'dynamic'): void };
      };
      const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));
      const frames = (n: number) => new Promise<void>((res) => { const f = () => (--n > 0 ? requestAnimationFrame(f) : res()); requestAnimationFrame(f); });
      const t0 = Date.now();
      // 400 workers on a 20×20 lattice around the district, overlapping at this zoom.
      const ws = Array.from({ length: 400 }, (_, i) => ({ workerId: `px-${i}`, lat: lat + ((i % 20) - 10) * 0.0004, lon: lon + (Math.floor(i / 20) - 10) * 0.0005, ts: t0, status: 'available' }));
      g.ingestPositions(ws);
      await sleep(1200);
      const s0 = g.stats();
      // A third of them move each second: some by a fraction of a pixel, some by several.
      for (let step = 1; step <= 4; step++) {
        g.ingestPositions(ws.filter((_, i) => i % 3 === 0).map((w, i) => ({ ...w, lat: w.lat + step * (i % 2 ? 0.00001 : 0.0002), ts: t0 + step * 1000 })));
        await sleep(1100);
      }
      await frames(3);
      const s1 = g.stats();
      const c = document.querySelector<HTMLCanvasElement>('canvas.map-top')!;
      const read = () => c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      const partial = read();
      g.engine.invalidate('dynamic');
      await frames(3);
      const full = read();
      let diff = 0, ink = 0;
      for (let i = 0; i < full.length; i++) if (partial[i] !== full[i]) diff++;
      for (let i = 3; i < full.length; i += 4) if (full[i]) ink++;
      return { diff, ink, partialFrames: s1.partialFrames - s0.partialFrames, unchangedFrames: s1.unchangedFrames - s0.unchangedFrames };
    }, { lat: LAT, lon: LON });
    expect(r.ink).toBeGreaterThan(2000);
    expect(r.partialFrames).toBeGreaterThan(0);
    expect(r.unchangedFrames).toBeGreaterThan(0);
    expect(r.diff).toBe(0);
  });
});
