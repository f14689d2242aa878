/**
 * The evaluator's hand-over replay (cluster: a node taking a device over
 * steps through the readings stored after what the previous owner wrote):
 * readings at or below the stored reading time are not counted again, live
 * signals of replayed readings are not counted twice, and what the alarm
 * book holds (the last trigger of the rule's and device's alarm rows) says
 * which steps reached it: a raise, repeat or clear at or below it gives
 * nothing, one above it comes out — a repeat too, which the previous owner
 * never counted.
 */
import { describe, expect, it } from 'vitest';
import type { Normalised } from '@gridlink/devices';
import { RuleEvaluator, type Signal } from '../../src/rules/evaluator.js';
import type { Rule } from '../../src/rules/rule.schema.js';

const RULE: Rule = {
  id: 'gas-3', name: 'gas', enabled: true, kind: 'threshold', metric: 'ch4', op: '>=', value: 20, count: 3, clear: { op: '<', value: 10 }, severity: 'major',
} as Rule;
const D = 'gas-1';
const sig = (ts: number, v: number): Signal => ({
  deviceId: D, deviceType: 'sensor.gas', gridId: null, lat: null, lon: null, at: ts, msg: { channel: 'telemetry', ts, values: { ch4: v } } as Normalised,
});
const mine = (d: string) => d === D;
/** The alarm book holds nothing of the rule and device. */
const none = () => undefined;
/** Its alarm rows' last trigger is `ts`. */
const book = (ts: number) => (rule: string, device: string) => (rule === RULE.id && device === D ? ts : undefined);

function evaluator(): RuleEvaluator {
  const e = new RuleEvaluator({ contains: () => true, devices: () => [] });
  e.setRules([RULE]);
  return e;
}

describe('rule evaluator: replay on hand-over', () => {
  it('counts only the readings after the stored one, raises at the one that completes the run, and not again for its live signal', () => {
    const e = evaluator();
    // The previous owner stored 1 of 3 at reading 1000; it counted 2000 too, and died before storing it.
    e.adopt(mine, [{ ruleId: RULE.id, deviceId: D, state: { active: false, pendingSince: 1000, count: 1, lastAt: 1000, ts: 1000 } }], []);
    expect(e.replay([sig(1000, 30), sig(2000, 31)], none)).toEqual([]);
    expect(e.get(RULE.id, D)).toMatchObject({ count: 2, ts: 2000, active: false });
    // The live signal of 2000 (held while the node took over) is not counted again; 3000 completes the run.
    expect(e.onSignal(sig(2000, 31))).toEqual([]);
    const effects = e.onSignal(sig(3000, 33));
    expect(effects).toMatchObject([{ kind: 'raise', value: 33, message: 'ch4 33 >= 20 (3 in a row)' }]);
  });

  it('raises when the stored readings complete a run whose last signal died with its owner', () => {
    const e = evaluator();
    e.adopt(mine, [], []);
    const effects = e.replay([sig(1000, 30), sig(2000, 31), sig(3000, 33)], none);
    expect(effects).toMatchObject([{ kind: 'raise', value: 33 }]);
    expect(e.get(RULE.id, D)).toMatchObject({ active: true, count: 3 });
  });

  it('gives nothing for a repeat the alarm book holds, nor again for a raise and a clear its previous owner made', () => {
    const up = evaluator();
    // The previous owner raised at 1000 and counted 2000 as a repeat: the row's last trigger is 2000.
    up.adopt(mine, [], [{ ruleId: RULE.id, deviceId: D, lastAt: 0 }]);
    expect(up.replay([sig(1000, 30), sig(2000, 31)], book(2000))).toEqual([]);
    expect(up.get(RULE.id, D)?.active).toBe(true);

    const gone = evaluator();
    gone.adopt(mine, [], []);
    // Raised at 3000 and cleared at 4000 by the previous owner (no active alarm row): no raise comes out, the run starts
    // over; the clear above the book's last trigger comes out and finds no active alarm to clear.
    expect(gone.replay([sig(1000, 30), sig(2000, 30), sig(3000, 30), sig(4000, 5), sig(5000, 25)], book(3000))).toMatchObject([{ kind: 'clear', ts: 4000 }]);
    expect(gone.get(RULE.id, D)).toMatchObject({ active: false, count: 1 });
  });

  it('counts a repeat the alarm book does not hold yet: its previous owner died before counting it', () => {
    const e = evaluator();
    // Raised at 3000 (the row's last trigger), state flushed at 2000; 4000 repeats and never reached the book.
    e.adopt(mine, [{ ruleId: RULE.id, deviceId: D, state: { active: false, pendingSince: 1000, count: 2, lastAt: 2000, ts: 2000 } }], [{ ruleId: RULE.id, deviceId: D, lastAt: 3000 }]);
    // The code before this returned only changes of state: nothing here, and the alarm's count stayed one lower.
    expect(e.replay([sig(3000, 33), sig(4000, 34)], book(3000))).toMatchObject([{ kind: 'raise', ts: 4000, value: 34 }]);
  });

  it('leaves a repeat to a previous owner that lives on (a node joined): it counts what it got', () => {
    const e = evaluator();
    e.adopt(mine, [{ ruleId: RULE.id, deviceId: D, state: { active: false, pendingSince: 1000, count: 2, lastAt: 2000, ts: 2000 } }], [{ ruleId: RULE.id, deviceId: D, lastAt: 3000 }]);
    expect(e.replay([sig(3000, 33), sig(4000, 34), sig(5000, 5)], book(3000), () => false)).toMatchObject([{ kind: 'clear', ts: 5000 }]);
  });

  it('raises and clears an alarm the readings raised and cleared while it never reached the book', () => {
    const e = evaluator();
    e.adopt(mine, [], []);
    expect(e.replay([sig(1000, 30), sig(2000, 30), sig(3000, 30), sig(4000, 31), sig(5000, 5)], none))
      .toMatchObject([{ kind: 'raise', ts: 3000, value: 30 }, { kind: 'raise', ts: 4000, value: 31 }, { kind: 'clear', ts: 5000 }]);
  });

  it('clears an alarm whose clearing reading its owner never evaluated', () => {
    const e = evaluator();
    e.adopt(mine, [{ ruleId: RULE.id, deviceId: D, state: { active: true, pendingSince: 1000, count: 3, lastAt: 3000, ts: 3000 } }], [{ ruleId: RULE.id, deviceId: D, lastAt: 3000 }]);
    expect(e.replay([sig(3000, 33), sig(4000, 15), sig(5000, 5)], book(3000))).toMatchObject([{ kind: 'clear' }]);
    expect(e.get(RULE.id, D)?.active).toBe(false);
  });
});
