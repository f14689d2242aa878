/**
 * Forced-popup queue: a new critical alarm that is active and not yet
 * acknowledged must be acknowledged before the sound stops (DOMAIN: what duty
 * officers most ask for). The queue is derived from the alarm store so an
 * acknowledgement from another console clears it here too.
 */
import type { Alarm } from '../api/types';
import { alarms } from './data';
import { Value } from './entities';

export const forcedIds = new Value<readonly string[]>([]);
let enabled = false;

export function needsForce(a: Alarm): boolean {
  return a.severity === 'critical' && a.status === 'active' && !a.acknowledged;
}

/** Only roles that watch alarms get forced popups (set by the shell). */
export function setForcedPopups(on: boolean): void {
  enabled = on;
  if (!on) forcedIds.set([]);
  else reconcile();
}

export function onAlarm(a: Alarm): void {
  if (!enabled) return;
  if (needsForce(a) && !forcedIds.get().includes(a.id)) forcedIds.set([...forcedIds.get(), a.id]);
  else reconcile();
}

/** Drops alarms acknowledged or cleared elsewhere; adds unacknowledged criticals found by a re-sync. */
export function reconcile(): void {
  if (!enabled) return;
  const cur = forcedIds.get().filter((id) => {
    const a = alarms.get(id);
    return a && needsForce(a);
  });
  for (const a of alarms.list()) if (needsForce(a) && !cur.includes(a.id)) cur.push(a.id);
  const prev = forcedIds.get();
  if (cur.length !== prev.length || cur.some((id, i) => id !== prev[i])) forcedIds.set(cur);
}

alarms.subscribe(reconcile);
