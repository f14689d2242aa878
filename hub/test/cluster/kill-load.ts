/**
 * A node SIGKILLed in the middle of paced QoS 1 load while cases are being
 * raised, dispatched and escalated: three hub processes, Redis, PostgreSQL,
 * and real MQTT and Socket.IO clients. Shared by
 * `kill-under-load.test.ts` (which asserts on the facts) and
 * `hub/bench/cluster-kill.bench.ts` (which prints them with the rates and
 * reconnect times).
 *
 * - Load: `loadDevices` water-level sensors spread over the three nodes
 *   publish `total` QoS 1 readings in all, offered at `rate` msg/s (each
 *   device sends on a schedule, at most `inflight` unacknowledged at once).
 *   A device whose connection drops moves to another live node, as a
 *   balancer would send it, and re-sends what was not acknowledged.
 * - Cases: `smokeSensors` smoke sensors report `smoke_alarm` one after
 *   another while the load runs (spread over its first 80 %), and each once
 *   more at the end. The shipped `smoke-alarm` rule makes an alarm and a
 *   case (E0402), which auto-dispatch sends to the nearest worker. Each
 *   sensor has two handhelds next to it: for two sensors in three the
 *   nearest never answers (its accept timeout fires and the case is
 *   re-dispatched, the escalation, to the second), for the others the
 *   nearest accepts; the second always accepts.
 * - Consoles: `consolesPerNode` officer sockets on each node; one on the
 *   killed node reconnects to another node.
 * - The kill: when a third of the readings are acknowledged, the node that
 *   holds the most leases is SIGKILLed.
 */
import mqtt, { type MqttClient } from 'mqtt';
import { io as ioc, type Socket } from 'socket.io-client';
import { commandTopic, decodeCommand } from '@gridlink/devices';
import { until } from '../helpers.js';
import { api, clusterEnv, createDatabase, guard, health, HANG_GUARD_MS, login, startNode, startRedis, type HubNode, type RedisServer, type TestDatabase } from './harness.js';

export interface KillLoadOptions {
  /** Offered QoS 1 msg/s, all load devices together. */
  rate: number;
  /** Readings in all (split evenly over the load devices). */
  total: number;
  loadDevices: number;
  smokeSensors: number;
  consolesPerNode: number;
  /** Unacknowledged publishes one load device may have at once. */
  inflight: number;
  acceptTimeoutS: number;
  log?: (line: string) => void;
}

export const DEFAULT_KILL_LOAD: KillLoadOptions = {
  rate: 5000, total: 36_000, loadDevices: 60, smokeSensors: 9, consolesPerNode: 2, inflight: 100, acceptTimeoutS: 3,
};

/** What happened, read back from the database and the clients after everything settled. */
export interface KillLoadFacts {
  killed: string;
  leasesOfKilled: string[];
  load: {
    perDevice: number;
    devices: Array<{ id: string; acked: number; stored: number; distinctSeq: number }>;
    offeredBefore: number;
    offeredAfter: number;
    ackedBefore: number;
    ackedAfter: number;
    seconds: number;
  };
  smoke: Array<{ sensor: string; alarms: Array<{ id: string; count: number; caseId: string | null }>; cases: string[] }>;
  cases: Array<{ id: string; sensor: string; status: string; history: Array<{ action: string; workerId: string | null; note: string | null; byDispatch: boolean; actor: string; ts: number }> }>;
  /** Every dispatch record of the smoke cases, with how it ended. */
  dispatches: Array<{ caseId: string; workerId: string; outcome: string | null }>;
  /** Per handheld: sum of the counts of its `dispatch.dispatch_timeout` alarm rows. */
  timeoutAlarms: Record<string, number>;
  ignorers: string[];
  claimsDone: number;
  claimsOpen: number;
  workersDispatched: number;
  correlationAlarms: number;
  reconnect: {
    devices: { moved: number; back: number; maxMs: number | null; ms: number[] };
    consoles: { moved: number; back: number; maxMs: number | null; ms: number[] };
  };
  /** Load devices that waited STALL_MS for a PUBACK on a live connection and reconnected. */
  stalls: Array<{ device: string; node: string; inFlight: number; acked: number; afterKill: boolean }>;
  /** Consoles that received an alarm for every sensor's final report after the kill. */
  consolesHearing: number;
  consoles: number;
}

