/**
 * Fencing: a stale lease holder's writes are refused, not doubled.
 *
 * Two hub nodes in this process, on one PostgreSQL database and a real
 * redis-server. Node A holds every lease. Its database access is frozen (as
 * SIGSTOP would freeze the process, but at a chosen point): in the middle of
 * its rules tick, at the write of an absence alarm, inside the fenced
 * transaction; and at the start of its overdue pass, after it took the
 * lease's token. Its renewals freeze with it, so the leases pass to node B,
 * which does the same work. Then A goes on. Without fences A's tick counts
 * each absence alarm a second time (count 2 on its one row); with them A's
 * writes are refused, logged and counted in /metrics. The same for the
 * device liveness sweep: frozen at its update, while the node it judged gone
 * restarts and a device connects to it, it would mark that device offline.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import mqtt from 'mqtt';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemActor } from '../../src/cases/index.js';
import { testConfig } from '../../src/core/config.js';
import { casesModule, createHub, realtimeModule, rulesModule, type Hub } from '../../src/hub.js';
import type { Db, Queryable } from '../../src/store/index.js';
import { AT, Clock, districtGrids } from '../cases/fixtures.js';
import { until } from '../helpers.js';
import { createDatabase, guard, HANG_GUARD_MS, RUN_CLUSTER, startRedis, type RedisServer, type TestDatabase } from './harness.js';

const MIN = 60_000;
const TTL_MS = 3_000;

/**
 * A node's database access, frozen from the first statement `breakAt` picks
 * (that statement included) until `thaw()`: every query, transaction and
 * renewal of the node waits, as in a stopped process; the server sees the
 * node's open transaction idle.
 */
class Freezer {
  breakAt: ((sql: string, params?: unknown[]) => boolean) | null = null;
  hit = false;
  private gate: Promise<void> | null = null;
  private open: () => void = () => undefined;

  freeze(): void {
    this.hit = true;
    this.gate ??= new Promise<void>((r) => (this.open = r));
  }

  thaw(): void {
    this.gate = null;
    this.open();
  }

  private async pass(sql?: string, params?: unknown[]): Promise<void> {
    if (sql !== undefined && this.breakAt?.(sql, params)) {
      this.breakAt = null;
      this.freeze();
    }
    while (this.gate) await this.gate;
  }

  wrap = (db: Db): Db => {
    const through = (inner: Queryable): Queryable => ({
      query: async (sql, params, opts) => {
        await this.pass(sql, params);
        return inner.query(sql, params, opts);
      },
    });
    const q = through(db);
    return {
      kind: db.kind,
      timescale: db.timescale,
      query: q.query,
      exec: async (sql) => {
        await this.pass(sql);
        return db.exec(sql);
      },
      tx: async (fn) => {
        await this.pass();
        return db.tx((t) => fn(through(t)));
      },
      ...(db.exclusive ? { exclusive: db.exclusive.bind(db) } : {}),
      close: () => db.close(),
    };
  };
}

