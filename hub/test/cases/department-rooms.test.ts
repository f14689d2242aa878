/**
 * A department's membership change moves the user's open sockets at once:
 * added to a department, an officer's connected console stops receiving
 * their region's case events and starts receiving the department's; removed
 * again, it gets the region's back — all on the same socket, no reconnect.
 * "Not received" is proven by order: events on one socket arrive in the
 * order they were sent, so once a later event is here an earlier one that
 * was going to arrive is here too.
 */
import type { Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemActor } from '../../src/cases/index.js';
import type { CaseSummary } from '../../src/core/services.js';
import { engines, until } from '../helpers.js';
import { AT, startCaseHub, type CaseHub } from './fixtures.js';

type Seen = { id: string; change?: string; departmentId?: string | null };

for (const engine of engines()) {
  describe(`department membership re-rooms open sockets (${engine.name})`, () => {
    let h: CaseHub;
    let token = '';
    let s: Socket;
    const seen: Seen[] = [];
    let connects = 0;

    beforeAll(async () => {
      h = await startCaseHub({ databaseUrl: engine.url, rules: false });
      await h.hub.ctx.db.query("insert into users (id, username, password_hash, role, region_id, display_name) values ('u-mover', 'mover', 'x', 'officer', null, 'mover')");
      token = h.hub.ctx.auth.sign({ id: 'u-mover', username: 'mover', role: 'officer', regionId: null, displayName: 'mover' });
      const { io } = await import('socket.io-client');
      s = io(h.http, { path: '/socket.io', auth: { token }, transports: ['websocket'], reconnection: false, forceNew: true });
      s.on('case', (c: Seen) => seen.push(c));
      s.on('connect', () => connects++);
      await new Promise<void>((resolve, reject) => {
        s.once('connect', () => resolve());
        s.once('connect_error', reject);
      });
    });
    afterAll(async () => {
      s?.close();
      await h?.stop();
    });

    const sys = systemActor('test');
    async function registered(category: string, at: { lat: number; lon: number }): Promise<CaseSummary> {
      const { case: c } = await h.cases.create({ category, ...at, source: 'officer', actor: sys });
      return h.cases.act(c.id, 'register', sys);
    }
    const route = (id: string, departmentId: string) => h.api('POST', `/cases/${id}/actions`, { action: 'route', departmentId });
    /** Waits for a case event, then returns everything seen since `from`. */
    async function upTo(from: number, id: string, change: string): Promise<Seen[]> {
      await until(() => seen.slice(from).find((c) => c.id === id && c.change === change));
      return seen.slice(from);
    }

    it('should get region events while not a member', async () => {
      const from = seen.length;
      const c = await registered('E0101', AT.A1);
      const got = await upTo(from, c.id, 'register');
      expect(got.map((x) => x.id)).toContain(c.id);
    });

    it('should move to the department room when added, on the same socket', async () => {
      expect((await h.api('PATCH', '/departments/chengguan', { userIds: ['u-mover'] })).status).toBe(200);
      // The PATCH answers once the user's sockets have changed rooms.
      const from = seen.length;
      const regionOnly = await registered('E0102', AT.B1); // never routed: a region event only
      const water = await registered('E0401', AT.A2);
      expect((await route(water.id, 'shuiwu')).status).toBe(200); // another department's
      const mine = await registered('E0101', AT.A1);
      expect((await route(mine.id, 'chengguan')).status).toBe(200);
      const got = await upTo(from, mine.id, 'route');
      expect(got.map((x) => x.id)).not.toContain(regionOnly.id);
      expect(got.map((x) => x.id)).not.toContain(water.id);
      expect(got.every((x) => x.id === mine.id)).toBe(true);
      expect(connects).toBe(1);
      expect(s.connected).toBe(true);
    });

    it('should get region events again when removed, still without a reconnect', async () => {
      expect((await h.api('PATCH', '/departments/chengguan', { userIds: [] })).status).toBe(200);
      const from = seen.length;
      const c = await registered('E0102', AT.B2);
      const got = await upTo(from, c.id, 'register');
      expect(got.map((x) => x.id)).toContain(c.id);
      expect(connects).toBe(1);
    });
  });
}
