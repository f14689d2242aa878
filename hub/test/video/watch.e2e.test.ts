/**
 * Cameras watched all the time (real hub with rules and cases, real
 * simulated RTSP camera, real ffmpeg): a camera that only has an RTSP URL is
 * probed and buffered without anyone watching; its RTSP server stops → the
 * alarm 摄像头离线; it comes back → the alarm clears; the whole episode
 * costs fewer than five log lines. The same camera never trips the MQTT
 * device-offline rule. Credentials never reach the log.
 */
import { Writable } from 'node:stream';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rtspCameraSupport, startRtspCamera, type RtspCamera } from '@gridlink/simulators/camera';
import { productModules } from '../../src/hub.js';
import type { VideoModule } from '../../src/video/index.js';
import { startHub, until, type TestHub } from '../helpers.js';

const support = rtspCameraSupport();
const REQUIRE_ALL = process.env.GRIDLINK_REQUIRE_ALL === '1';
if (!support.ok && REQUIRE_ALL) throw new Error(`GRIDLINK_REQUIRE_ALL=1 but missing: ${support.missing.join(', ')}`);

interface Line {
  level: number;
  msg: string;
  cameraId?: string;
  [k: string]: unknown;
}

describe.skipIf(!support.ok)('camera health watch (RTSP probes, offline alarm, rolling buffer)', () => {
  let t: TestHub;
  let cam: RtspCamera;
  let dataDir: string;
  let video: VideoModule;
  const lines: Line[] = [];
  const raw: string[] = [];
  const id = 'cam-watch-1';
  const password = 'Wq7-very-secret';

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'gl-watch-'));
    cam = await startRtspCamera({ id, width: 320, height: 180, fps: 10, auth: { username: 'viewer', password } });
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString().split('\n').filter(Boolean)) {
          raw.push(l);
          lines.push(JSON.parse(l) as Line);
        }
        cb();
      },
    });
    const video = {
      health: { intervalS: 1, retryMinS: 0.5, retryMaxS: 2, timeoutS: 2, alarmAfterS: 2, concurrency: 4 },
      stream: { stallS: 3, ioTimeoutS: 2, backoffMinMs: 200, backoffMaxMs: 1_000, graceS: 1 },
    };
    t = await startHub({ dataDir }, { logger: pino({ level: 'info' }, sink), modules: productModules({ video }) });
  }, 300_000);

  afterAll(async () => {
    await t?.stop();
    await cam?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('should probe and buffer a camera nobody watches, without a device-offline alarm for its silent MQTT side', async () => {
    const r = await t.api<{ id: string; health: { state: string } }>('POST', '/cameras', { id, name: '北门', rtspUrl: cam.url, lat: 30.66, lon: 104.06 });
    expect(r.status).toBe(201);
    video = t.hub.ctx.modules.get('video') as VideoModule;
    await until(async () => video.buffering().includes(id) && video.gateway?.existing(id)?.state === 'live', 45_000);
    const got = await t.api<{ health: { state: string; reason: string }; buffering: boolean; stream: { state: string } }>('GET', `/cameras/${id}`);
    expect(got.body).toMatchObject({ health: { state: 'online' }, buffering: true, stream: { state: 'live' } });
    expect(cam.requests).toBeGreaterThan(2);
    // The camera never connected over MQTT: an absence rule leaves it to the RTSP probes, while a silent
    // sensor registered at the same time (the control) trips it.
    const rule = await t.api('POST', '/rules', { id: 'quick-offline', name: '设备离线 (5 s)', enabled: true, kind: 'absence', offlineAfterS: 5, severity: 'warning', case: null });
    expect(rule.status).toBe(201);
    const sensor = await t.registerDevice('sensor.smoke', 'smoke-silent', { lat: 30.66, lon: 104.06 });
    const sensorAlarm = await until(async () => {
      const a = await t.api<{ items: Array<{ rule: string; deviceId: string }> }>('GET', '/alarms?status=active');
      return a.body.items.find((x) => x.rule === 'quick-offline' && x.deviceId === sensor.id) ?? null;
    }, 60_000, 250);
    expect(sensorAlarm).toBeTruthy();
    const alarms = await t.api<{ items: Array<{ rule: string; deviceId: string }> }>('GET', '/alarms?status=active');
    expect(alarms.body.items.filter((a) => a.deviceId === id)).toEqual([]);
  }, 300_000);

  it('should raise 摄像头离线 when the RTSP server stops and clear it when it returns, in fewer than five log lines', async () => {
    const from = lines.length;
    const port = cam.port;
    await cam.stop();
    const raised = await until(async () => {
      const a = await t.api<{ items: Array<{ id: string; rule: string; deviceId: string; message: string; status: string }> }>('GET', '/alarms?status=active');
      return a.body.items.find((x) => x.deviceId === id && x.rule === 'camera.offline') ?? null;
    }, 60_000, 250);
    expect(raised.message).toContain('摄像头离线');
    const down = await t.api<{ health: { state: string; reason: string }; buffering: boolean }>('GET', `/cameras/${id}`);
    expect(down.body.health).toMatchObject({ state: 'offline', reason: 'connection refused' });
    expect(down.body.buffering).toBe(false);

    cam = await startRtspCamera({ id, port, width: 320, height: 180, fps: 10, auth: { username: 'viewer', password } });
    await until(async () => {
      const a = await t.api<{ items: Array<{ id: string; status: string }> }>('GET', '/alarms?status=cleared');
      return a.body.items.some((x) => x.id === raised.id) || null;
    }, 60_000, 250);
    await until(async () => video.buffering().includes(id) && video.gateway?.existing(id)?.state === 'live', 45_000);
    const episode = lines.slice(from).filter((l) => JSON.stringify(l).includes(id));
    expect(episode.length, JSON.stringify(episode, null, 1)).toBeLessThan(5);
    expect(episode.map((l) => l.msg)).toEqual(expect.arrayContaining(['camera offline', 'camera online']));
    expect(raw.join('\n')).not.toContain(password);
  }, 120_000);

  it('should refuse a camera outside the allowed camera networks and a URL that is not a plain RTSP URL', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gl-watch-allow-'));
    const prev = process.env.GRIDLINK_VIDEO_ALLOW_NETS;
    process.env.GRIDLINK_VIDEO_ALLOW_NETS = '127.0.0.2/32';
    let h: TestHub | undefined;
    try {
      h = await startHub({ dataDir: dir }, { modules: productModules() });
      const out = await h.api<{ code: string; message: string }>('POST', '/cameras', { id: 'cam-ssrf', rtspUrl: 'rtsp://u:topsecret@127.0.0.1:8554/x', lat: 30, lon: 104 });
      expect(out.status).toBe(400);
      expect(out.body.code).toBe('VALIDATION_FAILED');
      expect(JSON.stringify(out.body)).not.toContain('topsecret');
      const spaced = await h.api<{ code: string }>('POST', '/cameras', { id: 'cam-sp', rtspUrl: ' rtsp://127.0.0.2/x', lat: 30, lon: 104 });
      expect(spaced.status).toBe(400);
      const inside = await h.api('POST', '/cameras', { id: 'cam-in', rtspUrl: 'rtsp://127.0.0.2:9/x', lat: 30, lon: 104, buffer: false });
      expect(inside.status).toBe(201);
    } finally {
      if (prev === undefined) delete process.env.GRIDLINK_VIDEO_ALLOW_NETS;
      else process.env.GRIDLINK_VIDEO_ALLOW_NETS = prev;
      await h?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);
});