/** How long a load device waits for any PUBACK before it reconnects. */
const STALL_MS = 30_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A device's MQTT connection that moves to another live node when its node goes away. */
class Link {
  m: MqttClient | null = null;
  /** True from CONNACK (and subscription) until its close is seen. */
  live = false;
  gen = 0;
  stopped = false;
  /** performance.now() of each connect after the first. */
  readonly reconnects: number[] = [];
  private waiting: Array<(m: MqttClient) => void> = [];
  private opening: Promise<void> | null = null;

  constructor(
    readonly id: string,
    private readonly secret: string,
    public node: HubNode,
    private readonly alive: () => HubNode[],
    /** onDrop: a connection is gone, or a new one replaced it; what was sent on it and not acknowledged is to be sent again. */
    private readonly opts: { clean: boolean; subscribe: boolean; onMessage?: (topic: string, payload: Buffer) => void; onDrop?: () => void },
  ) {}

  open(): Promise<void> {
    this.opening ??= this.connectLoop().finally(() => (this.opening = null));
    return this.opening;
  }

  private async connectLoop(): Promise<void> {
    const started = performance.now();
    for (let attempt = 0; !this.stopped; attempt++) {
      if (performance.now() - started > HANG_GUARD_MS) throw new Error(`${this.id}: no connection to any live node after ${HANG_GUARD_MS / 1000} s`);
      const live = this.alive();
      if (!live.includes(this.node)) this.node = live.find((n) => n !== this.node) ?? live[0]!;
      const m = await new Promise<MqttClient | null>((resolve) => {
        const c = mqtt.connect(`mqtt://127.0.0.1:${this.node.mqttPort}`, {
          clientId: this.id, username: this.id, password: this.secret, clean: this.opts.clean, reconnectPeriod: 0, connectTimeout: 30_000,
        });
        c.once('connect', () => resolve(c));
        c.once('error', () => (c.end(true), resolve(null)));
        c.once('close', () => resolve(null));
      });
      if (!m) {
        await sleep(Math.min(100 * (attempt + 1), 1000));
        continue;
      }
      if (this.stopped) {
        m.end(true);
        return;
      }
      const gen = ++this.gen;
      if (this.m) {
        this.reconnects.push(performance.now());
        this.opts.onDrop?.();
      }
      this.m = m;
      if (this.opts.onMessage) m.on('message', this.opts.onMessage);
      m.once('close', () => {
        if (gen !== this.gen || this.stopped) return;
        this.live = false;
        this.gen++;
        m.end(true);
        this.opts.onDrop?.();
        void this.open().catch(() => undefined);
      });
      if (this.opts.subscribe && !(await m.subscribeAsync(commandTopic(this.id), { qos: 1 }).then(() => true, () => false))) {
        // Its close handler opens the next connection.
        m.end(true);
        return;
      }
      this.live = true;
      const w = this.waiting;
      this.waiting = [];
      for (const f of w) f(m);
      return;
    }
  }

  /** The client once connected. */
  ready(): Promise<MqttClient> {
    if (this.live && this.m?.connected && !this.opening) return Promise.resolve(this.m);
    return new Promise((r) => this.waiting.push(r));
  }

  /** Publishes at QoS 1 until a PUBACK comes, through whichever node the device is on. */
  async publish(topic: string, payload: string): Promise<void> {
    for (;;) {
      const m = await this.ready();
      const gen = this.gen;
      const ok = await new Promise<boolean>((resolve) => {
        const onClose = () => resolve(false);
        m.once('close', onClose);
        m.publish(topic, payload, { qos: 1 }, (err) => (m.off('close', onClose), resolve(!err)));
      });
      if (ok) return;
      if (gen === this.gen) await sleep(100);
    }
  }

