/** Colours of the map and the rest of the console (one palette, dark wall-screen theme). */
import type { Severity, WorkerStatus } from '../api/types';

export const WORKER_COLOR: Record<WorkerStatus, string> = {
  available: '#22c55e',
  dispatched: '#f59e0b',
  en_route: '#3b82f6',
  on_scene: '#d946ef',
  off_duty: '#64748b',
};

export const SEVERITY_COLOR: Record<Severity, string> = {
  critical: '#ef4444',
  major: '#f97316',
  minor: '#eab308',
  warning: '#facc15',
  info: '#38bdf8',
};

/** Grid outline colours from the coarsest level to the finest. */
export const LEVEL_COLORS = ['#38bdf8', '#2dd4bf', '#a78bfa', '#64748b', '#475569'];

/** Fix age (ms) after which a worker counts as ageing / stale. */
export const AGEING_MS = 60_000;
export const STALE_MS = 5 * 60_000;
