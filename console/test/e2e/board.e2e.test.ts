/**
 * The dispatcher's desk in real Chromium against a real hub:
 * - 地图上报: a dispatcher clicks a point on the map, picks a category,
 *   writes a description, attaches a photo and submits; the case is on the
 *   board. A dispatcher scoped to the west grid is refused a point in the east
 *   grid, and the form refuses a file that is not an image and one too large.
 * - the board with 10,000 open cases: exact column counts, far fewer rows in
 *   the DOM than cases, and scrolling a column reaches its last case.
 * Timing is measured by `npm run bench:board`, not here.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertOpenCases } from '../../scripts/bulk-cases';
import { productModules, skipE2E, startE2E, testGrids, type E2E } from './harness';

const LAT = 30.66;
const LON = 104.06;
const N = 10_000;
/** Guards against a hang only (a busy 2-core machine). */
const GUARD = 60_000;
/** A 1×1 PNG. */
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');

/** Clicks the map where a WGS-84 point is drawn (no base map: no datum shift). */
async function clickMapAt(page: Page, lat: number, lon: number): Promise<void> {
  const v = (await page.evaluate('window.__gridlink.view()')) as { cx: number; cy: number; zoom: number; width: number; height: number };
  const s = 256 * 2 ** v.zoom;
  const sin = Math.sin((lat * Math.PI) / 180);
  const wx = (lon + 180) / 360;
  const wy = 0.5 - Math.log((1 + sin) / (1 - sin)) / (4 * Math.PI);
  const box = (await page.locator('[data-testid=map] canvas.map-top').boundingBox())!;
  await page.mouse.click(box.x + (wx - v.cx) * s + v.width / 2, box.y + (wy - v.cy) * s + v.height / 2);
}

async function openMap(page: Page): Promise<void> {
  await page.goto(page.url().split('#')[0] + '#/map');
  await page.waitForSelector('[data-testid=conn][data-state=online]', { timeout: GUARD });
  // The map fits the district once the grids are loaded.
  await page.waitForFunction(() => ((window as unknown as { __gridlink?: { view(): { zoom: number } } }).__gridlink?.view().zoom ?? 0) > 12, undefined, { timeout: GUARD });
}

