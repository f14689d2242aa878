/**
 * Worker app settings (GRIDLINK_MOBILE_*): read at start, validated with
 * every problem listed at once, overridable by the module factory (tests,
 * benchmarks). The app receives them from `GET /api/v1/m/me`.
 */
import { ConfigError, readFields, type Field } from '../core/config.js';

export const mobileConfigSchema = {
  positionIntervalS: { env: 'GRIDLINK_MOBILE_POSITION_S', kind: 'number', default: 15, min: 1, description: 'The app sends a fix at most this often while the worker stands still (battery)' },
  minMoveM: { env: 'GRIDLINK_MOBILE_MIN_MOVE_M', kind: 'number', default: 25, min: 0, description: '... and sooner, once the worker moved this far from the last sent fix' },
  minGapS: { env: 'GRIDLINK_MOBILE_MIN_GAP_S', kind: 'number', default: 3, min: 0, description: 'Never two fixes closer together than this' },
  staleAfterS: { env: 'GRIDLINK_MOBILE_STALE_S', kind: 'number', default: 60, min: 5, description: 'The app shows the position as stale when its last fix is older' },
  sessionTtlS: { env: 'GRIDLINK_MOBILE_SESSION_TTL_S', kind: 'int', default: 7 * 86400, min: 60, description: 'Handheld session lifetime; the worker logs in again after it' },
  maxPhotos: { env: 'GRIDLINK_MOBILE_MAX_PHOTOS', kind: 'int', default: 6, min: 1, description: 'Photos per action or report' },
  maxPhotoBytes: { env: 'GRIDLINK_MOBILE_MAX_PHOTO_BYTES', kind: 'int', default: 4 * 1024 * 1024, min: 1024, description: 'Largest photo accepted (the app compresses to ~1600 px JPEG first)' },
} as const satisfies Record<string, Field>;

type Schema = typeof mobileConfigSchema;
export type MobileConfig = { readonly [K in keyof Schema]: number };

export function loadMobileConfig(env: Record<string, string | undefined> = process.env, overrides: Partial<MobileConfig> = {}): MobileConfig {
  const problems: string[] = [];
  const out = readFields(mobileConfigSchema, env, overrides, problems);
  if (problems.length) throw new ConfigError(problems);
  return Object.freeze(out) as MobileConfig;
}
