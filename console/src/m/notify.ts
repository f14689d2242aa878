/**
 * A new dispatch while the app is open: a two-tone chime (Web Audio, no file
 * to download), a vibration where the phone allows it, and a system
 * notification when the app is in the background and the worker allowed
 * notifications. Browsers allow sound only after the page was touched once;
 * the login tap unlocks it.
 */
import { translate } from '../i18n';
import type { DispatchedCase } from './api';

let audio: AudioContext | null = null;

export function unlockAudio(): void {
  try {
    audio ??= new AudioContext();
    if (audio.state === 'suspended') void audio.resume();
  } catch {
    audio = null;
  }
}

function chime(): void {
  if (!audio) return;
  const t0 = audio.currentTime;
  for (const [i, f] of [880, 1320].entries()) {
    const o = audio.createOscillator();
    const g = audio.createGain();
    o.frequency.value = f;
    g.gain.setValueAtTime(0.0001, t0 + i * 0.25);
    g.gain.exponentialRampToValueAtTime(0.4, t0 + i * 0.25 + 0.02);
    g.gain.exponentialRampToValueAtTime(0.0001, t0 + i * 0.25 + 0.22);
    o.connect(g).connect(audio.destination);
    o.start(t0 + i * 0.25);
    o.stop(t0 + i * 0.25 + 0.25);
  }
}

export let lastAlert: { caseId: string; sound: boolean; vibrate: boolean; notification: boolean } | null = null;

export function alertNewTask(c: DispatchedCase): void {
  const lang = localStorage.getItem('gridlink.lang') === 'en' ? 'en' : 'zh';
  chime();
  const vibrate = typeof navigator.vibrate === 'function' ? navigator.vibrate([300, 100, 300]) : false;
  let notification = false;
  if (document.visibilityState === 'hidden' && 'Notification' in window && Notification.permission === 'granted') {
    const title = translate(lang, 'm.task.new');
    const body = translate(lang, 'm.task.newBody', { title: c.title, addr: c.address ?? c.code });
    void navigator.serviceWorker?.ready.then((r) => r.showNotification(title, { body, tag: c.id, data: { caseId: c.id } })).catch(() => new Notification(title, { body, tag: c.id }));
    notification = true;
  }
  lastAlert = { caseId: c.id, sound: audio?.state === 'running', vibrate, notification };
  document.documentElement.dataset.lastAlert = c.id;
}
