/**
 * Video benchmark (npm run bench:video): real RTSP cameras (simulators/camera),
 * the hub's video module with real ffmpeg, headless Chromium.
 *
 * Measures, printed as one JSON document:
 *  - cold start: REST stream request → first HLS segment on disk / playlist
 *    served, and → first frame rendered by the browser on the MSE path;
 *  - glass-to-glass latency of each path: the simulated camera burns its wall
 *    clock (ms mod 2^24) into every frame as 24 black/white blocks; the page
 *    reads them back from a canvas on each presented frame
 *    (requestVideoFrameCallback) and subtracts them from Date.now() (same
 *    machine, same clock);
 *  - hub CPU per live camera (ffmpeg children from /proc + the hub process),
 *    for remux and for the H.265→H.264 transcode fallback;
 *  - 16 cameras live at once: time until all are live, CPU, and MSE latency
 *    of one of them meanwhile.
 * Targets (issue 5): MSE < 1 s, HLS < 4 s, remux < 5 % of a core per camera.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { rtspCameraSupport, startRtspCamera, type RtspCamera } from '../../simulators/src/camera/index.js';
import { testConfig } from '../src/core/config.js';
import { createHub, videoModule } from '../src/hub.js';
import type { VideoModule } from '../src/video/index.js';
import { CHROMIUM, chromiumArgs, haveChromium, median, openPlayer, percentile, play, playerStats } from '../test/video/player-page.js';

const TICK_S = 100; // USER_HZ on Linux
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function procCpuS(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) / TICK_S;
  } catch {
    return 0;
  }
}

async function until<T>(fn: () => T | Promise<T>, timeoutMs: number, stepMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('timeout');
    await sleep(stepMs);
  }
}

/** CPU (% of one core) used by the hub process and the given pids over `ms`. */
async function cpuOver(pids: () => number[], ms: number): Promise<{ hubPct: number; ffmpegPct: number }> {
  const p0 = pids();
  const a = new Map(p0.map((p) => [p, procCpuS(p)]));
  const h0 = process.cpuUsage();
  const t0 = Date.now();
  await sleep(ms);
  const dt = (Date.now() - t0) / 1000;
  const h = process.cpuUsage(h0);
  let ff = 0;
  for (const p of pids()) ff += procCpuS(p) - (a.get(p) ?? procCpuS(p));
  return { hubPct: round(((h.user + h.system) / 1e6 / dt) * 100), ffmpegPct: round((ff / dt) * 100) };
}

const round = (n: number, d = 1) => Math.round(n * 10 ** d) / 10 ** d;

