/**
 * The product's domain modules in start order. Each entry is a door
 * (`hub/src/<domain>/index.ts`) exporting a ModuleFactory.
 */
import type { ModuleFactory } from './hub.js';
import { createCases } from './cases/index.js';
import { dispatchModule } from './dispatch/index.js';
import { mobileModule } from './mobile/index.js';
import { createRealtime } from './realtime/index.js';
import { createRules } from './rules/index.js';
import { videoModule } from './video/index.js';

export const defaultModules: ModuleFactory[] = [
  createRealtime,
  (ctx) => createCases(ctx),
  (ctx) => createRules(ctx),
  dispatchModule,
  // the worker app's API (after cases and dispatch).
  mobileModule,
  // optional: video failing (no ffmpeg) never stops ingest.
  videoModule,
];
