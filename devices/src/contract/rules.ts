/**
 * Rules are data (CONTRACT 4, 5 `/rules`): one schema per kind, the body of
 * `POST /rules` and `PUT /rules/{id}`, what the hub stores and what its
 * evaluator runs. `GET /rules` answers each rule with its version and times.
 */
import { Type, type Static } from '@sinclair/typebox';
import { DEVICE_TYPES } from '../catalogue.js';
import { SeverityT } from './cases.js';
import { Nullable, OneOf, TimeQuery } from './common.js';

export const OpT = Type.Union(['>', '>=', '<', '<=', '==', '!='].map((o) => Type.Literal(o)));
export type Op = Static<typeof OpT>;

const Id = Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,63}$', description: 'slug' });

export const ScopeT = Type.Object({
  deviceTypes: Type.Optional(Type.Array(OneOf(DEVICE_TYPES), { description: 'only these device types' })),
  deviceIds: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { description: 'only these devices' })),
  gridIds: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { description: 'only devices inside these grids (any level)' })),
}, { additionalProperties: false });

export const CaseSpecT = Type.Object({
  category: Type.String({ minLength: 1, maxLength: 64, description: 'category code, key or name of the case to open' }),
  categoryByType: Type.Optional(Type.Record(Type.String(), Type.String(), { description: 'event/alert type → category, overriding `category`' })),
  severity: Type.Optional(SeverityT),
}, { additionalProperties: false });

const common = {
  id: Id,
  name: Type.String({ minLength: 1, maxLength: 128 }),
  description: Type.Optional(Type.String({ maxLength: 2000 })),
  enabled: Type.Optional(Type.Boolean({ description: 'default true' })),
  severity: SeverityT,
  scope: Type.Optional(ScopeT),
  case: Type.Optional(Type.Union([CaseSpecT, Type.Null()], { description: 'open (or join) a case when the alarm is raised; absent: alarm only' })),
  escalateAfterMin: Type.Optional(Type.Union([Type.Number({ minimum: 0.1 }), Type.Null()], { description: 'unacknowledged minutes before escalation; null: never; absent: the per-severity default' })),
};

export const ThresholdRuleT = Type.Object({
  ...common,
  kind: Type.Literal('threshold'),
  metric: Type.String({ minLength: 1, maxLength: 64 }),
  op: OpT,
  value: Type.Number(),
  forS: Type.Optional(Type.Number({ minimum: 0, description: 'the condition must hold this long (reading timestamps) before the alarm is raised' })),
  count: Type.Optional(Type.Integer({ minimum: 1, description: 'readings in a row that must meet the condition' })),
  clear: Type.Optional(Type.Object({ op: OpT, value: Type.Number() }, { description: 'hysteresis: an active alarm clears only when a reading meets this (default: when the condition stops holding)' })),
}, { additionalProperties: false });

export const MatchRuleT = Type.Object({
  ...common,
  kind: Type.Literal('match'),
  channel: Type.Union([Type.Literal('event'), Type.Literal('alert')]),
  types: Type.Array(Type.String({ maxLength: 64 }), { description: 'event/alert types; empty: any' }),
  minConfidence: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  severityMap: Type.Optional(Type.Record(Type.String(), SeverityT, { description: 'type → alarm severity' })),
  useMessageSeverity: Type.Optional(Type.Boolean({ description: 'take the severity the event carries when severityMap has none' })),
  clearTypes: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { description: 'event types that clear the alarm (e.g. smoke_alarm_clear)' })),
  autoClearS: Type.Optional(Type.Number({ minimum: 1, description: 'clear after this long without a repeat' })),
}, { additionalProperties: false });

export const AbsenceRuleT = Type.Object({
  ...common,
  kind: Type.Literal('absence'),
  offlineAfterS: Type.Number({ minimum: 5, description: 'no message from the device for this long (hub clock) raises the alarm; the next message clears it' }),
}, { additionalProperties: false });

export const SignalT = Type.Object({
  channel: Type.Union([Type.Literal('event'), Type.Literal('alert')]),
  types: Type.Array(Type.String({ maxLength: 64 }), { minItems: 1 }),
  minConfidence: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  deviceTypes: Type.Optional(Type.Array(Type.String())),
}, { additionalProperties: false });

export const CorrelationRuleT = Type.Object({
  ...common,
  kind: Type.Literal('correlation'),
  signals: Type.Tuple([SignalT, SignalT], { description: 'two signal kinds from two different devices' }),
  withinM: Type.Number({ minimum: 1, description: 'devices at most this far apart' }),
  windowS: Type.Number({ minimum: 1, description: 'signals at most this far apart in time' }),
  autoClearS: Type.Optional(Type.Number({ minimum: 1 })),
}, { additionalProperties: false });

export const RuleT = Type.Union([ThresholdRuleT, MatchRuleT, AbsenceRuleT, CorrelationRuleT]);
export type ThresholdRule = Static<typeof ThresholdRuleT>;
export type MatchRule = Static<typeof MatchRuleT>;
export type AbsenceRule = Static<typeof AbsenceRuleT>;
export type CorrelationRule = Static<typeof CorrelationRuleT>;
export type Rule = Static<typeof RuleT>;
export type RuleKind = Rule['kind'];

/** A stored rule as `GET /rules` answers it: its definition plus bookkeeping (`enabled` is always present once stored). */
export const RuleRecord = Type.Object({
  id: Type.String(), name: Type.String(), kind: Type.String(), enabled: Type.Optional(Type.Boolean()), severity: Type.String(),
  version: Type.Integer(), createdAt: Type.Number(), updatedAt: Type.Number(),
}, { additionalProperties: true, description: 'the rule as stored (all fields of its kind, see the POST body) plus version and times' });
/** The schema stays open (the OpenAPI document does not repeat every kind); the type is the full rule of its kind. */
export type RuleRecord = Rule & { enabled: boolean; version: number; createdAt: number; updatedAt: number };

/** `POST /rules/{id}/backtest`, `POST /rules/backtest`: what the rule would have raised over stored history. */
export const RuleBacktest = Type.Object({
  ruleId: Type.String(), from: Type.Number(), to: Type.Number(), messages: Type.Integer(),
  alarms: Type.Array(Type.Object({
    deviceId: Type.String(), ts: Type.Number(), lastTs: Type.Number(), clearedAt: Nullable(Type.Number()), severity: Type.String(),
    type: Type.String(), message: Type.String(), count: Type.Integer(), caseIndex: Nullable(Type.Integer()),
  })),
  cases: Type.Array(Type.Object({ index: Type.Integer(), deviceId: Type.String(), category: Type.String(), openedAt: Type.Number(), alarms: Type.Integer() })),
  totals: Type.Object({ alarms: Type.Integer(), cases: Type.Integer(), stillActive: Type.Integer() }),
  assumptions: Type.String(),
});
export type RuleBacktest = Static<typeof RuleBacktest>;

/** `POST /rules/{id}/backtest`: the window of stored history to replay (at most the hub's backtest window). */
export const BacktestWindow = Type.Object({ from: TimeQuery, to: Type.Optional(TimeQuery) }, { additionalProperties: false });
export type BacktestWindow = Static<typeof BacktestWindow>;

/** `POST /rules/backtest`: a rule definition that is not saved, and the window. */
export const RuleBacktestBody = Type.Object({ rule: RuleT, from: TimeQuery, to: Type.Optional(TimeQuery) }, { additionalProperties: false });
export type RuleBacktestBody = Static<typeof RuleBacktestBody>;
