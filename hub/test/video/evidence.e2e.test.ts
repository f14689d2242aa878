/**
 * Evidence and linkage end to end: a camera alert over real MQTT becomes an
 * alarm and a case (rules + cases modules, when present) whose evidence
 * holds the snapshot and a playable MP4 clip around the alert time; clips
 * survive a hub restart; a smoke alarm 50 m from two cameras yields
 * `linkage` with both, nearest first.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishAlert, rtspCameraSupport, startRtspCamera, type RtspCamera } from '@gridlink/simulators/camera';
import { loadConfig, type Config } from '../../src/core/config.js';
import { casesModule, createHub, realtimeModule, rulesModule, videoModule, type Hub, type ModuleFactory } from '../../src/hub.js';
import type { Clip, LinkagePayload, VideoModule } from '../../src/video/index.js';
import { REQUIRE_ALL, publishAck, until } from '../helpers.js';

const support = rtspCameraSupport();
const skip = support.missing.length > 0;
if (skip && REQUIRE_ALL) throw new Error(`GRIDLINK_REQUIRE_ALL=1 but missing: ${support.missing.join(', ')}`);

/** The product modules this test uses: cases and rules, realtime for `linkage`, and video. */
const modules = (video: ModuleFactory): ModuleFactory[] => [realtimeModule(), casesModule(), rulesModule(), video];

// ~50 m and ~80 m from the smoke sensor (1e-5 deg lat ≈ 1.11 m).
const P = { lat: 30.25, lon: 120.17 };
const north50 = { lat: P.lat + 50 / 111_195, lon: P.lon };
const east80 = { lat: P.lat, lon: P.lon + 80 / (111_195 * Math.cos((P.lat * Math.PI) / 180)) };

function probe(file: string): { duration: number; video: boolean; decodes: boolean; errors: string } {
  const r = spawnSync('ffprobe', ['-v', 'error', '-show_entries', 'format=duration:stream=codec_type', '-of', 'json', file], { encoding: 'utf8' });
  const j = JSON.parse(r.stdout) as { format: { duration: string }; streams: Array<{ codec_type: string }> };
  const dec = spawnSync('ffmpeg', ['-v', 'error', '-i', file, '-f', 'null', '-'], { encoding: 'utf8' });
  // The null muxer's note about equal dts of two frames (RTP jitter at the source) is not a decoding problem.
  dec.stderr = dec.stderr.split('\n').filter((l) => l.trim() && !l.includes('non monotonically increasing dts')).join('\n');
  return { duration: Number(j.format.duration), video: j.streams.some((s) => s.codec_type === 'video'), decodes: dec.status === 0 && !dec.stderr.trim(), errors: dec.stderr.slice(0, 500) };
}

