/**
 * A dispatch's accept timeout counts from the first send of its command, not
 * from the dispatch: a command first sent late (the dispatching process died
 * after the commit and it went out from the outbox later, or Redis was away)
 * leaves the worker the whole window from when it was actually sent.
 *
 * The hub's clock is injected; the send is controlled by holding the real
 * broker's publish of the one command behind a gate the test opens.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Command } from '@gridlink/devices';
import type { DispatchAlarm } from '../../src/dispatch/index.js';
import { startDispatchHub, waitFor, type DispatchHub } from './fixtures.js';

describe('accept timeout from the first send', () => {
  let h: DispatchHub;
  const alarms: DispatchAlarm[] = [];
  const caseOf = async (id: string) => (await h.as('dispatcher')<{ status: string; workerId: string | null }>('GET', `/cases/${id}`)).body;
  const timedOut = (caseId: string) => alarms.filter((a) => a.caseId === caseId && a.kind === 'dispatch_timeout');
  const beat = async () => {
    h.dispatch.flush();
    await h.dispatch.engine.idle();
  };

  beforeAll(async () => {
    h = await startDispatchHub({ config: { acceptTimeoutS: 60 } });
    h.hub.ctx.bus.on('dispatch.alarm', 'test', (a) => void alarms.push(a));
  }, 120_000);

  afterAll(async () => {
    await h?.stop();
  });

  /** Holds the publish of the dispatch command of `caseId` until the returned `open` is called; every other send goes through. */
  function holdSend(caseId: string): { open(): void; held: Promise<void> } {
    const broker = h.hub.ctx.broker;
    const real = broker.sendCommand.bind(broker);
    let open!: () => void;
    let reached!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const held = new Promise<void>((r) => (reached = r));
    broker.sendCommand = async (deviceId: string, cmd: Command) => {
      if (cmd.type === 'dispatch' && cmd.case.id === caseId) {
        reached();
        await gate;
        broker.sendCommand = real;
      }
      return real(deviceId, cmd);
    };
    return { open, held };
  }

  /**
   * A worker near a new case, the case dispatched to them, and the command's
   * send held while `lateMs` pass on the hub's clock (the timer's beat comes
   * due meanwhile); resolves once the handheld has the command.
   */
  async function dispatchSentLate(workerId: string, lon: number, lateMs: number) {
    const w = await h.addWorker({ id: workerId, gridIds: ['G-A1'], at: { lat: 30.612, lon } });
    const { commands } = await h.handheld(w.deviceId, w.secret);
    const c = await h.newCase({ lat: 30.6119, lon });
    const gate = holdSend(c.id);
    expect((await h.as('dispatcher')('POST', `/cases/${c.id}/actions`, { action: 'dispatch', workerId: w.id })).status).toBe(200);
    await gate.held;
    h.clock.advance(lateMs);
    h.dispatch.flush();
    gate.open();
    await h.dispatch.engine.idle();
    const cmd = await waitFor(() => commands.find((x) => x.type === 'dispatch' && x.case.id === c.id));
    return { w, c, cmd };
  }

  /** `ms` more pass: the worker still has the case, and no timeout was raised. */
  async function stillHeldAfter(ms: number, caseId: string, workerId: string): Promise<void> {
    h.clock.advance(ms);
    await beat();
    expect(await caseOf(caseId)).toMatchObject({ status: 'dispatched', workerId });
    expect(timedOut(caseId)).toEqual([]);
  }

  /** `ms` more pass: the dispatch times out, once. */
  async function timesOutAfter(ms: number, caseId: string): Promise<void> {
    h.clock.advance(ms);
    await beat();
    await waitFor(() => timedOut(caseId).length > 0 || null);
    expect(timedOut(caseId)).toHaveLength(1);
  }

  it('gives the worker the whole window from a send made 50 s after the dispatch', async () => {
    // 50 s pass before the command goes out.
    const { w, c, cmd } = await dispatchSentLate('w-late', 104.005, 50_000);
    const [row] = await h.hub.ctx.db.query<{ first: number | string }>('select extract(epoch from first_sent_at) * 1000 as first from dispatch_commands where cmd_id = $1', [cmd.cmdId]);
    expect(Number(row!.first)).toBe(h.clock.now());

    // 60 s after the dispatch, 10 s after the send: the worker still has the case.
    await stillHeldAfter(10_000, c.id, w.id);
    // 59 s after the send: still.
    await stillHeldAfter(49_000, c.id, w.id);
    // 60 s after the send: timed out, once.
    await timesOutAfter(1_000, c.id);
    expect(timedOut(c.id)[0]).toMatchObject({ workerId: w.id });
    expect((await caseOf(c.id)).workerId).not.toBe(w.id);
  });

  it('does not time out a dispatch whose command is not sent yet, and counts from the send once it is', async () => {
    // The whole window and more passes with the command held; the timer's beat comes due meanwhile.
    const { w, c } = await dispatchSentLate('w-unsent', 104.006, 70_000);
    expect(await caseOf(c.id)).toMatchObject({ status: 'dispatched', workerId: w.id });
    expect(timedOut(c.id)).toEqual([]);
    await stillHeldAfter(59_000, c.id, w.id);
    await timesOutAfter(1_000, c.id);
  });
});
