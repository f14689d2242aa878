/**
 * Video at scale (npm run bench:video-scale): 64 simulated cameras
 * registered and probed, 16 keeping a rolling buffer, 16 others watched, on
 * this machine. Prints one JSON document:
 *
 *  - probed:    hub CPU with 64 cameras registered and probed, nothing streaming;
 *  - buffering: ffmpeg (remux) and hub CPU per buffering camera, disk held
 *               per camera, RSS;
 *  - watched:   16 more cameras watched over the fMP4/WebSocket path (Node
 *               clients): request → first fragment, CPU per watched camera;
 *  - browser:   Chromium MSE player on a buffered (warm) and an unbuffered
 *               (cold) camera: request → first frame; glass-to-glass p50/p99
 *               read from the clock burned into the picture;
 *  - the node-rtsp-stream way for comparison: ffmpeg transcoding the same
 *    camera to MPEG-1 for JSMpeg (what that package runs per stream).
 *
 * The 64 camera feeds come from 4 encoders (16 RTSP paths each), so the
 * simulators' encoding cost (reported apart) does not drown the hub's.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import WebSocket from 'ws';
import { rtspCameraSupport, simFfmpeg, startRtspCamera, type RtspCamera } from '../../simulators/src/camera/index.js';
import { testConfig } from '../src/core/config.js';
import { createHub, videoModule } from '../src/hub.js';
import type { VideoModule } from '../src/video/index.js';
import { CHROMIUM, chromiumArgs, haveChromium, median, openPlayer, percentile, play, playerStats } from '../test/video/player-page.js';

const TICK_S = 100;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (n: number, d = 1) => Math.round(n * 10 ** d) / 10 ** d;

function procCpuS(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) / TICK_S;
  } catch {
    return 0;
  }
}

function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

async function until<T>(fn: () => T | Promise<T>, timeoutMs: number, stepMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('timeout');
    await sleep(stepMs);
  }
}

/** % of one core used by this process and by the given pids over `ms`. */
async function cpuOver(pids: () => number[], ms: number): Promise<{ hubPct: number; pidsPct: number }> {
  const a = new Map(pids().map((p) => [p, procCpuS(p)]));
  const h0 = process.cpuUsage();
  const t0 = Date.now();
  await sleep(ms);
  const dt = (Date.now() - t0) / 1000;
  const h = process.cpuUsage(h0);
  let sum = 0;
  for (const p of pids()) sum += procCpuS(p) - (a.get(p) ?? procCpuS(p));
  return { hubPct: round(((h.user + h.system) / 1e6 / dt) * 100), pidsPct: round((sum / dt) * 100) };
}

