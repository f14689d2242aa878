/**
 * Two hub nodes. Node B is started with the testing option
 * GRIDLINK_TEST_KILL_AFTER_DISPATCH_COMMIT=1: it SIGKILLs itself as soon as
 * it hears a dispatch committed, before it publishes the command. The
 * worker's handheld stays connected to node A all along (it never
 * reconnects, and its re-send on connecting ran before: no re-send can
 * deliver anything). Node A, the
 * `dispatch.timers` holder, finds the command committed with the dispatch and
 * never sent, claims it and sends it once: the handheld receives the stored
 * command (its cmdId), the case has one dispatch record, the command one send.
 * A dispatch made through A meanwhile is sent once by A itself and never
 * again by the recovery round.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AT } from '../cases/fixtures.js';
import { until } from '../helpers.js';
import { dispatchOf, hasExited, logged, RUN_CLUSTER, TestCluster, type HubNode } from './harness.js';

/** Guards a hang on a busy machine; nothing here is a latency assertion. */
const WAIT = 120_000;

describe.runIf(RUN_CLUSTER)('a node killed right after a dispatch commit: its command is sent by the survivor', () => {
  const cluster = new TestCluster({ wait: WAIT });
  let a: HubNode, b: HubNode;

  let failed = false;
  beforeEach(({ onTestFailed }) => onTestFailed(() => void (failed = true)));

  beforeAll(async () => {
    // Re-sends on reconnect run at once (no delay): the handhelds' are over before any dispatch below, so what
    // reaches a handheld that stays connected can only come from the dispatching node or the recovery round.
    const env = await cluster.open({ GRIDLINK_LOG_LEVEL: 'info', GRIDLINK_DISPATCH_ACCEPT_TIMEOUT_S: '3600', GRIDLINK_DISPATCH_RESEND_DELAY_MS: '0' });
    a = await cluster.node('node-a', env);
    await cluster.district(a);
    b = await cluster.node('node-b', { ...env, GRIDLINK_TEST_KILL_AFTER_DISPATCH_COMMIT: '1' });
    await cluster.converged();
  }, 180_000);

  afterAll(() => cluster.stop(failed), 60_000);

  const registeredCase = (node: HubNode) => cluster.newCase(node, { category: 'E0102', ...AT.A1, description: 'dispatch commit kill' });

  const commands = (caseId: string) =>
    cluster.db.query<{ cmd_id: string; sends: number; sent: boolean }>("select cmd_id, sends, sent_at is not null as sent from dispatch_commands where case_id = $1 and type = 'dispatch'", [caseId]);
  const claimDone = async (cmdId: string) => (await cluster.db.query<{ done: boolean }>('select done from cluster_claims where key = $1', [`dispatch.send:${cmdId}`]))[0]?.done ?? null;

  it('sends once, from the survivor, the command of a dispatch whose node died right after committing it', { timeout: 300_000 }, async () => {
    const secretKilled = await cluster.addWorker(a, 'w-killed');
    const secretLive = await cluster.addWorker(a, 'w-live');
    // Both handhelds sit on A, the node that lives, for the whole test.
    const killed = await cluster.handheld(a, 'hh-w-killed', secretKilled);
    const live = await cluster.handheld(a, 'hh-w-live', secretLive);
    // B must know the worker before it may dispatch them (its roster hears A's creation).
    await until(() => cluster.knows(b, 'w-killed'), WAIT, 100);

    // A dispatch through A: sent by A, once.
    const onA = await registeredCase(a);
    expect((await cluster.act(a, onA, 'dispatch', { workerId: 'w-live' })).status).toBe(200);
    const cmdA = await until(() => dispatchOf(live.got, onA), WAIT, 50);

    // A dispatch through B: B commits it and dies before anything else.
    const onB = await registeredCase(b);
    await cluster.act(b, onB, 'dispatch', { workerId: 'w-killed' }).catch(() => null);
    await until(() => hasExited(b), WAIT, 20);
    expect(b.child.signalCode).toBe('SIGKILL');
    // Committed together: the case, the worker's row, the record, the command (not sent).
    expect(await cluster.db.query('select status, worker_id from cases where id = $1', [onB])).toEqual([{ status: 'dispatched', worker_id: 'w-killed' }]);
    expect(await cluster.db.query('select worker_id from case_dispatches where case_id = $1', [onB])).toEqual([{ worker_id: 'w-killed' }]);

    // A's recovery round sends it to the handheld that never left A, under the command's claim.
    const cmdB = await until(() => dispatchOf(killed.got, onB), WAIT, 50);
    await until(async () => (await claimDone(cmdB.cmdId)) || null, WAIT, 100);
    expect(await commands(onB)).toEqual([{ cmd_id: cmdB.cmdId, sends: 1, sent: true }]);
    await until(() => logged(a, 'command committed and never sent: sent now', cmdB.cmdId) || null, WAIT, 50);
    // QoS 1 may deliver twice; it is one command.
    expect(new Set(killed.got.filter((x) => x.type === 'dispatch').map((x) => x.cmdId))).toEqual(new Set([cmdB.cmdId]));

    // A's own dispatch was sent once (claimed and settled by A) and not again by the recovery rounds since.
    expect(await commands(onA)).toEqual([{ cmd_id: cmdA.cmdId, sends: 1, sent: true }]);
    expect(await claimDone(cmdA.cmdId)).toBe(true);
    expect(new Set(live.got.filter((x) => x.type === 'dispatch').map((x) => x.cmdId))).toEqual(new Set([cmdA.cmdId]));
  });
});
