/**
 * Dispatch settings: one schema with a default and a description per field
 * (same shape as core/config.ts), read from GRIDLINK_DISPATCH_* variables,
 * overridable by the module factory (tests, benchmarks), validated with every
 * problem listed at once, then frozen. Kept here rather than in core/config.ts
 * because nothing outside dispatch reads them.
 */
import { ConfigError, readFields, type Field } from '../core/config.js';

export const dispatchConfigSchema = {
  maxSpeedMps: { env: 'GRIDLINK_DISPATCH_MAX_SPEED_MPS', kind: 'number', default: 70, min: 1, description: 'A fix implying a faster move from the last accepted fix is flagged `jump` and does not move the worker' },
  maxFutureS: { env: 'GRIDLINK_DISPATCH_MAX_FUTURE_S', kind: 'int', default: 120, min: 0, description: 'A fix stamped further ahead of the hub clock is flagged `future`' },
  maxFixAgeS: { env: 'GRIDLINK_DISPATCH_MAX_FIX_AGE_S', kind: 'int', default: 900, min: 1, description: 'A fix older than this when it arrives, or older than the current position, is flagged `stale` (kept as history)' },
  candidateMaxFixAgeS: { env: 'GRIDLINK_DISPATCH_CANDIDATE_FIX_AGE_S', kind: 'int', default: 300, min: 1, description: 'Workers whose last fix is older are not offered as candidates' },
  ownGridExtraM: { env: 'GRIDLINK_DISPATCH_OWN_GRID_EXTRA_M', kind: 'number', default: 500, min: 0, description: 'A worker of the case grid is ranked first when at most this much farther than the nearest candidate' },
  travelMode: { env: 'GRIDLINK_DISPATCH_TRAVEL_MODE', kind: 'string', default: 'walking', description: 'walking or cycling: the speed ETAs use' },
  walkingMps: { env: 'GRIDLINK_DISPATCH_WALKING_MPS', kind: 'number', default: 1.3, min: 0.1, description: 'Walking speed for ETAs (m/s)' },
  cyclingMps: { env: 'GRIDLINK_DISPATCH_CYCLING_MPS', kind: 'number', default: 4.2, min: 0.1, description: 'Cycling / e-bike speed for ETAs (m/s)' },
  detourFactor: { env: 'GRIDLINK_DISPATCH_DETOUR_FACTOR', kind: 'number', default: 1.3, min: 1, description: 'Street distance over straight-line distance for offline ETAs' },
  acceptTimeoutS: { env: 'GRIDLINK_DISPATCH_ACCEPT_TIMEOUT_S', kind: 'int', default: 180, min: 1, description: 'A dispatch not accepted within this goes to the next candidate' },
  maxAttempts: { env: 'GRIDLINK_DISPATCH_MAX_ATTEMPTS', kind: 'int', default: 5, min: 1, description: 'Automatic re-dispatches per case before it is left to the dispatcher' },
  arrivalRadiusM: { env: 'GRIDLINK_DISPATCH_ARRIVAL_RADIUS_M', kind: 'number', default: 60, min: 1, description: 'GPS arrival: within this distance of the case ...' },
  arrivalDwellS: { env: 'GRIDLINK_DISPATCH_ARRIVAL_DWELL_S', kind: 'int', default: 30, min: 0, description: '... for at least this long' },
  geofenceMinutes: { env: 'GRIDLINK_DISPATCH_GEOFENCE_MIN', kind: 'number', default: 0, min: 0, description: 'Alarm when an idle on-duty worker is outside their grids this long (0 = off)' },
  autoDispatch: { env: 'GRIDLINK_DISPATCH_AUTO', kind: 'string', default: '', description: 'Comma list of category[:minSeverity] dispatched to the nearest candidate at once, e.g. "fire:critical,flooding"' },
  positionsIntervalMs: { env: 'GRIDLINK_DISPATCH_POSITIONS_MS', kind: 'int', default: 1000, min: 100, description: 'Batching interval of `positions` pushed to consoles' },
  resendDelayMs: { env: 'GRIDLINK_DISPATCH_RESEND_DELAY_MS', kind: 'int', default: 1500, min: 0, description: 'After a handheld reconnects, pending commands are re-sent after this delay (time to re-subscribe)' },
  amapTimeoutMs: { env: 'GRIDLINK_DISPATCH_AMAP_TIMEOUT_MS', kind: 'int', default: 1500, min: 100, description: 'AMap distance API timeout; haversine ETA on timeout' },
  trackMaxPoints: { env: 'GRIDLINK_DISPATCH_TRACK_MAX_POINTS', kind: 'int', default: 2000, min: 10, description: 'Track requests returning more points are downsampled into time buckets' },
} as const satisfies Record<string, Field>;

type Schema = typeof dispatchConfigSchema;
export type DispatchConfig = {
  readonly [K in keyof Schema]: Schema[K]['kind'] extends 'string' ? string : number;
};

const SEVERITIES = ['info', 'warning', 'minor', 'major', 'critical'] as const;

export interface AutoDispatchRule {
  category: string;
  minSeverity: (typeof SEVERITIES)[number] | null;
}

export function loadDispatchConfig(env: Record<string, string | undefined> = process.env, overrides: Partial<DispatchConfig> = {}): DispatchConfig {
  const problems: string[] = [];
  const out = readFields(dispatchConfigSchema, env, overrides, problems);
  if (out.travelMode !== 'walking' && out.travelMode !== 'cycling') problems.push(`GRIDLINK_DISPATCH_TRAVEL_MODE=${String(out.travelMode)}: must be walking or cycling`);
  try {
    parseAutoDispatch(String(out.autoDispatch));
  } catch (err) {
    problems.push(`GRIDLINK_DISPATCH_AUTO: ${(err as Error).message}`);
  }
  if (problems.length) throw new ConfigError(problems);
  return Object.freeze(out) as DispatchConfig;
}

/** "fire:critical, flooding" → [{category: 'fire', minSeverity: 'critical'}, {category: 'flooding', minSeverity: null}] */
export function parseAutoDispatch(spec: string): AutoDispatchRule[] {
  return spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry) => {
      const [category, sev] = entry.split(':').map((s) => s.trim());
      if (!category) throw new Error(`empty category in "${entry}"`);
      if (sev && !(SEVERITIES as readonly string[]).includes(sev)) throw new Error(`unknown severity "${sev}" in "${entry}"`);
      return { category, minSeverity: (sev as AutoDispatchRule['minSeverity']) || null };
    });
}

export function severityAtLeast(sev: string, min: AutoDispatchRule['minSeverity']): boolean {
  if (!min) return true;
  return SEVERITIES.indexOf(sev as (typeof SEVERITIES)[number]) >= SEVERITIES.indexOf(min);
}
