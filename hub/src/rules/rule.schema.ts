/**
 * Rules are data: one TypeBox schema per kind, validated on every write, so
 * the REST body, the stored JSON and the evaluator agree. CONTRACT 4's
 * shipped rules are DEFAULT_RULES (seeded by migration, editable).
 */
import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { DEVICE_TYPES, SEVERITIES } from '@gridlink/devices';

export const SeverityT = Type.Union(SEVERITIES.map((s) => Type.Literal(s)));
export const OpT = Type.Union(['>', '>=', '<', '<=', '==', '!='].map((o) => Type.Literal(o)));
export type Op = Static<typeof OpT>;

const Id = Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,63}$', description: 'slug' });

export const ScopeT = Type.Object({
  deviceTypes: Type.Optional(Type.Array(Type.Union(DEVICE_TYPES.map((t) => Type.Literal(t))), { description: 'only these device types' })),
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

export const ruleCheck = TypeCompiler.Compile(RuleT);

/** Per-severity minutes an alarm may stay unacknowledged before it escalates (null: never). */
export const ESCALATE_AFTER_MIN: Record<Static<typeof SeverityT>, number | null> = { critical: 5, major: 10, minor: 30, warning: 60, info: null };

const cameraRule = (id: string, name: string, types: string[], category: string, severity: Static<typeof SeverityT>): MatchRule => ({
  id, name, enabled: true, kind: 'match', channel: 'alert', types, minConfidence: 0.6, severity,
  scope: { deviceTypes: ['camera'] }, case: { category }, autoClearS: 600,
  description: `天网 camera alert (${types.join(', ')}) with confidence ≥ 0.6 → case ${category}, snapshot as evidence`,
});

/** CONTRACT section 4 rules, shipped enabled. Camera alerts get one rule per case category so one active alarm per (rule, device) never mixes a fire with a parked car. */
export const DEFAULT_RULES: Rule[] = [
  {
    id: 'smoke-alarm', name: '烟感报警 → 火灾', enabled: true, kind: 'match', channel: 'event', types: ['smoke_alarm'], clearTypes: ['smoke_alarm_clear'],
    severity: 'critical', case: { category: 'E0402' }, description: 'an event smoke_alarm → case 火灾 (fire), critical',
  },
  {
    id: 'water-level', name: '积水超限 → 积水', enabled: true, kind: 'threshold', metric: 'water_level_cm', op: '>=', value: 30, clear: { op: '<', value: 25 },
    severity: 'major', scope: { deviceTypes: ['sensor.water_level'] }, case: { category: 'E0401' },
    description: 'telemetry water_level_cm ≥ 30 on a sensor.water_level → case 积水 (flooding), cleared below 25',
  },
  cameraRule('camera-fire', '视频识别火情 → 火灾', ['fire', 'smoke'], 'E0402', 'critical'),
  cameraRule('camera-garbage', '视频识别垃圾满溢 → 暴露垃圾', ['garbage_overflow'], 'E0101', 'minor'),
  cameraRule('camera-vending', '视频识别占道经营', ['street_vending'], 'E0501', 'minor'),
  cameraRule('camera-parking', '视频识别乱停车', ['illegal_parking'], 'E0503', 'minor'),
  cameraRule('camera-crowd', '视频识别人员聚集', ['crowd'], 'E0406', 'major'),
  cameraRule('camera-intrusion', '视频识别非法闯入', ['intrusion'], 'E0504', 'major'),
  cameraRule('camera-fall', '视频识别人员跌倒', ['fall'], 'E0407', 'major'),
  cameraRule('camera-fight', '视频识别打架斗殴', ['fight'], 'E0408', 'major'),
  cameraRule('camera-waterlogging', '视频识别积水', ['waterlogging'], 'E0401', 'major'),
  cameraRule('camera-obstruction', '视频识别道路障碍', ['road_obstruction'], 'E0505', 'minor'),
  {
    id: 'device-offline', name: '设备离线', enabled: true, kind: 'absence', offlineAfterS: 600, severity: 'warning', case: null,
    description: 'no message from a device for offlineAfter (10 min) → alarm 设备离线',
  },
  {
    id: 'fire-correlation', name: '烟感 + 视频火情 → 一个特急火灾案件', enabled: true, kind: 'correlation',
    signals: [{ channel: 'event', types: ['smoke_alarm'] }, { channel: 'alert', types: ['fire', 'smoke'], minConfidence: 0.6 }],
    withinM: 200, windowS: 120, severity: 'critical', case: { category: 'E0402', severity: 'critical' }, autoClearS: 600,
    description: 'a smoke sensor and a camera fire alert within 200 m and 2 minutes are one critical fire case, not two',
  },
];
