/**
 * What a domain's door hands back to the composition root (hub/src/hub.ts):
 * its name, migrations, routes and lifecycle. Constructors do nothing;
 * start() brings the module up, stop() takes it down.
 */
import type { App } from '../http/app.js';
import type { Migration } from '../store/index.js';

export interface HubModule {
  name: string;
  /** An optional module failing to start is logged and skipped. */
  optional?: boolean;
  migrations?: Migration[];
  /** Registers routes under /api/v1 (called before the server listens). */
  routes?(api: App): void;
  /** Registers routes at the server root (e.g. /video, /osmand). */
  rootRoutes?(app: App): void;
  start?(): Promise<void>;
  stop?(): Promise<void>;
}
