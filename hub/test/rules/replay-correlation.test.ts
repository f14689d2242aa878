/**
 * The evaluator's correlation replay (a node taking a correlation rule over,
 * or a single process at start, rebuilds the rule's window from the stored
 * events and alerts): a join its previous owner never made raises, once; a
 * join the alarm book holds (the last join of the rule's alarm rows for the
 * anchor device) gives nothing; a join of messages all received before the
 * replay's floor only fills the window; live signals of replayed messages
 * join nothing again, and a later signal joins the rebuilt window.
 */
import { describe, expect, it } from 'vitest';
import type { Normalised } from '@gridlink/devices';
import { RuleEvaluator, type Signal } from '../../src/rules/evaluator.js';
import type { Rule } from '../../src/rules/rule.schema.js';

const CORR: Rule = {
  id: 'fire-corr', name: 'smoke + fire', enabled: true, kind: 'correlation',
  signals: [{ channel: 'event', types: ['smoke_alarm'] }, { channel: 'alert', types: ['fire'], minConfidence: 0.6 }],
  withinM: 200, windowS: 120, severity: 'critical',
} as Rule;
const S = 'smoke-1';
const C = 'cam-1';
const RULES = new Set([CORR.id]);
const smoke = (ts: number, at = ts, rules: string[] | undefined = [CORR.id]): Signal => ({
  deviceId: S, deviceType: 'sensor.smoke', gridId: null, lat: 30.65, lon: 104.05, at, msg: { channel: 'event', ts, type: 'smoke_alarm' } as Normalised, ...(rules ? { rules } : {}),
});
const fire = (ts: number, at = ts, rules: string[] | undefined = [CORR.id]): Signal => ({
  deviceId: C, deviceType: 'camera', gridId: null, lat: 30.6509, lon: 104.05, at, msg: { channel: 'alert', ts, type: 'fire', confidence: 0.9 } as Normalised, ...(rules ? { rules } : {}),
});

function evaluator(): RuleEvaluator {
  const e = new RuleEvaluator({ contains: () => true, devices: () => [] });
  e.setRules([CORR]);
  return e;
}
const none = () => undefined;
const always = () => 0;
const from = (t: number) => () => t;

describe('rule evaluator: correlation windows rebuilt from stored messages', () => {
  it('raises a join its previous owner never made, once, and the live signal of its message joins nothing again', () => {
    const e = evaluator();
    // The smoke event was evaluated by the dead owner (received before the floor), the fire alert died in flight to it.
    const effects = e.replayCorrelations(RULES, [smoke(1000, 1000), fire(31_000, 31_500)], from(20_000), none, always);
    expect(effects).toMatchObject([{ kind: 'raise', rule: { id: CORR.id }, deviceId: S, ts: 31_000, type: 'correlation', related: [C] }]);
    // A late forward of the same alert (held, or from a third node): nothing again.
    expect(e.onSignal(fire(31_000, 32_000))).toEqual([]);
    // A new fire alert within the window joins the rebuilt window: a repeat of the incident.
    expect(e.onSignal(fire(40_000))).toMatchObject([{ kind: 'raise', deviceId: S, ts: 40_000, related: [C] }]);
  });

  it('passes over a join the alarm book holds: its previous owner raised it', () => {
    const e = evaluator();
    const book = (rule: string, anchor: string) => (rule === CORR.id && anchor === S ? 31_000 : undefined);
    expect(e.replayCorrelations(RULES, [smoke(1000), fire(31_000)], from(0), book, always)).toEqual([]);
    // Its window holds both: the next signal joins it (the code before started the window over and joined nothing).
    expect(e.onSignal(fire(50_000))).toMatchObject([{ kind: 'raise', deviceId: S, ts: 50_000 }]);
  });

  it('only fills the window with joins of messages received before the floor (or when the previous owner lives on)', () => {
    const e = evaluator();
    expect(e.replayCorrelations(RULES, [smoke(1000), fire(2000)], from(10_000), none, always)).toEqual([]);
    const f = evaluator();
    expect(f.replayCorrelations(RULES, [smoke(1000), fire(2000)], from(Infinity), none, always)).toEqual([]);
    // The window it rebuilt still joins what comes next.
    expect(f.onSignal({ ...smoke(3000), deviceId: 'smoke-2' })).toMatchObject([{ kind: 'raise', deviceId: 'smoke-2', related: [C] }]);
  });

  it('gives the same join time whichever of the two messages arrived last', () => {
    // Live: the fire alert (2000) came first, the smoke event (1000) after it; the join is at the later message time.
    const live = evaluator();
    expect(live.onSignal(fire(2000))).toEqual([]);
    expect(live.onSignal(smoke(1000, 2500))).toMatchObject([{ kind: 'raise', ts: 2000 }]);
    // Replayed in message-time order, the same join holds the same time: the book's 2000 says it was made.
    const replayed = evaluator();
    expect(replayed.replayCorrelations(RULES, [smoke(1000, 2500), fire(2000)], from(0), () => 2000, always)).toEqual([]);
  });

  it('leaves what a rule edited since did not take, and messages not meant for the rule', () => {
    const e = evaluator();
    expect(e.replayCorrelations(RULES, [smoke(1000), fire(2000)], from(0), none, () => 1500)).toEqual([]);
    expect(e.replayCorrelations(RULES, [smoke(1000, 1000, ['other']), fire(2000)], from(0), none, always)).toEqual([]);
  });
});