describe.runIf(RUN_CLUSTER)('fenced lease work on PostgreSQL', () => {
  let redis: RedisServer;
  let tdb: TestDatabase;
  const dirs: string[] = [];
  const hubs: Hub[] = [];
  const clock = new Clock(Date.now());
  const freezer = new Freezer();
  let a: Hub;
  let b: Hub;

  async function node(id: string, wrapDb?: (db: Db) => Db): Promise<Hub> {
    const dataDir = mkdtempSync(path.join(tmpdir(), `gridlink-fence-${id}-`));
    dirs.push(dataDir);
    const hub = await createHub(testConfig({ databaseUrl: tdb.url, dataDir }), {
      modules: [realtimeModule(), casesModule({ overdueEveryMs: 0 }), rulesModule({ tickMs: 0, stateFlushMs: 0 })],
      now: clock.now,
      ...(wrapDb ? { wrapDb } : {}),
      cluster: { redisUrl: redis.url, nodeId: id, leaseTtlMs: TTL_MS },
    });
    hubs.push(hub);
    await hub.start();
    return hub;
  }

  beforeAll(async () => {
    redis = await startRedis();
    tdb = await createDatabase();
    a = await node('fence-a', freezer.wrap);
    const login = await fetch(`http://127.0.0.1:${a.ports.http}/api/v1/auth/login`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: a.ctx.config.adminPassword }),
    });
    const { token } = (await login.json()) as { token: string };
    const grids = await fetch(`http://127.0.0.1:${a.ports.http}/api/v1/grids`, {
      method: 'PUT', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(districtGrids()),
    });
    expect(grids.status).toBe(200);
    // Known to B from its start: devices, grids.
    for (const id of ['fence-d1', 'fence-d2']) await a.ctx.registry.register({ id, type: 'sensor.smoke', ...AT.A1 });
    b = await node('fence-b');
    await until(() => (a.ctx.cluster.owners.peers().length === 2 && b.ctx.cluster.owners.peers().length === 2 ? true : null), HANG_GUARD_MS, 50);
  }, 180_000);

  afterAll(async () => {
    freezer.thaw();
    for (const h of hubs.reverse()) await h.stop().catch(() => undefined);
    await redis?.stop();
    await tdb?.drop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('refuses the absence alarms and the overdue pass of a holder that stalled past its lease; the new holder writes each once', async () => {
    expect(a.ctx.leases.holds('rules.timers')).toBe(true);
    expect(a.ctx.leases.holds('cases.overdue')).toBe(true);
    const sys = systemActor('test');
    const caseIds: string[] = [];
    // 火灾 (E0402): one calendar hour to its deadline.
    for (let i = 0; i < 3; i++) {
      const { case: c } = await a.ctx.services.cases!.create({ category: 'E0402', ...AT.A1, source: 'officer', actor: sys });
      await a.ctx.services.cases!.act(c.id, 'register', sys);
      caseIds.push(c.id);
    }
    // Both devices silent past the 10 min of 设备离线, the cases past their deadline.
    clock.advance(61 * MIN);

    // A's tick stops at its first alarm row (inside the fenced transaction, after the token check).
    freezer.breakAt = (sql) => /insert into alarms/.test(sql);
    const aRules = a.ctx.domains.rules!.tick();
    await until(() => freezer.hit, HANG_GUARD_MS, 10);
    // A's overdue pass starts now, with the token A holds the lease by, and stops at its transaction.
    const aCases = a.ctx.domains.cases!.tick();

    // A renews nothing while frozen: B takes both leases, with higher tokens. The row A's open transaction
    // keeps (rules.timers) passes only once the server has ended that transaction (the lease time idle).
    await until(() => (b.ctx.leases.holds('rules.timers') && b.ctx.leases.holds('cases.overdue') ? true : null), HANG_GUARD_MS, 50);
    expect(b.ctx.leases.roles()['rules.timers'].token).toBeGreaterThan(a.ctx.leases.roles()['rules.timers'].token);
    await guard(b.ctx.domains.rules!.tick(), 'rules tick on B');
    await guard(b.ctx.domains.cases!.tick(), 'overdue pass on B');

    freezer.thaw();
    await guard(aRules, 'rules tick on A after the thaw');
    await guard(a.ctx.domains.rules!.idle(), 'alarm steps on A after the thaw');
    await guard(aCases, 'overdue pass on A after the thaw');

    // One alarm per device, counted once.
    const alarms = await tdb.query<{ device_id: string; count: number; status: string }>(
      "select device_id, count, status from alarms where rule_id = 'device-offline' order by device_id");
    expect(alarms).toEqual([
      { device_id: 'fence-d1', count: 1, status: 'active' },
      { device_id: 'fence-d2', count: 1, status: 'active' },
    ]);
    // Each supervision step once per case.
    const steps = await tdb.query<{ case_id: string; action: string; n: number }>(
      `select case_id, action, count(*)::int as n from case_history where case_id = any($1::text[]) and action in ('warn', 'overdue', 'supervise', 'escalate')
        group by case_id, action`, [caseIds]);
    for (const id of caseIds) {
      const mine = Object.fromEntries(steps.filter((s) => s.case_id === id).map((s) => [s.action, s.n]));
      expect(mine, id).toMatchObject({ overdue: 1, supervise: 1 });
      for (const n of Object.values(mine)) expect(n, id).toBe(1);
    }

    // Refused on A, logged and counted: each alarm row of its tick, and its pass. Nothing refused on B.
    expect(a.ctx.leases.refusals()).toMatchObject({ 'rules.timers': 2, 'cases.overdue': 1, retention: 0 });
    expect(Object.values(b.ctx.leases.refusals()).every((n) => n === 0)).toBe(true);
    const metrics = await (await fetch(`http://127.0.0.1:${a.ports.http}/metrics`)).text();
    expect(metrics).toMatch(/gridlink_cluster_lease_fenced_writes_total\{lease="rules\.timers"\} 2/);
    expect(metrics).toMatch(/gridlink_cluster_lease_fenced_writes_total\{lease="cases\.overdue"\} 1/);

    // A's view of the alarm book is the database's again: it holds B's rows, not the ones it was refused.
    const book = new Map([...a.ctx.domains.rules!.alarms.activeAlarms()].map((x) => [x.deviceId, x.id]));
    const rows = await tdb.query<{ id: string; device_id: string }>("select id, device_id from alarms where rule_id = 'device-offline'");
    for (const r of rows) expect(book.get(r.device_id)).toBe(r.id);
  }, 240_000);
});

