/**
 * 网格通 end to end: a phone (Debian Chromium, 390×844 touch, zh-CN,
 * geolocation overridden and walked along a street) and the dispatcher's
 * console against one real hub. No latency is asserted; waits only guard
 * against a hang.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { until } from '@gridlink/hub/testing';
import { skipE2E, type E2E } from './harness';
import {
  cameraPhoto, enrolWorker, goOnDuty, GUARD, hubPosition, LAT, LON, pendingCount, phone, phoneLogin, shot, startMobileE2E, street, walkTo,
} from './mobile.harness';

type CaseBody = { id: string; code: string; status: string; history: Array<{ action: string; actor: { kind: string } }>; evidence: Array<{ id: string; kind: string; url: string }> };

describe.skipIf(skipE2E)('网格通 worker app (e2e, chromium, phone)', () => {
  let e: E2E;
  let desk: Page;

  beforeAll(async () => {
    e = await startMobileE2E();
    const officer = await e.user('officer', 'm-officer', '值班员');
    desk = await e.page();
    await e.login(desk, officer);
    await desk.waitForSelector('[data-testid=conn][data-state=online]', { timeout: GUARD });
  }, 240_000);

  afterAll(async () => {
    await e?.stop();
  });

  /** The dispatcher on the console: case board → register → dispatch to this worker. */
  async function dispatchFromConsole(caseId: string, workerId: string): Promise<void> {
    await desk.click('[data-nav=cases]');
    await desk.waitForSelector(`[data-case-id="${caseId}"]`, { timeout: GUARD });
    await desk.click(`[data-status=reported] [data-case-id="${caseId}"]`);
    await desk.waitForSelector(`[data-testid=case-detail][data-case-id="${caseId}"]`);
    await desk.click('button[data-action=register]');
    await desk.waitForSelector('[data-testid=case-detail][data-status=registered]', { timeout: GUARD });
    await desk.click(`[data-testid=candidates] .cand[data-worker-id="${workerId}"] [data-testid=dispatch-btn]`, { timeout: GUARD });
    await desk.waitForSelector('[data-testid=case-detail][data-status=dispatched]', { timeout: GUARD });
  }

  async function newCase(lat: number, lon: number, description: string): Promise<{ id: string; code: string }> {
    const c = await e.hub.api<{ id: string; code: string }>('POST', '/cases', { category: 'E0101', lat, lon, description, address: '蜀汉路 88 号' });
    if (c.status !== 201) throw new Error(`case: ${c.status} ${JSON.stringify(c.body)}`);
    return c.body;
  }

  const caseOf = async (id: string) => (await e.hub.api<CaseBody>('GET', `/cases/${id}`)).body;

  it('should take a worker through a whole task: duty, positions on the console, dispatch, accept, GPS arrival, resolve with a photo', async () => {
    const w = await enrolWorker(e, 'a', '王网格');
    const road = street(LAT + 0.001, LON + 0.001, LON + 0.005, 8);
    const target = road[road.length - 1]!;
    const { ctx, page } = await phone(e, road[0]!);
    await phoneLogin(e, page, w.username);
    await shot(page, 'home-off-duty');
    await goOnDuty(page);
    await walkTo(e, ctx, w.workerId, road[0]!);
    await shot(page, 'home-on-duty');

    // The dispatcher sees the worker on the map and watches them move.
    await desk.click('[data-nav=map]');
    await desk.waitForSelector('[data-testid=map] canvas');
    const screen = (id: string) => desk.evaluate((wid) => (window.__gridlink as { workerScreen(id: string): { x: number; y: number } | null }).workerScreen(wid), id);
    const before = await until(() => screen(w.workerId), GUARD);
    await walkTo(e, ctx, w.workerId, road[1]!);
    await walkTo(e, ctx, w.workerId, road[2]!);
    const moved = await until(async () => {
      const p = await screen(w.workerId);
      return p && p.x - before.x > 1 ? p : null;
    }, GUARD);
    expect(moved.x).toBeGreaterThan(before.x);

    const c = await newCase(target.lat, target.lon, '路口垃圾堆积');
    await dispatchFromConsole(c.id, w.workerId);

    // The dispatch reaches the phone while it is open, with the alert.
    const card = await page.waitForSelector(`[data-testid=m-task][data-task-id="${c.id}"]`, { timeout: GUARD });
    await page.waitForFunction((id) => document.documentElement.dataset.lastAlert === id, c.id, { timeout: GUARD });
    await shot(page, 'home-new-task');
    await card.click();
    await page.waitForSelector(`[data-testid=m-task-detail][data-task-id="${c.id}"][data-status=dispatched]`);
    expect(await page.textContent('[data-testid=m-task-detail]')).toContain('暴露垃圾');
    expect(await page.getAttribute('[data-testid=m-nav-amap]', 'href')).toMatch(/^https:\/\/uri\.amap\.com\/navigation\?to=104\.0\d+,30\.6\d+,/);
    expect(await page.getAttribute('[data-testid=m-nav-geo]', 'href')).toContain(`geo:${target.lat.toFixed(6)},${target.lon.toFixed(6)}`);
    await page.waitForSelector('[data-testid=m-countdown]');
    await shot(page, 'task-dispatched');
    await page.click('[data-testid=m-accept]');
    await until(async () => (await caseOf(c.id)).status === 'accepted', GUARD);

    // Walk the street; arrival is detected by the hub from the phone's fixes.
    for (const p of road.slice(3)) await walkTo(e, ctx, w.workerId, p);
    await shot(page, 'task-accepted');
    await page.waitForSelector(`[data-testid=m-task-detail][data-status=on_scene]`, { timeout: GUARD });
    const arrived = await caseOf(c.id);
    expect(arrived.history.find((h) => h.action === 'arrive')?.actor.kind).toBe('system');

    // Resolve with a photo taken through the capture input.
    expect(await page.getAttribute('[data-testid=m-photo-input]', 'capture')).toBe('environment');
    expect(await page.getAttribute('[data-testid=m-photo-input]', 'accept')).toBe('image/*');
    const original = await cameraPhoto(page, '处置前后');
    await page.setInputFiles('[data-testid=m-photo-input]', { name: 'IMG_0001.jpg', mimeType: 'image/jpeg', buffer: original });
    await page.waitForSelector('[data-testid=m-photo-preview]');
    await page.fill('[data-testid=m-note]', '垃圾已清运');
    await shot(page, 'task-resolve');
    await page.click('[data-testid=m-resolve]');
    await until(async () => (await caseOf(c.id)).status === 'resolved', GUARD);
    await page.waitForSelector('[data-testid=m-task-detail][data-status=resolved]', { timeout: GUARD });

    // The console shows 待核查 with the photo as evidence.
    await desk.click('[data-nav=cases]');
    await desk.click(`[data-case-id="${c.id}"]`);
    await desk.waitForSelector(`[data-testid=case-detail][data-case-id="${c.id}"][data-status=resolved]`, { timeout: GUARD });
    expect(await desk.textContent('[data-testid=case-status]')).toBe('待核查');
    const img = await desk.waitForSelector('.evidence img', { timeout: GUARD });
    await desk.waitForFunction((el) => (el as HTMLImageElement).complete && (el as HTMLImageElement).naturalWidth > 0, img, { timeout: GUARD });
    const dims = await img.evaluate((el) => [(el as HTMLImageElement).naturalWidth, (el as HTMLImageElement).naturalHeight]);
    expect(Math.max(...dims)).toBe(1600); // compressed on the phone from 2400×1800
    const done = await caseOf(c.id);
    const photos = done.evidence.filter((x) => x.kind === 'photo');
    expect(photos).toHaveLength(1);
    const bytes = await fetch(`${e.hub.http}${photos[0]!.url}`, { headers: { authorization: `Bearer ${e.hub.token}` } }).then((r) => r.arrayBuffer());
    expect(bytes.byteLength).toBeLessThan(original.length);

    await page.click('[data-tab=tasks]');
    await page.waitForSelector(`[data-testid=m-tasks] [data-task-id="${c.id}"][data-status=resolved]`);
    await shot(page, 'tasks');
    await page.click('[data-tab=home]');
    await page.click('[data-testid=m-duty][data-on-duty=true]');
    await until(async () => (await e.hub.api<{ onDuty: boolean }>('GET', `/workers/${w.workerId}`)).body.onDuty === false, GUARD);
    await ctx.close();
  }, 300_000);

  it('should lose nothing, double nothing and leave no hole in the track when the network drops mid-task', async () => {
    const w = await enrolWorker(e, 'b', '李网格');
    const road = street(LAT - 0.002, LON + 0.001, LON + 0.006, 10);
    const target = road[road.length - 1]!;
    const { ctx, page } = await phone(e, road[0]!);
    await phoneLogin(e, page, w.username);
    await goOnDuty(page);
    await walkTo(e, ctx, w.workerId, road[0]!);
    const c = await newCase(target.lat, target.lon, '人行道垃圾');
    await dispatchFromConsole(c.id, w.workerId);
    await page.click(`[data-testid=m-task][data-task-id="${c.id}"]`, { timeout: GUARD });
    await page.click('[data-testid=m-accept]');
    await until(async () => (await caseOf(c.id)).status === 'accepted', GUARD);

    // Network cut: the worker keeps walking; the phone queues every fix.
    await ctx.setOffline(true);
    await page.waitForSelector('[data-testid=m-offline]');
    for (const p of road.slice(1, 6)) await walkTo(e, ctx, w.workerId, p, false, page);
    expect(await pendingCount(page)).toBeGreaterThanOrEqual(5);
    await shot(page, 'offline-outbox');
    const lastBeforeCut = await hubPosition(e, w.workerId);
    expect(lastBeforeCut!.lon).toBeCloseTo(road[0]!.lon, 6);

    // Back online: the queue drains in order, then the walk goes on live.
    await ctx.setOffline(false);
    await page.waitForFunction(() => document.querySelector('[data-testid=m-outbox]')?.getAttribute('data-count') === '0', null, { timeout: GUARD });
    for (const p of road.slice(6)) await walkTo(e, ctx, w.workerId, p);
    await page.waitForSelector('[data-testid=m-task-detail][data-status=on_scene]', { timeout: GUARD });

    // Cut again while resolving: the photo and the action wait in IndexedDB.
    await ctx.setOffline(true);
    const original = await cameraPhoto(page, '离线处置');
    await page.setInputFiles('[data-testid=m-photo-input]', { name: 'IMG_0002.jpg', mimeType: 'image/jpeg', buffer: original });
    await page.waitForSelector('[data-testid=m-photo-preview]');
    await page.click('[data-testid=m-resolve]');
    await page.waitForSelector('[data-testid=m-task-msg]');
    await page.waitForFunction(() => Number(document.querySelector('[data-testid=m-outbox]')?.getAttribute('data-count')) >= 1);
    expect((await caseOf(c.id)).status).toBe('on_scene');
    // A reload offline: the service worker serves the app, IndexedDB still holds the queue.
    await page.reload();
    await page.waitForSelector('[data-testid=m-shell]', { timeout: GUARD });
    expect(await pendingCount(page)).toBeGreaterThanOrEqual(1);
    await ctx.setOffline(false);
    await until(async () => (await caseOf(c.id)).status === 'resolved', GUARD);
    await page.waitForFunction(() => document.querySelector('[data-testid=m-outbox]')?.getAttribute('data-count') === '0', null, { timeout: GUARD });

    // Nothing lost, nothing doubled.
    const done = await caseOf(c.id);
    const count = (a: string) => done.history.filter((h) => h.action === a).length;
    expect([count('accept'), count('arrive'), count('resolve')]).toEqual([1, 1, 1]);
    expect(done.evidence.filter((x) => x.kind === 'photo')).toHaveLength(1);
    const sent = await page.evaluate(() => (window as unknown as { __gridlinkM: { tracker: { sentTs: number[] } } }).__gridlinkM.tracker.sentTs);
    const rows = await e.hub.hub.ctx.db.query<{ ts: Date | string; n: number }>(
      "select ts, count(*)::int as n from positions where device_id = $1 group by ts", [w.deviceId]);
    expect(rows.every((r) => r.n === 1)).toBe(true);
    const stored = new Set(rows.map((r) => new Date(r.ts).getTime()));
    // sentTs covers this page load (after the reload); every fix it queued reached the hub once.
    expect(sent.length).toBeGreaterThan(0);
    expect(sent.filter((t) => !stored.has(t))).toEqual([]);
    // The track has no hole: the offline stretch is in it, in order.
    const track = await e.hub.api<{ points: Array<{ ts: number; lat: number; lon: number }> }>('GET', `/workers/${w.workerId}/track?from=${Date.now() - 3_600_000}&maxPoints=2000`);
    for (const p of road.slice(1, 6)) expect(track.body.points.some((q) => Math.abs(q.lon - p.lon) < 1e-7 && Math.abs(q.lat - p.lat) < 1e-7)).toBe(true);
    const ts = track.body.points.map((q) => q.ts);
    expect([...ts].sort((a, b) => a - b)).toEqual(ts);
    await ctx.close();
  }, 300_000);

  it('should turn a patrol report with a photo into a case on the board and show the worker what became of it', async () => {
    const w = await enrolWorker(e, 'c', '赵网格');
    const at = { lat: LAT + 0.004, lon: LON + 0.003 };
    const { ctx, page } = await phone(e, at);
    await phoneLogin(e, page, w.username);
    await goOnDuty(page);
    await page.click('[data-tab=report]');
    await page.waitForSelector('[data-testid=m-report-map]', { timeout: GUARD });
    await page.click('[data-kind=event]');
    await page.selectOption('[data-testid=m-report-major]', '01');
    await page.click('[data-testid=m-report-minors] [data-code=E0101]');
    await page.setInputFiles('[data-testid=m-report-photo]', { name: 'IMG_0003.jpg', mimeType: 'image/jpeg', buffer: await cameraPhoto(page, '巡查') });
    await page.waitForSelector('[data-testid=m-report-photo-preview]');
    await page.fill('[data-testid=m-report-description]', '绿化带内堆放建筑垃圾');
    // Nudge the position on the map: drag 40 px to the left = the pin moves east.
    const box = (await page.locator('[data-testid=m-report-map]').boundingBox())!;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width / 2 - 40, box.y + box.height / 2, { steps: 4 });
    await page.mouse.up();
    const pos = (await page.textContent('[data-testid=m-report-pos]'))!.split(',').map(Number);
    expect(pos[1]!).toBeGreaterThan(at.lon);
    await shot(page, 'report');
    await page.click('[data-testid=m-report-submit]');
    await page.waitForFunction(() => document.querySelector('[data-testid=m-outbox]')?.getAttribute('data-count') === '0', null, { timeout: GUARD });
    const item = await page.waitForSelector('[data-testid=m-my-reports] li[data-status=reported]', { timeout: GUARD });
    const caseId = (await item.getAttribute('data-case-id'))!;

    const c = await caseOf(caseId);
    expect(c.evidence.filter((x) => x.kind === 'photo')).toHaveLength(1);
    const detail = await e.hub.api<{ source: string; lat: number; lon: number; description: string; category: { code: string } }>('GET', `/cases/${caseId}`);
    expect(detail.body).toMatchObject({ source: 'worker', description: '绿化带内堆放建筑垃圾', category: { code: 'E0101' } });
    expect(detail.body.lon).toBeCloseTo(pos[1]!, 6);

    // On the console's board, waiting for 立案.
    await desk.click('[data-nav=cases]');
    await desk.waitForSelector(`[data-status=reported] [data-case-id="${caseId}"]`, { timeout: GUARD });
    // The officer rejects it with a reason; the worker sees 作废 and why.
    expect((await e.hub.api('POST', `/cases/${caseId}/actions`, { action: 'reject', note: '已由环卫处理' })).status).toBe(200);
    await page.waitForSelector(`[data-testid=m-my-reports] li[data-case-id="${caseId}"][data-status=rejected]`, { timeout: GUARD });
    expect(await page.textContent(`[data-testid=m-my-reports] li[data-case-id="${caseId}"]`)).toContain('已由环卫处理');
    await shot(page, 'report-outcome');
    await page.click('[data-tab=mine]');
    await page.waitForSelector('[data-testid=m-mine]');
    await shot(page, 'mine');
    await page.click('[data-testid=m-logout]');
    await page.waitForSelector('[data-testid=m-login]');
    await shot(page, 'login');
    await ctx.close();
  }, 300_000);
});
