/**
 * `npm run bench:board`: the dispatcher's case board with 10,000 open cases in
 * real headless Chromium against a real hub (the demo district's grids).
 * Prints one JSON object (also bench-results/board.json):
 * - a fresh load of #/cases with a stored session: first paint, first
 *   contentful paint, time until the board shows all open cases (the columns'
 *   lists hold every case the hub has open and their badges carry its counts);
 * - scrolling the largest column from top to bottom: frame times (gaps between
 *   animation frames while scrolling a fixed distance per frame) and whether
 *   the last case was reached;
 * - DOM elements on the page and case rows mounted, against cases held;
 * - a 红牌 burst: BENCH_BURST (1,000) open cases fall due at once, the hub's
 *   supervision pass flags them and pushes a `case` event per step; how the page copes.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { insertOpenCases, unitGridPoints } from './bulk-cases';
import { runWithScene } from './scene';

const N = Number(process.env.BENCH_CASES ?? 10_000);
const STEP_PX = Number(process.env.BENCH_SCROLL_STEP ?? 240);
const MAX_FRAMES = Number(process.env.BENCH_SCROLL_FRAMES ?? 900);
/** Cases that fall due at once in the 红牌 burst (0: no burst). */
const BURST = Number(process.env.BENCH_BURST ?? 1000);

// Runs in the page; a string because tsx would inject helpers the page lacks.
const SCROLL = `async ([step, maxFrames]) => {
  const cols = [...document.querySelectorAll('[data-status] [data-testid=case-scroll]')];
  const el = cols.sort((a, b) => Number(b.dataset.count) - Number(a.dataset.count))[0];
  el.scrollTop = 0;
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const gaps = [];
  let last = performance.now();
  const t0 = last;
  let frames = 0;
  // A fixed distance per frame, then a jump to the bottom when the frame budget runs out (the list is long).
  await new Promise((resolve) => {
    const f = (now) => {
      gaps.push(now - last);
      last = now;
      frames++;
      const end = el.scrollHeight - el.clientHeight;
      if (el.scrollTop >= end - 1) return resolve();
      el.scrollTop = frames >= maxFrames ? end : el.scrollTop + step;
      requestAnimationFrame(f);
    };
    requestAnimationFrame(f);
  });
  // The virtualiser re-measures rows near the end; settle, then make sure the bottom stays reached.
  for (let i = 0; i < 20; i++) {
    el.scrollTop = el.scrollHeight;
    await new Promise((r) => requestAnimationFrame(r));
  }
  const elapsed = performance.now() - t0;
  const rows = [...el.querySelectorAll('[data-case-id]')];
  const lastIndex = Math.max(...rows.map((r) => Number(r.getAttribute('data-index'))));
  gaps.shift();
  const sorted = [...gaps].sort((a, b) => a - b);
  const q = (p) => +sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))].toFixed(1);
  return {
    column: el.closest('[data-status]').getAttribute('data-status'),
    casesInColumn: Number(el.dataset.count),
    scrolledPx: Math.round(el.scrollTop),
    frames: gaps.length,
    seconds: +(elapsed / 1000).toFixed(2),
    fps: +(gaps.length / (elapsed / 1000)).toFixed(1),
    frameMs: { p50: q(0.5), p95: q(0.95), p99: q(0.99), max: +sorted[sorted.length - 1].toFixed(1) },
    framesOver50Ms: gaps.filter((g) => g > 50).length,
    reachedLastCase: lastIndex === Number(el.dataset.count) - 1,
    rowsMountedAtEnd: rows.length,
  };
}`;

const DOM = `(() => ({
  domElements: document.getElementsByTagName('*').length,
  caseRowsMounted: document.querySelectorAll('[data-case-id]').length,
  casesHeld: [...document.querySelectorAll('[data-status] [data-testid=case-scroll]')].reduce((s, e) => s + Number(e.dataset.count), 0),
  badges: Object.fromEntries([...document.querySelectorAll('[data-testid^=count-]')].map((e) => [e.dataset.testid.slice(6), Number(e.textContent)])),
}))()`;

