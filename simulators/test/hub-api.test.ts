import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Command } from '@gridlink/devices';
import type { CaseSummary, CreateCaseBody, CreateUserBody, User } from '@gridlink/devices/contract';
import { createHub, testConfig, type Hub } from '@gridlink/hub';
import { AppLink } from '../src/devices/app-link.js';
import { HubClient } from '../src/hub-client.js';
import { until } from './until.js';

/**
 * The simulators' REST surfaces against a real hub: the client follows the contract's pages, and a simulated handheld
 * on the worker app's API sends what the device channels carry (ISO timestamps included) as the contract's /m bodies
 * and learns of a dispatch as a command.
 */
describe('HubClient and AppLink against a real hub', () => {
  let dir: string;
  let hub: Hub;
  let client: HubClient;
  let base: string;
  let link: AppLink | undefined;
  const lat = 39.9042;
  const lon = 116.4074;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gridlink-app-'));
    hub = await createHub(testConfig({ databaseUrl: undefined, dataDir: dir }));
    const ports = await hub.start();
    base = `http://127.0.0.1:${ports.http}`;
    client = new HubClient(base);
    await client.login('admin', 'admin-test-password');
  });

  afterAll(async () => {
    await link?.close();
    await hub?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('should read every page of cases, following nextCursor', async () => {
    const from = Date.now() - 1000;
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const c = await client.post<CaseSummary>('/cases', { title: `分页 ${i}`, category: 'garbage', lat: lat + i * 0.001, lon } satisfies CreateCaseBody);
      ids.push(c.id);
    }
    const first = await client.listCases({ from, limit: 2 });
    expect(first.items).toHaveLength(2);
    expect(first.nextCursor).toBeTruthy();
    const all = await client.allCases({ from, limit: 2 });
    expect(all.map((c) => c.id).sort()).toEqual([...ids].sort());
  });

  it('should send fixes, duty, a report and task actions as the contract\'s bodies and learn of a dispatch', async () => {
    const user = await client.post<User>('/users', { username: 'app-w1', password: 'walk-the-grid-1', role: 'worker', displayName: '王五' } satisfies CreateUserBody);
    await client.registerDevice({ id: 'hh-app-1', type: 'handheld', name: 'app handheld' });
    const worker = await client.createWorker({ name: '王五', deviceId: 'hh-app-1', userId: user.id });

    const commands: Command[] = [];
    link = new AppLink({ base, deviceId: 'hh-app-1', username: 'app-w1', password: 'walk-the-grid-1', pollMs: 200 });
    link.on('command', (c) => commands.push(c));
    await link.connect();

    await link.publish('status', { online: true, duty: true });
    expect((await client.getWorker(worker.id)).onDuty).toBe(true);

    // The channel's ISO-8601 time: the app's API takes epoch ms only.
    const fixTs = Math.floor(Date.now() / 1000) * 1000 - 5000;
    await link.publish('location', [{ ts: new Date(fixTs).toISOString(), lat, lon, acc: 8, seq: 1, duty: true }]);
    const position = (await client.getWorker(worker.id)).position;
    expect(position).toMatchObject({ ts: fixTs, lat, lon });

    await link.publish('report', { reportId: 'hh-app-1-r1', ts: new Date(fixTs).toISOString(), category: 'garbage', description: '', lat, lon });

    const created = await client.post<CaseSummary>('/cases', { title: '测试派遣', category: 'garbage', lat, lon } satisfies CreateCaseBody);
    await client.caseAction(created.id, 'register');
    await client.caseAction(created.id, 'dispatch', { workerId: worker.id });
    const dispatch = await until(() => commands.find((c) => c.type === 'dispatch' && c.case.id === created.id), 30_000, 'the dispatch command');
    expect(dispatch.type === 'dispatch' && dispatch.case.lat).toBe(lat);

    await link.publish('case', { caseId: created.id, action: 'accept', ts: new Date().toISOString(), note: '收到' });
    expect((await client.getCase(created.id)).status).toBe('accepted');
    expect(link.stats.errors).toBe(0);
  });
});
