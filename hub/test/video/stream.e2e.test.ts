/**
 * The stream gateway end to end: a real RTSP camera (ffmpeg + GStreamer),
 * the real hub with the video module, real ffmpeg, headless Chromium playing
 * HLS (hls.js) and fMP4 over WebSocket (MSE).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { rtspCameraSupport, startRtspCamera, type RtspCamera } from '@gridlink/simulators/camera';
import { videoModule } from '../../src/hub.js';
import type { VideoModule } from '../../src/video/index.js';
import { ffmpegUnder, REQUIRE_ALL, startHub, until, type TestHub } from '../helpers.js';
import { CHROMIUM, chromiumArgs, haveChromium, openPlayer, play, playerStats } from './player-page.js';

const support = rtspCameraSupport();
if (!haveChromium()) support.missing.push('chromium / hls.js');
const skip = support.missing.length > 0;
if (skip && REQUIRE_ALL) throw new Error(`GRIDLINK_REQUIRE_ALL=1 but missing: ${support.missing.join(', ')}`);

describe.skipIf(skip)('video stream gateway (real ffmpeg, RTSP, Chromium)', () => {
  let t: TestHub;
  let cam: RtspCamera;
  let browser: Browser;
  let dataDir: string;
  let video: VideoModule;
  let stopped = false;
  const id = 'cam-e2e-1';

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'gl-video-e2e-'));
    cam = await startRtspCamera({ id });
    t = await startHub({ dataDir }, {
      modules: [videoModule({ stream: { graceS: 2, leaseS: 3, stallS: 4, ioTimeoutS: 3, backoffMinMs: 200, backoffMaxMs: 1_000, offlineAfterFailures: 2 } })],
    });
    video = t.hub.ctx.modules.get('video') as VideoModule;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: chromiumArgs });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    if (!stopped) await t?.stop();
    await cam?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('should register a camera with its device, keep RTSP credentials sealed and return the MQTT secret once', async () => {
    const rtspUrl = cam.url.replace('rtsp://', 'rtsp://admin:s3cr3t-pw@');
    const r = await t.api<Record<string, unknown>>('POST', '/cameras', { id, name: '东门 1', rtspUrl, lat: 30.2741, lon: 120.1551, heading: 90, fov: 60, gb28181Id: '34020000001320000001', buffer: false });
    expect(r.status).toBe(201);
    expect(typeof r.body.secret).toBe('string');
    expect(JSON.stringify(r.body)).not.toContain('s3cr3t-pw');
    expect(r.body.rtspUrl).toBe(`rtsp://***:***@127.0.0.1:${cam.port}/${id}`);
    const dev = await t.api<{ type: string }>('GET', `/devices/${id}`);
    expect(dev.body.type).toBe('camera');
    const rows = await t.hub.ctx.db.query<{ rtsp_sealed: string }>('select rtsp_sealed from cameras where id = $1', [id]);
    expect(rows[0]!.rtsp_sealed).not.toContain('s3cr3t');
    expect(video.cameras.rtspUrl(id).href).toBe(rtspUrl);
    const got = await t.api<Record<string, unknown>>('GET', `/cameras/${id}`);
    expect(JSON.stringify(got.body)).not.toContain('s3cr3t-pw');
    expect(got.body.secret).toBeUndefined();
    const bad = await t.api('POST', '/cameras', { id: 'x1', rtspUrl: cam.url, lat: 30, lon: 120, gb28181Id: '123' });
    expect(bad.status).toBe(400);
  });

  it('should serve an HLS playlist with segments and program date time (a cold playlist request waits for the first segment)', async () => {
    const s = await t.api<{ hls: string; live: string; expiresAt: number; state: string }>('GET', `/cameras/${id}/stream`);
    expect(s.status).toBe(200);
    expect(['starting', 'live']).toContain(s.body.state);
    expect(s.body.expiresAt).toBeGreaterThan(Date.now());
    const pl = await fetch(`${t.http}${s.body.hls}`);
    expect(pl.status).toBe(200);
    const text = await pl.text();
    expect(text).toContain('#EXT-X-PROGRAM-DATE-TIME:');
    const seg = text.split('\n').find((l) => l.startsWith('seg_'))!;
    expect(seg).toMatch(/^seg_\d+\.ts\?token=/);
    const data = await fetch(`${t.http}/video/${id}/${seg}`);
    expect(data.status).toBe(200);
    expect((await data.arrayBuffer()).byteLength).toBeGreaterThan(1000);
    const cams = await t.api<{ stream: { state: string } }>('GET', `/cameras/${id}`);
    expect(cams.body.stream.state).toBe('live');
  });

  it('should refuse forged and expired tokens with 401, over HTTP and WebSocket', async () => {
    const good = video.keys.sign(id, 60, Date.now()).token;
    const forged = good.slice(0, -3) + (good.endsWith('AAA') ? 'BBB' : 'AAA');
    const expired = video.keys.sign(id, 1, Date.now() - 10_000).token;
    const otherCam = video.keys.sign('another-cam', 60, Date.now()).token;
    for (const tok of [forged, expired, otherCam, '']) {
      const r = await fetch(`${t.http}/video/${id}/index.m3u8?token=${encodeURIComponent(tok)}`);
      expect(r.status).toBe(401);
      expect(((await r.json()) as { code: string }).code).toBe('TOKEN_INVALID');
    }
    expect((await fetch(`${t.http}/video/${id}/seg_1.ts?token=${encodeURIComponent(expired)}`)).status).toBe(401);
    const status = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`${t.http.replace('http', 'ws')}/video/${id}/live?token=${encodeURIComponent(expired)}`);
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => resolve(101));
      ws.on('error', () => undefined);
    });
    expect(status).toBe(401);
    expect((await fetch(`${t.http}/video/${id}/index.m3u8?token=${encodeURIComponent(good)}`)).status).toBe(200);
  });

  it('should play in Chromium with hls.js (currentTime advances)', async () => {
    const s = await t.api<{ hls: string }>('GET', `/cameras/${id}/stream`);
    const page = await openPlayer(browser, t.http);
    await play(page, 'hls', s.body.hls);
    const first = await until(async () => {
      const st = await playerStats(page);
      return st.currentTime > 0.5 ? st : null;
    }, 15_000, 200);
    await until(async () => (await playerStats(page)).currentTime > first.currentTime + 1.5, 10_000, 200);
    const st = await playerStats(page);
    expect(st.errors).toEqual([]);
    expect(st.latency.length).toBeGreaterThan(3);
    // The burned-in clock is read back from presented frames: every frame shows a moment before it is shown.
    // (How far behind is a measurement: npm run bench:video.)
    expect(Math.min(...st.latency)).toBeGreaterThanOrEqual(-50);
    await page.close();
  });

  it('should play the low-latency fMP4/WebSocket path through MSE', async () => {
    const s = await t.api<{ live: string }>('GET', `/cameras/${id}/stream`);
    const page = await openPlayer(browser, t.http);
    await play(page, 'mse', t.http.replace('http', 'ws') + s.body.live);
    await until(async () => (await playerStats(page)).currentTime > 0.5, 15_000, 200);
    const before = (await playerStats(page)).currentTime;
    await until(async () => (await playerStats(page)).currentTime > before + 1.5, 10_000, 200);
    const st = await playerStats(page);
    expect(st.errors).toEqual([]);
    expect(st.latency.length).toBeGreaterThan(3);
    expect(Math.min(...st.latency)).toBeGreaterThanOrEqual(-50);
    await page.close();
  });

  it('should report stalled/offline when the RTSP source dies and live again when it returns', async () => {
    const stream = video.gateway!.stream(id)!;
    const release = stream.acquire();
    const states: string[] = [];
    const onState = (s: string) => states.push(s);
    stream.on('state', onState);
    try {
      await until(() => stream.state === 'live', 10_000, 100);
      const port = cam.port;
      await cam.stop();
      await until(() => stream.state === 'offline', 20_000, 100);
      expect(states).toContain('stalled');
      const r = await t.api<{ stream: { state: string } }>('GET', `/cameras/${id}`);
      expect(r.body.stream.state).toBe('offline');
      cam = await startRtspCamera({ id, port });
      await until(() => stream.state === 'live', 20_000, 100);
      expect(states.at(-1)).toBe('live');
    } finally {
      stream.off('state', onState);
      release();
    }
  });

  it('should stop ffmpeg after the last viewer leaves and leave none after hub stop', async () => {
    const stream = video.gateway!.stream(id)!;
    const t0 = Date.now();
    const mark = (what: string) => console.log(`${what} +${Date.now() - t0} ms`);
    expect(ffmpegUnder(video.root).length).toBeGreaterThan(0);
    // No viewer now (leases expire after 3 s, grace 2 s).
    await until(() => stream.state === 'idle', 15_000, 100).catch((err) => {
      throw new Error(`${(err as Error).message}: ${JSON.stringify(stream.snapshotInfo())}`);
    });
    mark('idle');
    await until(() => ffmpegUnder(video.root).length === 0, 5_000, 100);
    expect(video.gateway!.runningPids()).toEqual([]);
    // Start again, then stop the hub while it runs.
    const release = stream.acquire();
    await until(() => stream.state === 'live', 15_000, 100);
    const root = video.root;
    expect(ffmpegUnder(root).length).toBe(1);
    mark('live again');
    await t.stop();
    mark('hub stopped');
    release();
    expect(ffmpegUnder(root)).toEqual([]);
    stopped = true;
  }, 300_000);
});
