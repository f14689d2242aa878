import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uplinkTopic } from '@gridlink/devices';
import { engines, publishAck, startHub, until, type TestHub } from '../helpers.js';

const JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0xff, 0xd9]);

for (const engine of engines()) {
  describe(`ingest channels on ${engine.name}`, () => {
    let t: TestHub;
    const ids = { water: 'wl-001', smoke: 'smoke-001', cam: 'cam-001', hh: 'hh-001' };
    const secrets: Record<string, string> = {};

    beforeAll(async () => {
      t = await startHub({ databaseUrl: engine.url }, { modules: [] });
      secrets.water = (await t.registerDevice('sensor.water_level', ids.water)).secret;
      secrets.smoke = (await t.registerDevice('sensor.smoke', ids.smoke)).secret;
      secrets.cam = (await t.registerDevice('camera', ids.cam)).secret;
      secrets.hh = (await t.registerDevice('handheld', ids.hh)).secret;
    });
    afterAll(() => t?.stop());

    const db = () => t.hub.ctx.db;

    it('should store telemetry, single and array, and answer it from the telemetry API', async () => {
      const c = await t.connect(ids.water, secrets.water!);
      const now = Date.now();
      await publishAck(c, uplinkTopic(ids.water, 'telemetry'), { ts: now - 2000, values: { water_level_cm: 12.5, battery_pct: 90 } });
      await publishAck(c, uplinkTopic(ids.water, 'telemetry'), [
        { ts: now - 1000, values: { water_level_cm: 13 } },
        { ts: new Date(now).toISOString(), values: { water_level_cm: 14 } },
      ]);
      const rows = await db().query<{ n: number }>("select count(*)::int as n from readings where device_id = $1 and metric = 'water_level_cm'", [ids.water]);
      expect(rows[0]!.n).toBe(3);
      const r = await t.api<{ points: Array<{ ts: number; value: number }> }>('GET', `/devices/${ids.water}/telemetry?metric=water_level_cm&from=${now - 60_000}`);
      expect(r.status).toBe(200);
      expect(r.body.points.map((p) => p.value)).toEqual([12.5, 13, 14]);
      expect(r.body.points[0]!.ts).toBe(now - 2000);
      const b = await t.api<{ points: Array<{ value: number; n: number }> }>('GET', `/devices/${ids.water}/telemetry?metric=water_level_cm&from=${now - 3_600_000}&bucket=1h`);
      expect(b.body.points.reduce((s, p) => s + p.n, 0)).toBe(3);
    });

    it('should store events, alerts with their snapshot bytes, locations, reports, case progress and status', async () => {
      const smoke = await t.connect(ids.smoke, secrets.smoke!);
      await publishAck(smoke, uplinkTopic(ids.smoke, 'event'), { type: 'smoke_alarm', severity: 'critical', data: { obscuration: 12 } });
      const cam = await t.connect(ids.cam, secrets.cam!);
      await publishAck(cam, uplinkTopic(ids.cam, 'alert'), { type: 'fire', confidence: 0.91, snapshot: JPEG.toString('base64'), objects: [{ label: 'fire' }] });
      const hh = await t.connect(ids.hh, secrets.hh!);
      const ts = Date.now() - 5000;
      await publishAck(hh, uplinkTopic(ids.hh, 'location'), [{ ts, lat: 30.66, lon: 104.06, acc: 5 }, { ts: ts + 1000, lat: 30.6601, lon: 104.0601 }]);
      await publishAck(hh, uplinkTopic(ids.hh, 'report'), { reportId: 'r-1', category: '暴露垃圾', lat: 30.66, lon: 104.06, photos: [JPEG.toString('base64')] });
      await publishAck(hh, uplinkTopic(ids.hh, 'case'), { caseId: 'c-1', action: 'accept' });
      await publishAck(hh, uplinkTopic(ids.hh, 'status'), { online: true });

      const ev = await db().query<{ type: string; severity: string; data: unknown }>('select type, severity, data from events where device_id = $1', [ids.smoke]);
      expect(ev).toEqual([{ type: 'smoke_alarm', severity: 'critical', data: { obscuration: 12 } }]);
      const al = await db().query<{ snapshot: Uint8Array; confidence: number }>('select snapshot, confidence from alerts where device_id = $1', [ids.cam]);
      expect(Buffer.from(al[0]!.snapshot).equals(JPEG)).toBe(true);
      expect(al[0]!.confidence).toBeCloseTo(0.91);
      const pos = await db().query<{ n: number }>('select count(*)::int as n from positions where device_id = $1', [ids.hh]);
      expect(pos[0]!.n).toBe(2);
      const msgs = await db().query<{ channel: string; key: string }>('select channel, key from device_messages where device_id = $1 order by channel', [ids.hh]);
      expect(msgs).toEqual([{ channel: 'case', key: 'c-1:accept' }, { channel: 'report', key: 'r-1' }]);
      const st = await db().query<{ online: boolean }>('select online from device_status where device_id = $1', [ids.hh]);
      expect(st).toEqual([{ online: true }]);
    });

    it('should reject each kind of bad payload with its reason and keep the connection and the next message', async () => {
      const c = await t.connect(ids.water, secrets.water!);
      const topic = uplinkTopic(ids.water, 'telemetry');
      const cases: Array<[string | object, string]> = [
        ['{not json', 'not_json'],
        [{ values: { water_level_cm: 'high' } }, 'schema'],
        [{ values: { water_level_cm: 99999 } }, 'out_of_range'],
        [{ values: { co_ppm: 3 } }, 'unknown_metric'],
        [{ ts: Date.now() + 25 * 3600_000, values: { water_level_cm: 1 } }, 'ts_future'],
        [{ ts: 'yesterday', values: { water_level_cm: 1 } }, 'ts_invalid'],
      ];
      const before = t.hub.ctx.ingest.rejectedFor(ids.water);
      for (const [payload] of cases) await publishAck(c, topic, payload);
      // A channel the type does not have.
      await publishAck(c, uplinkTopic(ids.water, 'alert'), { type: 'fire' });
      const nextTs = Date.now() + 60_000; // later than anything an earlier test stored
      await publishAck(c, topic, { ts: nextTs, values: { water_level_cm: 21 } });
      const after = t.hub.ctx.ingest.rejectedFor(ids.water);
      for (const [, reason] of cases) expect((after[reason] ?? 0) - (before[reason] ?? 0)).toBe(1);
      expect(after.channel_not_allowed).toBe(1);
      expect(c.connected).toBe(true);
      const last = await db().query<{ value: number }>("select value from readings where device_id = $1 and metric = 'water_level_cm' and ts = to_timestamp($2 / 1000.0)", [ids.water, nextTs]);
      expect(last).toEqual([{ value: 21 }]);
      const dev = await t.api<{ rejected: Record<string, number>; online: boolean; lastSeen: number }>('GET', `/devices/${ids.water}`);
      expect(dev.body.rejected.not_json).toBeGreaterThanOrEqual(1);
      expect(dev.body.online).toBe(true);
      expect(dev.body.lastSeen).toBeGreaterThan(Date.now() - 60_000);
    });

    it('should store a re-sent message once', async () => {
      const c = await t.connect(ids.water, secrets.water!);
      const msg = { ts: Date.now() - 30_000, seq: 7, values: { water_level_cm: 5.5 } };
      await publishAck(c, uplinkTopic(ids.water, 'telemetry'), msg);
      await publishAck(c, uplinkTopic(ids.water, 'telemetry'), msg);
      const rows = await db().query<{ n: number }>('select count(*)::int as n from readings where device_id = $1 and ts = to_timestamp($2 / 1000.0)', [ids.water, msg.ts]);
      expect(rows[0]!.n).toBe(1);
    });

    it('should accept OwnTracks JSON from a handheld', async () => {
      const c = await t.connect(ids.hh, secrets.hh!);
      const tst = Math.floor(Date.now() / 1000) - 60;
      await publishAck(c, `owntracks/${ids.hh}/phone`, { _type: 'location', lat: 30.67, lon: 104.07, tst, acc: 8, batt: 77, vel: 18, cog: 90 });
      const rows = await db().query<{ lat: number; spd: number; hdg: number; batt: number }>('select lat, spd, hdg, batt from positions where device_id = $1 and ts = to_timestamp($2)', [ids.hh, tst]);
      expect(rows[0]).toMatchObject({ lat: 30.67, hdg: 90, batt: 77 });
      expect(rows[0]!.spd).toBeCloseTo(5, 5);
    });

    it('should take the same bodies over HTTP with Basic auth and refuse bad credentials', async () => {
      const auth = 'Basic ' + Buffer.from(`${ids.water}:${secrets.water}`).toString('base64');
      const ok = await fetch(`${t.http}/api/v1/ingest/${ids.water}/telemetry`, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' }, body: JSON.stringify({ values: { water_level_cm: 3 } }) });
      expect(ok.status).toBe(202);
      expect(await ok.json()).toEqual({ stored: 1 });
      const bad = await fetch(`${t.http}/api/v1/ingest/${ids.water}/telemetry`, { method: 'POST', headers: { authorization: 'Basic ' + Buffer.from(`${ids.water}:nope`).toString('base64'), 'content-type': 'application/json' }, body: '{}' });
      expect(bad.status).toBe(401);
      expect(((await bad.json()) as { code: string }).code).toBe('UNAUTHORIZED');
      const invalid = await fetch(`${t.http}/api/v1/ingest/${ids.water}/telemetry`, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' }, body: JSON.stringify({ values: { water_level_cm: -999 } }) });
      expect(invalid.status).toBe(400);
      expect(await invalid.json()).toMatchObject({ code: 'PAYLOAD_INVALID', details: { reason: 'out_of_range' } });
      // What PostgreSQL cannot store is refused with its reason before it reaches a batch; the next message is stored.
      const smokeAuth = 'Basic ' + Buffer.from(`${ids.smoke}:${secrets.smoke}`).toString('base64');
      const nul = await fetch(`${t.http}/api/v1/ingest/${ids.smoke}/event`, { method: 'POST', headers: { authorization: smokeAuth, 'content-type': 'application/json' }, body: '{"type":"tamper","data":{"note":"a\\u0000b"}}' });
      expect(nul.status).toBe(400);
      expect(await nul.json()).toMatchObject({ code: 'PAYLOAD_INVALID', details: { reason: 'bad_text' } });
      const surrogate = await fetch(`${t.http}/api/v1/ingest/${ids.smoke}/event`, { method: 'POST', headers: { authorization: smokeAuth, 'content-type': 'application/json' }, body: '{"type":"tamper","data":{"note":"\\ud800"}}' });
      expect(await surrogate.json()).toMatchObject({ details: { reason: 'bad_text' } });
      const afterNul = await fetch(`${t.http}/api/v1/ingest/${ids.smoke}/event`, { method: 'POST', headers: { authorization: smokeAuth, 'content-type': 'application/json' }, body: '{"type":"tamper","data":{"note":"ok"}}' });
      expect(afterNul.status).toBe(202);
      const empty = await fetch(`${t.http}/api/v1/ingest/${ids.water}/telemetry`, { method: 'POST', headers: { authorization: auth } });
      expect(empty.status).toBe(400);
      expect(await empty.json()).toMatchObject({ code: 'PAYLOAD_INVALID', details: { reason: 'empty' } });
      // Other routes keep fastify's JSON parser and answer malformed JSON with a coded 400.
      const broken = await fetch(`${t.http}/api/v1/devices`, { method: 'POST', headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/json' }, body: '{"type": ' });
      expect(broken.status).toBe(400);
      expect(((await broken.json()) as { code: string }).code).toBe('BAD_REQUEST');
    });

    it('should serve metrics and health', async () => {
      const m = await fetch(`${t.http}/metrics`).then((r) => r.text());
      expect(m).toMatch(/gridlink_messages_stored_total\{channel="telemetry"\} \d+/);
      expect(m).toMatch(/gridlink_messages_rejected_total\{reason="not_json"\} \d+/);
      const h = await fetch(`${t.http}/healthz`).then((r) => r.json());
      expect(h).toMatchObject({ status: 'ok', db: { ok: true } });
      await until(async () => (await fetch(`${t.http}/docs/json`)).status === 200);
      const doc = await fetch(`${t.http}/docs/json`).then((r) => r.json() as Promise<{ paths: Record<string, unknown> }>);
      expect(Object.keys(doc.paths)).toContain('/api/v1/devices/{id}/telemetry');
    });
  });
}
