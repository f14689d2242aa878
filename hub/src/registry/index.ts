/**
 * Device registry: identities, hashed secrets, enabled flag and liveness.
 * Every device is cached in memory (50k devices is a few MB) so the broker
 * authenticates and ingest looks up types without touching the database.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { isDeviceId, isDeviceType, type DeviceType } from '@gridlink/devices';
import type { Device } from '@gridlink/devices/contract';
import type { EventBus } from '../core/bus.js';
import { Errors } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { DEVICE_COST, hashSecret, newSecret, verifySecret } from '../core/secrets.js';
import type { Db } from '../store/db.js';

// A device as REST returns it is the contract's (CONTRACT 5 `/devices`).
export type { Device } from '@gridlink/devices/contract';

interface Entry extends Device {
  secretHash: string;
  /** sha256 of the secret after one successful scrypt check: reconnect storms stay cheap. */
  verified?: Buffer;
  /** Cluster: the node holding the device's connection while it is online. */
  node?: string | null;
  /** Cluster: when that connection was made (µs, the connecting node's clock): the last connect wins. */
  since?: number;
}

/**
 * Cluster: a disconnect here is announced (console event, word to the other
 * nodes) after this long, and not at all if the device connected to another
 * node (or here) meanwhile: in a takeover the old node often sees its
 * connection close before it hears of the new one.
 */
const OFFLINE_GRACE_MS = 1_000;

/** Wall-clock microseconds: connects a millisecond apart on two nodes still have an order. */
const micros = () => Math.round((performance.timeOrigin + performance.now()) * 1000);

/** The connect (since, node) is newer than or the same as the one held: ties of the clock go to the greater node id. */
const notOlder = (since: number, node: string, heldSince: number, heldNode: string) => since > heldSince || (since === heldSince && node >= heldNode);

/**
 * Cluster: one node's word about a device's connection, sent to the other
 * nodes (cluster/index.ts carries it over Redis). `snapshot` replaces
 * everything the sender said before: the devices it holds now, each
 * `[deviceId, since, lastSeen]`.
 */
export type LivenessMessage =
  | { node: string; deviceId: string; online: boolean; since: number; lastSeen: number | null }
  | { node: string; snapshot: Array<[string, number, number | null]> };

export interface LivenessLink {
  nodeId: string;
  publish(m: LivenessMessage): void;
}

export interface DeviceChange {
  deviceId: string;
  change: 'created' | 'updated' | 'disabled' | 'enabled' | 'deleted' | 'secret_rotated';
  /** The change was made on another node of a cluster and read back here (not to be announced again). */
  remote?: boolean;
}

export interface DeviceLiveness {
  deviceId: string;
  online: boolean;
  lastSeen: number | null;
}

declare module '../core/bus.js' {
  interface EventMap {
    'device.changed': DeviceChange;
    /** Online/offline transitions (CONTRACT section 6 `device`). */
    'device.status': DeviceLiveness;
  }
}

export interface RegisterInput {
  id?: string;
  type: string;
  name?: string;
  lat?: number;
  lon?: number;
  gridId?: string;
  meta?: Record<string, unknown>;
}

interface DeviceRow {
  id: string;
  type: string;
  name: string;
  secret_hash: string;
  enabled: boolean;
  lat: number | null;
  lon: number | null;
  grid_id: string | null;
  meta: Record<string, unknown> | null;
  created_at: Date;
  last_seen: Date | null;
  online: boolean;
  /** Cluster columns (cluster/index.ts adds them). */
  holder_node?: string | null;
  connected_us?: string | number | null;
}

function fromRow(r: DeviceRow): Entry {
  return {
    id: r.id,
    type: r.type as DeviceType,
    name: r.name,
    enabled: r.enabled,
    lat: r.lat,
    lon: r.lon,
    gridId: r.grid_id,
    meta: r.meta ?? {},
    createdAt: new Date(r.created_at).getTime(),
    lastSeen: r.last_seen ? new Date(r.last_seen).getTime() : null,
    online: false,
    secretHash: r.secret_hash,
  };
}

const osmandMac = (e: Entry): string => createHmac('sha256', e.secretHash).update(`gridlink/osmand\n${e.id}`).digest('base64url').slice(0, 32);

export function publicDevice(e: Device): Device {
  return {
    id: e.id, type: e.type, name: e.name, enabled: e.enabled, lat: e.lat, lon: e.lon, gridId: e.gridId,
    meta: e.meta, createdAt: e.createdAt, lastSeen: e.lastSeen, online: e.online,
  };
}

