/**
 * Property-based fuzzing (fast-check): the device decoder and every REST
 * body schema in the route table. No input gives a 500, an exception or an
 * unhandled rejection; a body with a field nobody declared never stores
 * anything (it is refused before the handler runs).
 */
import fc from 'fast-check';
import { CHANNELS, DEVICE_TYPES, decodeUplink, type Channel, type DeviceType } from '@gridlink/devices';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWorld, type World } from './fixtures.js';

/** JSON-ish values with the shapes and edge cases that break code: huge and tiny numbers, NUL, prototype keys, deep-ish nesting. */
const edgy = fc.oneof(
  fc.constantFrom(null, true, false, 0, -0, 1e308, -1e308, 2 ** 53, -1, 1.5, '', '\u0000', 'NaN', '1e400', '__proto__', 'constructor', '9999-99-99', '2026-11-30T00:00:00Z', 'G-B1', 'S-A'),
  fc.string({ maxLength: 40 }),
  fc.integer(),
  fc.double({ noNaN: false }),
);
const value = fc.letrec((tie) => ({
  v: fc.oneof({ depthSize: 'small', withCrossShrink: true }, edgy, fc.array(tie('v'), { maxLength: 4 }), fc.dictionary(fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('__proto__', 'constructor', 'id', 'gridId', 'regionId', 'type', 'lat', 'lon', 'ts', 'workerId', 'data', 'meta', 'rule', 'from', 'to')), tie('v'), { maxKeys: 5 })),
})).v;

describe('fuzz: device decoder', () => {
  it('should never throw, and answer ok with well-formed messages or a known reason', () => {
    const reasons = new Set(['not_json', 'schema', 'ts_invalid', 'ts_future', 'unknown_metric', 'out_of_range', 'bad_image', 'channel_not_allowed', 'empty', 'bad_text']);
    const payload = fc.oneof(value.map((v) => JSON.stringify(v) ?? 'null'), fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)), fc.string({ maxLength: 64 }));
    fc.assert(fc.property(fc.constantFrom(...(CHANNELS as Channel[])), fc.constantFrom(...(DEVICE_TYPES as readonly DeviceType[])), payload, (channel, deviceType, p) => {
      const r = decodeUplink(channel, p, { deviceType, receivedAt: Date.UTC(2026, 10, 30) });
      if (!r.ok) {
        expect(reasons.has(r.reason)).toBe(true);
        expect(r.detail.startsWith('decoder error')).toBe(false);
        return;
      }
      for (const m of r.messages) {
        expect(Number.isFinite(m.ts)).toBe(true);
        if ('lat' in m) expect(Math.abs(m.lat as number)).toBeLessThanOrEqual(90);
        if ('lon' in m) expect(Math.abs(m.lon as number)).toBeLessThanOrEqual(180);
      }
    }), { numRuns: 3000 });
  });
});

describe('fuzz: every REST body schema', () => {
  let w: World;
  const rejections: unknown[] = [];
  const onRejection = (e: unknown) => rejections.push(e);
  beforeAll(async () => {
    w = await startWorld();
    process.on('unhandledRejection', onRejection);
  }, 180_000);
  afterAll(async () => {
    process.off('unhandledRejection', onRejection);
    await w?.t.stop();
  }, 300_000);

  /** Path parameters: a real id of the world, another region's, or junk. */
  const param = fc.constantFrom('smoke-a', 'smoke-b', 'hh-a', 'w-a', 'w-b', 'cam-a', 'water-level', 'E0402', 'x', '%00', '..%2F..', '00000000-0000-4000-8000-000000000000', 'a'.repeat(70));

  it('should answer every route with a coded status below 500 for any body, and refuse undeclared fields without storing', async () => {
    const routes = w.t.hub.ctx.app.routeTable.filter((r) => r.body && r.url.startsWith('/api/v1/') && !r.url.includes('/auth/login') && !r.url.startsWith('/api/v1/m/session'));
    expect(routes.length).toBeGreaterThan(20);
    const failures: string[] = [];
    for (const r of routes) {
      await fc.assert(fc.asyncProperty(value, param, fc.boolean(), async (body, id, extra) => {
        const url = r.url.replace(/:[A-Za-z]+/g, () => encodeURIComponent(id).replace(/%25/g, '%'));
        const sent = extra && body && typeof body === 'object' && !Array.isArray(body) ? { ...body, zzUndeclared: 1 } : body;
        const before = w.t.hub.ctx.registry.size;
        const res = await w.t.hub.ctx.app.inject({ method: r.method as 'POST', url, headers: { authorization: `Bearer ${w.t.token}`, 'content-type': 'application/json' }, payload: JSON.stringify(sent) ?? 'null' });
        if (res.statusCode >= 500) failures.push(`${r.method} ${url} ${res.statusCode} ${res.body.slice(0, 200)} <- ${JSON.stringify(sent).slice(0, 300)}`);
        expect(res.statusCode).toBeLessThan(500);
        if (res.statusCode >= 400) expect(typeof JSON.parse(res.body).code).toBe('string');
        if (sent !== body) {
          expect(res.statusCode).toBeGreaterThanOrEqual(400);
          expect(w.t.hub.ctx.registry.size).toBe(before);
        }
      }), { numRuns: 25, endOnFailure: true }).catch((err) => failures.push(`${r.method} ${r.url}: ${(err as Error).message.split('\n').slice(0, 6).join(' | ')}`));
    }
    expect(failures).toEqual([]);
    expect(rejections).toEqual([]);
  }, 600_000);
});
