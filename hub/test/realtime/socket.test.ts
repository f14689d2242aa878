import { createSigner } from 'fast-jwt';
import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemActor } from '../../src/cases/index.js';
import type { CaseEvent, DeviceEvent, ServerToClientEvents } from '../../src/realtime/events.js';
import { until } from '../helpers.js';
import { AT, startCaseHub, type CaseHub } from '../cases/fixtures.js';

type Client = Socket<ServerToClientEvents>;

describe('realtime (Socket.IO)', () => {
  let h: CaseHub;
  const sockets: Client[] = [];
  beforeAll(async () => {
    h = await startCaseHub();
  });
  afterAll(async () => {
    for (const s of sockets) s.close();
    await h?.stop();
  });

  async function connect(token: string, transports: string[] = ['websocket']): Promise<Client> {
    const s: Client = io(h.http, { path: '/socket.io', auth: { token }, transports, reconnection: false, forceNew: true });
    sockets.push(s);
    await new Promise<void>((resolve, reject) => {
      s.once('connect', () => resolve());
      s.once('connect_error', reject);
    });
    return s;
  }

  it('should refuse a connection without a valid token', async () => {
    const s: Client = io(h.http, { path: '/socket.io', auth: { token: 'nope' }, transports: ['websocket'], reconnection: false, forceNew: true });
    sockets.push(s);
    const err = await new Promise<Error>((resolve) => s.once('connect_error', resolve));
    expect(err.message).toBe('TOKEN_INVALID');
  });

  it('should deliver case events by region: officer and street A see an A case, street B sees nothing', async () => {
    const all = await connect(h.tokens.officer);
    const a = await connect(h.tokens.officerA, ['polling', 'websocket']);
    const b = await connect(h.tokens.officerB);
    const got = { all: [] as CaseEvent[], a: [] as CaseEvent[], b: [] as CaseEvent[] };
    all.on('case', (c) => got.all.push(c));
    a.on('case', (c) => got.a.push(c));
    b.on('case', (c) => got.b.push(c));
    const { case: c } = await h.cases.create({ category: 'fire', ...AT.A1, source: 'officer', actor: systemActor('test') });
    await h.cases.act(c.id, 'register', systemActor('test'));
    await until(() => got.all.length >= 2 && got.a.length >= 2);
    expect(got.all.map((e) => e.change)).toEqual(['create', 'register']);
    expect(got.a[0]).toMatchObject({ id: c.id, gridId: 'G-A1', status: 'reported' });
    // A B case reaches B; by then any A event would have reached B too (same ordered connection).
    const { case: cb } = await h.cases.create({ category: 'fire', ...AT.B2, source: 'officer', actor: systemActor('test') });
    await until(() => got.b.length >= 1);
    expect(got.b.map((e) => e.id)).toEqual([cb.id]);
    await until(() => got.all.length >= 3);
    expect(got.a.map((e) => e.id)).not.toContain(cb.id);
  });

  it('should send device status to the rooms of the device grid', async () => {
    const a = await connect(h.tokens.officerA);
    const b = await connect(h.tokens.officerB);
    const got = { a: [] as DeviceEvent[], b: [] as DeviceEvent[] };
    a.on('device', (d) => got.a.push(d));
    b.on('device', (d) => got.b.push(d));
    const dev = await h.registerDevice('sensor.smoke', 'smoke-rt-1', { lat: AT.A2.lat, lon: AT.A2.lon, gridId: 'G-A2' });
    const c = await h.connect(dev.id, dev.secret);
    await until(() => got.a.some((d) => d.deviceId === dev.id && d.online));
    await c.endAsync();
    await until(() => got.a.some((d) => d.deviceId === dev.id && !d.online));
    expect(got.b).toEqual([]);
  });

  it('should filter batched items per region (sendFiltered)', async () => {
    const all = await connect(h.tokens.officer);
    const a = await connect(h.tokens.officerA);
    const got = { all: [] as unknown[][], a: [] as unknown[][] };
    all.on('positions', (p) => got.all.push(p));
    a.on('positions', (p) => got.a.push(p));
    const item = (workerId: string, gridId: string) => ({ workerId, deviceId: workerId, lat: 0, lon: 0, ts: 1, status: 'available' as const, gridId });
    h.hub.ctx.services.realtime!.sendFiltered('positions', [item('x', 'G-A1'), item('y', 'G-B1')]);
    await until(() => got.all.length === 1 && got.a.length === 1);
    expect(got.all[0]).toHaveLength(2);
    expect(got.a[0]).toEqual([expect.objectContaining({ workerId: 'x' })]);
  });

  it('should disconnect a socket when its token expires', async () => {
    const sign = createSigner({ key: h.config.jwtSecret!, algorithm: 'HS256', expiresIn: 1500 });
    // A real user's token (a token of a user that does not exist is refused outright).
    const me = (await h.api<{ sub: string; tv?: number }>('GET', '/auth/me')).body;
    const token = sign({ sub: me.sub, username: 'admin', role: 'admin', regionId: null, tv: 0 });
    const s = await connect(token);
    const reason = await new Promise<string>((resolve) => s.once('disconnect', resolve));
    expect(reason).toBe('io server disconnect');
  });

  it('should keep MQTT over WebSocket working next to Socket.IO', async () => {
    const dev = await h.registerDevice('sensor.smoke', 'smoke-ws-1');
    const mqtt = await import('mqtt');
    const c = mqtt.connect(`ws://127.0.0.1:${h.hub.ports.http}/mqtt`, { clientId: dev.id, username: dev.id, password: dev.secret, reconnectPeriod: 0 });
    await new Promise<void>((resolve, reject) => {
      c.once('connect', () => resolve());
      c.once('error', reject);
    });
    await c.endAsync();
  });
});