async function main(): Promise<void> {
  const support = rtspCameraSupport();
  if (!haveChromium()) support.missing.push('chromium');
  if (support.missing.length) {
    process.stdout.write(`${JSON.stringify({ bench: 'video-scale', skipped: `missing: ${support.missing.join(', ')}` }, null, 2)}\n`);
    process.exit(process.env.GRIDLINK_REQUIRE_ALL === '1' ? 1 : 0);
  }
  const N = 64;
  const BUFFERED = 16;
  const WATCHED = 16;
  const SOURCES = 4;
  const MEASURE_MS = Number(process.env.BENCH_MEASURE_MS ?? 15_000);
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'gl-video-scale-'));
  const hub = await createHub(testConfig({ dataDir }), { modules: [videoModule({ bufferMax: BUFFERED, stream: { graceS: 3, leaseS: 4 } })] });
  const ports = await hub.start();
  const http = `http://127.0.0.1:${ports.http}`;
  const video = hub.ctx.modules.get('video') as VideoModule;
  const login = await fetch(`${http}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: hub.ctx.config.adminPassword }) });
  const token = ((await login.json()) as { token: string }).token;
  const api = async <T>(method: string, p: string, body?: unknown): Promise<T> => {
    const r = await fetch(`${http}/api/v1${p}`, { method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
    return (await r.json()) as T;
  };
  const ids = Array.from({ length: N }, (_, i) => `scale-${String(i).padStart(2, '0')}`);
  const sources: RtspCamera[] = [];
  const result: Record<string, unknown> = { bench: 'video-scale', ffmpeg: video.ff?.version, cores: os.cpus().length, loadavgAtStart: os.loadavg().map((l) => round(l, 2)), cameras: N, buffered: BUFFERED, watched: WATCHED };
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: chromiumArgs });
  const sockets: WebSocket[] = [];
  try {
    const perSource = N / SOURCES;
    for (let s = 0; s < SOURCES; s++) {
      const mine = ids.slice(s * perSource, (s + 1) * perSource);
      sources.push(await startRtspCamera({ id: mine[0]!, aliases: mine.slice(1), width: 480, height: 270, fps: 15, bitrateK: 600 }));
    }
    const urlOf = (i: number) => `rtsp://127.0.0.1:${sources[Math.floor(i / perSource)]!.port}/${ids[i]}`;
    let t0 = Date.now();
    for (let i = 0; i < N; i++) await api('POST', '/cameras', { id: ids[i], rtspUrl: urlOf(i), lat: 30.27 + i * 1e-4, lon: 120.15, buffer: false });
    const registerMs = Date.now() - t0;
    await until(() => ids.every((id) => video.health?.get(id).state === 'online'), 60_000);
    const encoderPids = () => sources.map((s) => s.pid);
    const probed = await cpuOver(encoderPids, MEASURE_MS);
    result.probed = {
      registerMs, allOnlineBy: 'RTSP OPTIONS+DESCRIBE', probesSent: video.health?.probes,
      hubProcessPct: probed.hubPct, hubPctPerCamera: round(probed.hubPct / N, 3),
      simulatorEncodersPct: probed.pidsPct, note: `${SOURCES} encoders 480x270@15 fps feed ${N} RTSP paths`,
    };

    // ---- 16 cameras keep a rolling buffer ----
    t0 = Date.now();
    for (let i = 0; i < BUFFERED; i++) await api('PATCH', `/cameras/${ids[i]}`, { buffer: true });
    await until(() => ids.slice(0, BUFFERED).every((id) => video.buffering().includes(id) && video.gateway?.existing(id)?.state === 'live'), 90_000);
    const allBufferingMs = Date.now() - t0;
    // Let the buffers fill to their length before measuring disk.
    await until(() => ids.slice(0, BUFFERED).every((id) => (video.gateway?.existing(id)?.snapshotInfo().bufferS ?? 0) >= 13), 60_000, 500);
    const ffPids = () => video.gateway!.runningPids();
    const buf = await cpuOver(ffPids, MEASURE_MS);
    const infos = ids.slice(0, BUFFERED).map((id) => video.gateway!.existing(id)!.snapshotInfo());
    const ffRss = ffPids().map(rssMiB);
    result.buffering = {
      requestToAllBufferingMs: allBufferingMs,
      ffmpegPctTotal: buf.pidsPct, ffmpegPctPerCamera: round(buf.pidsPct / BUFFERED, 2),
      hubProcessPct: buf.hubPct, hubPctPerBufferedCamera: round((buf.hubPct - probed.hubPct) / BUFFERED, 2),
      bufferSeconds: round(median(infos.map((x) => x.bufferS)), 1),
      diskBytesPerCameraMedian: median(infos.map((x) => x.bufferBytes)),
      diskKiBPerSecond: round(median(infos.map((x) => x.bufferBytes / 1024 / Math.max(1, x.bufferS))), 1),
      ffmpegRssMiBPerCamera: round(median(ffRss), 1),
      hubRssMiB: round(process.memoryUsage().rss / 1024 / 1024, 1),
      restarts: infos.reduce((n, x) => n + x.restarts, 0),
    };

    // ---- 16 other cameras watched over fMP4/WebSocket ----
    const firstFragMs: number[] = [];
    const frags = new Map<string, number>();
    await Promise.all(ids.slice(BUFFERED, BUFFERED + WATCHED).map(async (id) => {
      const start = Date.now();
      const s = await api<{ live: string }>('GET', `/cameras/${id}/stream`);
      await new Promise<void>((resolve, reject) => {
        const ws = new WebSocket(`${http.replace('http', 'ws')}${s.live}`);
        sockets.push(ws);
        let got = false;
        ws.on('message', (data, binary) => {
          if (!binary) return;
          frags.set(id, (frags.get(id) ?? 0) + 1);
          if (!got && (frags.get(id) ?? 0) >= 2) {
            got = true;
            firstFragMs.push(Date.now() - start);
            resolve();
          }
        });
        ws.on('error', reject);
      });
    }));
    await sleep(2_000);
    const watched = await cpuOver(ffPids, MEASURE_MS);
    result.watched = {
      coldRequestToFirstFragmentMs: { median: median(firstFragMs), p99: percentile(firstFragMs, 99), max: Math.max(...firstFragMs) },
      ffmpegPctTotal: watched.pidsPct, ffmpegPctPerRunningCamera: round(watched.pidsPct / (BUFFERED + WATCHED), 2),
      hubProcessPct: watched.hubPct, hubPctPerWatchedCamera: round((watched.hubPct - buf.hubPct) / WATCHED, 2),
      hubRssMiB: round(process.memoryUsage().rss / 1024 / 1024, 1),
      ffmpegProcesses: ffPids().length,
    };

    // ---- a duty officer's browser: first frame warm (buffered) and cold, glass-to-glass ----
    const firstFrame = async (id: string) => {
      const page = await openPlayer(browser, http);
      const t = Date.now();
      const s = await api<{ live: string }>('GET', `/cameras/${id}/stream`);
      await play(page, 'mse', http.replace('http', 'ws') + s.live);
      const at = await until(async () => (await playerStats(page)).firstFrameAt, 30_000, 20);
      return { page, ms: at - t };
    };
    const warm = await firstFrame(ids[1]!);
    const cold = await firstFrame(ids[N - 1]!);
    await cold.page.close();
    await sleep(2_000);
    await warm.page.evaluate('window.stats.latency = []');
    await sleep(MEASURE_MS);
    const st = await playerStats(warm.page);
    await warm.page.close();
    result.browser = {
      requestToFirstFrameMs: { bufferedCamera: warm.ms, coldCamera: cold.ms },
      mseGlassToGlassMs: { samples: st.latency.length, p50: median(st.latency), p99: percentile(st.latency, 99) },
      playerErrors: st.errors,
      while: `${BUFFERED} buffering + ${WATCHED} watched + ${N} probed`,
    };

    // ---- node-rtsp-stream's way (ffmpeg → MPEG-1 for JSMpeg, per stream) for the same camera ----
    const ff = simFfmpeg()!;
    const mp1 = spawn(ff, ['-hide_banner', '-loglevel', 'error', '-rtsp_transport', 'tcp', '-i', urlOf(0), '-f', 'mpegts', '-codec:v', 'mpeg1video', '-b:v', '1000k', '-r', '30', '-'], { stdio: ['ignore', 'pipe', 'ignore'] });
    mp1.stdout.resume();
    await sleep(3_000);
    const mp1cpu = await cpuOver(() => [mp1.pid!], MEASURE_MS);
    mp1.kill('SIGKILL');
    result.nodeRtspStreamEquivalent = {
      command: 'ffmpeg -rtsp_transport tcp -i <camera> -f mpegts -codec:v mpeg1video -b:v 1000k -r 30 - (node-rtsp-stream default)',
      transcodePctOfCore: mp1cpu.pidsPct,
      versusRemuxPctPerCamera: (result.buffering as { ffmpegPctPerCamera: number }).ffmpegPctPerCamera,
      source: '480x270 @ 15 fps H.264',
    };
    result.loadavgAtEnd = os.loadavg().map((l) => round(l, 2));
  } finally {
    for (const ws of sockets) ws.close();
    await browser.close().catch(() => undefined);
    await hub.stop();
    await Promise.all(sources.map((c) => c.stop()));
    rmSync(dataDir, { recursive: true, force: true });
  }
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
