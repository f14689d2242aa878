/**
 * Device authentication in a cluster, with two registries on one database:
 * a device registered through node B is authenticated by node A on its
 * first message, also when B's announcement of the new device reaches A
 * while A is still checking the secret; a re-key or a disable on B that A
 * hears of during the check still refuses the old secret.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EventBus } from '../../src/core/bus.js';
import { createLogger } from '../../src/core/logger.js';
import { DeviceRegistry } from '../../src/registry/index.js';
import { migrate } from '../../src/store/migrate.js';
import { storeMigrations } from '../../src/store/schema.js';
import { openDb, type Db } from '../../src/store/db.js';

/**
 * The secret check is held open until the test lets it finish, so "the other
 * node changed the device while this one was checking" happens on every run,
 * not only when scrypt happens to be slower than the re-key (it is not, on a
 * busy machine).
 */
const gate = vi.hoisted(() => ({ hold: null as Promise<void> | null, entered: null as (() => void) | null }));
vi.mock('../../src/core/secrets.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/core/secrets.js')>();
  return {
    ...real,
    verifySecret: async (secret: string, stored: string) => {
      const ok = await real.verifySecret(secret, stored);
      gate.entered?.();
      if (gate.hold) await gate.hold;
      return ok;
    },
  };
});

/** Holds the next secret checks open; resolves `checked` once one has computed its answer. */
function holdChecks(): { checked: Promise<void>; release: () => void } {
  let release!: () => void;
  gate.hold = new Promise<void>((r) => { release = r; });
  const checked = new Promise<void>((r) => { gate.entered = r; });
  return { checked, release: () => { gate.hold = null; gate.entered = null; release(); } };
}

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
    const held = holdChecks();
    const checking = a.authenticate('smoke-new', secret);
    await held.checked;
    await a.refresh('smoke-new', 'created');
    held.release();
    const device = await checking;
    expect(device?.id).toBe('smoke-new');
    // Verified once: the next message is checked against the cached digest, and a wrong secret is still refused.
    expect((await a.authenticate('smoke-new', secret))?.id).toBe('smoke-new');
    expect(await a.authenticate('smoke-new', `${secret}x`)).toBeNull();
  });

  it('refuses the old secret when the device is re-keyed or disabled on the other node during the check', async () => {
    const { secret } = await b.register({ type: 'sensor.smoke', id: 'smoke-rekey' });
    const held = holdChecks();
    const checking = a.authenticate('smoke-rekey', secret);
    await held.checked;
    await b.rotateSecret('smoke-rekey');
    await a.refresh('smoke-rekey', 'secret_rotated');
    held.release();
    expect(await checking).toBeNull();

    const { secret: s2 } = await b.register({ type: 'sensor.smoke', id: 'smoke-off' });
    const held2 = holdChecks();
    const checking2 = a.authenticate('smoke-off', s2);
    await held2.checked;
    await b.setEnabled('smoke-off', false);
    await a.refresh('smoke-off', 'disabled');
    held2.release();
    expect(await checking2).toBeNull();

    // Without a change during the check the same kind of secret is accepted: the refusals above come from the change.
    const { secret: s3 } = await b.register({ type: 'sensor.smoke', id: 'smoke-same' });
    const held3 = holdChecks();
    const checking3 = a.authenticate('smoke-same', s3);
    await held3.checked;
    held3.release();
    expect((await checking3)?.id).toBe('smoke-same');
  });
});