describe.runIf(RUN_CLUSTER)('the device liveness sweep of a stale holder on PostgreSQL', () => {
  let redis: RedisServer;
  let tdb: TestDatabase;
  const dirs: string[] = [];
  const hubs: Hub[] = [];
  const freezer = new Freezer();
  const clients: mqtt.MqttClient[] = [];
  let a: Hub;
  let b: Hub;

  async function node(id: string, wrapDb?: (db: Db) => Db): Promise<Hub> {
    const dataDir = mkdtempSync(path.join(tmpdir(), `gridlink-fence-${id}-`));
    dirs.push(dataDir);
    const hub = await createHub(testConfig({ databaseUrl: tdb.url, dataDir }), {
      modules: [],
      ...(wrapDb ? { wrapDb } : {}),
      cluster: { redisUrl: redis.url, nodeId: id, leaseTtlMs: TTL_MS },
    });
    hubs.push(hub);
    await hub.start();
    return hub;
  }
  const stopped = new Set<Hub>();
  const peersSeen = (n: number) => until(() => (hubs.filter((h) => !stopped.has(h)).every((h) => h.ctx.cluster.owners.peers().length === n) ? true : null), HANG_GUARD_MS, 50);
  const row = async (id: string) => (await tdb.query<{ online: boolean; holder_node: string | null }>('select online, holder_node from devices where id = $1', [id]))[0]!;

  beforeAll(async () => {
    redis = await startRedis();
    tdb = await createDatabase();
    a = await node('live-a', freezer.wrap);
    b = await node('live-b');
    await peersSeen(2);
  }, 180_000);

  afterAll(async () => {
    freezer.thaw();
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
    for (const h of hubs.reverse()) if (!stopped.has(h)) await h.stop().catch(() => undefined);
    await redis?.stop();
    await tdb?.drop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('leaves online a device that connected to a restarted node while the holder was frozen in its sweep', async () => {
    expect(a.ctx.leases.holds('devices.liveness')).toBe(true);
    const { secret } = await a.ctx.registry.register({ id: 'live-h1', type: 'sensor.smoke' });
    const c1 = await node('live-c');
    await peersSeen(3);
    // A's sweep stops at the update that follows live-c's departure (an alive set without it), inside the fence.
    freezer.breakAt = (sql, params) => /update devices d set online = false/.test(sql) && Array.isArray(params?.[0]) && !(params[0] as string[]).includes('live-c');
    stopped.add(c1);
    await c1.stop();
    await until(() => freezer.hit, HANG_GUARD_MS, 20);
    // B takes the lease once the server has ended A's idle transaction.
    await until(() => (b.ctx.leases.holds('devices.liveness') ? true : null), HANG_GUARD_MS, 50);
    // live-c comes back (a rolling restart) and a device connects to it.
    const c2 = await node('live-c');
    await peersSeen(3);
    const dev = await mqtt.connectAsync(`mqtt://127.0.0.1:${c2.ports.mqtt}`, { clientId: 'live-h1', username: 'live-h1', password: secret, reconnectPeriod: 0 });
    clients.push(dev);
    await until(async () => {
      const r = await row('live-h1');
      return r.online && r.holder_node === 'live-c' ? true : null;
    }, HANG_GUARD_MS, 50);

    // A goes on with the sweep it began when live-c was gone: refused, so the device stays online.
    freezer.thaw();
    await until(async () => (!(await row('live-h1')).online || a.ctx.leases.refusals()['devices.liveness'] > 0 ? true : null), HANG_GUARD_MS, 50);
    expect(await row('live-h1')).toEqual({ online: true, holder_node: 'live-c' });
    expect(a.ctx.leases.refusals()['devices.liveness']).toBe(1);
  }, 240_000);
});
