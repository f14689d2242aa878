/**
 * Rules are data: one TypeBox schema per kind, validated on every write, so
 * the REST body, the stored JSON and the evaluator agree. The schemas are the
 * contract's (docs/contract.md section 5 `/rules`); CONTRACT 4's shipped
 * rules are DEFAULT_RULES (seeded by migration, editable).
 */
import type { Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { RuleT, SeverityT, type MatchRule, type Rule } from '@gridlink/devices/contract';

export {
  AbsenceRuleT, CaseSpecT, CorrelationRuleT, MatchRuleT, OpT, RuleT, ScopeT, SeverityT, SignalT, ThresholdRuleT,
  type AbsenceRule, type CorrelationRule, type MatchRule, type Op, type Rule, type RuleKind, type ThresholdRule,
} from '@gridlink/devices/contract';

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
