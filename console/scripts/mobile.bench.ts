/**
 * `npm run bench:mobile`: budgets of 网格通 (/m/) measured in headless Chromium
 * against a real hub, printed as one JSON object (also written to
 * bench-results/mobile.json):
 *  - JS and CSS size of the first load of /m/ (gzip, as served to a phone);
 *  - first load on a throttled connection (CDP: 150 ms RTT, 1.6 Mbit/s down,
 *    750 kbit/s up, CPU slowed 4×): time to the login screen, FCP, bytes;
 *    then a repeat load from the service worker, and one with the network off;
 *  - a dispatch from the case API to the alert on the open app (p50, max of 7);
 *  - the position policy with the hub's default settings: fixes sent per
 *    minute standing still, walking (1.4 m/s) and cycling (4.5 m/s), and the
 *    bytes of one position request.
 * BENCH_M_SECONDS (default 45) is the length of each position run.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import { productModules } from '@gridlink/hub';
import { buildConsole, CHROMIUM, CHROMIUM_ARGS } from '../test/e2e/harness';
import { startHub } from './hub';

const SECONDS = Number(process.env.BENCH_M_SECONDS ?? 45);
const LAT = 30.66;
const LON = 104.06;
const PASSWORD = 'bench-password-1';
const BUDGET = { initialJsGzipKB: 150, throttledLoginVisibleMs: 6000, stationaryFixesPerMin: 5 };

function firstLoadSizes(dir: string) {
  const html = readFileSync(path.join(dir, 'm/index.html'), 'utf8');
  const refs = [...html.matchAll(/(?:src|href)="\.\.\/(assets\/[^"]+)"/g)].map((m) => m[1]!);
  let js = 0, css = 0, jsRaw = 0;
  for (const f of refs) {
    const bytes = readFileSync(path.join(dir, f));
    const gz = gzipSync(bytes, { level: 9 }).length;
    if (f.endsWith('.js')) {
      js += gz;
      jsRaw += bytes.length;
    } else if (f.endsWith('.css')) css += gz;
  }
  return { initialJsGzipKB: +(js / 1024).toFixed(1), initialJsRawKB: +(jsRaw / 1024).toFixed(1), cssGzipKB: +(css / 1024).toFixed(1), files: refs.length };
}

async function main() {
  const dir = await buildConsole();
  // The product composition with its default settings: the position policy measured is the shipped one.
  const hub = await startHub({ consoleDir: dir }, { modules: productModules() });
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  try {
    const grid = { type: 'FeatureCollection', features: [{ type: 'Feature', properties: { id: 'G1', name: '一号网格', level: 'grid', parentId: null }, geometry: { type: 'Polygon', coordinates: [[[LON - 0.02, LAT - 0.02], [LON + 0.02, LAT - 0.02], [LON + 0.02, LAT + 0.02], [LON - 0.02, LAT + 0.02], [LON - 0.02, LAT - 0.02]]] } }] };
    await hub.api('PUT', '/grids', grid);
    const u = await hub.api<{ id: string }>('POST', '/users', { username: 'bench-worker', password: PASSWORD, role: 'worker' });
    const dev = await hub.registerDevice('handheld', 'hh-bench');
    await hub.api('POST', '/workers', { id: 'w-bench', name: '测试网格员', deviceId: dev.id, gridIds: ['G1'], userId: u.body.id });

    // ---- first load, throttled ----------------------------------------------------------------
    const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, locale: 'zh-CN', geolocation: { latitude: LAT, longitude: LON, accuracy: 10 }, permissions: ['geolocation'] });
    const page = await ctx.newPage();
    const cdp = await ctx.newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 150, downloadThroughput: (1.6 * 1024 * 1024) / 8, uploadThroughput: (750 * 1024) / 8 });
    await cdp.send('Emulation.setCPUThrottlingRate', { rate: 4 });
    let bytes = 0;
    cdp.on('Network.loadingFinished', (e: { encodedDataLength: number }) => {
      bytes += e.encodedDataLength;
    });
    const load = async (label: string) => {
      bytes = 0;
      const t0 = Date.now();
      await page.goto(`${hub.http}/m/`, { waitUntil: 'commit' });
      await page.waitForSelector('[data-testid=m-login]', { timeout: 120_000 });
      const wall = Date.now() - t0;
      const timing = await page.evaluate(() => {
        const nav = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
        const fcp = performance.getEntriesByName('first-contentful-paint')[0];
        return { domContentLoadedMs: Math.round(nav.domContentLoadedEventEnd), fcpMs: fcp ? Math.round(fcp.startTime) : null };
      });
      return { [label]: { loginVisibleMs: wall, ...timing, transferredKB: +(bytes / 1024).toFixed(1) } };
    };
    const cold = await load('cold');
    // The service worker installs after the first load; wait until it controls the page.
    await page.evaluate(() => navigator.serviceWorker.ready);
    await page.reload();
    await page.waitForFunction(() => !!navigator.serviceWorker.controller, null, { timeout: 60_000 });
    const warm = await load('repeat');
    await cdp.send('Network.emulateNetworkConditions', { offline: true, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    const offline = await load('offline');
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    await cdp.send('Emulation.setCPUThrottlingRate', { rate: 1 });

    // ---- position policy with the hub's defaults -----------------------------------------------
    await page.fill('input[name=username]', 'bench-worker');
    await page.fill('input[name=password]', PASSWORD);
    await page.click('[data-testid=m-login-submit]');
    await page.waitForSelector('[data-testid=m-shell]');
    await page.click('[data-testid=m-duty][data-on-duty=false]');
    await page.waitForSelector('[data-testid=m-gps][data-state=ok]');
    // ---- dispatch → phone: console action answered → the app's alert fired --------------------
    const dispatchMs: number[] = [];
    for (let i = 0; i < 7; i++) {
      const c = await hub.api<{ id: string }>('POST', '/cases', { category: 'E0101', lat: LAT + 0.001, lon: LON, description: `bench ${i}` });
      await hub.api('POST', `/cases/${c.body.id}/actions`, { action: 'register' });
      const t0 = Date.now();
      const r = await hub.api('POST', `/cases/${c.body.id}/actions`, { action: 'dispatch', workerId: 'w-bench' });
      if (r.status !== 200) throw new Error(`dispatch: ${r.status} ${JSON.stringify(r.body)}`);
      await page.waitForFunction((id) => document.documentElement.dataset.lastAlert === id, c.body.id, { polling: 'raf', timeout: 60_000 });
      dispatchMs.push(Date.now() - t0);
      await hub.api('POST', `/cases/${c.body.id}/actions`, { action: 'cancel', note: 'bench' });
    }
    dispatchMs.sort((a, b) => a - b);
    const dispatchToPhone = { runs: dispatchMs.length, p50Ms: dispatchMs[Math.floor(dispatchMs.length / 2)]!, maxMs: dispatchMs[dispatchMs.length - 1]! };

    let requestBytes: number[] = [];
    page.on('request', (r) => {
      if (r.url().endsWith('/api/v1/m/positions')) requestBytes.push((r.postData() ?? '').length + JSON.stringify(r.headers()).length);
    });
    const run = async (speedMps: number) => {
      requestBytes = [];
      const sentTs = () => page.evaluate(() => (window as unknown as { __gridlinkM: { tracker: { sentTs: number[] } } }).__gridlinkM.tracker.sentTs.slice());
      const n0 = (await sentTs()).length;
      let lon = LON;
      const t0 = Date.now();
      while (Date.now() - t0 < SECONDS * 1000) {
        // One new fix per second, as a phone's GPS delivers them.
        lon += speedMps / (111_320 * Math.cos((LAT * Math.PI) / 180));
        await ctx.setGeolocation({ latitude: LAT, longitude: lon, accuracy: 10 });
        await page.waitForTimeout(1000);
      }
      // Intervals between the fixes sent during the run (the first one is the hand-over from the previous run).
      const ts = (await sentTs()).slice(n0);
      const gaps = ts.slice(1).map((t, i) => (t - ts[i]!) / 1000).sort((a, b) => a - b);
      const median = gaps.length ? gaps[Math.floor(gaps.length / 2)]! : null;
      const min = (Date.now() - t0) / 60_000;
      return {
        fixesSent: ts.length, medianIntervalS: median, fixesPerMin: median ? +(60 / median).toFixed(1) : null,
        requestsPerMinInRun: +(requestBytes.length / min).toFixed(1),
        avgRequestBytes: requestBytes.length ? Math.round(requestBytes.reduce((a, b) => a + b, 0) / requestBytes.length) : null,
      };
    };
    const stationary = await run(0);
    const walking = await run(1.4);
    const cycling = await run(4.5);
    const me = await page.evaluate(async () => {
      const r = await fetch('../api/v1/m/me', { headers: { authorization: `Bearer ${JSON.parse(localStorage.getItem('gridlink.m.session')!).token}` } });
      return ((await r.json()) as { settings: unknown }).settings;
    });
    await ctx.close();

    const sizes = firstLoadSizes(dir);
    const result = {
      size: sizes,
      firstLoad: { network: '150 ms RTT, 1.6 Mbit/s down, 750 kbit/s up, CPU 4× slower', ...cold, ...warm, ...offline },
      dispatchToPhone,
      positions: { settings: me, secondsPerRun: SECONDS, stationary, walking, cycling },
      budgets: {
        initialJsGzipKB: { budget: BUDGET.initialJsGzipKB, value: sizes.initialJsGzipKB, ok: sizes.initialJsGzipKB <= BUDGET.initialJsGzipKB },
        throttledLoginVisibleMs: { budget: BUDGET.throttledLoginVisibleMs, value: cold.cold!.loginVisibleMs, ok: cold.cold!.loginVisibleMs <= BUDGET.throttledLoginVisibleMs },
        stationaryFixesPerMin: { budget: BUDGET.stationaryFixesPerMin, value: stationary.fixesPerMin, ok: stationary.fixesPerMin !== null && stationary.fixesPerMin <= BUDGET.stationaryFixesPerMin },
      },
    };
    const out = path.resolve(import.meta.dirname, '../../bench-results');
    mkdirSync(out, { recursive: true });
    writeFileSync(path.join(out, 'mobile.json'), JSON.stringify(result, null, 2));
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await browser.close();
    await hub.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
