/**
 * Video out of the box: the demo entry point exactly as `npm run demo` runs
 * it, with only node and ffmpeg on PATH (no GStreamer, no python), the
 * console built, and real Chromium as a duty officer: the video wall's first
 * page shows moving pictures on four tiles, and a camera alert opens the
 * 视频联动 popup with moving pictures too.
 *
 * With GRIDLINK_SCREENSHOTS=1 it also refreshes docs/screenshots/video-wall.png
 * and docs/screenshots/linkage-popup.png.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alertMessage, simFfmpeg } from '@gridlink/simulators/camera';
import { until } from '../helpers.js';
import { CHROMIUM, chromiumArgs, haveChromium } from './player-page.js';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../..');
const REQUIRE_ALL = process.env.GRIDLINK_REQUIRE_ALL === '1';
const ff = simFfmpeg();
const skip = (!haveChromium() || !ff) && !REQUIRE_ALL;

/**
 * The console as `npm run demo` builds it: vite's CLI in its own process (a build inside the test
 * runner's own vite leaves its preload helper undefined in the bundle).
 */
async function buildConsole(outDir: string): Promise<string> {
  const vite = path.join(ROOT, 'node_modules/vite/bin/vite.js');
  const code = await new Promise<number | null>((resolve) => {
    const p = spawn(process.execPath, [vite, 'build', '--logLevel', 'error', '--outDir', outDir, '--emptyOutDir'], { cwd: path.join(ROOT, 'console'), stdio: ['ignore', 'ignore', 'inherit'] });
    p.once('exit', resolve);
  });
  if (code !== 0) throw new Error(`console build failed (${code})`);
  return outDir;
}

/** Frames advance in every listed player: currentTime grows and the decoder has a picture. */
async function framesAdvance(page: Page, selector: string, count: number): Promise<number[]> {
  const sel = JSON.stringify(selector);
  const videos = `[...document.querySelectorAll(${sel})].map((p) => p.querySelector('video'))`;
  const read = () => page.evaluate(`${videos}.map((v) => ({ t: v ? v.currentTime : 0, frames: v && v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality().totalVideoFrames : 0 }))`) as Promise<Array<{ t: number; frames: number }>>;
  await page.waitForFunction(`${videos}.filter((v) => v && v.videoWidth > 0 && v.currentTime > 0.3).length >= ${count}`, undefined, { timeout: 90_000, polling: 250 });
  const first = await read();
  const before = JSON.stringify(first.map((f) => f.t));
  const framesBefore = JSON.stringify(first.map((f) => f.frames));
  // Moving: a second of playback and more than three new frames on each tile. On a loaded machine that can
  // take longer than a second of wall time; the limit only guards a hang.
  await page.waitForFunction(
    `${videos}.filter((v, i) => v && v.currentTime > (${before}[i] ?? 0) + 1 && v.getVideoPlaybackQuality().totalVideoFrames > (${framesBefore}[i] ?? 0) + 3).length >= ${count}`,
    undefined, { timeout: 120_000, polling: 250 });
  const second = await read();
  return second.map((s, i) => s.frames - (first[i]?.frames ?? 0));
}

