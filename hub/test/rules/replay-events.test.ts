/**
 * The evaluator's event replay (a node taking a device over, or a single
 * process at start, steps the stored events and alerts through the match
 * rules): a message at or below the last trigger the alarm book holds for
 * its rule and device was counted and gives nothing; one above it raises or
 * repeats; a clear type clears only an alarm still active; a message
 * received before the rule's last edit is not the rule's; the live signal of
 * a replayed message is not counted twice.
 */
import { describe, expect, it } from 'vitest';
import type { Normalised } from '@gridlink/devices';
import { RuleEvaluator, type Signal } from '../../src/rules/evaluator.js';
import type { Rule } from '../../src/rules/rule.schema.js';

const SMOKE: Rule = {
  id: 'smoke', name: 'smoke', enabled: true, kind: 'match', channel: 'event', types: ['smoke_alarm'], clearTypes: ['smoke_alarm_clear'], severity: 'critical',
} as Rule;
const FIRE: Rule = {
  id: 'cam-fire', name: 'fire', enabled: true, kind: 'match', channel: 'alert', types: ['fire'], minConfidence: 0.6, severity: 'critical',
} as Rule;
const D = 'smoke-1';
const C = 'cam-1';
const ev = (ts: number, type = 'smoke_alarm', at = ts): Signal => ({
  deviceId: D, deviceType: 'sensor.smoke', gridId: null, lat: null, lon: null, at, msg: { channel: 'event', ts, type } as Normalised,
});
const alert = (ts: number, confidence: number): Signal => ({
  deviceId: C, deviceType: 'camera', gridId: null, lat: null, lon: null, at: ts, msg: { channel: 'alert', ts, type: 'fire', confidence } as Normalised,
});

function evaluator(): RuleEvaluator {
  const e = new RuleEvaluator({ contains: () => true, devices: () => [] });
  e.setRules([SMOKE, FIRE]);
  return e;
}
const none = () => undefined;
const always = () => 0;

describe('rule evaluator: events and alerts replayed on a take-over', () => {
  it('raises an event nothing counted, and its live signal (a late forward) does not count again', () => {
    const e = evaluator();
    e.adopt((d) => d === D, [], []);
    expect(e.replayEvents([ev(1000)], none, always)).toMatchObject([{ kind: 'raise', rule: { id: 'smoke' }, deviceId: D, ts: 1000, type: 'smoke_alarm' }]);
    expect(e.onSignal(ev(1000))).toEqual([]);
    // A later event is live and counts (a repeat of the alarm).
    expect(e.onSignal(ev(2000))).toMatchObject([{ kind: 'raise', ts: 2000 }]);
  });

  it('passes over what the alarm rows counted and counts what came after as a repeat', () => {
    const e = evaluator();
    // The previous owner raised at 1000 and repeated at 2000 (the row's last_ts); 3000 never reached the book.
    e.adopt((d) => d === D, [], [{ ruleId: SMOKE.id, deviceId: D, lastAt: 2000 }]);
    const counted = (rule: string, device: string) => (rule === SMOKE.id && device === D ? 2000 : undefined);
    expect(e.replayEvents([ev(1000), ev(2000), ev(3000)], counted, always)).toMatchObject([{ kind: 'raise', ts: 3000 }]);
    // Replayed again (a second take-over with the same rows): nothing above the floor is left.
    expect(e.replayEvents([ev(1000), ev(2000), ev(3000)], counted, always)).toEqual([]);
  });

  it('clears an alarm still active, and does nothing for a clear the previous owner made', () => {
    const e = evaluator();
    e.adopt((d) => d === D, [], [{ ruleId: SMOKE.id, deviceId: D, lastAt: 1000 }]);
    const counted = () => 1000;
    expect(e.replayEvents([ev(1000), ev(2000, 'smoke_alarm_clear')], counted, always)).toMatchObject([{ kind: 'clear', ts: 2000, reason: 'smoke_alarm_clear' }]);
    const f = evaluator();
    f.adopt((d) => d === D, [], []);
    // Cleared by the previous owner (no active alarm), then a new event it never saw: a new alarm.
    expect(f.replayEvents([ev(1000), ev(2000, 'smoke_alarm_clear'), ev(3000)], counted, always)).toMatchObject([{ kind: 'raise', ts: 3000 }]);
  });

  it('leaves a repeat to a previous owner that lives on (a node joined), and still counts a live signal of it that comes here', () => {
    const e = evaluator();
    // The previous owner raised at 1000 (the row's last trigger) and is counting 2000 as this node replays it.
    e.adopt((d) => d === D, [], [{ ruleId: SMOKE.id, deviceId: D, lastAt: 1000 }]);
    const counted = () => 1000;
    const joined = (d: string) => d !== D;
    // The code before returned the repeat, and the alarm's count went one too high when the previous owner counted it too.
    expect(e.replayEvents([ev(1000), ev(2000)], counted, always, joined)).toEqual([]);
    // A clear is still made (the alarm book makes it once).
    expect(e.replayEvents([ev(3000, 'smoke_alarm_clear')], counted, always, joined)).toMatchObject([{ kind: 'clear', ts: 3000 }]);
    // A new alarm is raised (the alarm book makes it one, whichever node writes first).
    expect(e.replayEvents([ev(4000)], counted, always, joined)).toMatchObject([{ kind: 'raise', ts: 4000 }]);
    const f = evaluator();
    f.adopt((d) => d === D, [], [{ ruleId: SMOKE.id, deviceId: D, lastAt: 1000 }]);
    expect(f.replayEvents([ev(2000)], counted, always, joined)).toEqual([]);
    // Its live signal here was sent here, not to the previous owner: counted.
    expect(f.onSignal(ev(2000))).toMatchObject([{ kind: 'raise', ts: 2000 }]);
  });

  it('leaves a message received before the rule\'s last edit, and an alert below the rule\'s confidence', () => {
    const e = evaluator();
    e.adopt(() => true, [], []);
    expect(e.replayEvents([ev(1000, 'smoke_alarm', 500)], none, (rule) => (rule === SMOKE.id ? 900 : 0))).toEqual([]);
    expect(e.replayEvents([alert(1000, 0.5), alert(2000, 0.9)], none, always)).toMatchObject([{ kind: 'raise', rule: { id: 'cam-fire' }, deviceId: C, ts: 2000, value: 0.9 }]);
    // An event the floor has not counted is still counted live: a type the rule passes over leaves the floor where it was.
    expect(e.replayEvents([ev(3000, 'tamper')], none, always)).toEqual([]);
    expect(e.onSignal(ev(2500))).toMatchObject([{ kind: 'raise', ts: 2500 }]);
  });
});