  /** Closes the connection as a device that gave up waiting would; the close handler opens the next one. */
  drop(): void {
    if (this.live) this.m?.end(true);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.m?.endAsync(true).catch(() => undefined);
  }
}

export class KillLoadCluster {
  redis!: RedisServer;
  db!: TestDatabase;
  readonly nodes: HubNode[] = [];
  token = '';
  private links: Link[] = [];
  private sockets: Socket[] = [];

  constructor(readonly o: KillLoadOptions) {}

  private log(s: string): void {
    this.o.log?.(s);
  }

  async start(): Promise<void> {
    this.redis = await startRedis();
    this.db = await createDatabase();
    const env = clusterEnv(this.redis.url, this.db.url, {
      // The load comes from few devices each far faster than a sensor: give each a budget that never pushes back.
      GRIDLINK_DEVICE_RATE: '5000', GRIDLINK_DEVICE_BURST: '5000', GRIDLINK_FLOOD_DISCONNECT: '100000',
      // Every test client comes from 127.0.0.1 (a balancer with PROXY protocol would give each its own address).
      GRIDLINK_MAX_PENDING_PER_ADDRESS: '1000',
      GRIDLINK_DISPATCH_AUTO: 'E0402',
      GRIDLINK_DISPATCH_ACCEPT_TIMEOUT_S: String(this.o.acceptTimeoutS),
      GRIDLINK_DISPATCH_MAX_ATTEMPTS: '2',
      // The fixes are sent once at the start; a slow run must not age them out of ranking.
      GRIDLINK_DISPATCH_CANDIDATE_FIX_AGE_S: '3600',
      GRIDLINK_LOG_LEVEL: process.env.GRIDLINK_CLUSTER_LOG_LEVEL ?? 'warn',
    });
    this.nodes.push(await startNode('node-a', env));
    this.nodes.push(...(await Promise.all([startNode('node-b', env), startNode('node-c', env)])));
    this.token = await login(this.nodes[0]!.http);
    await until(async () => (await Promise.all(this.nodes.map(health))).every((h) => h.cluster.owners.length === 3), HANG_GUARD_MS, 100);
  }

