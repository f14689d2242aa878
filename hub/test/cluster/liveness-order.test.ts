/**
 * Device liveness in a cluster, the ordering part, with two registries on
 * one database and their words delivered in the worst order: the last
 * connect wins, not the last message or the last write to the table.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EventBus } from '../../src/core/bus.js';
import { createLogger } from '../../src/core/logger.js';
import { DeviceRegistry, type LivenessMessage } from '../../src/registry/index.js';
import { migrate } from '../../src/store/migrate.js';
import { storeMigrations } from '../../src/store/schema.js';
import { openDb, type Db } from '../../src/store/db.js';

describe('device liveness across two nodes', () => {
  let db: Db;
  const logger = createLogger('silent');
  let a: DeviceRegistry, b: DeviceRegistry;
  /** What each node sent, not yet delivered to the other. */
  const sent: Record<'a' | 'b', LivenessMessage[]> = { a: [], b: [] };
  const statusOn: Record<'a' | 'b', Array<{ deviceId: string; online: boolean }>> = { a: [], b: [] };

  async function node(name: 'a' | 'b'): Promise<DeviceRegistry> {
    const bus = new EventBus(logger);
    bus.on('device.status', 'test', (s) => {
      statusOn[name].push({ deviceId: s.deviceId, online: s.online });
    });
    const r = new DeviceRegistry(db, bus, logger);
    r.linkLiveness({ nodeId: `node-${name}`, publish: (m) => sent[name].push(m) });
    await r.start({ shared: true });
    return r;
  }
  const deliver = (from: 'a' | 'b', to: DeviceRegistry) => {
    for (const m of sent[from].splice(0)) to.applyLiveness(m);
  };
  const row = async (id: string) => (await db.query<{ online: boolean; holder_node: string | null }>('select online, holder_node from devices where id = $1', [id]))[0];

  beforeEach(async () => {
    db = await openDb({ url: 'memory://', dataDir: '' });
    await migrate(db, storeMigrations);
    // The columns cluster mode adds (cluster/index.ts).
    await db.query('alter table devices add column if not exists holder_node text, add column if not exists connected_us bigint');
    for (const id of ['d1', 'd2', 'd3']) await db.query("insert into devices (id, type, name, secret_hash) values ($1, 'sensor.smoke', $1, 'x')", [id]);
    sent.a.length = 0;
    sent.b.length = 0;
    statusOn.a.length = 0;
    statusOn.b.length = 0;
    a = await node('a');
    b = await node('b');
  });
  afterEach(async () => {
    await db.close();
  });

  it('keeps a device taken over by B online on both nodes and in the table, whatever A says or writes after', async () => {
    a.setOnline('d1', true);
    b.setOnline('d1', true); // takeover: the same device connects to B
    deliver('b', a); // A hears of B's connect first, then its own connection closes
    a.setOnline('d1', false);
    deliver('a', b); // B hears A's (older) connect late
    expect(a.get('d1')!.online).toBe(true);
    expect(b.get('d1')!.online).toBe(true);
    // Only the node that saw the connection announces it; A's close of a taken-over connection is no event.
    expect(statusOn.a).toEqual([{ deviceId: 'd1', online: true }]);
    // B writes first, A (with its older connect) last.
    await b.stop();
    await a.stop();
    expect(await row('d1')).toEqual({ online: true, holder_node: 'node-b' });
  });

  it('keeps the device online when A closes its connection before it hears of the takeover and writes last', async () => {
    a.setOnline('d2', true);
    b.setOnline('d2', true);
    a.setOnline('d2', false); // A has not heard of B yet: it saw its own connection close
    deliver('a', b);
    deliver('b', a);
    expect(a.get('d2')!.online).toBe(true);
    expect(b.get('d2')!.online).toBe(true);
    await b.stop();
    await a.stop();
    expect(await row('d2')).toEqual({ online: true, holder_node: 'node-b' });
    // A's close of the taken-over connection was never announced as the device going offline.
    expect(statusOn.a).toEqual([{ deviceId: 'd2', online: true }]);
    expect(sent.a.filter((m) => 'online' in m && !m.online)).toEqual([]);
  });

  it('sweeps the devices of a node that is gone, leaves those that moved, and a snapshot replaces what a node said before', async () => {
    b.setOnline('d1', true);
    b.setOnline('d2', true);
    b.setOnline('d3', true);
    deliver('b', a);
    a.setOnline('d2', true); // d2 comes to A
    expect(a.sweepLiveness(new Set(['node-a']))).toEqual(['d1', 'd3']);
    expect(['d1', 'd2', 'd3'].map((id) => a.get(id)!.online)).toEqual([false, true, false]);
    // B is back (its key had expired) and tells what it holds: d3 only.
    b.setOnline('d1', false);
    sent.b.length = 0;
    b.reassertLiveness();
    deliver('b', a);
    expect(['d1', 'd2', 'd3'].map((id) => a.get(id)!.online)).toEqual([false, true, true]);
    expect(a.get('d2')!.online).toBe(true);
  });

  it('starts with nothing held by itself: what the table says it held is from before a restart', async () => {
    a.setOnline('d1', true);
    await a.stop();
    expect(await row('d1')).toEqual({ online: true, holder_node: 'node-a' });
    const again = await node('a');
    expect(again.get('d1')!.online).toBe(false);
    expect(await row('d1')).toEqual({ online: false, holder_node: null });
    await again.stop();
  });
});
