/**
 * One camera tile: asks the hub for the stream (starting it if needed),
 * prefers the low-latency WebSocket/MSE path, falls back to HLS when that
 * fails, shows connecting / stalled / offline, and retries on demand.
 */
import { useEffect, useRef, useState } from 'react';
import { getToken, get } from '../api/client';
import type { StreamInfo } from '../api/types';
import { useI18n } from '../i18n';
import { useValue } from '../store/entities';
import { lowLatency } from '../store/settings';
import { attachHls, attachMse, type PlayerHandle, type PlayerState } from './HlsPlayer';

export function CameraPlayer({ cameraId, title, preferLive: prefer }: { cameraId: string; title?: string; preferLive?: boolean }) {
  const { t } = useI18n();
  const ll = useValue(lowLatency);
  const preferLive = prefer ?? ll;
  const video = useRef<HTMLVideoElement>(null);
  const [state, setState] = useState<PlayerState>('connecting');
  const [mode, setMode] = useState<'live' | 'hls' | null>(null);
  const [attempt, setAttempt] = useState(0);
  const [reason, setReason] = useState<string | null>(null);

  useEffect(() => {
    const el = video.current!;
    let handle: PlayerHandle | null = null;
    let cancelled = false;
    let fellBack = false;
    let retry: ReturnType<typeof setTimeout> | undefined;
    setState('connecting');
    setReason(null);
    (async () => {
      let info: StreamInfo;
      try {
        // Always ask: the hub starts the camera's stream on demand (not when its probes found it offline: then it says why).
        // URLs are signed and short-lived, so none are kept or broadcast (a linked camera's `stream` is this REST path).
        const got = await get<StreamInfo>(`/cameras/${encodeURIComponent(cameraId)}/stream`);
        if (got.health?.state === 'offline') {
          if (!cancelled) {
            setReason(got.health.reason);
            setState('offline');
            // Ask again now and then: the hub probes the camera each time, and plays it once it answers.
            retry = setTimeout(() => setAttempt((n) => n + 1), 15_000);
          }
          return;
        }
        info = got;
      } catch {
        if (!cancelled) setState('offline');
        return;
      }
      if (cancelled) return;
      const token = getToken();
      const startHls = () => {
        setMode('hls');
        handle = attachHls(el, info.hls, token, (s) => !cancelled && setState(s));
      };
      if (preferLive && info.live && 'MediaSource' in window) {
        setMode('live');
        handle = attachMse(el, info.live, token, (s) => {
          if (cancelled) return;
          // Low latency failed before it ever played: fall back to HLS once.
          if (s === 'offline' && !fellBack && el.currentTime === 0) {
            fellBack = true;
            handle?.destroy();
            startHls();
            return;
          }
          setState(s);
        });
      } else startHls();
    })();
    return () => {
      cancelled = true;
      clearTimeout(retry);
      handle?.destroy();
    };
  }, [cameraId, attempt, preferLive]);

  return (
    <div className={`player state-${state}`} data-testid="camera-player" data-camera={cameraId} data-state={state} data-mode={mode ?? ''}>
      <video ref={video} muted playsInline autoPlay />
      <div className="player-bar">
        <span className="player-title">{title ?? cameraId}</span>
        {state === 'playing' && <span className="tag live">{mode === 'live' ? t('video.lowLatency') : t('video.hls')}</span>}
      </div>
      {state !== 'playing' && (
        <div className="player-overlay">
          <span>{state === 'connecting' ? t('video.connecting') : state === 'stalled' ? t('video.stalled') : t('video.offline')}</span>
          {state === 'offline' && reason && <small data-testid="player-reason">{reason}</small>}
          {state !== 'connecting' && (
            <button type="button" onClick={() => setAttempt((a) => a + 1)}>
              {t('common.retry')}
            </button>
          )}
        </div>
      )}
    </div>
  );
}