  private async device(type: string, id: string, extra: Record<string, unknown> = {}): Promise<string> {
    const node = this.nodes[this.links.length % 3]!;
    const r = await api<{ secret: string }>(node.http, 'POST', '/devices', { type, id, ...extra }, this.token);
    if (r.status !== 201) throw new Error(`POST /devices ${id}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.secret;
  }

  async run(): Promise<KillLoadFacts> {
    const o = this.o;
    const [a, b, c] = this.nodes as [HubNode, HubNode, HubNode];
    let dead: HubNode | null = null;
    const alive = () => this.nodes.filter((n) => n !== dead);
    const t0 = Date.now() - 3_600_000;

    // Smoke sensors on a line 1.1 km apart; each has an ignoring and an accepting handheld beside it.
    const sensors = Array.from({ length: o.smokeSensors }, (_, i) => ({ id: `smoke-${i}`, lat: 30.5 + i * 0.01, lon: 104.0 }));
    const handhelds: Array<{ id: string; accepts: boolean; lat: number; lon: number }> = [];
    sensors.forEach((s, i) => {
      const firstIgnores = i % 3 !== 0;
      handhelds.push({ id: `hh-${i}-1`, accepts: !firstIgnores, lat: s.lat + 0.0005, lon: s.lon });
      handhelds.push({ id: `hh-${i}-2`, accepts: true, lat: s.lat + 0.002, lon: s.lon });
    });

    // Handhelds first: connected, subscribed, their fix stored, then their worker made.
    const accepted = new Set<string>();
    for (const [i, h] of handhelds.entries()) {
      const secret = await this.device('handheld', h.id);
      const link: Link = new Link(h.id, secret, this.nodes[i % 3]!, alive, {
        clean: false, subscribe: true,
        onMessage: (topic, payload) => {
          if (topic !== commandTopic(h.id)) return;
          const cmd = decodeCommand(payload);
          if (!cmd || cmd.type !== 'dispatch' || !h.accepts) return;
          accepted.add(cmd.case.id);
          void link.publish(`gridlink/v1/${h.id}/case`, JSON.stringify({ caseId: cmd.case.id, action: 'accept' }));
        },
      });
      this.links.push(link);
      await link.open();
      await link.publish(`gridlink/v1/${h.id}/location`, JSON.stringify({ ts: Date.now(), lat: h.lat, lon: h.lon, acc: 5 }));
    }
    // Every node reads a new worker's last stored fix: wait until all are stored.
    const ids = handhelds.map((h) => h.id);
    await until(async () => (await this.db.query<{ n: number }>('select count(distinct device_id)::int as n from positions where device_id = any($1)', [ids]))[0]!.n === ids.length, HANG_GUARD_MS, 100);
    for (const [i, h] of handhelds.entries()) {
      const node = this.nodes[(i + 1) % 3]!;
      const w = await api(node.http, 'POST', '/workers', { id: `w-${h.id}`, name: h.id, deviceId: h.id, gridIds: [] }, this.token);
      if (w.status !== 201) throw new Error(`POST /workers ${h.id}: ${w.status} ${JSON.stringify(w.body)}`);
      const d = await api(node.http, 'POST', `/workers/w-${h.id}/duty`, { onDuty: true }, this.token);
      if (d.status !== 200) throw new Error(`duty ${h.id}: ${d.status}`);
    }

    const sensorLinks: Link[] = [];
    for (const [i, s] of sensors.entries()) {
      const secret = await this.device('sensor.smoke', s.id, { lat: s.lat, lon: s.lon });
      const link = new Link(s.id, secret, this.nodes[i % 3]!, alive, { clean: true, subscribe: false });
      this.links.push(link);
      sensorLinks.push(link);
      await link.open();
    }

    // Consoles: officers' sockets on every node; alarms they hear are kept.
    interface Console { node: HubNode; s: Socket; heard: Set<string>; moved: number | null; back: number | null }
    const consoles: Console[] = [];
    const openSocket = (con: Console) => new Promise<void>((resolve) => {
      const s = ioc(con.node.http, { path: '/socket.io', auth: { token: this.token }, transports: ['websocket'], reconnection: false, forceNew: true });
      this.sockets.push(s);
      con.s = s;
      s.on('alarm', (x: { deviceId: string; rule: string; change?: string }) => {
        if (x.rule === 'smoke-alarm') con.heard.add(x.deviceId);
      });
      s.once('connect', () => resolve());
      s.once('connect_error', () => void sleep(200).then(() => {
        if (!alive().includes(con.node)) con.node = alive()[0]!;
        return openSocket(con);
      }).then(resolve));
      s.on('disconnect', () => {
        if (stopping) return;
        // As a balancer would: the next connection goes to a live node.
        con.moved ??= performance.now();
        if (!alive().includes(con.node)) con.node = alive().find((n) => n !== con.node) ?? alive()[0]!;
        void sleep(100).then(() => openSocket(con)).then(() => (con.back = performance.now()));
      });
    });
    let stopping = false;
    for (const n of this.nodes) {
      for (let k = 0; k < o.consolesPerNode; k++) {
        const con: Console = { node: n, s: null as unknown as Socket, heard: new Set(), moved: null, back: null };
        consoles.push(con);
        await openSocket(con);
      }
    }

    // Load devices.
    const per = Math.floor(o.total / o.loadDevices);
    const total = per * o.loadDevices;
    interface LoadDev { link: Link; next: number; retry: number[]; pending: Set<number>; acked: Set<number>; lastAck: number }
    const load: LoadDev[] = [];
    for (let i = 0; i < o.loadDevices; i++) {
      const id = `kl-${String(i).padStart(3, '0')}`;
      const secret = await this.device('sensor.water_level', id);
      const dev: LoadDev = { link: null as unknown as Link, next: 1, retry: [], pending: new Set(), acked: new Set(), lastAck: 0 };
      dev.link = new Link(id, secret, this.nodes[i % 3]!, alive, {
        clean: true, subscribe: false,
        // What was in flight on the lost connection is sent again (stored once: one row per (device, ts, metric)).
        onDrop: () => {
          dev.retry.push(...dev.pending);
          dev.pending.clear();
        },
      });
      this.links.push(dev.link);
      load.push(dev);
    }
    await Promise.all(load.map((d) => d.link.open()));

    // Which node dies: the one that holds the most leases.
    const leases = (await health(a)).cluster.leases;
    const byHolder = new Map<string, string[]>();
    for (const [name, l] of Object.entries(leases)) if (l.holder) byHolder.set(l.holder, [...(byHolder.get(l.holder) ?? []), name]);
    const victim = [a, b, c].sort((x, y) => (byHolder.get(y.id)?.length ?? 0) - (byHolder.get(x.id)?.length ?? 0))[0]!;
    const leasesOfKilled = byHolder.get(victim.id) ?? [];
    this.log(`kill-load: ${total} QoS 1 readings from ${o.loadDevices} devices at ${o.rate} msg/s offered; ${victim.id} (leases ${leasesOfKilled.join(', ') || 'none'}) dies at a third`);

    // The paced load.
    const perDevRate = o.rate / o.loadDevices;
    let ackedAll = 0;
    const freshAt: number[] = [];
    const ackAt: number[] = [];
    const send = (d: LoadDev, seq: number, fresh: boolean) => {
      const m = d.link.m;
      if (!d.link.live || !m?.connected) return false;
      const gen = d.link.gen;
      d.pending.add(seq);
      if (fresh) freshAt.push(performance.now());
      m.publish(`gridlink/v1/${d.link.id}/telemetry`, JSON.stringify({ ts: t0 + seq, seq, values: { water_level_cm: seq % 20 } }), { qos: 1 }, (err) => {
        if (gen !== d.link.gen) return; // that connection is gone; onDrop queued it again
        d.pending.delete(seq);
        if (err) d.retry.push(seq);
        else if (!d.acked.has(seq)) {
          d.lastAck = performance.now();
          d.acked.add(seq);
          ackedAll++;
          ackAt.push(performance.now());
        }
      });
      return true;
    };
    const start = performance.now();
    const stalls: KillLoadFacts['stalls'] = [];
    let killAt = 0;
    let victimLinks: Link[] = [];
    let killing: Promise<void> | null = null;
    const smokeSent: Promise<void>[] = [];
    const smokeAt = sensors.map((_, i) => Math.floor(total * 0.8 * (i + 0.5) / sensors.length));
    let nextSmoke = 0;
    const firstTs = t0 + 1_000_000;
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        try {
          const now = performance.now();
          if (now - Math.max(start, ...load.map((d) => d.lastAck)) > HANG_GUARD_MS) {
            throw new Error(`load: ${ackedAll} of ${total} acknowledged, none for ${HANG_GUARD_MS / 1000} s; waiting: ${load.filter((d) => d.acked.size < per).map((d) => `${d.link.id} on ${d.link.node.id} (${d.pending.size} in flight, live ${d.link.live})`).join(', ')}`);
          }
          for (const d of load) {
            // A device that waited STALL_MS for any PUBACK gives up on the connection (noted: the hub should never need it).
            if (d.pending.size && d.link.live && now - Math.max(d.lastAck, start) > STALL_MS) {
              stalls.push({ device: d.link.id, node: d.link.node.id, inFlight: d.pending.size, acked: d.acked.size, afterKill: killAt > 0 });
              d.lastAck = now;
              d.link.drop();
            }
          }
          const due = Math.min(per, Math.floor(((now - start) / 1000) * perDevRate) + 1);
          for (const d of load) {
            while (d.retry.length && d.pending.size < o.inflight && send(d, d.retry[0]!, false)) d.retry.shift();
            while (d.next <= due && d.pending.size < o.inflight && send(d, d.next, true)) d.next++;
          }
          while (nextSmoke < sensors.length && ackedAll >= smokeAt[nextSmoke]!) {
            const i = nextSmoke++;
            smokeSent.push(sensorLinks[i]!.publish(`gridlink/v1/${sensors[i]!.id}/event`, JSON.stringify({ ts: firstTs + i, type: 'smoke_alarm', severity: 'critical' })));
          }
          if (!killing && ackedAll >= total / 3) {
            dead = victim;
            victimLinks = this.links.filter((l) => l.node === victim);
            killAt = performance.now();
            killing = victim.kill('SIGKILL');
          }
          if (ackedAll >= total) {
            clearInterval(timer);
            resolve();
          }
        } catch (err) {
          clearInterval(timer);
          reject(err);
        }
      }, 10);
    });
    const end = performance.now();
    await killing;
    const rate = (xs: number[], from: number, to: number) => Math.round(xs.filter((t) => t >= from && t < to).length / ((to - from) / 1000));
    const lastFresh = freshAt[freshAt.length - 1] ?? end;
    const loadFacts = {
      offeredBefore: rate(freshAt, start, killAt), offeredAfter: rate(freshAt, killAt, lastFresh + 1),
      ackedBefore: rate(ackAt, start, killAt), ackedAfter: rate(ackAt, killAt, end + 1), seconds: Math.round((end - start) / 100) / 10,
    };
    this.log(`kill-load: load done in ${loadFacts.seconds} s; offered ${loadFacts.offeredBefore} / ${loadFacts.offeredAfter} msg/s, acked ${loadFacts.ackedBefore} / ${loadFacts.ackedAfter} msg/s before / after the kill`);

    // Every first smoke report acknowledged; every device and console back on a live node.
    await guard(Promise.all(smokeSent), 'PUBACKs of the smoke reports');
    await until(() => this.links.every((l) => l.m?.connected && l.node !== victim), HANG_GUARD_MS, 50);
    await until(() => consoles.every((con) => con.s.connected && con.node !== victim), HANG_GUARD_MS, 50);

    // Each sensor reports once more: every console, wherever it is now, hears each of them.
    for (const con of consoles) con.heard.clear();
    await Promise.all(sensors.map((s, i) => sensorLinks[i]!.publish(`gridlink/v1/${s.id}/event`, JSON.stringify({ ts: firstTs + 1000 + i, type: 'smoke_alarm', severity: 'critical' }))));
    let consolesHearing = 0;
    await until(() => {
      consolesHearing = consoles.filter((con) => sensors.every((s) => con.heard.has(s.id))).length;
      return consolesHearing === consoles.length;
    }, HANG_GUARD_MS, 50).catch(() => undefined);

    // Settled: every sensor has its case, no case is still owed its automatic dispatch (undecided: no record, no settled
    // claim; the killed node's claims are free once its heartbeat ran out), no dispatch waits for its timeout, no timeout
    // claim is open; twice in a row.
    const sensorIds = sensors.map((s) => s.id);
    const settled = async () => {
      const [x] = await this.db.query<{ cased: number; owed: number; waiting: number; dispatched: number; open: number }>(
        `select (select count(distinct device_id)::int from alarms where rule_id = 'smoke-alarm' and device_id = any($1) and case_id is not null) as cased,
                (select count(*)::int from cases c where c.device_id = any($1) and c.status in ('reported', 'registered') and c.worker_id is null
                   and not exists (select 1 from case_dispatches d where d.case_id = c.id)
                   and not exists (select 1 from cluster_claims k where k.key = 'dispatch.auto:' || c.id and k.done)) as owed,
                (select count(*)::int from workers where stage = 'dispatched') as waiting,
                (select count(*)::int from cases where status = 'dispatched') as dispatched,
                (select count(*)::int from cluster_claims where key like 'dispatch.timeout:%' and not done) as open`, [sensorIds]);
      lastSettle = x!;
      return x!.cased === sensorIds.length && x!.owed === 0 && x!.waiting === 0 && x!.dispatched === 0 && x!.open === 0;
    };
    let lastSettle: Record<string, number> = {};
    await until(async () => (await settled()) && (await sleep(3000), await settled()), 4 * HANG_GUARD_MS, 500)
      .catch(async (err: Error) => {
        const cases = await this.db.query('select c.id, c.status, c.worker_id, (select json_agg(k) from cluster_claims k where k.key like \'%\' || c.id || \'%\') as claims, (select json_agg(d) from dispatch_commands d where d.case_id = c.id) as commands from cases c where c.device_id = any($1)', [sensorIds]);
        throw new Error(`not settled (${err.message}): ${JSON.stringify(lastSettle)} ${JSON.stringify(cases)}`);
      });
    stopping = true;

    // The facts.
    const stored = await this.db.query<{ device_id: string; n: number; d: number }>(
      "select device_id, count(*)::int as n, count(distinct seq)::int as d from readings where metric = 'water_level_cm' and device_id like 'kl-%' group by device_id");
    const storedBy = new Map(stored.map((r) => [r.device_id, r]));
    const alarms = await this.db.query<{ id: string; device_id: string; count: number; case_id: string | null }>(
      "select id, device_id, count, case_id from alarms where rule_id = 'smoke-alarm' order by created_at");
    const caseRows = await this.db.query<{ id: string; device_id: string; status: string }>(
      'select id, device_id, status from cases where device_id = any($1) order by created_at', [sensorIds]);
    const hist = await this.db.query<{ case_id: string; action: string; actor: { kind: string; id: string }; note: string | null; data: { workerId?: string } | null; ms: number }>(
      'select case_id, action, actor, note, data, (extract(epoch from ts) * 1000)::float8 as ms from case_history where case_id = any($1) order by id', [caseRows.map((r) => r.id)]);
    const ta = await this.db.query<{ device_id: string; n: number }>(
      "select device_id, sum(count)::int as n from alarms where rule_id = 'dispatch.dispatch_timeout' group by device_id");
    const cd = await this.db.query<{ case_id: string; worker_id: string; outcome: string | null }>(
      'select case_id, worker_id, outcome from case_dispatches where case_id = any($1) order by attempt', [caseRows.map((r) => r.id)]);
    const [claims] = await this.db.query<{ done: number; open: number }>(
      "select count(*) filter (where done)::int as done, count(*) filter (where not done)::int as open from cluster_claims where key like 'dispatch.timeout:%'");
    const [wd] = await this.db.query<{ n: number }>("select count(*)::int as n from workers where stage = 'dispatched'");
    const [corr] = await this.db.query<{ n: number }>("select count(*)::int as n from alarms where rule_id = 'fire-correlation'");

    const devMs = victimLinks.filter((l) => l.m?.connected && l.reconnects.some((t) => t >= killAt))
      .map((l) => Math.round(l.reconnects.find((t) => t >= killAt)! - killAt)).sort((x, y) => x - y);
    const conMoved = consoles.filter((con) => con.moved !== null);
    const conMs = conMoved.filter((con) => con.back !== null).map((con) => Math.round(con.back! - killAt)).sort((x, y) => x - y);
    return {
      killed: victim.id,
      leasesOfKilled,
      load: {
        perDevice: per,
        devices: load.map((d) => ({ id: d.link.id, acked: d.acked.size, stored: storedBy.get(d.link.id)?.n ?? 0, distinctSeq: storedBy.get(d.link.id)?.d ?? 0 })),
        ...loadFacts,
      },
      smoke: sensors.map((s) => ({
        sensor: s.id,
        alarms: alarms.filter((x) => x.device_id === s.id).map((x) => ({ id: x.id, count: x.count, caseId: x.case_id })),
        cases: caseRows.filter((r) => r.device_id === s.id).map((r) => r.id),
      })),
      cases: caseRows.map((r) => ({
        id: r.id, sensor: r.device_id, status: r.status,
        history: hist.filter((h) => h.case_id === r.id).map((h) => ({ action: h.action, workerId: h.data?.workerId ?? null, note: h.note, byDispatch: h.actor.kind === 'system' && h.actor.id === 'dispatch', actor: `${h.actor.kind}:${h.actor.id}`, ts: Math.round(h.ms) })),
      })),
      dispatches: cd.map((r) => ({ caseId: r.case_id, workerId: r.worker_id, outcome: r.outcome })),
      timeoutAlarms: Object.fromEntries(ta.map((r) => [r.device_id, r.n])),
      ignorers: handhelds.filter((h) => !h.accepts).map((h) => h.id),
      claimsDone: claims!.done,
      claimsOpen: claims!.open,
      workersDispatched: wd!.n,
      correlationAlarms: corr!.n,
      reconnect: {
        devices: { moved: victimLinks.length, back: devMs.length, maxMs: devMs.at(-1) ?? null, ms: devMs },
        consoles: { moved: conMoved.length, back: conMs.length, maxMs: conMs.at(-1) ?? null, ms: conMs },
      },
      consolesHearing,
      consoles: consoles.length,
      stalls,
    };
  }

  async stop(printLogs = false): Promise<void> {
    if (printLogs) for (const n of this.nodes) process.stderr.write(`--- ${n.id}\n${n.output().slice(-20_000)}\n`);
    for (const s of this.sockets) s.disconnect();
    await Promise.all(this.links.map((l) => l.stop()));
    await Promise.all(this.nodes.map((n) => n.kill('SIGKILL')));
    await this.redis?.stop();
    await this.db?.drop();
  }
}

/** The facts in numbers: what the benchmark prints and the test logs. */
export function summarize(f: KillLoadFacts) {
  const devices = f.load.devices;
  let dispatches = 0, timeouts = 0, escalations = 0, accepts = 0;
  for (const c of f.cases) {
    for (const h of c.history) {
      if (h.action === 'dispatch') {
        dispatches++;
        if (h.note?.startsWith('auto re-dispatch after timeout')) escalations++;
      } else if (h.action === 'decline' && h.note?.startsWith('accept timeout')) timeouts++;
      else if (h.action === 'accept') accepts++;
    }
  }
  return {
    readings: {
      acked: devices.reduce((n, d) => n + d.acked, 0),
      /** Acknowledged readings missing from the database. */
      lostAcked: devices.reduce((n, d) => n + Math.max(0, d.acked - d.distinctSeq), 0),
      /** Rows stored more than once. */
      doubled: devices.reduce((n, d) => n + d.stored - d.distinctSeq, 0),
      /** Devices that waited 30 s for any PUBACK on a live connection and reconnected. */
      stalls: f.stalls.length,
    },
    smoke: {
      episodes: f.smoke.length,
      alarmsDoubled: f.smoke.filter((s) => s.alarms.length > 1).length,
      alarmsLost: f.smoke.filter((s) => s.alarms.length === 0).length,
      casesDoubled: f.smoke.filter((s) => s.cases.length > 1).length,
      casesLost: f.smoke.filter((s) => s.cases.length === 0 || s.alarms.some((a) => a.caseId === null)).length,
    },
    timers: {
      dispatches, accepts, timeouts, escalations,
      timeoutAlarmCount: Object.values(f.timeoutAlarms).reduce((n, x) => n + x, 0),
      claimsDone: f.claimsDone,
      claimsOpen: f.claimsOpen,
      dispatchesLeftWaiting: f.workersDispatched,
      /** Statuses of the cases auto-dispatch never sent to anyone. */
      neverDispatched: f.cases.filter((c) => !c.history.some((h) => h.action === 'dispatch')).map((c) => c.status),
    },
  };
}
