/**
 * Device authentication in a cluster, with two registries on one database:
 * a device registered through node B is authenticated by node A on its
 * first message, also when B's announcement of the new device reaches A
 * while A is still checking the secret; a re-key or a disable on B that A
 * hears of during the check still refuses the old secret.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EventBus } from '../../src/core/bus.js';
import { createLogger } from '../../src/core/logger.js';
import { DeviceRegistry } from '../../src/registry/index.js';
import { migrate } from '../../src/store/migrate.js';
import { storeMigrations } from '../../src/store/schema.js';
import { openDb, type Db } from '../../src/store/db.js';

describe('device authentication across two nodes', () => {
  let db: Db;
  const logger = createLogger('silent');
  let a: DeviceRegistry, b: DeviceRegistry;

  async function node(name: string): Promise<DeviceRegistry> {
    const r = new DeviceRegistry(db, new EventBus(logger), logger);
    r.linkLiveness({ nodeId: name, publish: () => undefined });
    await r.start({ shared: true });
    return r;
  }

  beforeEach(async () => {
    db = await openDb({ url: 'memory://', dataDir: '' });
    await migrate(db, storeMigrations);
    await db.query('alter table devices add column if not exists holder_node text, add column if not exists connected_us bigint');
    a = await node('node-a');
    b = await node('node-b');
  });
  afterEach(async () => {
    await a.stop();
    await b.stop();
    await db.close();
  });

  it('authenticates a device registered on the other node when that node\'s announcement arrives during the secret check', async () => {
    const { secret } = await b.register({ type: 'sensor.smoke', id: 'smoke-new' });
    // The first message reaches A; B's "created" reaches A while A runs scrypt.
    const checking = a.authenticate('smoke-new', secret);
    const announced = a.refresh('smoke-new', 'created');
    const [device] = await Promise.all([checking, announced]);
    expect(device?.id).toBe('smoke-new');
    // Verified once: the next message is checked against the cached digest, and a wrong secret is still refused.
    expect((await a.authenticate('smoke-new', secret))?.id).toBe('smoke-new');
    expect(await a.authenticate('smoke-new', `${secret}x`)).toBeNull();
  });

  it('refuses the old secret when the device is re-keyed or disabled on the other node during the check', async () => {
    const { secret } = await b.register({ type: 'sensor.smoke', id: 'smoke-rekey' });
    const checking = a.authenticate('smoke-rekey', secret);
    await b.rotateSecret('smoke-rekey');
    await a.refresh('smoke-rekey', 'secret_rotated');
    expect(await checking).toBeNull();

    const { secret: s2 } = await b.register({ type: 'sensor.smoke', id: 'smoke-off' });
    const checking2 = a.authenticate('smoke-off', s2);
    await b.setEnabled('smoke-off', false);
    await a.refresh('smoke-off', 'disabled');
    expect(await checking2).toBeNull();
  });
});