async function main(): Promise<void> {
  const support = rtspCameraSupport();
  if (!haveChromium()) support.missing.push('chromium / hls.js');
  if (support.missing.length) {
    const out = { bench: 'video', skipped: `missing: ${support.missing.join(', ')}` };
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    process.exit(process.env.GRIDLINK_REQUIRE_ALL === '1' ? 1 : 0);
  }
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'gl-video-bench-'));
  const hub = await createHub(testConfig({ dataDir }), { modules: [videoModule({ stream: { graceS: 3, leaseS: 4 } })] });
  const ports = await hub.start();
  const http = `http://127.0.0.1:${ports.http}`;
  const video = hub.ctx.modules.get('video') as VideoModule;
  const login = await fetch(`${http}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: hub.ctx.config.adminPassword }) });
  const token = ((await login.json()) as { token: string }).token;
  const api = async <T>(method: string, p: string, body?: unknown): Promise<T> => {
    const r = await fetch(`${http}/api/v1${p}`, { method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
    return (await r.json()) as T;
  };
  const cams: RtspCamera[] = [];
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: chromiumArgs });
  const result: Record<string, unknown> = { bench: 'video', ffmpeg: video.ff?.version, cores: os.cpus().length, loadavg: os.loadavg().map((l) => round(l, 2)) };
  try {
    // ---- one camera, 640x360 @ 25 fps, 1 s GOP -------------------------------------------------
    const cam = await startRtspCamera({ id: 'bench-0' });
    cams.push(cam);
    await api('POST', '/cameras', { id: cam.id, rtspUrl: cam.url, lat: 30.27, lon: 120.15, buffer: false });
    const stream = video.gateway!.stream(cam.id)!;

    // Cold HLS: request → first segment on disk, → playlist served with a segment.
    let t0 = Date.now();
    const s1 = await api<{ hls: string; live: string }>('GET', `/cameras/${cam.id}/stream`);
    const pl = await fetch(`${http}${s1.hls}`);
    const plText = await pl.text();
    const playlistMs = Date.now() - t0;
    await until(() => stream.firstSegmentAt, 15_000);
    const coldHls = { requestToFirstSegmentMs: stream.firstSegmentAt! - t0, requestToPlaylistMs: playlistMs, playlistHasSegment: /seg_\d+\.ts/.test(plText) };

    // Wait until idle again, then cold MSE: request → first frame rendered in the browser.
    await until(() => stream.state === 'idle', 30_000, 100);
    const mpage = await openPlayer(browser, http);
    t0 = Date.now();
    const s2 = await api<{ live: string }>('GET', `/cameras/${cam.id}/stream`);
    await play(mpage, 'mse', http.replace('http', 'ws') + s2.live);
    const firstFrame = await until(async () => (await playerStats(mpage)).firstFrameAt, 20_000, 20);
    const coldMse = { requestToFirstFragmentMs: stream.firstFragmentAt! - t0, requestToFirstFrameMs: firstFrame - t0 };

    // Warm: a live stream, a new viewer → first frame (init + GOP replay).
    const wpage = await openPlayer(browser, http);
    const s3 = await api<{ live: string }>('GET', `/cameras/${cam.id}/stream`);
    t0 = Date.now();
    await play(wpage, 'mse', http.replace('http', 'ws') + s3.live);
    const warmFrame = await until(async () => (await playerStats(wpage)).firstFrameAt, 20_000, 20);
    await wpage.close();

    // Glass-to-glass, MSE (this page keeps playing), then HLS.
    await sleep(3_000);
    await mpage.evaluate('window.stats.latency = []');
    await sleep(12_000);
    const mseStats = await playerStats(mpage);
    await mpage.close();
    const hpage = await openPlayer(browser, http);
    const s4 = await api<{ hls: string }>('GET', `/cameras/${cam.id}/stream`);
    await play(hpage, 'hls', s4.hls);
    await until(async () => (await playerStats(hpage)).currentTime > 0.5, 20_000, 100);
    await sleep(5_000);
    await hpage.evaluate('window.stats.latency = []');
    await sleep(12_000);
    const hlsStats = await playerStats(hpage);
    await hpage.close();
    const lat = (xs: number[]) => ({ samples: xs.length, medianMs: median(xs), p95Ms: percentile(xs, 95), minMs: xs.length ? Math.min(...xs) : NaN });
    result.oneCamera = {
      source: '640x360 @ 25 fps, H.264, GOP 1 s, RTSP over TCP from the simulators\' Node RTSP server',
      coldHls,
      coldMse,
      warmMseRequestToFirstFrameMs: warmFrame - t0,
      glassToGlass: { mse: lat(mseStats.latency), hls: lat(hlsStats.latency) },
      playerErrors: [...mseStats.errors, ...hlsStats.errors],
    };

    // CPU per camera, remux: the stream held, no browser.
    const hold = stream.acquire();
    await until(() => stream.state === 'live', 15_000);
    await sleep(1_000);
    const remux = await cpuOver(() => video.gateway!.runningPids(), 10_000);
    hold();

    // CPU per camera, transcode (H.265 camera → H.264).
    const h265 = await startRtspCamera({ id: 'bench-h265', codec: 'h265' });
    cams.push(h265);
    await api('POST', '/cameras', { id: h265.id, rtspUrl: h265.url, lat: 30.27, lon: 120.15, codec: 'h265', buffer: false });
    const ts = video.gateway!.stream(h265.id)!;
    const th = ts.acquire();
    await until(() => ts.state === 'live', 30_000, 100);
    await sleep(2_000);
    const pidOf = () => (ts.pid ? [ts.pid] : []);
    const transcode = await cpuOver(pidOf, 8_000);
    th();
    await h265.stop();
    result.cpuPerCamera = {
      remuxPctOfCore: remux.ffmpegPct,
      hubProcessPct: remux.hubPct,
      transcodeH265toH264PctOfCore: transcode.ffmpegPct,
      note: 'ffmpeg CPU from /proc/<pid>/stat over 10 s (8 s transcode); hub process = this Node process (HTTP, fMP4 split, playlist polling)',
    };
    await until(() => stream.state === 'idle' && ts.state === 'idle', 30_000, 100);

    // ---- 16 cameras live at once (480x270 @ 15 fps sources to leave CPU for the hub) -------------
    const N = 16;
    const many: RtspCamera[] = [];
    for (let i = 1; i <= N; i++) {
      const c = await startRtspCamera({ id: `bench-m${i}`, width: 480, height: 270, fps: 15 });
      many.push(c);
      cams.push(c);
      await api('POST', '/cameras', { id: c.id, rtspUrl: c.url, lat: 30.27 + i * 1e-4, lon: 120.15, buffer: false });
    }
    t0 = Date.now();
    const holds = many.map((c) => video.gateway!.stream(c.id)!.acquire());
    await until(() => many.every((c) => video.gateway!.existing(c.id)?.state === 'live'), 60_000, 100);
    const allLiveMs = Date.now() - t0;
    await sleep(2_000);
    const page16 = await openPlayer(browser, http);
    const s16 = await api<{ live: string }>('GET', `/cameras/${many[0]!.id}/stream`);
    await play(page16, 'mse', http.replace('http', 'ws') + s16.live);
    await until(async () => (await playerStats(page16)).firstFrameAt, 20_000, 50);
    await sleep(2_000);
    await page16.evaluate('window.stats.latency = []');
    const cpu16 = await cpuOver(() => video.gateway!.runningPids(), 10_000);
    const st16 = await playerStats(page16);
    await page16.close();
    const liveAtEnd = many.filter((c) => video.gateway!.existing(c.id)?.state === 'live').length;
    const restarts = many.reduce((n, c) => n + (video.gateway!.existing(c.id)?.restarts ?? 0), 0);
    holds.forEach((h) => h());
    result.sixteenCameras = {
      cameras: N,
      source: '480x270 @ 15 fps, H.264, GOP 1 s',
      requestToAllLiveMs: allLiveMs,
      liveAtEnd,
      restarts,
      ffmpegPctOfCoreTotal: cpu16.ffmpegPct,
      ffmpegPctOfCorePerCamera: round(cpu16.ffmpegPct / N, 2),
      hubProcessPct: cpu16.hubPct,
      msePlayerWhile16Live: lat(st16.latency),
    };
    result.targets = {
      mseUnder1s: (result.oneCamera as { glassToGlass: { mse: { medianMs: number } } }).glassToGlass.mse.medianMs < 1000,
      hlsUnder4s: (result.oneCamera as { glassToGlass: { hls: { medianMs: number } } }).glassToGlass.hls.medianMs < 4000,
      remuxUnder5pct: remux.ffmpegPct < 5,
    };
  } finally {
    await browser.close().catch(() => undefined);
    await hub.stop();
    await Promise.all(cams.map((c) => c.stop()));
    rmSync(dataDir, { recursive: true, force: true });
  }
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
