/**
 * The evaluator's hand-over replay (cluster: a node taking a device over
 * steps through the readings stored after what the previous owner wrote):
 * readings at or below the stored reading time are not counted again, live
 * signals of replayed readings are not counted twice, and only a change of
 * state comes out — a raise the readings complete, a clear they make; a
 * repeat, or a raise they also clear again, gives nothing.
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
    expect(e.replay([sig(1000, 30), sig(2000, 31)])).toEqual([]);
    expect(e.get(RULE.id, D)).toMatchObject({ count: 2, ts: 2000, active: false });
    // The live signal of 2000 (held while the node took over) is not counted again; 3000 completes the run.
    expect(e.onSignal(sig(2000, 31))).toEqual([]);
    const effects = e.onSignal(sig(3000, 33));
    expect(effects).toMatchObject([{ kind: 'raise', value: 33, message: 'ch4 33 >= 20 (3 in a row)' }]);
  });

  it('raises when the stored readings complete a run whose last signal died with its owner', () => {
    const e = evaluator();
    e.adopt(mine, [], []);
    const effects = e.replay([sig(1000, 30), sig(2000, 31), sig(3000, 33)]);
    expect(effects).toMatchObject([{ kind: 'raise', value: 33 }]);
    expect(e.get(RULE.id, D)).toMatchObject({ active: true, count: 3 });
  });

  it('gives nothing for a repeat of an alarm up, nor for a raise the readings clear again', () => {
    const up = evaluator();
    up.adopt(mine, [], [{ ruleId: RULE.id, deviceId: D, lastAt: 0 }]);
    expect(up.replay([sig(1000, 30), sig(2000, 31)])).toEqual([]);
    expect(up.get(RULE.id, D)?.active).toBe(true);

    const gone = evaluator();
    gone.adopt(mine, [], []);
    // Raised and cleared by the previous owner (no active alarm row): nothing comes out, the run starts over.
    expect(gone.replay([sig(1000, 30), sig(2000, 30), sig(3000, 30), sig(4000, 5), sig(5000, 25)])).toEqual([]);
    expect(gone.get(RULE.id, D)).toMatchObject({ active: false, count: 1 });
  });

  it('clears an alarm whose clearing reading its owner never evaluated', () => {
    const e = evaluator();
    e.adopt(mine, [{ ruleId: RULE.id, deviceId: D, state: { active: true, pendingSince: 1000, count: 3, lastAt: 3000, ts: 3000 } }], [{ ruleId: RULE.id, deviceId: D, lastAt: 3000 }]);
    expect(e.replay([sig(3000, 33), sig(4000, 15), sig(5000, 5)])).toMatchObject([{ kind: 'clear' }]);
    expect(e.get(RULE.id, D)?.active).toBe(false);
  });
});
