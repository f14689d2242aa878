/**
 * End-to-end harness: builds the console with vite's build() API into a
 * temporary directory, starts a real hub in-process (PGlite in memory, real
 * MQTT broker on a free port) serving that build, and drives it with real
 * headless Chromium through playwright-core. Browsers are never downloaded:
 * the system chromium is used, and the suite skips only when it is missing
 * (never under GRIDLINK_REQUIRE_ALL=1).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startHub, type TestHub } from '@gridlink/hub/testing';

const here = path.dirname(fileURLToPath(import.meta.url));
export const consoleRoot = path.resolve(here, '../..');
export const CHROMIUM = process.env.GRIDLINK_CHROMIUM ?? '/usr/bin/chromium';
export const hasChromium = existsSync(CHROMIUM);
export const REQUIRE_ALL = process.env.GRIDLINK_REQUIRE_ALL === '1';
/** describe.skipIf(skipE2E): skip only when the browser is missing and not required. */
export const skipE2E = !hasChromium && !REQUIRE_ALL;

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--autoplay-policy=no-user-gesture-required',
  '--mute-audio',
];

export async function buildConsole(outDir?: string): Promise<string> {
  const dir = outDir ?? mkdtempSync(path.join(tmpdir(), 'gridlink-console-'));
  const { build } = await import('vite');
  await build({ root: consoleRoot, configFile: path.join(consoleRoot, 'vite.config.ts'), logLevel: 'error', build: { outDir: dir, emptyOutDir: true } });
  return dir;
}

export async function launch(): Promise<Browser> {
  if (!hasChromium) throw new Error(`chromium not found at ${CHROMIUM} (GRIDLINK_REQUIRE_ALL=1)`);
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

export interface E2E {
  hub: TestHub;
  browser: Browser;
  dir: string;
  page(viewport?: { width: number; height: number }): Promise<Page>;
  /** Creates a user through REST and returns its credentials. */
  user(role: string, username: string, displayName: string): Promise<{ username: string; password: string }>;
  login(page: Page, creds: { username: string; password: string }): Promise<void>;
  stop(): Promise<void>;
}

export async function startE2E(hubOverrides: Parameters<typeof startHub>[0] = {}, hubOptions: Parameters<typeof startHub>[1] = {}): Promise<E2E> {
  const dir = await buildConsole();
  const hub = await startHub({ consoleDir: dir, ...hubOverrides }, hubOptions);
  const browser = await launch();
  const pages: Page[] = [];
  return {
    hub,
    browser,
    dir,
    async page(viewport = { width: 1920, height: 1080 }) {
      const ctx = await browser.newContext({ viewport, locale: 'zh-CN' });
      const p = await ctx.newPage();
      p.on('pageerror', (e) => console.error('[page error]', e.message));
      pages.push(p);
      return p;
    },
    async user(role, username, displayName) {
      const password = 'e2e-password-1';
      const r = await hub.api('POST', '/users', { username, password, role, displayName });
      if (r.status !== 201) throw new Error(`create user: ${r.status} ${JSON.stringify(r.body)}`);
      return { username, password };
    },
    async login(page, creds) {
      await page.goto(hub.http + '/');
      await page.fill('input[name=username]', creds.username);
      await page.fill('input[name=password]', creds.password);
      await page.click('[data-testid=login-submit]');
      await page.waitForSelector('.shell');
    },
    async stop() {
      await browser.close().catch(() => undefined);
      await hub.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Text the user can read: visible text plus placeholders, titles and aria-labels. */
export async function visibleText(page: Page): Promise<string> {
  return page.evaluate(() => {
    // The language switch names the other language in its own script (lang attribute set).
    let body = document.body.innerText;
    for (const el of document.querySelectorAll<HTMLElement>('body [lang]')) body = body.split(el.innerText).join('');
    const parts: string[] = [body];
    for (const el of document.querySelectorAll<HTMLElement>('[placeholder],[title],[aria-label]')) {
      if (!el.offsetParent && el !== document.body) continue;
      for (const a of ['placeholder', 'title', 'aria-label']) {
        const v = el.getAttribute(a);
        if (v) parts.push(v);
      }
    }
    return parts.join('\n');
  });
}

export const CJK = /[\u3400-\u9fff]/;

/** The product's modules (the hub's default composition). */
export async function productModules(): Promise<import('@gridlink/hub').ModuleFactory[]> {
  return (await import('@gridlink/hub')).productModules();
}

/** A small district: one district polygon split into two unit grids (west, east). */
export function testGrids(lat = 30.66, lon = 104.06) {
  const d = 0.01;
  const rect = (x0: number, y0: number, x1: number, y1: number) => ({ type: 'Polygon' as const, coordinates: [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]] });
  return {
    type: 'FeatureCollection' as const,
    features: [
      { type: 'Feature' as const, properties: { id: 'D1', name: 'Test District', level: 'district', parentId: null, code: '510106' }, geometry: rect(lon - d, lat - d, lon + d, lat + d) },
      { type: 'Feature' as const, properties: { id: 'G-W', name: 'West Grid', level: 'grid', parentId: 'D1' }, geometry: rect(lon - d, lat - d, lon, lat + d) },
      { type: 'Feature' as const, properties: { id: 'G-E', name: 'East Grid', level: 'grid', parentId: 'D1' }, geometry: rect(lon, lat - d, lon + d, lat + d) },
    ],
  };
}