runWithScene({ devices: false, cases: false }, async (scene, browser) => {
  const t0 = Date.now();
  await insertOpenCases(scene.hub, N, unitGridPoints(scene.district.grids as never));
  const insertMs = Date.now() - t0;
  const ctx = await browser.newContext({ viewport: { width: 1920, height: 1080 }, locale: 'zh-CN' });
  const page = await ctx.newPage();
  page.on('pageerror', (e) => console.error('[page error]', e.message));
  // Socket.IO frames carrying `case` events, with their arrival time (the 红牌 burst below).
  const caseFrames: number[] = [];
  page.on('websocket', (ws) => ws.on('framereceived', (f) => {
    if (typeof f.payload === 'string' && f.payload.startsWith('42["case"')) caseFrames.push(Date.now());
  }));
  // Sign in once (stores the session), then measure a fresh load of the board as a wall screen reloads it.
  await page.goto(scene.hub.http + '/');
  await page.fill('input[name=username]', 'admin');
  await page.fill('input[name=password]', scene.hub.config.adminPassword!);
  await page.click('[data-testid=login-submit]');
  await page.waitForSelector('[data-testid=conn][data-state=online]');
  await page.goto('about:blank');

  const t1 = Date.now();
  await page.goto(scene.hub.http + '/#/cases');
  await page.waitForSelector('[data-testid=case-board]');
  const boardShellMs = Date.now() - t1;
  await page.waitForSelector('[data-testid=case-board] [data-case-id]', { timeout: 120_000 });
  const firstRowsMs = Date.now() - t1;
  await page.waitForFunction(
    `[...document.querySelectorAll('[data-status] [data-testid=case-scroll]')].reduce((s, e) => s + Number(e.dataset.count), 0) >= ${N}
     && Number(document.querySelector('[data-testid=count-reported]')?.textContent) > 0`,
    undefined,
    { timeout: 120_000, polling: 50 },
  );
  const allOpenCasesMs = Date.now() - t1;
  const paint = (await page.evaluate(`(() => {
    const p = Object.fromEntries(performance.getEntriesByType('paint').map((e) => [e.name, Math.round(e.startTime)]));
    const n = performance.getEntriesByType('navigation')[0];
    return { firstPaintMs: p['first-paint'] ?? null, firstContentfulPaintMs: p['first-contentful-paint'] ?? null, domContentLoadedMs: Math.round(n.domContentLoadedEventEnd) };
  })()`)) as Record<string, number | null>;
  // The badges come from /cases/counts half a second after the list settles.
  await page.waitForFunction(`Number(document.querySelector('[data-testid=count-reported]')?.textContent) >= ${Math.floor(N / 2)}`, undefined, { timeout: 30_000 });
  const dom = (await page.evaluate(DOM)) as Record<string, unknown>;
  const scroll = (await page.evaluate(`(${SCROLL})([${STEP_PX}, ${MAX_FRAMES}])`)) as Record<string, unknown>;
  const domAfterScroll = (await page.evaluate(DOM)) as Record<string, number>;

  // 红牌 burst: BENCH_BURST open cases fall due at once; the hub's supervision pass (every 30 s) flags
  // them all in one go and pushes a `case` event for each step (overdue, escalate). Measured: events received, how
  // long they kept coming, animation-frame gaps and long tasks in the page from the update until 2 s after the last event.
  const burst = BURST > 0 ? await redCardBurst() : null;

  async function redCardBurst() {
  await page.evaluate(`(() => {
    const b = window.__burst = { gaps: [], long: [], on: true };
    let last = performance.now();
    const f = (now) => { b.gaps.push(now - last); last = now; if (b.on) requestAnimationFrame(f); };
    requestAnimationFrame(f);
    new PerformanceObserver((l) => { for (const e of l.getEntries()) b.long.push(e.duration); }).observe({ entryTypes: ['longtask'] });
  })()`);
  const open = "('reported','registered','dispatched','accepted','on_scene')";
  const counts = async () => (await scene.hub.api<{ overdue: number }>('GET', `/cases/counts?status=${open.replace(/[()']/g, '')}`)).body.overdue;
  const overdueBefore = await counts();
  const b0 = Date.now();
  const framesBefore = caseFrames.length;
  const falling = (await scene.hub.hub.ctx.db.query<{ id: string }>(
    `update cases set deadline = now() - interval '1 minute'
      where id in (select id from cases where not overdue and status in ${open} order by id limit ${BURST}) returning id`,
  )).length;
  for (let i = 0; i < 240 && (await counts()) < overdueBefore + falling; i++) await new Promise((r) => setTimeout(r, 1000));
  const serverMs = Date.now() - b0;
  // Until no case event for 2 s.
  for (let quiet = 0; quiet < 2000; ) {
    const n = caseFrames.length;
    await new Promise((r) => setTimeout(r, 250));
    quiet = caseFrames.length === n ? quiet + 250 : 0;
  }
  const lastFrame = caseFrames.at(-1) ?? Date.now();
  const pageBurst = (await page.evaluate(`(() => {
    const b = window.__burst; b.on = false;
    const g = b.gaps.slice(1).sort((x, y) => x - y);
    const q = (p) => g.length ? +g[Math.min(g.length - 1, Math.floor(g.length * p))].toFixed(1) : null;
    return { frameMs: { p50: q(0.5), p95: q(0.95), max: g.length ? +g[g.length - 1].toFixed(1) : null }, longTasks: b.long.length, longTaskMsTotal: Math.round(b.long.reduce((s, x) => s + x, 0)), longTaskMsMax: Math.round(Math.max(0, ...b.long)) };
  })()`)) as Record<string, unknown>;
  return {
    casesFallingDue: falling,
    caseEventsReceived: caseFrames.length - framesBefore,
    hubFlaggedAllMs: serverMs,
    eventsSpreadMs: caseFrames.length > framesBefore ? lastFrame - caseFrames[framesBefore]! : 0,
    ...pageBurst,
  };
  }

  const result = {
    when: new Date().toISOString(),
    loadAvg: (await import('node:os')).loadavg().map((x) => +x.toFixed(1)),
    chromium: browser.version(),
    viewport: '1920x1080',
    openCases: N,
    insertMs,
    load: { ...paint, boardShellMs, firstRowsMs, allOpenCasesMs },
    dom,
    scroll: { stepPx: STEP_PX, ...scroll },
    domAfterScroll: { domElements: domAfterScroll.domElements, caseRowsMounted: domAfterScroll.caseRowsMounted },
    burst,
  };
  const out = path.resolve(import.meta.dirname, '../../bench-results');
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, 'board.json'), JSON.stringify(result, null, 2));
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
});
