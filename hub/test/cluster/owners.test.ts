/**
 * Device owners (cluster/owners.ts) without Redis: the rendezvous hash every
 * node computes alike, and a node's view when a forward reaches nobody.
 */
import { describe, expect, it } from 'vitest';
import { PartitionView, rendezvousOwner, type OwnershipChange } from '../../src/cluster/owners.js';

const ids = Array.from({ length: 6000 }, (_, i) => `dev-${i}`);

describe('rendezvousOwner', () => {
  it('answers the same owner whatever order the nodes are listed in, and spreads devices over the nodes', () => {
    const nodes = ['node-a', 'node-b', 'node-c'];
    const per = new Map<string, number>();
    for (const d of ids) {
      const o = rendezvousOwner(d, nodes)!;
      expect(rendezvousOwner(d, [...nodes].reverse())).toBe(o);
      per.set(o, (per.get(o) ?? 0) + 1);
    }
    for (const n of nodes) expect(per.get(n)! / ids.length, n).toBeGreaterThan(0.25);
    expect(rendezvousOwner('dev-1', [])).toBeNull();
  });

  it('moves only the devices of a node that leaves, and only devices to a node that joins', () => {
    const three = ['node-a', 'node-b', 'node-c'];
    const two = ['node-a', 'node-c'];
    for (const d of ids) {
      const before = rendezvousOwner(d, three);
      const after = rendezvousOwner(d, two);
      if (before !== 'node-b') expect(after, d).toBe(before);
      // The reverse, node-b joining: a device either stays or goes to node-b.
      if (after !== before) expect(before).toBe('node-b');
    }
  });
});

describe('PartitionView', () => {
  function view(published: number[]) {
    const v = new PartitionView('node-a', 60_000, {
      publish: async () => published.shift() ?? 1,
      subscribe: async (deliver) => void deliver(Buffer.from('hello')),
      unsubscribe: async () => undefined,
    });
    return { v };
  }

  it('knows no owner before presence, then the rendezvous owner of the live nodes', () => {
    const { v } = view([]);
    expect(v.ownerOf('dev-1')).toBeNull();
    v.setPresent([{ id: 'node-b', startedAt: 2 }, { id: 'node-a', startedAt: 1 }]);
    expect(v.peers()).toEqual(['node-a', 'node-b']);
    for (const d of ids.slice(0, 50)) expect(v.ownerOf(d)).toBe(rendezvousOwner(d, ['node-a', 'node-b']));
  });

  it('drops an owner a forward reached nobody at, tells who owned what before and after, and counts it again when it comes back as a new process', async () => {
    const { v } = view([0]);
    const changes: OwnershipChange[] = [];
    v.onChange((c) => {
      changes.push(c);
    });
    v.setPresent([{ id: 'node-a', startedAt: 1 }, { id: 'node-b', startedAt: 2 }]);
    const ofB = ids.find((d) => v.ownerOf(d) === 'node-b')!;
    expect(changes).toHaveLength(1);
    // node-b was SIGKILLed: its presence key lives on, its subscription does not.
    expect(await v.forward('node-b', Buffer.from('x'))).toBe(false);
    expect(changes).toHaveLength(2);
    expect(changes[1]!.before(ofB)).toBe('node-b');
    expect(changes[1]!.after(ofB)).toBe('node-a');
    expect([...changes[1]!.gone]).toEqual(['node-b']);
    expect(v.ownerOf(ofB)).toBe('node-a');
    // Presence renewed with node-b's stale key: still out.
    v.setPresent([{ id: 'node-a', startedAt: 1 }, { id: 'node-b', startedAt: 2 }]);
    expect(v.peers()).toEqual(['node-a']);
    // node-b restarted (another start time): back in, and its devices with it.
    v.setPresent([{ id: 'node-a', startedAt: 1 }, { id: 'node-b', startedAt: 3 }]);
    expect(v.peers()).toEqual(['node-a', 'node-b']);
    expect(v.ownerOf(ofB)).toBe('node-b');
    expect(changes).toHaveLength(3);
    // A forward that reached its owner changes nothing.
    expect(await v.forward('node-b', Buffer.from('x'))).toBe(true);
    expect(changes).toHaveLength(3);
  });

  it('delivers forwarded signals once subscribed, and none after close', async () => {
    const got: string[] = [];
    const { v } = view([]);
    await v.onSignal((p) => got.push(p.toString()));
    expect(got).toEqual(['hello']);
    await v.close();
    v.deliver(Buffer.from('late'));
    expect(got).toEqual(['hello']);
  });

  it('leaves cleanly: out of its own view after the hand-over, a notice to each peer, then no more signals; a peer drops a node on its notice', async () => {
    const sent: Array<[string, string]> = [];
    const steps: string[] = [];
    const v = new PartitionView('node-a', 60_000, {
      publish: async (node, payload) => {
        sent.push([node, payload.toString('latin1')]);
        return 1;
      },
      subscribe: async () => undefined,
      unsubscribe: async () => void steps.push('unsubscribed'),
    });
    v.setPresent([{ id: 'node-a', startedAt: 1 }, { id: 'node-b', startedAt: 2 }]);
    v.onChange(async (c) => {
      steps.push(`flushed ${c.before('dev-1') === null ? 'none' : 'owned'}`);
    });
    await v.leave();
    expect(v.peers()).toEqual(['node-b']);
    for (const d of ids.slice(0, 20)) expect(v.ownerOf(d)).toBe('node-b');
    expect(steps).toEqual(['flushed owned', 'unsubscribed']);
    expect(sent).toEqual([['node-b', 'Lnode-a']]);

    const peer = new PartitionView('node-b', 60_000, { publish: async () => 1, subscribe: async () => undefined, unsubscribe: async () => undefined });
    peer.setPresent([{ id: 'node-a', startedAt: 1 }, { id: 'node-b', startedAt: 2 }]);
    peer.deliver(Buffer.from('Lnode-a', 'latin1'));
    expect(peer.peers()).toEqual(['node-b']);
  });

  it('announces itself to each peer once present, and a peer reads presence again on a notice but not on its own', async () => {
    const sent: Array<[string, string]> = [];
    const v = new PartitionView('node-a', 60_000, {
      publish: async (node, payload) => {
        sent.push([node, payload.toString('latin1')]);
        return 1;
      },
      subscribe: async () => undefined,
      unsubscribe: async () => undefined,
    });
    v.setPresent([{ id: 'node-a', startedAt: 1 }, { id: 'node-b', startedAt: 2 }, { id: 'node-c', startedAt: 3 }]);
    await v.join();
    expect(sent).toEqual([['node-b', 'Jnode-a'], ['node-c', 'Jnode-a']]);

    let reads = 0;
    const got: string[] = [];
    const peer = new PartitionView('node-b', 60_000, { publish: async () => 1, subscribe: async () => undefined, unsubscribe: async () => undefined }, () => reads++);
    await peer.onSignal((p) => got.push(p.toString('latin1')));
    peer.deliver(Buffer.from('Jnode-a', 'latin1'));
    peer.deliver(Buffer.from('Jnode-b', 'latin1'));
    expect(reads).toBe(1);
    // A join notice is not a forwarded signal.
    expect(got).toEqual([]);
  });
});
