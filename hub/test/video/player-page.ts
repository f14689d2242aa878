/**
 * A test page for headless Chromium: plays a camera with hls.js or with
 * fMP4-over-WebSocket into Media Source Extensions, and reads the clock the
 * simulated camera burned into each frame (black/white blocks, see
 * simulators/src/camera) against the browser's wall clock: glass-to-glass
 * latency without OCR. Served same-origin with the hub through page.route.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { clockReaderSource } from '@gridlink/simulators/camera';

const here = path.dirname(fileURLToPath(import.meta.url));
export const HLS_JS = path.resolve(here, '../../../node_modules/hls.js/dist/hls.min.js');
export const CHROMIUM = '/usr/bin/chromium';
export const chromiumArgs = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--headless', '--autoplay-policy=no-user-gesture-required', '--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests,PrivateNetworkAccessSendPreflights'];

export function haveChromium(): boolean {
  return existsSync(CHROMIUM) && existsSync(HLS_JS);
}

const PAGE = `<!doctype html><meta charset="utf-8"><title>player</title>
<video id="v" muted autoplay playsinline style="width:640px"></video>
<canvas id="c" style="display:none"></canvas>
<script src="/__test/hls.js"></script>
<script>
${clockReaderSource}
window.stats = { started: 0, firstFrameAt: 0, frames: 0, latency: [], errors: [], mode: '' };
const v = document.getElementById('v');
const c = document.getElementById('c');
const ctx2d = c.getContext('2d', { willReadFrequently: true });
let n = 0;
function onFrame(now, meta) {
  const s = window.stats;
  s.frames++;
  if (!s.firstFrameAt) s.firstFrameAt = Date.now();
  if ((n++ % 5) === 0 && v.videoWidth) {
    c.width = v.videoWidth; c.height = v.videoHeight;
    ctx2d.drawImage(v, 0, 0);
    const px = ctx2d.getImageData(0, 0, c.width, c.height).data;
    const burned = readClock(px, c.width, clockLayout(c.width, c.height, 24));
    const mod = 2 ** 24;
    const lat = ((Date.now() % mod) - burned + mod) % mod;
    if (lat < 60000) s.latency.push(lat);
  }
  v.requestVideoFrameCallback(onFrame);
}
v.requestVideoFrameCallback(onFrame);

window.playHls = (url) => {
  window.stats.mode = 'hls'; window.stats.started = Date.now();
  const hls = new Hls({ liveSyncDurationCount: 1, liveMaxLatencyDurationCount: 4, maxLiveSyncPlaybackRate: 1.5, backBufferLength: 10, manifestLoadingMaxRetry: 6 });
  hls.on(Hls.Events.ERROR, (_e, d) => { if (d.fatal) window.stats.errors.push(d.type + ':' + d.details); });
  hls.loadSource(url); hls.attachMedia(v);
  hls.on(Hls.Events.MANIFEST_PARSED, () => v.play().catch((e) => window.stats.errors.push(String(e))));
  window.hls = hls;
};

window.playMse = (wsUrl) => {
  window.stats.mode = 'mse'; window.stats.started = Date.now();
  let ms = null, sb = null, queue = [], wantInit = false;
  const ws = new WebSocket(wsUrl); ws.binaryType = 'arraybuffer';
  window.ws = ws;
  const pump = () => {
    if (!sb || sb.updating || !queue.length) return;
    try { sb.appendBuffer(queue.shift()); } catch (e) { window.stats.errors.push('append:' + e); }
  };
  const chase = () => {
    // Live edge: never drift more than 0.3 s behind what was received.
    const b = v.buffered;
    if (b.length) {
      const end = b.end(b.length - 1);
      if (v.currentTime < b.start(b.length - 1) || end - v.currentTime > 0.3) v.currentTime = Math.max(b.start(b.length - 1), end - 0.05);
    }
    if (sb && !sb.updating && b.length && v.currentTime - b.start(0) > 30) { try { sb.remove(0, v.currentTime - 10); } catch {} }
  };
  ws.onmessage = (ev) => {
    if (typeof ev.data === 'string') {
      const m = JSON.parse(ev.data);
      if (m.type === 'init') {
        if (!MediaSource.isTypeSupported(m.mime)) { window.stats.errors.push('unsupported ' + m.mime); return; }
        ms = new MediaSource(); sb = null; queue = []; wantInit = true;
        v.src = URL.createObjectURL(ms);
        ms.addEventListener('sourceopen', () => {
          sb = ms.addSourceBuffer(m.mime); sb.mode = 'segments';
          sb.addEventListener('updateend', () => { chase(); pump(); });
          pump();
        }, { once: true });
        v.play().catch(() => {});
      }
      return;
    }
    queue.push(ev.data);
    if (queue.length > 200) queue.splice(1, queue.length - 100);
    pump();
  };
  ws.onerror = () => window.stats.errors.push('ws error');
  ws.onclose = (e) => window.stats.errors.push('ws close ' + e.code);
};
</script>`;

/** Opens the test page on the hub's origin (so hls.js and the WebSocket are same-origin). */
export async function openPlayer(browser: Browser, origin: string): Promise<Page> {
  const page = await browser.newPage();
  await page.route(`${origin}/__test/player.html`, (r) => r.fulfill({ contentType: 'text/html', body: PAGE }));
  await page.route(`${origin}/__test/hls.js`, (r) => r.fulfill({ contentType: 'application/javascript', body: readFileSync(HLS_JS, 'utf8') }));
  await page.goto(`${origin}/__test/player.html`);
  return page;
}

export interface PlayerStats {
  started: number;
  firstFrameAt: number;
  frames: number;
  latency: number[];
  errors: string[];
  currentTime: number;
}

export async function playerStats(page: Page): Promise<PlayerStats> {
  return page.evaluate(`(() => {
    const s = window.stats;
    return { ...s, latency: [...s.latency], errors: [...s.errors], currentTime: document.getElementById('v').currentTime };
  })()`) as Promise<PlayerStats>;
}

/** Calls window.playHls / window.playMse on the test page. */
export async function play(page: Page, mode: 'hls' | 'mse', url: string): Promise<void> {
  await page.evaluate(`window.${mode === 'hls' ? 'playHls' : 'playMse'}(${JSON.stringify(url)})`);
}

export function median(xs: number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export function percentile(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))]!;
}
