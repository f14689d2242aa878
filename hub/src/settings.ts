/**
 * Every setting of the process, checked before anything is built: the core
 * schema and each module's own (GRIDLINK_DISPATCH_*, GRIDLINK_VIDEO_*,
 * GRIDLINK_MOBILE_*, the cluster's). A module reads its settings when its factory runs, which is after the hub has
 * opened the database; reading them all here first means a bad module
 * setting exits with the same code and the same list as a bad core one, and
 * two bad settings in different modules are both named. A module with
 * settings of its own adds its loader to `moduleSettings`.
 */
import { ConfigError, loadConfig, type Config } from './core/config.js';
import { checkClusterSettings } from './cluster/config.js';
import { loadDispatchConfig } from './dispatch/dispatch.config.js';
import { loadMobileConfig } from './mobile/mobile.config.js';
import { videoOptionsFromEnv } from './video/index.js';

type Env = Record<string, string | undefined>;

const moduleSettings: ReadonlyArray<(env: Env) => unknown> = [
  (env) => loadDispatchConfig(env),
  (env) => videoOptionsFromEnv(env),
  (env) => loadMobileConfig(env),
  (env) => checkClusterSettings(env),
];

/** The core config; throws one ConfigError naming every bad setting of every module. */
export function loadAllSettings(env: Env = process.env): Config {
  const problems: string[] = [];
  let config: Config | undefined;
  for (const load of [(e: Env) => (config = loadConfig(e)), ...moduleSettings]) {
    try {
      load(env);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.push(...err.problems);
    }
  }
  if (problems.length || !config) throw new ConfigError(problems);
  return config;
}
