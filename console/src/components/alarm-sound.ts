/**
 * The critical-alarm tone, generated with WebAudio (no audio file to ship).
 * A two-tone beep repeats until stop(). Browsers may keep the AudioContext
 * suspended until a user gesture; `state` says so and the popup asks for a
 * click, while `data-sound` on the popup tells tests what is happening.
 */
let ctx: AudioContext | null = null;
let timer: ReturnType<typeof setInterval> | null = null;

export type SoundState = 'off' | 'playing' | 'blocked';

function audio(): AudioContext | null {
  if (ctx) return ctx;
  const AC = window.AudioContext ?? (window as unknown as { webkitAudioContext?: typeof AudioContext }).webkitAudioContext;
  if (!AC) return null;
  ctx = new AC();
  return ctx;
}

/** Call from any user gesture (login click) so later alarms may sound. */
export function unlockAudio(): void {
  const a = audio();
  if (a && a.state === 'suspended') void a.resume();
}

function beep(a: AudioContext): void {
  const t0 = a.currentTime;
  for (const [i, f] of [880, 660].entries()) {
    const o = a.createOscillator();
    const g = a.createGain();
    o.type = 'square';
    o.frequency.value = f;
    g.gain.setValueAtTime(0.0001, t0 + i * 0.25);
    g.gain.exponentialRampToValueAtTime(0.25, t0 + i * 0.25 + 0.02);
    g.gain.exponentialRampToValueAtTime(0.0001, t0 + i * 0.25 + 0.22);
    o.connect(g).connect(a.destination);
    o.start(t0 + i * 0.25);
    o.stop(t0 + i * 0.25 + 0.24);
  }
}

export function startAlarmSound(): SoundState {
  const a = audio();
  if (!a) return 'blocked';
  if (a.state === 'suspended') void a.resume();
  if (!timer) {
    beep(a);
    timer = setInterval(() => beep(a), 1200);
  }
  return a.state === 'running' ? 'playing' : 'blocked';
}

export function soundState(): SoundState {
  if (!timer) return 'off';
  return ctx?.state === 'running' ? 'playing' : 'blocked';
}

export function stopAlarmSound(): void {
  if (timer) clearInterval(timer);
  timer = null;
}

export function testSound(): void {
  const a = audio();
  if (!a) return;
  void a.resume().then(() => beep(a));
}
