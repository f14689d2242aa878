/**
 * Shared parts of the worker app's end-to-end tests: a hub with the product
 * modules (dispatch with a short GPS arrival dwell, the app sending a fix every
 * second so a walk takes seconds, not minutes), a phone context (390×844,
 * touch, zh-CN, geolocation granted and overridden), worker enrolment and a
 * camera photo made in the browser.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { casesModule, dispatchModule, mobileModule, realtimeModule, rulesModule } from '@gridlink/hub';
import { until } from '@gridlink/hub/testing';
import { startE2E, testGrids, type E2E } from './harness';

export const LAT = 30.66;
export const LON = 104.06;
/** Guards against a hang only (a busy 2-core machine); no latency is asserted here. */
export const GUARD = 60_000;
export const PASSWORD = 'worker-password-1';
export const PHONE = { width: 390, height: 844 };

export async function startMobileE2E(): Promise<E2E> {
  const e = await startE2E({}, {
    modules: [
      realtimeModule(),
      casesModule(),
      rulesModule(),
      // The walk is fast-forwarded (a street in seconds): the jump filter's speed limit is raised to match.
      dispatchModule({ config: { arrivalDwellS: 3, arrivalRadiusM: 40, maxSpeedMps: 1000 } }),
      mobileModule({ config: { positionIntervalS: 1, minGapS: 0.5, minMoveM: 10, staleAfterS: 30 } }),
    ],
  });
  const g = await e.hub.api('PUT', '/grids', testGrids(LAT, LON));
  if (g.status !== 200) throw new Error(`grids: ${g.status}`);
  return e;
}

/** A worker user bound to a worker bound to a handheld, as a district enrols them. */
export async function enrolWorker(e: E2E, key: string, name: string): Promise<{ username: string; workerId: string; deviceId: string }> {
  const username = `wk-${key}`;
  const u = await e.hub.api<{ id: string }>('POST', '/users', { username, password: PASSWORD, role: 'worker', displayName: name });
  if (u.status !== 201) throw new Error(`user: ${u.status} ${JSON.stringify(u.body)}`);
  const dev = await e.hub.registerDevice('handheld', `hh-${key}`);
  const w = await e.hub.api<{ id: string }>('POST', '/workers', { id: `w-${key}`, name, deviceId: dev.id, gridIds: ['G-E'], userId: u.body.id });
  if (w.status !== 201) throw new Error(`worker: ${w.status} ${JSON.stringify(w.body)}`);
  return { username, workerId: w.body.id, deviceId: dev.id };
}

export async function phone(e: E2E, at: { lat: number; lon: number }): Promise<{ ctx: BrowserContext; page: Page }> {
  const ctx = await e.browser.newContext({
    viewport: PHONE, isMobile: true, hasTouch: true, deviceScaleFactor: 2, locale: 'zh-CN', timezoneId: 'Asia/Shanghai',
    geolocation: { latitude: at.lat, longitude: at.lon, accuracy: 8 }, permissions: ['geolocation', 'notifications'],
  });
  const page = await ctx.newPage();
  page.on('pageerror', (err) => console.error('[phone page error]', err.message));
  return { ctx, page };
}

export async function phoneLogin(e: E2E, page: Page, username: string): Promise<void> {
  await page.goto(`${e.hub.http}/m/`);
  await page.fill('input[name=username]', username);
  await page.fill('input[name=password]', PASSWORD);
  await page.click('[data-testid=m-login-submit]');
  await page.waitForSelector('[data-testid=m-shell]', { timeout: GUARD });
  await page.waitForSelector('[data-testid=m-live][data-state=online]', { timeout: GUARD });
}

export async function goOnDuty(page: Page): Promise<void> {
  await page.click('[data-testid=m-duty][data-on-duty=false]');
  await page.waitForSelector('[data-testid=m-duty][data-on-duty=true]');
  await page.waitForSelector('[data-testid=m-gps][data-state=ok]', { timeout: GUARD });
}