describe.skipIf(skipE2E)('dispatcher desk: case from the map, board at volume (e2e, chromium)', () => {
  let e: E2E;
  let page: Page;
  let createdId = '';

  beforeAll(async () => {
    e = await startE2E({}, { modules: await productModules() });
    expect((await e.hub.api('PUT', '/grids', testGrids(LAT, LON))).status).toBe(200);
    const creds = await e.user('dispatcher', 'desk-dispatcher', 'Desk Dispatcher');
    page = await e.page();
    await e.login(page, creds);
  }, 240_000);

  afterAll(async () => {
    await e?.stop();
  });

  it('should open a case at a clicked point with a category, a description and a photo, and show it on the board', async () => {
    await openMap(page);
    await page.click('[data-testid=new-case-start]');
    await page.waitForSelector('[data-testid=new-case-picking]');
    await clickMapAt(page, LAT + 0.002, LON + 0.003);
    await page.waitForSelector('[data-testid=new-case-form]');
    await page.waitForFunction(() => document.querySelector('[data-testid=new-case-grid]')?.textContent === 'East Grid', undefined, { timeout: GUARD });
    // The suggested list narrows as one types; the first match is preselected.
    await page.fill('[data-testid=new-case-filter]', '暴露垃圾');
    await page.waitForFunction(() => document.querySelector<HTMLSelectElement>('[data-testid=new-case-category]')?.value === 'E0101', undefined, { timeout: GUARD });
    await page.fill('[data-testid=new-case-description]', '东门垃圾桶满溢，地面有散落垃圾');
    await page.setInputFiles('[data-testid=new-case-photos]', { name: 'scene.png', mimeType: 'image/png', buffer: PNG });
    await page.waitForSelector('[data-testid=new-case-thumbs] img');
    await page.click('[data-testid=new-case-submit]');
    const done = await page.waitForSelector('[data-testid=new-case-created]', { timeout: GUARD });
    createdId = (await done.getAttribute('data-case-id'))!;
    expect(createdId).toBeTruthy();

    const detail = await e.hub.api<{ source: string; gridId: string; description: string; category: { code: string }; evidence: unknown[]; status: string; lat: number; lon: number }>('GET', `/cases/${createdId}`);
    expect(detail.body).toMatchObject({ source: 'officer', gridId: 'G-E', description: '东门垃圾桶满溢，地面有散落垃圾', category: { code: 'E0101' }, status: 'reported' });
    expect(detail.body.evidence).toHaveLength(1);
    expect(Math.abs(detail.body.lat - (LAT + 0.002))).toBeLessThan(0.0002);
    expect(Math.abs(detail.body.lon - (LON + 0.003))).toBeLessThan(0.0002);

    await page.click('[data-testid=new-case-created] button');
    await page.waitForSelector(`[data-testid=case-detail][data-case-id="${createdId}"]`, { timeout: GUARD });
    await page.goto(page.url().split('#')[0] + '#/cases');
    await page.waitForSelector(`[data-status=reported] [data-case-id="${createdId}"]`, { timeout: GUARD });
  });

  it('should refuse a point outside the dispatcher\'s region, a file that is not an image and a photo over 1 MB', async () => {
    const r = await e.hub.api('POST', '/users', { username: 'west-dispatcher', password: 'e2e-password-1', role: 'dispatcher', displayName: 'West', regionId: 'G-W' });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const west = await e.page();
    await e.login(west, { username: 'west-dispatcher', password: 'e2e-password-1' });
    await openMap(west);
    await west.click('[data-testid=new-case-start]');
    await clickMapAt(west, LAT - 0.002, LON + 0.003);
    await west.waitForSelector('[data-testid=new-case-form]');
    await west.waitForFunction(() => !!document.querySelector<HTMLSelectElement>('[data-testid=new-case-category]')?.value, undefined, { timeout: GUARD });
    await west.setInputFiles('[data-testid=new-case-photos]', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not a photo') });
    expect(await west.textContent('[data-testid=new-case-error]')).toContain('不是 JPEG 或 PNG');
    await west.setInputFiles('[data-testid=new-case-photos]', { name: 'huge.png', mimeType: 'image/png', buffer: Buffer.concat([PNG, Buffer.alloc(1_100_000)]) });
    expect(await west.textContent('[data-testid=new-case-error]')).toContain('超过 1 MB');
    expect(await west.$('[data-testid=new-case-thumbs]')).toBeNull();
    await west.fill('[data-testid=new-case-description]', '越界上报');
    const before = (await e.hub.api<{ total: number }>('GET', '/cases/counts')).body.total;
    await west.click('[data-testid=new-case-submit]');
    await west.waitForFunction(() => !!document.querySelector('[data-testid=new-case-error]')?.textContent?.includes('不在您的管辖范围内'), undefined, { timeout: GUARD });
    expect((await e.hub.api<{ total: number }>('GET', '/cases/counts')).body.total).toBe(before);
    await west.context().close();
  });

  it('should count 10,000 open cases exactly, hold only the rows on screen, and scroll to the last case', async () => {
    // One a minute back from now; i % 7 dispatched, other i % 5 registered, the rest reported; every 3rd overdue; i % 11 major; the rest due in about a week.
    await insertOpenCases(e.hub, N, [{ id: 'G-W', lat: LAT, lon: LON - 0.005 }, { id: 'G-E', lat: LAT, lon: LON + 0.005 }]);
    await page.reload();
    await page.waitForSelector('[data-testid=conn][data-state=online]', { timeout: GUARD });
    // Functions, not strings: the console's CSP refuses to evaluate strings.
    await page.waitForFunction((n) => [...document.querySelectorAll<HTMLElement>('[data-status] [data-testid=case-scroll]')].reduce((s, e) => s + Number(e.dataset.count), 0) === n, N + 1, { timeout: GUARD * 2, polling: 200 });
    // Hand-counted as in hub/test/cases/board.test.ts, plus the case opened from the map (reported).
    await page.waitForFunction(() => document.querySelector('[data-testid=count-reported]')?.textContent === '6858', undefined, { timeout: GUARD });
    expect(await page.textContent('[data-testid=count-registered]')).toBe('1715');
    expect(await page.textContent('[data-testid=count-dispatched]')).toBe('1428');

    const rows = await page.evaluate(() => document.querySelectorAll('[data-case-id]').length);
    expect(rows).toBeGreaterThan(10);
    expect(rows).toBeLessThan(300);

    // Scroll the reported column to its end (the virtualiser measures rows as they mount, so keep going until the end holds).
    const col = '[data-status=reported] [data-testid=case-scroll]';
    await page.waitForFunction((sel) => {
      const el = document.querySelector(sel)!;
      el.scrollTop = el.scrollHeight;
      return !!el.querySelector('[data-index="6857"]');
    }, col, { timeout: GUARD, polling: 100 });
    // Last in the column's order (overdue first, then severity, then deadline): a minor case not overdue with the latest
    // deadline — bulk-1 (created a minute before the bulk) or the case from the map, whichever is due later.
    const due = async (id: string) => (await e.hub.api<{ deadline: number; severity: string }>('GET', `/cases/${id}`)).body;
    const [b1, mine] = [await due('bulk-1'), await due(createdId)];
    expect(b1.severity).toBe('minor');
    const last = mine.severity === 'minor' && mine.deadline > b1.deadline ? createdId : 'bulk-1';
    expect(await page.getAttribute(`${col} [data-index="6857"]`, 'data-case-id')).toBe(last);
    expect(await page.evaluate(() => document.querySelectorAll('[data-case-id]').length)).toBeLessThan(300);
    await page.click(`${col} [data-index="6857"]`);
    await page.waitForSelector(`[data-testid=case-detail][data-case-id="${last}"]`, { timeout: GUARD });
  }, 6 * GUARD);
});
