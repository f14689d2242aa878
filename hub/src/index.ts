/**
 * `@gridlink/hub`: the hub as a library, for whatever runs it in-process
 * (the simulated district's demo, console screenshots and benchmarks). It is
 * the only door into the hub from another workspace; `npm start` runs
 * main.ts, which uses the same pieces.
 */
export { casesModule, createHub, dispatchModule, mobileModule, productModules, realtimeModule, rulesModule, videoModule, VERSION, type Hub, type HubHandle, type HubOptions, type ModuleFactory, type ProductOptions } from './hub.js';
export { ConfigError, loadConfig, testConfig, type Config } from './core/config.js';
export { loadAllSettings } from './settings.js';
export { createLogger, type Logger } from './core/logger.js';