/** A street running east at `lat`: n points `stepM` apart from `lon0`. */
export function street(lat: number, lon0: number, lon1: number, n: number): Array<{ lat: number; lon: number }> {
  return Array.from({ length: n + 1 }, (_, i) => ({ lat, lon: lon0 + ((lon1 - lon0) * i) / n }));
}

/** The worker's last position as the hub holds it. */
export async function hubPosition(e: E2E, workerId: string): Promise<{ lat: number; lon: number; ts: number } | null> {
  const w = await e.hub.api<{ position: { lat: number; lon: number; ts: number } | null }>('GET', `/workers/${workerId}`);
  return w.body.position;
}

/** Moves the phone and waits until the hub holds a fix there (online) — the walk's pace is the hub's, not a clock's. */
export async function walkTo(e: E2E, ctx: BrowserContext, workerId: string, p: { lat: number; lon: number }, online = true, page?: Page): Promise<void> {
  await ctx.setGeolocation({ latitude: p.lat, longitude: p.lon, accuracy: 8 });
  if (online) {
    await until(async () => {
      const pos = await hubPosition(e, workerId);
      return pos && Math.abs(pos.lat - p.lat) < 1e-7 && Math.abs(pos.lon - p.lon) < 1e-7;
    }, GUARD, 100);
  } else if (page) {
    // Offline: wait until the phone has queued a fix at this point.
    await page.waitForFunction(({ lat, lon }) => {
      const d = (window as unknown as { __gridlinkM: { tracker: { state: string; last: unknown; sent: number }; outbox: { pending: unknown[] } } }).__gridlinkM;
      (window as unknown as { __dbg: unknown }).__dbg = { state: d.tracker.state, last: d.tracker.last, sent: d.tracker.sent, pending: d.outbox.pending.length };
      const m = (window as unknown as { __gridlinkM: { outbox: { pending: Array<{ entry: { kind: string; items?: Array<{ lat: number; lon: number }> } }> } } }).__gridlinkM;
      return m.outbox.pending.some((x) => x.entry.kind === 'positions' && x.entry.items!.some((f) => Math.abs(f.lat - lat) < 1e-7 && Math.abs(f.lon - lon) < 1e-7));
    }, p, { timeout: GUARD }).catch(async (err) => {
      console.error('offline walk stuck', JSON.stringify(await page.evaluate(() => (window as unknown as { __dbg: unknown }).__dbg)));
      throw err;
    });
  }
}

/** A camera photo: a 2400×1800 JPEG drawn in the browser (larger than the app keeps, so compression is exercised). */
export async function cameraPhoto(page: Page, label: string): Promise<Buffer> {
  const b64 = await page.evaluate((text) => {
    const c = document.createElement('canvas');
    c.width = 2400;
    c.height = 1800;
    const g = c.getContext('2d')!;
    const grad = g.createLinearGradient(0, 0, 2400, 1800);
    grad.addColorStop(0, '#6b8e23');
    grad.addColorStop(1, '#8b7355');
    g.fillStyle = grad;
    g.fillRect(0, 0, 2400, 1800);
    for (let i = 0; i < 400; i++) {
      g.fillStyle = `hsl(${(i * 37) % 360} 40% ${30 + (i % 40)}%)`;
      g.fillRect((i * 97) % 2400, (i * 53) % 1800, 40 + (i % 90), 30 + (i % 70));
    }
    g.fillStyle = '#fff';
    g.font = 'bold 160px sans-serif';
    g.fillText(text, 200, 900);
    return c.toDataURL('image/jpeg', 0.95).split(',')[1]!;
  }, label);
  return Buffer.from(b64, 'base64');
}

export const pendingCount = (page: Page) => page.evaluate(() => Number(document.querySelector('[data-testid=m-outbox]')?.getAttribute('data-count') ?? -1));

/** Screenshots for docs/screenshots when GRIDLINK_M_SCREENSHOTS names a directory. */
export async function shot(page: Page, name: string): Promise<void> {
  const dir = process.env.GRIDLINK_M_SCREENSHOTS;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  await page.waitForTimeout(300);
  await page.screenshot({ path: path.join(dir, `mobile-${name}.png`) });
}
