/**
 * `@gridlink/devices/contract`: the integrator contract (docs/contract.md) as
 * code. TypeBox schemas with their static types for every payload on every
 * surface: device channels (section 3), cases and the workflow (section 4),
 * REST bodies and responses (section 5), Socket.IO events (section 6).
 *
 * Browser-safe: nothing here compiles a schema (the TypeBox compiler uses
 * `new Function`, which the console's CSP refuses) or touches Node. A browser
 * bundle should still import only types from this entry, and run-time values
 * (statuses, roles, the workflow table) from `@gridlink/devices/workflow`,
 * which holds plain data and does not pull TypeBox in.
 */
export * from './workflow.js';
export * from './common.js';
export * from './channels.js';
export * from './accounts.js';
export * from './cases.js';
export * from './workers.js';
export * from './registry.js';
export * from './alarms.js';
export * from './video.js';
export * from './rules.js';
export * from './grids.js';
export * from './stats.js';
export * from './realtime.js';
export * from './mobile.js';
export * from './system.js';
export * from './intake.js';
