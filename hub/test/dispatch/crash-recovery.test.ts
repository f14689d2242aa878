/**
 * A single hub process (hub/src/main.ts, no Redis) SIGKILLed after a commit
 * whose follow-up it never made, restarted on the same data (embedded PGlite
 * in a data directory, or PostgreSQL):
 *
 * - killed right after a dispatch's commit (the testing option
 *   GRIDLINK_TEST_KILL_AFTER_DISPATCH_COMMIT=1 makes the process SIGKILL
 *   itself when it hears the dispatch committed, before anything else): the
 *   restarted hub has the dispatch's record and sends the worker's handheld
 *   the command committed with it; restarted once more, the handheld gets
 *   that same command again (one cmdId) and the case still has one dispatch.
 * - killed after committing a case owed an automatic dispatch, before making
 *   it (GRIDLINK_TEST_HOLD_AUTO_DISPATCH=1 keeps the process from ever
 *   dispatching automatically; the test waits until it has heard and held
 *   the case): the restarted hub dispatches it once to the nearest worker, and
 *   a further restart does not dispatch it again.
 *
 * - killed right after a decline's commit, or right after its own decline
 *   of a dispatch not accepted in time (GRIDLINK_TEST_KILL_AFTER_CASE_COMMIT=
 *   decline), before the re-dispatch it owes: the restarted hub makes that
 *   re-dispatch to the next worker with its one alarm, and a further restart
 *   makes nothing more.
 *
 * Real processes, real HTTP and MQTT; the kill point is fixed by the
 * process's own switch, not by timing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { commandTopic, decodeCommand, type Command } from '@gridlink/devices';
import { AT, districtGrids } from '../cases/fixtures.js';
import { engines, freshPostgresUrl, until } from '../helpers.js';
import { ADMIN_PASSWORD, api, HANG_GUARD_MS, login, startNode, type HubNode } from '../cluster/harness.js';

interface Case { id: string; status: string; workerId: string | null }

for (const engine of engines()) {
  describe(`a single hub killed after a commit, restarted (${engine.name})`, { timeout: 360_000 }, () => {
    const nodes: HubNode[] = [];
    const clients: MqttClient[] = [];
    const dirs: string[] = [];
    let failed = false;
    beforeEach(({ onTestFailed }) => onTestFailed(() => void (failed = true)));
    afterEach(async () => {
      if (failed || process.env.GRIDLINK_CLUSTER_LOGS === '1') for (const n of nodes) process.stderr.write(`--- ${n.id}\n${n.output()}\n`);
      failed = false;
      await Promise.all(clients.splice(0).map((m) => m.endAsync(true).catch(() => undefined)));
      await Promise.all(nodes.splice(0).map((n) => n.kill('SIGKILL')));
    }, 60_000);
    afterAll(() => {
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    });

    /** Settings of every process of one test: the same data, no Redis (the single process). */
    async function settings(extra: Record<string, string> = {}): Promise<Record<string, string>> {
      const dir = mkdtempSync(path.join(tmpdir(), 'gridlink-crash-dispatch-'));
      dirs.push(dir);
      return {
        GRIDLINK_DATA_DIR: dir,
        DATABASE_URL: engine.url.startsWith('postgres') ? await freshPostgresUrl(engine.url) : '',
        GRIDLINK_REDIS_URL: '',
        GRIDLINK_JWT_SECRET: 'c'.repeat(64),
        GRIDLINK_ADMIN_PASSWORD: ADMIN_PASSWORD,
        GRIDLINK_HOST: '127.0.0.1',
        GRIDLINK_HTTP_PORT: '0',
        GRIDLINK_MQTT_PORT: '0',
        GRIDLINK_LOG_LEVEL: 'info',
        GRIDLINK_DISPATCH_ACCEPT_TIMEOUT_S: '3600',
        ...extra,
      };
    }

    async function start(id: string, env: Record<string, string>): Promise<{ node: HubNode; token: string }> {
      const node = await startNode(id, env);
      nodes.push(node);
      return { node, token: await login(node.http) };
    }

    const exited = (n: HubNode) => until(() => n.child.exitCode !== null || n.child.signalCode !== null, HANG_GUARD_MS, 20);

    /** A handheld and its worker in grid G-A1 at `fix` (the fix stored first, so the worker has a position from the start). */
    async function addWorker(n: HubNode, token: string, id: string, fix: { lat: number; lon: number }): Promise<string> {
      const d = await api<{ secret: string }>(n.http, 'POST', '/devices', { type: 'handheld', id: `hh-${id}` }, token);
      expect(d.status, JSON.stringify(d.body)).toBe(201);
      const f = await fetch(`${n.http}/api/v1/ingest/hh-${id}/location`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`hh-${id}:${d.body.secret}`).toString('base64')}`, 'content-type': 'application/json' },
        body: JSON.stringify({ ts: Date.now(), ...fix }),
      });
      expect(f.status, await f.text()).toBe(202);
      const w = await api(n.http, 'POST', '/workers', { id, name: id, deviceId: `hh-${id}`, gridIds: ['G-A1'], onDuty: true }, token);
      expect(w.status, JSON.stringify(w.body)).toBe(201);
      return d.body.secret;
    }

    /** The handheld connected to `n` and subscribed to its commands (a clean session: what it gets comes from the outbox). */
    async function handheld(n: HubNode, id: string, secret: string): Promise<Command[]> {
      const m = mqtt.connect(`mqtt://127.0.0.1:${n.mqttPort}`, { clientId: id, username: id, password: secret, reconnectPeriod: 0, connectTimeout: 30_000, clean: true });
      clients.push(m);
      await new Promise<void>((resolve, reject) => m.once('connect', () => resolve()).once('error', reject));
      const got: Command[] = [];
      m.on('message', (topic, payload) => {
        const cmd = topic === commandTopic(id) ? decodeCommand(payload) : null;
        if (cmd) got.push(cmd);
      });
      await m.subscribeAsync(commandTopic(id), { qos: 1 });
      return got;
    }

    const dispatches = async (n: HubNode, token: string, caseId: string) =>
      (await api<{ items: Array<{ workerId: string }> }>(n.http, 'GET', `/cases/${caseId}/dispatches?path=false`, undefined, token)).body.items;
    const dispatchOf = (got: Command[], caseId: string) => () => got.find((x) => x.type === 'dispatch' && x.case.id === caseId);
    const logged = (n: HubNode, caseId: string, msg: string) => n.output().split('\n').some((l) => l.includes(`"msg":"${msg}"`) && l.includes(`"caseId":"${caseId}"`));

    it('sends, after the restart, the command committed with a dispatch whose process was killed right after the commit', async () => {
      const env = await settings();
      const a = await start('hub-a', { ...env, GRIDLINK_TEST_KILL_AFTER_DISPATCH_COMMIT: '1' });
      expect((await api(a.node.http, 'PUT', '/grids', districtGrids(), a.token)).status).toBe(200);
      const secret = await addWorker(a.node, a.token, 'w-crash', AT.A1);
      const c = await api<Case>(a.node.http, 'POST', '/cases', { category: 'E0102', ...AT.A1, description: 'crash after commit' }, a.token);
      expect(c.status, JSON.stringify(c.body)).toBe(201);
      expect((await api(a.node.http, 'POST', `/cases/${c.body.id}/actions`, { action: 'register' }, a.token)).status).toBe(200);
      // The process kills itself once the dispatch is committed: the answer may or may not have left before.
      await api(a.node.http, 'POST', `/cases/${c.body.id}/actions`, { action: 'dispatch', workerId: 'w-crash' }, a.token).catch(() => null);
      await exited(a.node);
      // Killed by its own switch (its last log line may be lost with the process's buffers).
      expect(a.node.child.signalCode).toBe('SIGKILL');

      const b = await start('hub-b', env);
      // The record was committed with the case, not after it.
      expect(await api<Case>(b.node.http, 'GET', `/cases/${c.body.id}`, undefined, b.token)).toMatchObject({ body: { status: 'dispatched', workerId: 'w-crash' } });
      expect((await dispatches(b.node, b.token, c.body.id)).map((d) => d.workerId)).toEqual(['w-crash']);
      expect((await api<{ status: string }>(b.node.http, 'GET', '/workers/w-crash', undefined, b.token)).body.status).toBe('dispatched');
      // The command committed with it reaches the handheld.
      const got = await handheld(b.node, 'hh-w-crash', secret);
      const cmd = await until(dispatchOf(got, c.body.id), HANG_GUARD_MS, 50);
      expect(cmd).toMatchObject({ type: 'dispatch', case: { id: c.body.id, category: 'E0102' } });

      // Once more: the handheld gets the same command (one cmdId), and the case still has its one dispatch.
      await b.node.kill('SIGKILL');
      const c3 = await start('hub-c', env);
      const again = await handheld(c3.node, 'hh-w-crash', secret);
      const cmd2 = await until(dispatchOf(again, c.body.id), HANG_GUARD_MS, 50);
      expect(cmd2).toEqual(cmd);
      expect((await dispatches(c3.node, c3.token, c.body.id)).map((d) => d.workerId)).toEqual(['w-crash']);
    });

    it('makes, after the restart, the automatic dispatch a case was owed when its process was killed, and only once', async () => {
      const env = await settings({ GRIDLINK_DISPATCH_AUTO: 'E0101' });
      const a = await start('hub-a', { ...env, GRIDLINK_TEST_HOLD_AUTO_DISPATCH: '1' });
      expect((await api(a.node.http, 'PUT', '/grids', districtGrids(), a.token)).status).toBe(200);
      const secret = await addWorker(a.node, a.token, 'w-near', { lat: AT.A1.lat, lon: AT.A1.lon + 0.0005 });
      await addWorker(a.node, a.token, 'w-far', { lat: AT.A1.lat, lon: AT.A1.lon + 0.004 });
      const c = await api<Case>(a.node.http, 'POST', '/cases', { category: 'E0101', ...AT.A1, description: 'owed an automatic dispatch' }, a.token);
      expect(c.status, JSON.stringify(c.body)).toBe(201);
      await until(() => logged(a.node, c.body.id, 'automatic dispatch held (testing option)') || null, HANG_GUARD_MS, 20);
      await a.node.kill('SIGKILL');

      const b = await start('hub-b', env);
      const got = await handheld(b.node, 'hh-w-near', secret);
      const cmd = await until(dispatchOf(got, c.body.id), HANG_GUARD_MS, 50);
      expect(cmd.type === 'dispatch' && cmd.case.id).toBe(c.body.id);
      expect((await api<Case>(b.node.http, 'GET', `/cases/${c.body.id}`, undefined, b.token)).body).toMatchObject({ status: 'dispatched', workerId: 'w-near' });
      expect((await dispatches(b.node, b.token, c.body.id)).map((d) => d.workerId)).toEqual(['w-near']);
      expect(logged(b.node, c.body.id, 'automatic dispatch owed since before the restart made')).toBe(true);

      // Restarted again: no longer owed (it has its dispatch), so nothing more; the handheld gets the one command again.
      await b.node.kill('SIGKILL');
      const c3 = await start('hub-c', env);
      const again = await handheld(c3.node, 'hh-w-near', secret);
      expect(await until(dispatchOf(again, c.body.id), HANG_GUARD_MS, 50)).toEqual(cmd);
      expect((await dispatches(c3.node, c3.token, c.body.id)).map((d) => d.workerId)).toEqual(['w-near']);
      expect(logged(c3.node, c.body.id, 'automatic dispatch owed since before the restart made')).toBe(false);
    });

    /** The stored alarms of a dispatch alarm kind for a worker's handheld (one row per active (kind, handheld); a repeat counts). */
    const alarmsOf = async (n: HubNode, token: string, rule: string, deviceId: string) =>
      (await api<{ items: Array<{ message: string; count: number }> }>(n.http, 'GET', `/alarms?rule=${rule}&deviceId=${deviceId}`, undefined, token)).body.items;
    const records = async (n: HubNode, token: string, caseId: string) =>
      (await api<{ items: Array<{ workerId: string; outcome: string | null }> }>(n.http, 'GET', `/cases/${caseId}/dispatches?path=false`, undefined, token)).body.items
        .map((d) => [d.workerId, d.outcome]);

    for (const via of ['decline', 'timeout'] as const) {
      it(`makes, after the restart, the re-dispatch a ${via} owed when its process was killed right after the decline's commit, and only once`, async () => {
        const env = await settings(via === 'timeout' ? { GRIDLINK_DISPATCH_ACCEPT_TIMEOUT_S: '2' } : {});
        const a = await start('hub-a', { ...env, GRIDLINK_TEST_KILL_AFTER_CASE_COMMIT: 'decline' });
        expect((await api(a.node.http, 'PUT', '/grids', districtGrids(), a.token)).status).toBe(200);
        await addWorker(a.node, a.token, 'w-first', { lat: AT.A1.lat, lon: AT.A1.lon + 0.0005 });
        const secret = await addWorker(a.node, a.token, 'w-next', { lat: AT.A1.lat, lon: AT.A1.lon + 0.002 });
        await addWorker(a.node, a.token, 'w-far', { lat: AT.A1.lat, lon: AT.A1.lon + 0.006 });
        const c = await api<Case>(a.node.http, 'POST', '/cases', { category: 'E0102', ...AT.A1, description: `re-dispatch owed after a ${via}` }, a.token);
        expect(c.status, JSON.stringify(c.body)).toBe(201);
        expect((await api(a.node.http, 'POST', `/cases/${c.body.id}/actions`, { action: 'register' }, a.token)).status).toBe(200);
        const d = await api(a.node.http, 'POST', `/cases/${c.body.id}/actions`, { action: 'dispatch', workerId: 'w-first' }, a.token);
        expect(d.status, JSON.stringify(d.body)).toBe(200);
        // The decline (the dispatcher's, or the hub's own once the accept window has passed) kills the process after its commit.
        if (via === 'decline') await api(a.node.http, 'POST', `/cases/${c.body.id}/actions`, { action: 'decline', note: 'cannot go' }, a.token).catch(() => null);
        await exited(a.node);
        expect(a.node.child.signalCode).toBe('SIGKILL');

        // The next worker's accept window is long from here on: what follows is the one re-dispatch, not another timeout.
        const b = await start('hub-b', { ...env, GRIDLINK_DISPATCH_ACCEPT_TIMEOUT_S: '3600' });
        const got = await handheld(b.node, 'hh-w-next', secret);
        const cmd = await until(dispatchOf(got, c.body.id), HANG_GUARD_MS, 50);
        expect(cmd.type === 'dispatch' && cmd.case.id).toBe(c.body.id);
        expect((await api<Case>(b.node.http, 'GET', `/cases/${c.body.id}`, undefined, b.token)).body).toMatchObject({ status: 'dispatched', workerId: 'w-next' });
        expect(await records(b.node, b.token, c.body.id)).toEqual([['w-first', via === 'timeout' ? 'timeout' : 'declined'], ['w-next', null]]);
        const rule = via === 'timeout' ? 'dispatch.dispatch_timeout' : 'dispatch.dispatch_declined';
        const raised = await until(async () => {
          const items = await alarmsOf(b.node, b.token, rule, 'hh-w-first');
          return items.length > 0 ? items : null;
        }, HANG_GUARD_MS, 50);
        expect(raised.map((x) => x.count)).toEqual([1]);
        expect(raised[0]!.message).toContain('已转派 w-next');
        expect(logged(b.node, c.body.id, 're-dispatch owed since before the restart made')).toBe(true);

        // Restarted again: nothing is owed any more.
        await b.node.kill('SIGKILL');
        const c3 = await start('hub-c', { ...env, GRIDLINK_DISPATCH_ACCEPT_TIMEOUT_S: '3600' });
        const again = await handheld(c3.node, 'hh-w-next', secret);
        expect(await until(dispatchOf(again, c.body.id), HANG_GUARD_MS, 50)).toEqual(cmd);
        expect(await records(c3.node, c3.token, c.body.id)).toEqual([['w-first', via === 'timeout' ? 'timeout' : 'declined'], ['w-next', null]]);
        expect((await alarmsOf(c3.node, c3.token, rule, 'hh-w-first')).map((x) => x.count)).toEqual([1]);
        expect(logged(c3.node, c.body.id, 're-dispatch owed since before the restart made')).toBe(false);
      });
    }
  });
}
