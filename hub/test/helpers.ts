/** The hub's own tests use the same harness as other workspaces' tests (`@gridlink/hub/testing`). */
export * from '../src/testing.js';