describe.skipIf(skip)('npm run demo: video out of the box (no GStreamer)', () => {
  let dir: string;
  let child: ChildProcess | undefined;
  let browser: Browser;
  let page: Page;
  let http = '';
  const log: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'gl-demo-video-'));
    const consoleDir = await buildConsole(path.join(dir, 'console'));
    // PATH with node and ffmpeg only: whatever the machine has, the demo cannot reach GStreamer or python.
    const bin = path.join(dir, 'bin');
    mkdirSync(bin);
    symlinkSync(process.execPath, path.join(bin, 'node'));
    symlinkSync(ff!.includes('/') ? path.resolve(ff!) : spawnSync('sh', ['-c', `command -v ${ff}`], { encoding: 'utf8' }).stdout.trim(), path.join(bin, 'ffmpeg'));
    child = spawn(process.execPath, ['--import', 'tsx', 'simulators/src/demo.ts', '--size', 'small', '--no-dispatcher', '--state', path.join(dir, 'sim/secrets.json'), '--district', path.join(dir, 'sim/district')], {
      cwd: ROOT,
      env: {
        PATH: bin, HOME: dir, GRIDLINK_HTTP_PORT: '0', GRIDLINK_MQTT_PORT: '0', GRIDLINK_HOST: '127.0.0.1', GRIDLINK_DATA_DIR: path.join(dir, 'data'),
        GRIDLINK_CONSOLE_DIR: consoleDir, GRIDLINK_DEMO_FIRST_ALERT_MS: String(3600_000), GST_PLUGIN_SYSTEM_PATH: path.join(dir, 'none'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    createInterface({ input: child.stderr! }).on('line', (l) => log.push(l));
    const ready = await new Promise<{ http: number; mqtt: number }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`demo not ready:\n${log.slice(-20).join('\n')}`)), 180_000);
      createInterface({ input: child!.stdout! }).on('line', (line) => {
        if (!line.startsWith('{')) return;
        const m = JSON.parse(line) as { msg?: string; http: number; mqtt: number };
        if (m.msg === 'demo ready') {
          clearTimeout(timer);
          resolve(m);
        }
      });
      child!.once('exit', (code) => reject(new Error(`demo exited ${code}:\n${log.slice(-20).join('\n')}`)));
    });
    http = `http://127.0.0.1:${ready.http}`;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: chromiumArgs });
    // bypassCSP: the test's own probes (waitForFunction) run as page script; the console's CSP forbids eval.
    const ctx = await browser.newContext({ viewport: { width: 1600, height: 900 }, locale: 'zh-CN', bypassCSP: true });
    page = await ctx.newPage();
    page.on('pageerror', (e) => console.error('[page error]', e.message));
    const { adminPassword } = JSON.parse(readFileSync(path.join(dir, 'sim/demo.json'), 'utf8')) as { adminPassword: string };
    await page.goto(`${http}/`);
    await page.fill('input[name=username]', 'admin');
    await page.fill('input[name=password]', adminPassword);
    await page.click('[data-testid=login-submit]');
    await page.waitForSelector('.shell');
  }, 300_000);

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child!.once('exit', r));
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('should stream the first wall page through the Node RTSP server, with no GStreamer process anywhere', async () => {
    const descendants = (pid: number): number[] => {
      const out: number[] = [];
      for (const p of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
        try {
          const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
          if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(p), ...descendants(Number(p)));
        } catch {
          /* gone */
        }
      }
      return out;
    };
    const commands = () => descendants(child!.pid!).map((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ');
      } catch {
        return '';
      }
    });
    const encodersOf = (cmds: string[]) => cmds.filter((c) => c.includes('-f h264 pipe:1'));
    // Encoders start when the hub first pulls a camera (its probe), which on a loaded machine may come after login.
    const cmds = await until(() => {
      const now = commands();
      const enc = encodersOf(now);
      return enc.some((c) => /\bshared\b/.test(c)) && enc.filter((c) => !/\bshared\b/.test(c)).length >= 4 ? now : null;
    }, 240_000, 250);
    expect(cmds.filter((c) => /rtsp_server\.py|gst-|python/.test(c))).toEqual([]);
    // Four camera encoders of their own (the first wall page) and one shared by every other camera
    // (its picture is stamped `shared`), plus the hub's remux of each buffered camera.
    const encoders = encodersOf(cmds);
    expect(encoders.filter((c) => !/\bshared\b/.test(c)).length).toBe(4);
    expect(encoders.filter((c) => /\bshared\b/.test(c)).length).toBe(1);
  }, 300_000);

  it('should show moving pictures on four wall tiles', async () => {
    await page.evaluate(() => localStorage.removeItem('gridlink.wall'));
    await page.goto(`${http}/#/video`);
    await page.waitForSelector('[data-testid=video-wall] [data-testid=camera-player]').catch(async (err) => {
      await page.screenshot({ path: path.join(os.tmpdir(), 'gl-demo-video-failure.png') });
      throw err;
    });
    const advanced = await framesAdvance(page, '[data-testid=video-wall] [data-testid=camera-player]', 4);
    expect(advanced.filter((n) => n > 3).length).toBeGreaterThanOrEqual(4);
    if (process.env.GRIDLINK_SCREENSHOTS === '1') await page.screenshot({ path: path.join(ROOT, 'docs/screenshots/video-wall.png') });
  }, 180_000);

  it('should open the linkage popup on a camera alert and play it', async () => {
    const secrets = JSON.parse(readFileSync(path.join(dir, 'sim/secrets.json'), 'utf8')) as { hubs: Record<string, { devices: Record<string, string> }> };
    const secret = Object.values(secrets.hubs).map((h) => h.devices['cam-0002']).find(Boolean)!;
    // The camera's own credentials over HTTP ingest (the demo's MQTT session of the camera stays connected).
    const body = await alertMessage('cam-0002', 'illegal_parking', { confidence: 0.93 });
    const res = await fetch(`${http}/api/v1/ingest/cam-0002/alert`, {
      method: 'POST', body: JSON.stringify(body),
      headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`cam-0002:${secret}`).toString('base64')}` },
    });
    expect(res.status).toBe(202);
    // Every new case near cameras opens the popup (the demo's workers and citizens report too): wait for the one this
    // alert opened, which plays the alerting camera first.
    await page.waitForSelector('[data-testid=linkage-popup] [data-testid=camera-player][data-camera="cam-0002"]', { timeout: 60_000 });
    const first = await page.getAttribute('[data-testid=linkage-popup] [data-testid=camera-player]', 'data-camera');
    expect(first).toBe('cam-0002');
    // The duty officer reads which case it is: its code and title, not the case's internal id.
    const caseId = (await page.getAttribute('[data-testid=linkage-popup]', 'data-case'))!;
    const header = page.locator('[data-testid=linkage-popup] header strong');
    await page.waitForFunction(`/GL-\\d{8}-\\d+ · \\S/.test(document.querySelector('[data-testid=linkage-popup] header strong')?.textContent ?? '')`, null, { timeout: 60_000 });
    expect(await header.textContent()).not.toContain(caseId);
    const advanced = await framesAdvance(page, '[data-testid=linkage-popup] [data-testid=camera-player]', 1);
    expect(advanced[0]).toBeGreaterThan(3);
    if (process.env.GRIDLINK_SCREENSHOTS === '1') await page.screenshot({ path: path.join(ROOT, 'docs/screenshots/linkage-popup.png') });
  }, 180_000);
});
