/**
 * Scenario files (YAML or JSON): a timeline of actions on simulated devices
 * and expectations checked against the hub's REST API. One TypeBox schema,
 * compiled once; every problem is reported with its path at once.
 */
import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { parse as parseYaml } from 'yaml';
import { ALERT_TYPES, SEVERITIES } from '@gridlink/devices';

/** "00:30", "1:02:03", "30s", "1m30s", "500ms", "2h" or a number of seconds. */
const Duration = Type.Union([Type.Number({ minimum: 0 }), Type.String({ pattern: '^(\\d+:)?\\d+:\\d{2}(\\.\\d+)?$|^(\\d+(\\.\\d+)?(ms|s|m|h))+$' })], {
  description: 'mm:ss, hh:mm:ss, 30s, 1m30s, 500ms or seconds',
});

const DeviceRef = {
  device: Type.Optional(Type.String({ description: 'device id' })),
  grid: Type.Optional(Type.String({ description: 'unit grid id: the device of the step type in that grid' })),
};

const Base = {
  at: Duration,
  note: Type.Optional(Type.String()),
};

const Strict = { additionalProperties: false } as const;

export const WaterStep = Type.Object({ ...Base, water: Type.Object({ ...DeviceRef, level: Type.Number({ description: 'water_level_cm' }), ramp: Type.Optional(Duration) }, Strict) }, Strict);
export const SmokeStep = Type.Object({ ...Base, smoke: Type.Object({ ...DeviceRef, clear: Type.Optional(Type.Boolean()) }, Strict) }, Strict);
export const GasStep = Type.Object({ ...Base, gas: Type.Object({ ...DeviceRef, lel: Type.Optional(Type.Number()), clear: Type.Optional(Type.Boolean()) }, Strict) }, Strict);
export const ManholeStep = Type.Object({ ...Base, manhole: Type.Object({ ...DeviceRef, open: Type.Boolean() }, Strict) }, Strict);
export const SensorStep = Type.Object({
  ...Base,
  sensor: Type.Object({
    device: Type.String(),
    set: Type.Optional(Type.Record(Type.String(), Type.Union([Type.Number(), Type.Boolean()]))),
    ramp: Type.Optional(Duration),
    normal: Type.Optional(Type.Boolean({ description: 'back to normal readings' })),
    event: Type.Optional(Type.Object({ type: Type.String(), severity: Type.Optional(Type.Union(SEVERITIES.map((s) => Type.Literal(s)))), data: Type.Optional(Type.Record(Type.String(), Type.Unknown())) }, Strict)),
  }, Strict),
}, Strict);
export const CameraStep = Type.Object({
  ...Base,
  camera: Type.Object({
    ...DeviceRef,
    alert: Type.String({ description: `alert type, e.g. ${ALERT_TYPES.slice(0, 6).join(', ')}` }),
    confidence: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  }, Strict),
}, Strict);
export const WorkerStep = Type.Object({
  ...Base,
  worker: Type.Object({
    id: Type.String({ description: 'worker key (w-...), hub worker id, handheld device id or name' }),
    duty: Type.Optional(Type.Union([Type.Literal('on'), Type.Literal('off'), Type.Boolean()])),
    report: Type.Optional(Type.Object({ category: Type.String(), description: Type.Optional(Type.String()) }, Strict)),
    moveTo: Type.Optional(Type.Object({ lat: Type.Number(), lon: Type.Number() }, Strict)),
  }, Strict),
}, Strict);
export const DropoutStep = Type.Object({ ...Base, dropout: Type.Object({ device: Type.String(), for: Duration }, Strict) }, Strict);
export const LogStep = Type.Object({ ...Base, log: Type.String() }, Strict);

const CaseMatch = Type.Object({
  category: Type.Optional(Type.String({ description: 'category code, name or English name (积水, E0401, Flooding)' })),
  grid: Type.Optional(Type.String()),
  status: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String())])),
  source: Type.Optional(Type.String()),
  /** at least this many matching cases (default 1) */
  count: Type.Optional(Type.Integer({ minimum: 0 })),
  /** expect that no matching case exists during the whole window */
  none: Type.Optional(Type.Boolean()),
}, Strict);

export const ExpectStep = Type.Object({
  ...Base,
  expect: Type.Object({
    within: Type.Optional(Duration),
    case: Type.Optional(CaseMatch),
    device: Type.Optional(Type.Object({ id: Type.String(), online: Type.Optional(Type.Boolean()) }, Strict)),
    reading: Type.Optional(Type.Object({ device: Type.String(), metric: Type.String(), min: Type.Optional(Type.Number()), max: Type.Optional(Type.Number()) }, Strict)),
    worker: Type.Optional(Type.Object({ id: Type.String(), status: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String())])), fresh: Type.Optional(Duration) }, Strict)),
  }, Strict),
}, Strict);

export const Step = Type.Union([WaterStep, SmokeStep, GasStep, ManholeStep, SensorStep, CameraStep, WorkerStep, DropoutStep, LogStep, ExpectStep]);
export type Step = Static<typeof Step>;

