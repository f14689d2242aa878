import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rulesModule } from '../../src/hub.js';
import { publishAck } from '../helpers.js';
import { startDispatchHub, waitFor, type DispatchHub } from './fixtures.js';

interface AlarmBody { id: string; rule: string; deviceId: string; status: string; acknowledged: boolean; ackBy: string | null; gridId: string | null; severity: string }

describe('dispatch alarms with the rules module', () => {
  let h: DispatchHub;
  beforeAll(async () => {
    h = await startDispatchHub({ config: { acceptTimeoutS: 60 }, extraModules: [rulesModule({ tickMs: 0 })] });
  }, 120_000);
  afterAll(() => h?.stop());

  it('should store a declined dispatch as an alarm at the case, listed, scoped and acknowledgeable like any other', async () => {
    const a = await h.addWorker({ id: 'w-da', gridIds: ['G-A2'], at: { lat: 30.605, lon: 104.015 } });
    await h.addWorker({ id: 'w-da2', gridIds: ['G-A2'], at: { lat: 30.6052, lon: 104.015 } });
    const ha = await h.handheld(a.deviceId, a.secret);
    const c = await h.newCase({ lat: 30.605, lon: 104.0151 });
    expect((await h.as('dispatcher')('POST', `/cases/${c.id}/actions`, { action: 'dispatch', workerId: a.id })).status).toBe(200);
    await waitFor(() => ha.commands.length > 0);
    await publishAck(ha.client, `gridlink/v1/${a.deviceId}/case`, { caseId: c.id, action: 'decline' });
    const alarm = await waitFor(async () => {
      const r = await h.as('dispatcher')<{ items: AlarmBody[] }>('GET', '/alarms?status=active');
      return r.body.items.find((x) => x.rule === 'dispatch.dispatch_declined');
    });
    expect(alarm).toMatchObject({ deviceId: a.deviceId, severity: 'major', gridId: c.gridId, acknowledged: false });
    // Visible to a dispatcher of street A, where the case is.
    const scoped = await h.as('dispatcherA')<{ items: AlarmBody[] }>('GET', '/alarms?status=active');
    expect(scoped.body.items.map((x) => x.id)).toContain(alarm.id);
    const ack = await h.as('dispatcher')<AlarmBody>('POST', `/alarms/${alarm.id}/ack`, { comment: '已改派' });
    expect(ack.status).toBe(200);
    expect(ack.body).toMatchObject({ acknowledged: true, ackBy: 'dispatcher' });
  });
});
