import type { T } from '../i18n';
import type { DictKey } from '../i18n/dict';
import { ApiError } from '../api/client';

export function ago(t: T, ms: number | null | undefined, now = Date.now()): string {
  if (ms == null) return t('common.never');
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return t('common.ago.s', { n: s });
  if (s < 3600) return t('common.ago.m', { n: Math.floor(s / 60) });
  if (s < 86400) return t('common.ago.h', { n: Math.floor(s / 3600) });
  return t('common.ago.d', { n: Math.floor(s / 86400) });
}

export function duration(t: T, ms: number): string {
  const s = Math.max(0, Math.round(Math.abs(ms) / 1000));
  if (s < 60) return t('common.sec', { n: s });
  if (s < 3600) return t('common.min', { n: Math.floor(s / 60) });
  return t('common.hm', { h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
}

/** A failed action for a form or banner: the hub's coded error shows its code with the message. */
export function errorText(t: T, e: unknown): string {
  const message = e instanceof ApiError ? `${e.message} (${e.code})` : e instanceof Error ? e.message : String(e);
  return t('common.error', { message });
}

export function distance(t: T, m: number): string {
  return m < 1000 ? t('common.m', { n: Math.round(m) }) : t('common.km', { n: (m / 1000).toFixed(1) });
}

export function clock(locale: string, ms: number | null | undefined, withDate = false): string {
  if (ms == null) return '';
  return new Date(ms).toLocaleString(locale, withDate ? { month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false } : { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}

const GRID_LEVELS = ['city', 'district', 'street', 'community', 'grid'];

/** A grid level by name when it is one of the hub's named levels, else as given. */
export function gridLevel(t: T, level: unknown): string {
  const lv = String(level ?? '');
  return GRID_LEVELS.includes(lv) ? t(`grid.level.${lv}` as DictKey) : lv;
}

const CLIP_REASONS = ['CAMERA_UNAVAILABLE', 'NO_VIDEO', 'CUT_FAILED', 'INTERRUPTED', 'RECORDER_LOST'];
const CLIP_NOTES = ['INTERRUPTED', 'RECORDER_LOST'];

/** Why a clip failed, from the hub's reason code (a sentence of an older hub is shown as sent). */
export function clipReason(t: T, error: string | null | undefined): string {
  const code = String(error ?? '');
  return CLIP_REASONS.includes(code) ? t(`clip.reason.${code}` as DictKey) : code;
}

/** What a ready clip cut short may lack; null when it has no remark. */
export function clipNote(t: T, note: string | null | undefined): string | null {
  if (!note) return null;
  return CLIP_NOTES.includes(note) ? t(`clip.note.${note}` as DictKey) : note;
}