describe.skipIf(skip)('video evidence and linkage (real MQTT, ffmpeg, RTSP)', () => {
  let dataDir: string;
  let config: Config;
  let hub: Hub;
  let http: string;
  let token: string;
  let camA: RtspCamera;
  const linkages: LinkagePayload[] = [];
  const sent: Array<{ event: string; payload: unknown }> = [];
  const videoOpts = { preS: 3, postS: 4, linkRadiusM: 150, stream: { graceS: 2, leaseS: 3, backoffMinMs: 200, backoffMaxMs: 1_000 } };

  async function boot(): Promise<void> {
    hub = await createHub(config, { modules: modules(videoModule(videoOpts)) });
    const ports = await hub.start();
    http = `http://127.0.0.1:${ports.http}`;
    const login = await fetch(`${http}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: config.adminPassword }) });
    token = ((await login.json()) as { token: string }).token;
    hub.ctx.bus.on('video.linkage', 'test', (l) => void linkages.push(l));
    const rt = hub.ctx.services.realtime;
    if (rt) {
      const send = rt.send.bind(rt);
      rt.send = (event, gridId, payload) => {
        sent.push({ event, payload });
        send(event, gridId, payload);
      };
    }
  }

  async function api<T>(method: string, p: string, body?: unknown): Promise<{ status: number; body: T }> {
    const r = await fetch(`${http}/api/v1${p}`, { method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
    const text = await r.text();
    return { status: r.status, body: (text ? JSON.parse(text) : null) as T };
  }

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'gl-video-evidence-'));
    // On-disk PGlite: clips must survive a restart.
    config = loadConfig({}, { host: '127.0.0.1', mqttPort: 0, httpPort: 0, logLevel: 'silent', adminPassword: 'admin-test-password', jwtSecret: 'k'.repeat(64), dataDir });
    camA = await startRtspCamera({ id: 'cam-north' });
    await boot();
  }, 180_000);

  afterAll(async () => {
    await hub?.stop();
    await camA?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }, 120_000);

  it('should link a smoke alarm 50 m from two cameras to both, nearest first', async () => {
    const a = await api<{ secret: string }>('POST', '/cameras', { id: 'cam-north', name: '北侧', rtspUrl: camA.url, ...north50, heading: 180, fov: 90, buffer: false });
    expect(a.status).toBe(201);
    expect(a.body.secret).toBeTruthy();
    const b = await api('POST', '/cameras', { id: 'cam-east', name: '东侧', rtspUrl: 'rtsp://127.0.0.1:9/none', ...east80, heading: 270, fov: 90 });
    expect(b.status).toBe(201);
    await api('POST', '/cameras', { id: 'cam-far', rtspUrl: 'rtsp://127.0.0.1:9/far', lat: P.lat + 0.01, lon: P.lon });

    const near = await api<{ items: Array<{ id: string; distanceM: number; covers: boolean | null }> }>('GET', `/cameras?near=${P.lat},${P.lon}&radius=150`);
    expect(near.body.items.map((c) => c.id)).toEqual(['cam-north', 'cam-east']);
    expect(near.body.items[0]!.covers).toBe(true);

    let caseId: string;
    {
      const dev = await api<{ secret: string }>('POST', '/devices', { id: 'smoke-50', type: 'sensor.smoke', ...P });
      const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${hub.ports.mqtt}`, { clientId: 'smoke-50', username: 'smoke-50', password: dev.body.secret, reconnectPeriod: 0 });
      await publishAck(c, 'gridlink/v1/smoke-50/event', { type: 'smoke_alarm', severity: 'critical' });
      await c.endAsync();
      const l = await until(() => linkages.find((x) => x.caseId), 10_000);
      caseId = l.caseId!;
    }
    const l = linkages.find((x) => x.caseId === caseId)!;
    expect(l.cameras.map((c) => c.id)).toEqual(['cam-north', 'cam-east']);
    expect(l.cameras[0]!.distanceM).toBeGreaterThan(45);
    expect(l.cameras[0]!.distanceM).toBeLessThan(55);
    expect(l.cameras[1]!.distanceM).toBeGreaterThan(75);
    expect(l.cameras[0]!.stream).toBe('/api/v1/cameras/cam-north/stream');
    if (hub.ctx.services.realtime) expect(sent.some((s) => s.event === 'linkage' && (s.payload as LinkagePayload).caseId === caseId)).toBe(true);
    const stored = await api<{ items: Array<{ id: string }> }>('GET', `/linkage/${caseId}`);
    expect(stored.body.items.map((c) => c.id)).toEqual(['cam-north', 'cam-east']);
    // The case had no alert clip: the best camera records one for it.
    const clip = await until(async () => (await api<{ items: Clip[] }>('GET', `/clips?caseId=${caseId}`)).body.items.find((c) => c.status !== 'recording'), 30_000, 250);
    expect(clip.cameraId).toBe('cam-north');
    expect(clip.status).toBe('ready');
  }, 300_000);

  let alertClip: Clip;
  it('should turn a camera alert into a case whose evidence holds the snapshot and a playable clip covering the alert', async () => {
    const video = hub.ctx.modules.get('video') as VideoModule;
    // A camera 1 km away (same RTSP source), so its fire alert opens its own case.
    const solo = await api<{ secret: string }>('POST', '/cameras', { id: 'cam-solo', rtspUrl: camA.url, lat: P.lat - 0.009, lon: P.lon, heading: 0, fov: 60 });
    // The camera is live (someone watches), so the ring buffer has pre-roll.
    const release = video.gateway!.stream('cam-solo')!.acquire();
    await until(() => video.gateway!.stream('cam-solo')!.state === 'live', 15_000, 100);
    await new Promise((r) => setTimeout(r, 4_000)); // pre-roll to record, not a logic wait
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${hub.ports.mqtt}`, { clientId: 'cam-solo', username: 'cam-solo', password: solo.body.secret, reconnectPeriod: 0 });
    const body = await publishAlert(c, 'cam-solo', 'fire', { confidence: 0.92 });
    await c.endAsync();
    release();
    const at = body.ts as number;
    alertClip = await until(async () => (await api<{ items: Clip[] }>('GET', `/clips?alertKey=cam-solo:${at}`)).body.items.find((x) => x.status === 'ready' && !!x.caseId), 30_000, 250)
      .catch(async (err) => {
        const all = await api<{ items: Clip[] }>('GET', '/clips?cameraId=cam-solo');
        const cases = await api('GET', '/cases');
        const alarms = await api('GET', '/alarms');
        throw new Error(`${(err as Error).message} at=${at} clips=${JSON.stringify(all.body)} cases=${JSON.stringify(cases.body).slice(0, 1500)} alarms=${JSON.stringify(alarms.body).slice(0, 1500)}`);
      });
    expect(alertClip.hasSnapshot).toBe(true);
    expect(alertClip.from!).toBeLessThanOrEqual(at - 1_000);
    expect(alertClip.to!).toBeGreaterThanOrEqual(at + 3_000);
    const mp4 = await fetch(`${http}${alertClip.video}`);
    expect(mp4.status).toBe(200);
    expect(mp4.headers.get('content-type')).toBe('video/mp4');
    const file = path.join(dataDir, 'clip.mp4');
    const whole = Buffer.from(await mp4.arrayBuffer());
    (await import('node:fs')).writeFileSync(file, whole);
    // A <video> seeks with ranges: a middle slice, the last bytes, and 416 past the end.
    const mid = Math.floor(whole.length / 2);
    const part = await fetch(`${http}${alertClip.video}`, { headers: { range: `bytes=${mid}-${mid + 99}` } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes ${mid}-${mid + 99}/${whole.length}`);
    expect(Buffer.from(await part.arrayBuffer())).toEqual(whole.subarray(mid, mid + 100));
    const tail = await fetch(`${http}${alertClip.video}`, { headers: { range: 'bytes=-50' } });
    expect(tail.status).toBe(206);
    expect(Buffer.from(await tail.arrayBuffer())).toEqual(whole.subarray(whole.length - 50));
    expect((await fetch(`${http}${alertClip.video}`, { headers: { range: `bytes=${whole.length}-` } })).status).toBe(416);
    const p = probe(file);
    expect(p.video).toBe(true);
    expect(p.errors).toBe('');
    expect(p.decodes).toBe(true);
    expect(p.duration).toBeGreaterThan(5);
    const jpg = await fetch(`${http}${alertClip.snapshot}`, { headers: { authorization: `Bearer ${token}` } });
    expect(jpg.status).toBe(200);
    expect(Buffer.from(await jpg.arrayBuffer()).subarray(0, 3)).toEqual(Buffer.from([0xff, 0xd8, 0xff]));
    expect((await fetch(`${http}${alertClip.video.split('?')[0]}`)).status).toBe(401);

    {
      const caseId = alertClip.caseId!;
      const kase = await api<{ evidence?: Array<{ kind: string }> }>('GET', `/cases/${caseId}`);
      expect(kase.status).toBe(200);
      expect(kase.body.evidence?.some((e) => e.kind === 'snapshot')).toBe(true);
      const links = await api<{ items: Array<{ id: string }> }>('GET', `/linkage/${caseId}`);
      // A camera alert links its own camera first.
      expect(links.body.items[0]!.id).toBe('cam-solo');
      const cl = await api<{ items: Clip[] }>('GET', `/clips?caseId=${caseId}`);
      expect(cl.body.items.map((x) => x.id)).toContain(alertClip.id);
    }
  }, 300_000);

  it('should start a camera that is not live for the post-alert part', async () => {
    const video = hub.ctx.modules.get('video') as VideoModule;
    const s = video.gateway!.stream('cam-north')!;
    await until(() => s.state === 'idle', 15_000, 100);
    const at = Date.now();
    const id = await video.clips!.capture({ cameraId: 'cam-north', at, trigger: 'manual', gridId: null });
    const clip = await until(async () => {
      const c = await video.clips!.get(id);
      return c && c.status !== 'recording' ? c : null;
    }, 30_000, 250);
    expect(clip.status).toBe('ready');
    expect(clip.hasSnapshot).toBe(true); // grabbed from the stream
    expect(clip.to!).toBeGreaterThanOrEqual(at + 3_000);
  }, 300_000);

  it('should keep clips across a hub restart', async () => {
    const before = await fetch(`${http}${alertClip.video}`);
    const bytes = (await before.arrayBuffer()).byteLength;
    await hub.stop();
    await boot();
    const again = await api<Clip>('GET', `/clips/${alertClip.id}`);
    expect(again.status).toBe(200);
    expect(again.body.status).toBe('ready');
    // The clip's URL as the hub hands it out after the restart (a fresh media token).
    const mp4 = await fetch(`${http}${again.body.video}`);
    expect(mp4.status).toBe(200);
    expect((await mp4.arrayBuffer()).byteLength).toBe(bytes);
  }, 120_000);
});
