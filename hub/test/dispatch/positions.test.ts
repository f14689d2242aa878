import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PositionEvent } from '../../src/realtime/events.js';
import { publishAck } from '../helpers.js';
import { AT, startDispatchHub, waitFor, type DispatchHub } from './fixtures.js';

describe('dispatch live positions', () => {
  let h: DispatchHub;
  const sockets: Socket[] = [];
  const pos = async (id: string) => (await h.as('dispatcher')<{ position: { lat: number; lon: number; ts: number } | null; status: string; onDuty: boolean }>('GET', `/workers/${id}`)).body;
  const flags = async (deviceId: string) =>
    (await h.hub.ctx.db.query<{ flag: string | null; lat: number }>('select flag, lat from positions where device_id = $1 order by ts', [deviceId])).map((r) => r.flag);

  beforeAll(async () => {
    h = await startDispatchHub();
  }, 120_000);

  afterAll(async () => {
    for (const s of sockets) s.close();
    await h?.stop();
  });

  it('should move a worker from OwnTracks JSON on owntracks/{deviceId}/...', async () => {
    const w = await h.addWorker({ id: 'w-ot', gridIds: ['G-A1'] });
    const c = await h.connect(w.deviceId, w.secret);
    const tst = Math.floor(h.clock.now() / 1000);
    await publishAck(c, `owntracks/${w.deviceId}/phone`, { _type: 'location', lat: AT.A1.lat, lon: AT.A1.lon, tst, acc: 8, batt: 77, vel: 18, cog: 90 });
    await waitFor(async () => (await pos('w-ot')).position?.lat === AT.A1.lat);
    const p = (await pos('w-ot')).position!;
    expect(p).toMatchObject({ lat: AT.A1.lat, lon: AT.A1.lon, ts: tst * 1000, acc: 8, batt: 77, gridId: 'G-A1' });
  });

  it('should move a worker from the OsmAnd protocol (Traccar Client) with its OsmAnd token as id or HTTP Basic', async () => {
    const w = await h.addWorker({ id: 'w-osm', gridIds: ['G-A2'] });
    const ts = Math.floor(h.clock.now() / 1000);
    const { token } = (await h.api<{ token: string }>('POST', `/devices/${w.deviceId}/osmand-token`)).body;
    const q = new URLSearchParams({ id: token, lat: String(AT.A2.lat), lon: String(AT.A2.lon), timestamp: String(ts), speed: '2', bearing: '45', accuracy: '5', batt: '66' });
    const r = await fetch(`${h.http}/osmand?${q}`);
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ stored: 1 });
    expect((await pos('w-osm')).position).toMatchObject({ lat: AT.A2.lat, lon: AT.A2.lon, ts: ts * 1000, acc: 5, batt: 66 });
    const [row] = await h.hub.ctx.db.query<{ spd: number; hdg: number }>('select spd, hdg from positions where device_id = $1', [w.deviceId]);
    expect(row!.spd).toBeCloseTo(2 * 0.514444, 3); // knots → m/s
    expect(row!.hdg).toBe(45);

    // POST form body with HTTP Basic, 30 s later and 100 m north.
    const basic = `Basic ${Buffer.from(`${w.deviceId}:${w.secret}`).toString('base64')}`;
    const form = new URLSearchParams({ id: w.deviceId, lat: String(AT.A2.lat + 0.0009), lon: String(AT.A2.lon), timestamp: String(ts + 30) });
    const p = await fetch(`${h.http}/osmand`, { method: 'POST', headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() });
    expect(p.status).toBe(200);
    expect((await pos('w-osm')).position?.lat).toBe(AT.A2.lat + 0.0009);

    // Traccar Client 9 JSON body.
    const j = await fetch(`${h.http}/osmand`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ device_id: token, location: { timestamp: new Date((ts + 60) * 1000).toISOString(), coords: { latitude: AT.A2.lat + 0.0018, longitude: AT.A2.lon, speed: 1.5, heading: 0, accuracy: 4 }, battery: { level: 0.5 } } }),
    });
    expect(j.status).toBe(200);
    expect((await pos('w-osm')).position).toMatchObject({ lat: AT.A2.lat + 0.0018, batt: 50 });
  });

  it('should refuse OsmAnd uploads without the right secret', async () => {
    const w = await h.addWorker({ id: 'w-osm2' });
    const q = new URLSearchParams({ id: w.deviceId, lat: '30.61', lon: '104.01', secret: 'wrong' });
    expect((await fetch(`${h.http}/osmand?${q}`)).status).toBe(401);
    expect((await fetch(`${h.http}/osmand?id=${w.deviceId}&lat=30.61&lon=104.01`)).status).toBe(401);
    expect((await pos('w-osm2')).position).toBeNull();
  });

  it('should keep a 50 km jump in one second as a flagged row and not move the worker', async () => {
    const w = await h.addWorker({ id: 'w-jump', at: AT.B1 });
    const c = await h.connect(w.deviceId, w.secret);
    const t = h.clock.now();
    await publishAck(c, `gridlink/v1/${w.deviceId}/location`, { ts: t + 1000, lat: AT.B1.lat + 0.45, lon: AT.B1.lon }); // ~50 km north
    expect((await pos('w-jump')).position).toMatchObject({ lat: AT.B1.lat, lon: AT.B1.lon });
    expect(await flags(w.deviceId)).toEqual([null, 'jump']);
    // A plausible next fix still moves the worker.
    await publishAck(c, `gridlink/v1/${w.deviceId}/location`, { ts: t + 10_000, lat: AT.B1.lat + 0.001, lon: AT.B1.lon });
    await waitFor(async () => (await pos('w-jump')).position?.lat === AT.B1.lat + 0.001);
  });

  it('should flag stale, out-of-order and future fixes without moving the worker', async () => {
    const w = await h.addWorker({ id: 'w-time', at: AT.B2 });
    const t = h.clock.now();
    await h.fix(w.deviceId, AT.B2.lat + 0.001, AT.B2.lon, t - 3600_000); // an hour old
    await h.fix(w.deviceId, AT.B2.lat + 0.002, AT.B2.lon, t - 5_000); // older than the current fix
    await h.fix(w.deviceId, AT.B2.lat + 0.003, AT.B2.lon, t + 600_000); // ten minutes ahead
    expect((await pos('w-time')).position).toMatchObject({ lat: AT.B2.lat, ts: t });
    expect(await flags(w.deviceId)).toEqual(['stale', 'stale', null, 'future']);
    const track = await h.as('dispatcher')<{ fixes: number; flagged: number }>('GET', `/workers/w-time/track?from=${t - 7200_000}&to=${t + 3600_000}`);
    expect(track.body).toMatchObject({ fixes: 1, flagged: 3 });
  });

  it('should take duty from the handheld status channel and from a location duty field', async () => {
    const w = await h.addWorker({ id: 'w-duty', onDuty: false, at: AT.A1 });
    const c = await h.connect(w.deviceId, w.secret);
    expect((await pos('w-duty')).status).toBe('off_duty');
    await publishAck(c, `gridlink/v1/${w.deviceId}/status`, { online: true, duty: true, ts: h.clock.now() });
    await waitFor(async () => (await pos('w-duty')).status === 'available');
    h.clock.advance(5000);
    await publishAck(c, `gridlink/v1/${w.deviceId}/location`, { ts: h.clock.now(), lat: AT.A1.lat, lon: AT.A1.lon, duty: false });
    await waitFor(async () => (await pos('w-duty')).status === 'off_duty');
    const r = await h.as('dispatcher')<{ status: string; onDuty: boolean }>('POST', '/workers/w-duty/duty', { onDuty: true });
    expect(r.body).toMatchObject({ status: 'available', onDuty: true });
  });

  it('should push changed positions to consoles once per beat, only what their region may see', async () => {
    const connect = async (token: string) => {
      const s = io(h.http, { path: '/socket.io', auth: { token }, transports: ['websocket'], reconnection: false, forceNew: true });
      sockets.push(s);
      await new Promise<void>((resolve, reject) => {
        s.once('connect', () => resolve());
        s.once('connect_error', reject);
      });
      const got: PositionEvent[][] = [];
      s.on('positions', (p: PositionEvent[]) => got.push(p));
      return got;
    };
    const all = await connect(h.tokens.dispatcher);
    const regionA = await connect(h.tokens.dispatcherA);
    h.dispatch.flush(); // drain what earlier tests changed
    await new Promise((r) => setTimeout(r, 100));
    all.length = 0;
    regionA.length = 0;
    const a = await h.addWorker({ id: 'w-pa', gridIds: ['G-A1'], at: AT.A1 });
    const b = await h.addWorker({ id: 'w-pb', gridIds: ['G-B1'], at: AT.B1 });
    h.clock.advance(5000);
    await h.fix(a.deviceId, AT.A1.lat + 0.0001, AT.A1.lon);
    await h.fix(b.deviceId, AT.B1.lat + 0.0001, AT.B1.lon);
    h.dispatch.flush();
    await waitFor(() => all.length === 1 && regionA.length === 1);
    expect(all[0]!.map((p) => p.workerId).sort()).toEqual(['w-pa', 'w-pb']);
    expect(all[0]!.find((p) => p.workerId === 'w-pa')).toMatchObject({ deviceId: a.deviceId, lat: AT.A1.lat + 0.0001, lon: AT.A1.lon, ts: h.clock.now(), status: 'available', gridId: 'G-A1' });
    expect(regionA[0]!.map((p) => p.workerId)).toEqual(['w-pa']);
    // Nothing changed: the next beat sends nothing.
    h.dispatch.flush();
    await new Promise((r) => setTimeout(r, 150));
    expect(all.length).toBe(1);
  });

  it('should return the track with distance, stops and downsampling for long ranges', async () => {
    const w = await h.addWorker({ id: 'w-track', at: { lat: 30.6, lon: 104.0 } });
    const t0 = h.clock.now();
    // 10 minutes walking north at ~1.1 m/s (a fix every 10 s), then 5 minutes standing.
    for (let i = 1; i <= 90; i++) {
      h.clock.advance(10_000);
      await h.fix(w.deviceId, i <= 60 ? 30.6 + i * 0.0001 : 30.606, 104.0);
    }
    const r = await h.as('dispatcher')<{ fixes: number; bucketS: number | null; distanceM: number; points: unknown[]; stops: Array<{ durationS: number; lat: number }> }>(
      'GET', `/workers/w-track/track?from=${t0}&to=${t0 + 1000_000}`,
    );
    expect(r.status).toBe(200);
    expect(r.body.fixes).toBe(91);
    expect(r.body.bucketS).toBeNull();
    expect(r.body.points).toHaveLength(91);
    expect(r.body.distanceM).toBeGreaterThan(666);
    expect(r.body.distanceM).toBeLessThan(669); // 0.006° of latitude ≈ 667.2 m
    expect(r.body.stops).toHaveLength(1);
    // the last walking fixes within 50 m of the standing point count into the stop
    expect(r.body.stops[0]!.durationS).toBeGreaterThanOrEqual(300);
    expect(r.body.stops[0]!.durationS).toBeLessThanOrEqual(350);
    const d = await h.as('dispatcher')<{ fixes: number; bucketS: number; distanceM: number; points: Array<{ n: number }> }>(
      'GET', `/workers/w-track/track?from=${t0}&to=${t0 + 1000_000}&maxPoints=20`,
    );
    expect(d.body.bucketS).toBe(50);
    expect(d.body.points.length).toBeLessThanOrEqual(20);
    expect(d.body.points.reduce((s, p) => s + p.n, 0)).toBe(91);
    expect(d.body.distanceM).toBe(r.body.distanceM);
  });
});
