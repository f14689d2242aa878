/**
 * `npm run screenshots`: regenerates docs/screenshots/*.png from a real hub
 * populated with the simulators' demo district, in headless Chromium at
 * 1920×1080 (plus the map at 1366×768 and in English).
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { runWithScene } from './scene';

// SCREENSHOTS_DIR: somewhere else than the docs (e.g. to look before replacing them).
const out = path.resolve(process.env.SCREENSHOTS_DIR ?? path.resolve(import.meta.dirname, '../../docs/screenshots'));

async function shot(page: Page, name: string) {
  await page.waitForTimeout(1200);
  await page.screenshot({ path: path.join(out, `${name}.png`) });
  process.stdout.write(`${path.join(out, name)}.png\n`);
}

mkdirSync(out, { recursive: true });
runWithScene({}, async (scene, browser) => {
  const stop = scene.startMovers(1500);
  const ctx = await browser.newContext({ viewport: { width: 1920, height: 1080 } });
  const page = await ctx.newPage();
  await page.goto(scene.hub.http + '/');
  await page.waitForSelector('[data-testid=login-form]');
  await shot(page, 'login');
  await page.fill('input[name=username]', 'admin');
  await page.fill('input[name=password]', scene.hub.config.adminPassword!);
  await page.click('[data-testid=login-submit]');
  await page.waitForSelector('[data-testid=conn][data-state=online]');
  await shot(page, 'map');
  // A smoke alarm: the forced popup.
  const smoke = [...scene.sensors.values()][0];
  if (smoke) {
    await smoke.publish('event', { type: 'smoke_alarm', severity: 'critical' });
    await page.waitForSelector('[data-testid=critical-alarm]', { timeout: 5000 }).catch(() => undefined);
    await shot(page, 'critical-alarm');
    await page.click('[data-testid=ack-critical]').catch(() => undefined);
  }
  await page.click('[data-nav=alarms]');
  await shot(page, 'alarms');
  await page.click('[data-nav=cases]');
  await shot(page, 'cases-board');
  const reg = await page.$('[data-status=registered] [data-case-id]');
  if (reg) {
    await reg.click();
    await page.waitForSelector('[data-testid=case-detail]');
    await shot(page, 'case-detail-dispatch');
  }
  await page.click('[data-nav=video]');
  await shot(page, 'video-wall');
  await page.click('[data-nav=history]');
  await page.goto(scene.hub.http + '/#/history/kpi');
  await shot(page, 'kpi');
  await page.goto(scene.hub.http + '/#/admin/devices');
  await shot(page, 'admin-devices');
  await page.goto(scene.hub.http + '/#/map');
  await page.click('.topbar [data-testid=lang-switch]');
  await shot(page, 'map-en');
  await page.click('.topbar [data-testid=lang-switch]');
  await page.setViewportSize({ width: 1366, height: 768 });
  await shot(page, 'map-1366');
  stop();
});
