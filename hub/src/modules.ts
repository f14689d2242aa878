/**
 * The product's domain modules in start order. Each entry is a door
 * (`hub/src/<domain>/index.ts`) exporting a ModuleFactory.
 */
import type { ModuleFactory } from './hub.js';

export const defaultModules: ModuleFactory[] = [];
