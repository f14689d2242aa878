/**
 * MQTT admission: WebSocket connections count against
 * GRIDLINK_MAX_CONNECTIONS like TCP ones, and one address may hold only a
 * few connections that have not completed CONNECT.
 */
import net from 'node:net';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHub, until, type TestHub } from '../helpers.js';

describe('broker admission', () => {
  let t: TestHub;
  beforeAll(async () => {
    t = await startHub({ maxConnections: 4, maxPendingPerAddress: 2 });
  }, 180_000);
  afterAll(async () => t?.stop(), 60_000);

  it('should count MQTT over WebSocket against the connection limit', async () => {
    const devs: Array<{ id: string; secret: string }> = [];
    for (let i = 1; i <= 5; i++) devs.push(await t.registerDevice('sensor.smoke', `ws-${i}`));
    const ws = `ws://127.0.0.1:${t.hub.ports.http}/mqtt`;
    const open = (d: { id: string; secret: string }) => new Promise<{ ok: boolean; c: mqtt.MqttClient }>((resolve) => {
      const c = mqtt.connect(ws, { clientId: d.id, username: d.id, password: d.secret, reconnectPeriod: 0, connectTimeout: 30_000 });
      c.once('connect', () => resolve({ ok: true, c }));
      c.once('close', () => resolve({ ok: false, c }));
      c.once('error', () => resolve({ ok: false, c }));
    });
    const first: Array<{ ok: boolean; c: mqtt.MqttClient }> = [];
    for (const d of devs.slice(0, 4)) first.push(await open(d));
    expect(first.map((x) => x.ok)).toEqual([true, true, true, true]);
    const fifth = await open(devs[4]!);
    expect(fifth.ok).toBe(false);
    for (const x of [...first, fifth]) x.c.end(true);
    // The hub has seen every one of them close.
    await until(() => t.hub.ctx.broker.admitted === 0);
  });

  it('should close a third silent socket from one address while the first two still wait for CONNECT', async () => {
    const closed: number[] = [];
    const socks = Array.from({ length: 3 }, (_, i) => {
      const s = net.connect(t.hub.ports.mqtt, '127.0.0.1');
      s.on('close', () => closed.push(i));
      s.on('error', () => undefined);
      return s;
    });
    await new Promise<void>((resolve) => {
      const check = () => (closed.length ? resolve() : setTimeout(check, 10));
      check();
    });
    // The first socket to be closed is a refused one, not one timing out.
    expect(closed[0]).toBe(2);
    expect(socks.slice(0, 2).every((s) => !s.destroyed)).toBe(true);
    for (const s of socks) s.destroy();
  });
});

describe('broker admission of many devices behind one address', () => {
  let t: TestHub;
  beforeAll(async () => {
    t = await startHub({ maxPendingPerAddress: 2 });
  }, 180_000);
  afterAll(async () => t?.stop(), 60_000);

  it('should let every device that sends its CONNECT log in, however many wait for authentication at once', async () => {
    // A gateway or a carrier NAT reconnecting its devices together: each socket sends CONNECT at
    // once, and password hashing (bounded) keeps most of them waiting past the pending cap of 2.
    const devs: Array<{ id: string; secret: string }> = [];
    for (let i = 1; i <= 12; i++) devs.push(await t.registerDevice('sensor.smoke', `nat-${i}`));
    const results = await Promise.all(devs.map((d) => new Promise<boolean>((resolve) => {
      const c = mqtt.connect(`mqtt://127.0.0.1:${t.hub.ports.mqtt}`, { clientId: d.id, username: d.id, password: d.secret, reconnectPeriod: 0, connectTimeout: 120_000 });
      c.once('connect', () => {
        c.end(true);
        resolve(true);
      });
      c.once('close', () => resolve(false));
      c.once('error', () => resolve(false));
    })));
    expect(results.filter(Boolean)).toHaveLength(12);
  });
});