export class DeviceRegistry {
  private readonly devices = new Map<string, Entry>();
  /** Other nodes of a cluster change devices too: a device missing here is looked up in the database. */
  private shared = false;
  private readonly dirtySeen = new Set<string>();
  private seenTimer: NodeJS.Timeout | null = null;
  /** Cluster: this node's connection changes, written to the table with the next flush (latest per device). */
  private readonly dirtyLive = new Map<string, { online: boolean; since: number }>();
  private link: LivenessLink | null = null;
  /** Cluster: disconnects of this node not announced yet (OFFLINE_GRACE_MS). */
  private readonly pendingOffline = new Map<string, { timer: NodeJS.Timeout; since: number }>();

  constructor(
    private readonly db: Db,
    private readonly bus: EventBus,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Cluster: every node's connections count. Each connect and disconnect of
   * this node is sent through `link` and written with the holding node and
   * the connect time; other nodes' words arrive through `applyLiveness`.
   * Set before `start`.
   */
  linkLiveness(link: LivenessLink): void {
    this.link = link;
  }

  /** `shared`: other nodes of a cluster hold connections too, so their devices stay online. */
  async start(opts: { shared?: boolean } = {}): Promise<void> {
    const rows = await this.db.query<DeviceRow>('select * from devices');
    const self = this.link?.nodeId;
    for (const r of rows) {
      const e = fromRow(r);
      // Cluster: the table's view of who holds what (a dead holder's devices are swept, sweepLiveness);
      // what it says this node holds is from before a restart: nothing is connected here yet.
      if (self) Object.assign(e, { online: r.online && !!r.holder_node && r.holder_node !== self, node: r.holder_node === self ? null : r.holder_node ?? null, since: Number(r.connected_us ?? 0) });
      this.devices.set(r.id, e);
    }
    this.shared = opts.shared ?? false;
    if (self) await this.db.query('update devices set online = false, holder_node = null where holder_node = $1', [self]);
    // Nobody is connected when the (only) hub starts.
    if (!opts.shared) await this.db.query('update devices set online = false where online');
    this.seenTimer = setInterval(() => void this.flushSeen(), 5_000);
    this.seenTimer.unref();
  }

  async stop(): Promise<void> {
    if (this.seenTimer) clearInterval(this.seenTimer);
    this.seenTimer = null;
    for (const [id, p] of this.pendingOffline) {
      clearTimeout(p.timer);
      this.announceOffHere(id, p.since);
    }
    await this.flushSeen();
  }

  get(id: string): Device | undefined {
    return this.devices.get(id);
  }

  list(filter: { type?: string; gridIds?: ReadonlySet<string> | null } = {}): Device[] {
    const out: Device[] = [];
    for (const d of this.devices.values()) {
      if (filter.type && d.type !== filter.type) continue;
      if (filter.gridIds && (!d.gridId || !filter.gridIds.has(d.gridId))) continue;
      out.push(publicDevice(d));
    }
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }

  get size(): number {
    return this.devices.size;
  }

  async register(input: RegisterInput): Promise<{ device: Device; secret: string }> {
    if (!isDeviceType(input.type)) throw Errors.validation(`unknown device type ${input.type}`);
    const id = input.id ?? `${input.type.replace(/^sensor\./, '')}-${Math.random().toString(36).slice(2, 10)}`;
    if (!isDeviceId(id)) throw Errors.validation('device id must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$');
    if (this.devices.has(id)) throw Errors.deviceExists(`device ${id} already exists`);
    const secret = newSecret();
    const secretHash = await hashSecret(secret, DEVICE_COST);
    const rows = await this.db.query<DeviceRow>(
      `insert into devices (id, type, name, secret_hash, lat, lon, grid_id, meta) values ($1, $2, $3, $4, $5, $6, $7, $8)
       on conflict (id) do nothing returning *`,
      [id, input.type, input.name ?? id, secretHash, input.lat ?? null, input.lon ?? null, input.gridId ?? null, JSON.stringify(input.meta ?? {})],
    );
    if (!rows[0]) throw Errors.deviceExists(`device ${id} already exists`);
    const entry = fromRow(rows[0]);
    this.devices.set(id, entry);
    this.bus.emit('device.changed', { deviceId: id, change: 'created' });
    return { device: publicDevice(entry), secret };
  }

  async update(id: string, patch: { name?: string; lat?: number | null; lon?: number | null; gridId?: string | null; meta?: Record<string, unknown> }): Promise<Device> {
    const e = this.devices.get(id);
    if (!e) throw Errors.deviceNotFound();
    // Only these fields: a patch never reaches the secret hash, the type or the enabled flag.
    const next: Entry = {
      ...e,
      name: patch.name ?? e.name,
      lat: patch.lat === undefined ? e.lat : patch.lat,
      lon: patch.lon === undefined ? e.lon : patch.lon,
      gridId: patch.gridId === undefined ? e.gridId : patch.gridId,
      meta: patch.meta ?? e.meta,
    };
    await this.db.query('update devices set name = $2, lat = $3, lon = $4, grid_id = $5, meta = $6, updated_at = now() where id = $1', [
      id, next.name, next.lat, next.lon, next.gridId, JSON.stringify(next.meta),
    ]);
    this.devices.set(id, next);
    this.bus.emit('device.changed', { deviceId: id, change: 'updated' });
    return publicDevice(next);
  }

  /** Returns the device when the secret is right and the device enabled; null otherwise. */
  async authenticate(id: string, secret: string): Promise<Device | null> {
    if (this.shared && !this.devices.has(id)) await this.refresh(id, 'created');
    const e = this.devices.get(id);
    if (!e || !e.enabled) return null;
    const digest = createHash('sha256').update(secret).digest();
    if (e.verified) return timingSafeEqual(e.verified, digest) ? e : null;
    if (!(await verifySecret(secret, e.secretHash))) return null;
    // The device may have been re-keyed, disabled or deleted while scrypt ran. A refresh that only
    // read the same row back (another node announcing the device) replaced the entry with an equal
    // one: that is no reason to refuse the device.
    const now = this.devices.get(id);
    if (!now || !now.enabled || now.secretHash !== e.secretHash) return null;
    now.verified = digest;
    return now;
  }

  /**
   * Cluster: another node changed this device. Reads it back from the
   * database and announces the change here (`remote`), so a disabled,
   * deleted or re-keyed device is disconnected from this node too.
   */
  async refresh(id: string, change: DeviceChange['change']): Promise<void> {
    const [row] = await this.db.query<DeviceRow>('select * from devices where id = $1', [id]);
    const had = this.devices.get(id);
    if (!row) {
      if (!had) return;
      this.devices.delete(id);
      this.dirtySeen.delete(id);
      this.bus.emit('device.changed', { deviceId: id, change: 'deleted', remote: true });
      return;
    }
    const next = fromRow(row);
    // Liveness is this node's own view; the secret check cache goes with a new hash.
    if (had) {
      next.online = had.online;
      next.node = had.node;
      next.since = had.since;
      next.lastSeen = Math.max(had.lastSeen ?? 0, next.lastSeen ?? 0) || null;
      if (had.secretHash === next.secretHash) next.verified = had.verified;
    }
    this.devices.set(id, next);
    if (had || change === 'created') this.bus.emit('device.changed', { deviceId: id, change: had ? change : 'created', remote: true });
  }

  async setEnabled(id: string, enabled: boolean): Promise<Device> {
    const e = this.devices.get(id);
    if (!e) throw Errors.deviceNotFound();
    await this.db.query('update devices set enabled = $2, updated_at = now() where id = $1', [id, enabled]);
    e.enabled = enabled;
    this.bus.emit('device.changed', { deviceId: id, change: enabled ? 'enabled' : 'disabled' });
    return publicDevice(e);
  }

  /**
   * The OsmAnd token of a device (Traccar Client's "device identifier", sent
   * as `?id=`): `<deviceId>.<mac>`, the MAC keyed by the device's stored
   * secret hash, so it never reveals the secret, is not usable over MQTT, and
   * stops working when the secret is rotated.
   */
  osmandToken(id: string): string {
    const e = this.devices.get(id);
    if (!e) throw Errors.deviceNotFound();
    return `${id}.${osmandMac(e)}`;
  }

  /** The enabled device an OsmAnd token stands for; null otherwise. */
  authenticateOsmand(token: string): Device | null {
    const i = token.lastIndexOf('.');
    if (i <= 0 || token.length > 160) return null;
    const e = this.devices.get(token.slice(0, i));
    if (!e || !e.enabled) return null;
    const want = Buffer.from(osmandMac(e));
    const got = Buffer.from(token.slice(i + 1));
    return got.length === want.length && timingSafeEqual(got, want) ? e : null;
  }

  async rotateSecret(id: string): Promise<string> {
    const e = this.devices.get(id);
    if (!e) throw Errors.deviceNotFound();
    const secret = newSecret();
    const hash = await hashSecret(secret, DEVICE_COST);
    await this.db.query('update devices set secret_hash = $2, updated_at = now() where id = $1', [id, hash]);
    const next: Entry = { ...e, secretHash: hash };
    delete next.verified;
    this.devices.set(id, next);
    this.bus.emit('device.changed', { deviceId: id, change: 'secret_rotated' });
    return secret;
  }

  async remove(id: string): Promise<void> {
    if (!this.devices.has(id)) throw Errors.deviceNotFound();
    await this.db.query('delete from devices where id = $1', [id]);
    this.devices.delete(id);
    this.bus.emit('device.changed', { deviceId: id, change: 'deleted' });
  }

  /** Hot path: called for every accepted message; the database learns of it every few seconds. */
  seen(id: string, ts = this.now()): void {
    const e = this.devices.get(id);
    if (!e) return;
    if (e.lastSeen === null || ts > e.lastSeen) e.lastSeen = ts;
    this.dirtySeen.add(id);
  }

  setOnline(id: string, online: boolean): void {
    const e = this.devices.get(id);
    if (!e) return;
    const link = this.link;
    if (link) return this.setOnlineHere(e, online, link);
    if (e.online === online) return;
    e.online = online;
    if (online) e.lastSeen = this.now();
    this.dirtySeen.add(id);
    this.bus.emit('device.status', { deviceId: id, online, lastSeen: e.lastSeen });
  }

  /**
   * Cluster: a connection of this node. A connect here is the newest one the
   * device made (it takes the device over from any other node); a disconnect
   * here counts only while this node still holds the device, so a device
   * that moved to another node stays online.
   */
  private setOnlineHere(e: Entry, online: boolean, link: LivenessLink): void {
    const self = link.nodeId;
    if (online) {
      if (e.online && e.node === self) return;
      const pending = this.pendingOffline.get(e.id);
      if (pending) clearTimeout(pending.timer);
      this.pendingOffline.delete(e.id);
      e.online = true;
      e.node = self;
      e.since = Math.max(micros(), (e.since ?? 0) + 1);
      e.lastSeen = this.now();
    } else {
      if (!e.online || e.node !== self) return;
      e.online = false;
      e.node = null;
    }
    const since = e.since ?? 0;
    this.dirtySeen.add(e.id);
    this.dirtyLive.set(e.id, { online, since });
    if (!online) {
      const id = e.id;
      const timer = setTimeout(() => {
        this.pendingOffline.delete(id);
        this.announceOffHere(id, since);
      }, OFFLINE_GRACE_MS);
      timer.unref();
      this.pendingOffline.set(id, { timer, since });
      return;
    }
    link.publish({ node: self, deviceId: e.id, online, since, lastSeen: e.lastSeen });
    this.bus.emit('device.status', { deviceId: e.id, online, lastSeen: e.lastSeen });
  }

  /** A disconnect here, once its grace has passed: said only if no newer connection holds the device. */
  private announceOffHere(id: string, since: number): void {
    const e = this.devices.get(id);
    const link = this.link;
    if (!e || !link || e.online) return;
    link.publish({ node: link.nodeId, deviceId: id, online: false, since, lastSeen: e.lastSeen });
    this.bus.emit('device.status', { deviceId: id, online: false, lastSeen: e.lastSeen });
  }

  /**
   * Cluster: another node's word. Applied to this node's view only (REST
   * answers from it); the console event went out from the node that saw the
   * connection, and nothing here acts on it as if the device came to this node.
   */
  applyLiveness(m: LivenessMessage): void {
    const link = this.link;
    if (!link || m.node === link.nodeId) return;
    if ('snapshot' in m) {
      const held = new Set<string>();
      for (const [deviceId, since, lastSeen] of m.snapshot) {
        held.add(deviceId);
        this.applyLiveness({ node: m.node, deviceId, online: true, since, lastSeen });
      }
      for (const e of this.devices.values()) {
        if (e.online && e.node === m.node && !held.has(e.id)) {
          e.online = false;
          e.node = null;
        }
      }
      return;
    }
    const e = this.devices.get(m.deviceId);
    if (!e) return;
    if (m.online) {
      if (!notOlder(m.since, m.node, e.since ?? 0, e.node ?? '')) return;
      e.online = true;
      e.node = m.node;
      e.since = m.since;
    } else {
      if (e.node !== m.node || (e.since ?? 0) > m.since) return;
      e.online = false;
      e.node = null;
    }
    if (m.lastSeen !== null && (e.lastSeen === null || m.lastSeen > e.lastSeen)) e.lastSeen = m.lastSeen;
  }

  /**
   * Cluster: this node's own connections again, for the other nodes and the
   * table (after Redis lost this node's presence, or its messages were lost
   * while Redis was away).
   */
  reassertLiveness(): void {
    const link = this.link;
    if (!link) return;
    const snapshot: Array<[string, number, number | null]> = [];
    for (const e of this.devices.values()) {
      if (!e.online || e.node !== link.nodeId) continue;
      snapshot.push([e.id, e.since ?? 0, e.lastSeen]);
      this.dirtyLive.set(e.id, { online: true, since: e.since ?? 0 });
    }
    link.publish({ node: link.nodeId, snapshot });
  }

  /**
   * Cluster: devices held by nodes that are gone are offline (in this node's
   * view; no event). Returns their ids. `alive`: the nodes still there.
   */
  sweepLiveness(alive: ReadonlySet<string>): string[] {
    const out: string[] = [];
    for (const e of this.devices.values()) {
      if (!e.online || !e.node || alive.has(e.node)) continue;
      e.online = false;
      e.node = null;
      out.push(e.id);
    }
    return out;
  }

  /** Cluster: the console event for devices a sweep found offline (sent once, by the node that swept the table). */
  announceOffline(ids: Iterable<string>): void {
    for (const id of ids) {
      const e = this.devices.get(id);
      if (e && !e.online) this.bus.emit('device.status', { deviceId: id, online: false, lastSeen: e.lastSeen });
    }
  }

  private async flushSeen(): Promise<void> {
    if (this.link) return this.flushShared(this.link.nodeId);
    if (this.dirtySeen.size === 0) return;
    const ids = [...this.dirtySeen];
    this.dirtySeen.clear();
    const seen: Array<number | null> = [];
    const online: boolean[] = [];
    for (const id of ids) {
      const e = this.devices.get(id);
      seen.push(e?.lastSeen ?? null);
      online.push(e?.online ?? false);
    }
    try {
      await this.db.query(
        // greatest(): in a cluster another node may have heard the device later.
        `update devices d set last_seen = greatest(d.last_seen, to_timestamp(u.seen / 1000.0)), online = u.online
         from unnest($1::text[], $2::float8[], $3::bool[]) as u(id, seen, online) where d.id = u.id`,
        [ids, seen, online],
      );
    } catch (err) {
      for (const id of ids) this.dirtySeen.add(id);
      this.logger.warn({ err: (err as Error).message }, 'could not store last-seen times; will retry');
    }
  }

  /**
   * Cluster: last-seen times as above, and this node's own connects and
   * disconnects with the connect time. A connect is written only over an
   * older one (the last connect wins, whichever node writes last); a
   * disconnect only where this node is still the holder.
   */
  private async flushShared(self: string): Promise<void> {
    if (this.dirtySeen.size === 0 && this.dirtyLive.size === 0) return;
    const ids = [...this.dirtySeen];
    this.dirtySeen.clear();
    const live = [...this.dirtyLive];
    this.dirtyLive.clear();
    const seen = ids.map((id) => this.devices.get(id)?.lastSeen ?? null);
    try {
      if (ids.length) {
        await this.db.query(
          `update devices d set last_seen = greatest(d.last_seen, to_timestamp(u.seen / 1000.0))
           from unnest($1::text[], $2::float8[]) as u(id, seen) where d.id = u.id and u.seen is not null`,
          [ids, seen],
        );
      }
      if (live.length) {
        await this.db.query(
          `update devices d set online = u.online, holder_node = case when u.online then $4 else null end, connected_us = u.since
           from unnest($1::text[], $2::bool[], $3::int8[]) as u(id, online, since)
           where d.id = u.id and (coalesce(d.connected_us, 0), coalesce(d.holder_node, '') collate "C") <= (u.since, $4::text collate "C") and (u.online or d.holder_node = $4)`,
          [live.map(([id]) => id), live.map(([, l]) => l.online), live.map(([, l]) => l.since), self],
        );
      }
    } catch (err) {
      for (const id of ids) this.dirtySeen.add(id);
      for (const [id, l] of live) if (!this.dirtyLive.has(id)) this.dirtyLive.set(id, l);
      this.logger.warn({ err: (err as Error).message }, 'could not store last-seen times; will retry');
    }
  }
}