export const Scenario = Type.Object({
  name: Type.String({ minLength: 1 }),
  description: Type.Optional(Type.String()),
  /** District directory (from `sim generate`); default: generated in memory from `seed`. */
  district: Type.Optional(Type.String()),
  seed: Type.Optional(Type.Integer()),
  speed: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
  /** Which devices run: those the steps name (default), every provisioned one, or a list of ids. */
  simulate: Type.Optional(Type.Union([Type.Literal('referenced'), Type.Literal('all'), Type.Array(Type.String())])),
  /** Play the duty officer: register, dispatch to the nearest candidate, verify (see the demo). */
  dispatcher: Type.Optional(Type.Boolean()),
  /** Keep running this long after the last step (scenario time). */
  tail: Type.Optional(Duration),
  steps: Type.Array(Step, { minItems: 1 }),
}, Strict);
export type Scenario = Static<typeof Scenario>;

const check = TypeCompiler.Compile(Scenario);
const STEP_SCHEMAS = { water: WaterStep, smoke: SmokeStep, gas: GasStep, manhole: ManholeStep, sensor: SensorStep, camera: CameraStep, worker: WorkerStep, dropout: DropoutStep, log: LogStep, expect: ExpectStep };
const stepChecks = Object.fromEntries(Object.entries(STEP_SCHEMAS).map(([k, v]) => [k, TypeCompiler.Compile(v)]));

export class ScenarioError extends Error {
  constructor(readonly problems: string[], where = 'scenario') {
    super(`${where} is invalid:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ScenarioError';
  }
}

/** Parses a duration into milliseconds. */
export function parseDuration(d: string | number): number {
  if (typeof d === 'number') return d * 1000;
  const clock = /^(?:(\d+):)?(\d+):(\d{2}(?:\.\d+)?)$/.exec(d);
  if (clock) return ((Number(clock[1] ?? 0) * 60 + Number(clock[2])) * 60 + Number(clock[3])) * 1000;
  let ms = 0;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let m: RegExpExecArray | null;
  let consumed = 0;
  while ((m = re.exec(d))) {
    consumed += m[0].length;
    ms += Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
  }
  if (consumed !== d.length || consumed === 0) throw new RangeError(`not a duration: ${d}`);
  return ms;
}

export function stepKind(s: Step): string {
  return Object.keys(s).find((k) => k !== 'at' && k !== 'note')!;
}

/** Validates a parsed scenario; throws ScenarioError listing every problem. */
export function validateScenario(value: unknown, where = 'scenario'): Scenario {
  const problems: string[] = [];
  if (!check.Check(value)) {
    const seen = new Set<string>();
    const add = (path: string, message: string) => {
      if (message === 'Expected union value' && /\/(at|within|ramp|for|fresh|tail)$/.test(path)) message = 'expected a duration: mm:ss, hh:mm:ss, 30s, 1m30s, 500ms or seconds';
      if (seen.has(path + message) || problems.length >= 30) return;
      seen.add(path + message);
      problems.push(`${path || '/'}: ${message}`);
    };
    // Errors outside the steps as TypeBox reports them.
    for (const e of check.Errors(value)) if (!/^\/steps\/\d+/.test(e.path)) add(e.path, e.message);
    // A step is a union; "Expected union value" helps nobody, so check each step against the kind it names.
    const steps = (value as { steps?: unknown[] })?.steps;
    if (Array.isArray(steps)) {
      steps.forEach((st, i) => {
        const keys = st && typeof st === 'object' ? Object.keys(st).filter((k) => k !== 'at' && k !== 'note') : [];
        const kind = keys.length === 1 ? keys[0]! : null;
        if (!kind || !stepChecks[kind]) {
          add(`/steps/${i}`, `a step has "at" and exactly one of ${Object.keys(STEP_SCHEMAS).join(', ')} (got ${keys.join(', ') || 'none'})`);
          return;
        }
        for (const e of stepChecks[kind]!.Errors(st)) add(`/steps/${i}${e.path}`, e.message);
      });
    }
    if (!problems.length) problems.push('does not match the scenario schema');
    throw new ScenarioError(problems, where);
  }
  const sc = value as Scenario;
  sc.steps.forEach((s, i) => {
    try {
      parseDuration(s.at);
    } catch (err) {
      problems.push(`/steps/${i}/at: ${(err as Error).message}`);
    }
    if ('expect' in s) {
      const kinds = ['case', 'device', 'reading', 'worker'].filter((k) => (s.expect as Record<string, unknown>)[k] !== undefined);
      if (kinds.length !== 1) problems.push(`/steps/${i}/expect: needs exactly one of case, device, reading, worker`);
    }
    for (const k of ['water', 'smoke', 'gas', 'manhole', 'camera'] as const) {
      const ref = (s as Record<string, { device?: string; grid?: string } | undefined>)[k];
      if (ref && !ref.device && !ref.grid) problems.push(`/steps/${i}/${k}: needs device or grid`);
    }
  });
  if (problems.length) throw new ScenarioError(problems, where);
  return sc;
}

/** Parses YAML or JSON text (JSON is YAML) and validates it. */
export function parseScenario(text: string, where = 'scenario'): Scenario {
  let value: unknown;
  try {
    value = parseYaml(text);
  } catch (err) {
    throw new ScenarioError([`not valid YAML/JSON: ${(err as Error).message}`], where);
  }
  return validateScenario(value, where);
}
