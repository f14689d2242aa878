/**
 * The video module's parts without a camera: sealed credentials and stream
 * tokens, URL redaction, view geometry and "covering first" ordering, the
 * fMP4 splitter on real ffmpeg output, and the burned-in clock round trip.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { clockFilter, clockLayout, readClock } from '@gridlink/simulators/camera';
import { codecOf, Fmp4Splitter, type Fragment } from '../../src/video/fmp4.js';
import { bearingDeg, covers, distanceM } from '../../src/video/geo.js';
import { redactUrl, VideoKeys } from '../../src/video/keys.js';
import { videoModule } from '../../src/hub.js';
import { REQUIRE_ALL, startHub } from '../helpers.js';

const haveFfmpeg = spawnSync('ffmpeg', ['-version'], { stdio: 'ignore' }).status === 0;
if (!haveFfmpeg && REQUIRE_ALL) throw new Error('GRIDLINK_REQUIRE_ALL=1 but ffmpeg is missing');

describe('VideoKeys', () => {
  const keys = new VideoKeys(Buffer.alloc(32, 7));

  it('should seal RTSP URLs with AES-GCM bound to the camera id', () => {
    const sealed = keys.encrypt('rtsp://admin:pw@10.0.0.5/ch1', 'cam-1');
    expect(sealed).toMatch(/^v1\./);
    expect(sealed).not.toContain('pw');
    expect(keys.decrypt(sealed, 'cam-1')).toBe('rtsp://admin:pw@10.0.0.5/ch1');
    expect(() => keys.decrypt(sealed, 'cam-2')).toThrow();
    const [v, iv, tag, ct] = sealed.split('.');
    const flipped = Buffer.from(ct!, 'base64url');
    flipped[0]! ^= 1;
    expect(() => keys.decrypt([v, iv, tag, flipped.toString('base64url')].join('.'), 'cam-1')).toThrow();
    expect(() => new VideoKeys(Buffer.alloc(32, 8)).decrypt(sealed, 'cam-1')).toThrow();
  });

  it('should accept a stream token for its camera until it expires, and nothing forged', () => {
    const now = 1_700_000_000_000;
    const t = keys.sign('cam-1', 60, now);
    expect(t.expiresAt).toBe(now + 60_000);
    expect(keys.verify('cam-1', t.token, now)).toBe(t.nonce);
    expect(keys.verify('cam-1', t.token, now + 59_000)).toBe(t.nonce);
    expect(keys.verify('cam-1', t.token, now + 60_000)).toBeNull();
    expect(keys.verify('cam-2', t.token, now)).toBeNull();
    const [exp, nonce, mac] = t.token.split('.');
    expect(keys.verify('cam-1', `${Number(exp) + 3600}.${nonce}.${mac}`, now)).toBeNull();
    expect(keys.verify('cam-1', `${exp}.other.${mac}`, now)).toBeNull();
    expect(keys.verify('cam-1', undefined, now)).toBeNull();
    expect(keys.verify('cam-1', 'x'.repeat(500), now)).toBeNull();
  });

  it('should accept a node request signature for that very request only, until it expires, and no stream token or other key in its place', () => {
    const now = 1_700_000_000_000;
    const url = '/video/cam-1/clips';
    const body = JSON.stringify({ id: 'x', at: now });
    const sig = keys.signNode('POST', url, now, body);
    expect(keys.verifyNode(sig, 'POST', url, now, body)).toBe(true);
    expect(keys.verifyNode(sig, 'post', url, now + 59_000, body)).toBe(true);
    expect(keys.verifyNode(sig, 'POST', url, now + 60_000, body)).toBe(false);
    expect(keys.verifyNode(sig, 'GET', url, now, body)).toBe(false);
    expect(keys.verifyNode(sig, 'POST', '/video/cam-2/clips', now, body)).toBe(false);
    expect(keys.verifyNode(sig, 'POST', url, now, JSON.stringify({ id: 'y', at: now }))).toBe(false);
    expect(new VideoKeys(Buffer.alloc(32, 8)).verifyNode(sig, 'POST', url, now, body)).toBe(false);
    const [exp, mac] = sig.split('.');
    // A signature dated far ahead (a leaked one stretched) and the bare header a client might send are refused.
    expect(keys.verifyNode(`${Number(exp) + 3600}.${mac}`, 'POST', url, now, body)).toBe(false);
    expect(keys.verifyNode(keys.signNode('POST', url, now + 3_600_000, body), 'POST', url, now, body)).toBe(false);
    for (const bad of ['1', '', undefined, ['a', 'b'], keys.sign('cam-1', 60, now).token]) expect(keys.verifyNode(bad, 'POST', url, now, body)).toBe(false);
  });

  it('should redact credentials in userinfo and in query parameters', () => {
    expect(redactUrl('rtsp://admin:12345@10.1.1.9:554/Streaming/Channels/101')).toBe('rtsp://***:***@10.1.1.9:554/Streaming/Channels/101');
    expect(redactUrl('rtsp://10.1.1.9/cam/realmonitor?channel=1&user=admin&password=x')).toBe('rtsp://10.1.1.9/cam/realmonitor?channel=1&user=***&password=***');
    expect(redactUrl('rtsp://10.1.1.9/live')).toBe('rtsp://10.1.1.9/live');
    expect(redactUrl('not a url')).toBe('rtsp://***');
  });
});

describe('geo', () => {
  it('should compute distances and bearings on WGS-84', () => {
    expect(distanceM(30, 120, 30 + 1 / 111.195, 120)).toBeCloseTo(1000, -1);
    expect(bearingDeg(30, 120, 30.01, 120)).toBeCloseTo(0, 0);
    expect(bearingDeg(30, 120, 30, 120.01)).toBeCloseTo(90, 0);
  });

  it('should tell whether a camera view covers a point', () => {
    const cam = { lat: 30, lon: 120, heading: 90, fov: 60 };
    expect(covers(cam, 30, 120.001)).toBe(true); // due east
    expect(covers(cam, 30.0004, 120.001)).toBe(true); // ~22° left of heading
    expect(covers(cam, 30.001, 120.0001)).toBe(false); // north
    expect(covers(cam, 30, 119.999)).toBe(false); // behind
    expect(covers({ ...cam, heading: null }, 30, 120.001)).toBeNull();
    expect(covers({ ...cam, heading: 350, fov: 40 }, 30.001, 120.0001)).toBe(true); // wraps through north
  });
});

describe('GET /cameras?near', () => {
  it('should return cameras within the radius, covering the point first, then nearest', async () => {
    const t = await startHub({}, { modules: [videoModule()] });
    try {
      const P = { lat: 30.25, lon: 120.17 };
      const m = 1 / 111_195;
      // near-away: 20 m north looking north (away); far-cover: 60 m south looking north (covers); unknown: 40 m west, no view.
      await t.api('POST', '/cameras', { id: 'near-away', rtspUrl: 'rtsp://127.0.0.1:9/a', lat: P.lat + 20 * m, lon: P.lon, heading: 0, fov: 60 });
      await t.api('POST', '/cameras', { id: 'far-cover', rtspUrl: 'rtsp://127.0.0.1:9/b', lat: P.lat - 60 * m, lon: P.lon, heading: 0, fov: 60 });
      await t.api('POST', '/cameras', { id: 'unknown', rtspUrl: 'rtsp://127.0.0.1:9/c', lat: P.lat, lon: P.lon - 40 * m / Math.cos((P.lat * Math.PI) / 180) });
      await t.api('POST', '/cameras', { id: 'outside', rtspUrl: 'rtsp://127.0.0.1:9/d', lat: P.lat + 500 * m, lon: P.lon });
      const r = await t.api<{ items: Array<{ id: string; distanceM: number; covers: boolean | null }> }>('GET', `/cameras?near=${P.lat},${P.lon}&radius=100`);
      expect(r.body.items.map((c) => [c.id, c.covers])).toEqual([['far-cover', true], ['unknown', null], ['near-away', false]]);
      expect(r.body.items[0]!.distanceM).toBeCloseTo(60, 0);
      const svc = await t.hub.ctx.services.cameras!.nearest(P.lat, P.lon, { radiusM: 100, preferCameraId: 'near-away' });
      expect(svc.map((c) => c.id)).toEqual(['near-away', 'far-cover', 'unknown']);
      const all = await t.api<{ items: unknown[] }>('GET', '/cameras');
      expect(all.body.items).toHaveLength(4);
      expect((await t.api('GET', '/cameras/nope')).status).toBe(404);
      expect((await t.api('POST', '/cameras', { id: 'bad', rtspUrl: 'http://x/y', lat: 1, lon: 1 })).status).toBe(400);
      expect((await t.api('POST', '/cameras', { id: 'near-away', rtspUrl: 'rtsp://x/y', lat: 1, lon: 1 })).status).toBe(409);
      expect((await t.api('GET', '/cameras', undefined, '')).status).toBe(401);
    } finally {
      await t.stop();
    }
  }, 300_000);
});

describe.skipIf(!haveFfmpeg)('Fmp4Splitter and the burned-in clock (real ffmpeg)', () => {
  it('should split ffmpeg fMP4 into init and per-frame fragments with keyframes at the GOP', () => {
    const r = spawnSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25', '-frames:v', '60', '-c:v', 'libx264', '-g', '25', '-bf', '0', '-profile:v', 'baseline',
      '-f', 'mp4', '-movflags', 'empty_moov+default_base_moof+frag_every_frame', 'pipe:1'], { maxBuffer: 64e6 });
    expect(r.status).toBe(0);
    let init: Buffer | null = null;
    const frags: Fragment[] = [];
    const s = new Fmp4Splitter((i) => (init = i), (f) => frags.push(f));
    // Odd chunk sizes: boxes straddle pushes.
    for (let o = 0; o < r.stdout.length; o += 1777) s.push(r.stdout.subarray(o, o + 1777));
    expect(init).not.toBeNull();
    expect(codecOf(init!)).toMatch(/^avc1\.42/);
    expect(frags).toHaveLength(60);
    expect(frags.map((f, i) => (f.key ? i : -1)).filter((i) => i >= 0)).toEqual([0, 25, 50]);
  });

  it('should read back the clock the camera burned into a frame', () => {
    const w = 640;
    const h = 360;
    const before = Date.now();
    const r = spawnSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', `testsrc2=size=${w}x${h}:rate=25`, '-vf', clockFilter('cam-x', w, h), '-frames:v', '1', '-c:v', 'libx264', '-f', 'h264', 'pipe:1'], { maxBuffer: 64e6 });
    const after = Date.now();
    const raw = spawnSync('ffmpeg', ['-v', 'error', '-f', 'h264', '-i', 'pipe:0', '-f', 'rawvideo', '-pix_fmt', 'rgba', 'pipe:1'], { input: r.stdout, maxBuffer: 64e6 });
    const v = readClock(raw.stdout, w, clockLayout(w, h));
    const mod = 2 ** 24;
    expect(((v - (before % mod)) + mod) % mod).toBeLessThanOrEqual(after - before);
  });
});
