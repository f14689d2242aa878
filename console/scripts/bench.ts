/**
 * `npm run bench:console`: first load time, JavaScript size (gzipped) and
 * frame rate with 5,000 moving workers, in real headless Chromium against a
 * real hub. Prints one JSON object (also written to bench-results/console.json).
 *
 * Workers move through the hub's real Socket.IO fan-out (realtime.sendFiltered),
 * one burst of 5,000 positions per second, exactly what the positions channel
 * carries in production.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { runWithScene } from './scene';

const WORKERS = Number(process.env.BENCH_WORKERS ?? 5000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);

function jsSizes(dir: string) {
  const assets = path.join(dir, 'assets');
  const files = readdirSync(assets).filter((f) => f.endsWith('.js'));
  const html = readFileSync(path.join(dir, 'index.html'), 'utf8');
  let total = 0, initial = 0, hls = 0;
  for (const f of files) {
    const gz = gzipSync(readFileSync(path.join(assets, f)), { level: 9 }).length;
    total += gz;
    if (html.includes(f)) initial += gz;
    if (f.startsWith('hls')) hls += gz;
  }
  return { jsGzipKB: +(total / 1024).toFixed(1), initialJsGzipKB: +(initial / 1024).toFixed(1), hlsJsGzipKB: +(hls / 1024).toFixed(1), files: files.length };
}

// Runs in the page; a string because tsx would inject helpers the page lacks.
const MEASURE = `async (secs) => {
  const g = window.__gridlink;
  const s0 = g.stats();
  let ticks = 0;
  const gaps = [];
  const t0 = performance.now();
  let last = t0;
  await new Promise((resolve) => {
    const f = (now) => {
      ticks++;
      gaps.push(now - last);
      last = now;
      if (now - t0 < secs * 1000) requestAnimationFrame(f);
      else resolve();
    };
    requestAnimationFrame(f);
  });
  const el = (performance.now() - t0) / 1000;
  const s1 = g.stats();
  gaps.sort((a, b) => a - b);
  const frames = s1.frames - s0.frames;
  return {
    fps: +(ticks / el).toFixed(1),
    mapFramesPerSec: +(frames / el).toFixed(1),
    avgDrawMs: +((s1.drawMsTotal - s0.drawMsTotal) / Math.max(1, frames)).toFixed(2),
    // Of the frames drawn, how many repainted only the changed rectangles of the moving layer;
    // frames where nothing on screen changed are skipped (not drawn, not counted in mapFramesPerSec).
    partialFrameShare: +((s1.partialFrames - s0.partialFrames) / Math.max(1, frames)).toFixed(2),
    unchangedFramesPerSec: +((s1.unchangedFrames - s0.unchangedFrames) / el).toFixed(1),
    p95FrameGapMs: +gaps[Math.floor(gaps.length * 0.95)].toFixed(1),
    maxFrameGapMs: +gaps[gaps.length - 1].toFixed(1),
    workersOnMap: s1.workers,
    positionsPerSec: Math.round((s1.received - s0.received) / el),
  };
}`;

runWithScene({ devices: false, cases: false }, async (scene, browser) => {
  const sizes = jsSizes(scene.dir);
  const ctx = await browser.newContext({ viewport: { width: 1920, height: 1080 } });
  const page = await ctx.newPage();
  // First load: cold cache, until the login form is on screen.
  const t0 = Date.now();
  await page.goto(scene.hub.http + '/');
  await page.waitForSelector('[data-testid=login-form]');
  const firstLoadMs = Date.now() - t0;
  const nav = (await page.evaluate(`(() => {
    const n = performance.getEntriesByType('navigation')[0];
    const fcp = performance.getEntriesByName('first-contentful-paint')[0];
    return { domContentLoadedMs: Math.round(n.domContentLoadedEventEnd), loadMs: Math.round(n.loadEventEnd), fcpMs: fcp ? Math.round(fcp.startTime) : null };
  })()`)) as Record<string, number | null>;
  await page.fill('input[name=username]', 'admin');
  await page.fill('input[name=password]', scene.hub.config.adminPassword!);
  const t1 = Date.now();
  await page.click('[data-testid=login-submit]');
  await page.waitForSelector('[data-testid=conn][data-state=online]');
  const loginToLiveMs = Date.now() - t1;

  await page.evaluate(`(() => { window.__longtasks = []; new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__longtasks.push(Math.round(e.duration)); }).observe({ entryTypes: ['longtask'] }); })()`);
  const idle = (await page.evaluate(`(${MEASURE})(3)`)) as Record<string, number>;
  const stopMovers = scene.startMovers(WORKERS);
  await page.waitForFunction(`window.__gridlink && window.__gridlink.stats().workers >= ${WORKERS}`, undefined, { timeout: 15_000 });
  await page.waitForTimeout(2000);
  const fps = (await page.evaluate(`(${MEASURE})(${SECONDS})`)) as Record<string, number>;
  stopMovers();
  const longTasks = (await page.evaluate('window.__longtasks')) as number[];
  const result = {
    when: new Date().toISOString(),
    loadAvg: (await import('node:os')).loadavg().map((x) => +x.toFixed(1)),
    chromium: browser.version(),
    viewport: '1920x1080',
    firstLoadMs,
    ...nav,
    loginToLiveMs,
    ...sizes,
    workers: WORKERS,
    seconds: SECONDS,
    ...fps,
    idleFps: idle.fps,
    longTasks: { count: longTasks.length, maxMs: Math.max(0, ...longTasks) },
    targets: { firstLoadMs: 2000, jsGzipKB: 400, fps: 30 },
    pass: firstLoadMs < 2000 && sizes.jsGzipKB < 400 && fps.fps! >= 30,
  };
  const out = path.resolve(import.meta.dirname, '../../bench-results');
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, 'console.json'), JSON.stringify(result, null, 2));
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
});
