/**
 * Players that own their transport (Frigate HlsVideoPlayer style): created
 * per source, destroyed on change, and reporting their state so the tile can
 * show offline / stalled and offer a retry.
 *
 *  - attachHls: hls.js (loaded on demand, it is most of the video weight) or
 *    native HLS where the browser has it; low-latency tuning on.
 *  - attachMse: fMP4 fragments over a WebSocket into Media Source Extensions
 *    (sub-second latency) when the hub offers /video/{id}/live.
 */
export type PlayerState = 'connecting' | 'playing' | 'stalled' | 'offline';
export interface PlayerHandle {
  destroy(): void;
}
type Report = (s: PlayerState, detail?: string) => void;

const STALL_MS = 8000;

/** Watches progress: no advance of currentTime for STALL_MS while not paused → stalled. */
function watchProgress(video: HTMLVideoElement, report: Report): () => void {
  let last = -1;
  let lastChange = performance.now();
  let playing = false;
  const onTime = () => {
    if (video.currentTime !== last) {
      last = video.currentTime;
      lastChange = performance.now();
      if (!playing && video.currentTime > 0) {
        playing = true;
        report('playing');
      }
    }
  };
  video.addEventListener('timeupdate', onTime);
  const iv = setInterval(() => {
    onTime();
    if (performance.now() - lastChange > STALL_MS && !video.paused) {
      playing = false;
      report('stalled');
    }
  }, 1000);
  return () => {
    clearInterval(iv);
    video.removeEventListener('timeupdate', onTime);
  };
}

/**
 * Media URLs as the hub hands them out: stream URLs carry a signed stream
 * token, evidence and clip URLs a short-lived media token for that file. The
 * bearer token never goes into a URL (it would reach logs and history).
 */
export function withToken(url: string, _token: string | null): string {
  return url;
}

export function attachHls(video: HTMLVideoElement, url: string, token: string | null, report: Report): PlayerHandle {
  let destroyed = false;
  let hls: import('hls.js').default | null = null;
  const unwatch = watchProgress(video, report);
  report('connecting');
  video.muted = true;
  void import('hls.js').then(({ default: Hls }) => {
    if (destroyed) return;
    if (!Hls.isSupported()) {
      if (video.canPlayType('application/vnd.apple.mpegurl')) {
        video.src = withToken(url, token);
        void video.play().catch(() => undefined);
      } else report('offline', 'unsupported');
      return;
    }
    hls = new Hls({
      lowLatencyMode: true,
      liveSyncDurationCount: 2,
      maxLiveSyncPlaybackRate: 1.5,
      backBufferLength: 10,
      manifestLoadingMaxRetry: 2,
      xhrSetup: (xhr) => {
        if (token) xhr.setRequestHeader('authorization', `Bearer ${token}`);
      },
    });
    hls.on(Hls.Events.ERROR, (_e, data) => {
      if (!data.fatal) return;
      if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
        hls?.recoverMediaError();
        return;
      }
      report('offline', data.details);
    });
    hls.on(Hls.Events.MANIFEST_PARSED, () => void video.play().catch(() => undefined));
    hls.loadSource(url);
    hls.attachMedia(video);
  });
  return {
    destroy() {
      destroyed = true;
      unwatch();
      hls?.destroy();
      video.removeAttribute('src');
      video.load();
    },
  };
}

/** Codec string from an fMP4 init segment (avcC → avc1.PPCCLL). */
export function codecFromInit(buf: Uint8Array): string | null {
  for (let i = 4; i < buf.length - 8; i++) {
    if (buf[i] === 0x61 && buf[i + 1] === 0x76 && buf[i + 2] === 0x63 && buf[i + 3] === 0x43) {
      const hex = (n: number) => n.toString(16).padStart(2, '0');
      return `avc1.${hex(buf[i + 5]!)}${hex(buf[i + 6]!)}${hex(buf[i + 7]!)}`;
    }
    if (buf[i] === 0x68 && buf[i + 1] === 0x76 && buf[i + 2] === 0x63 && buf[i + 3] === 0x43) return 'hvc1.1.6.L93.B0';
  }
  return null;
}

export function attachMse(video: HTMLVideoElement, url: string, token: string | null, report: Report): PlayerHandle {
  const MS = window.MediaSource;
  if (!MS) {
    report('offline', 'no MSE');
    return { destroy() {} };
  }
  report('connecting');
  const ms = new MS();
  video.muted = true;
  video.src = URL.createObjectURL(ms);
  const unwatch = watchProgress(video, report);
  let ws: WebSocket | null = null;
  let sb: SourceBuffer | null = null;
  let mime: string | null = null;
  const queue: Uint8Array[] = [];
  let closed = false;

  const pump = () => {
    if (!sb || sb.updating || !queue.length || ms.readyState !== 'open') return;
    // Keep ~10 s behind the live edge, jump forward when we drift.
    const b = sb.buffered;
    if (b.length) {
      const end = b.end(b.length - 1);
      if (end - video.currentTime > 2) video.currentTime = end - 0.3;
      if (video.currentTime - b.start(0) > 15) {
        sb.remove(b.start(0), video.currentTime - 10);
        return;
      }
    }
    try {
      sb.appendBuffer(queue.shift()! as BufferSource);
    } catch {
      report('offline', 'append failed');
    }
  };

  const open = (first: Uint8Array | null) => {
    const type = mime ?? (first ? `video/mp4; codecs="${codecFromInit(first) ?? 'avc1.42E01E'}"` : null);
    if (!type || !MS.isTypeSupported(type)) {
      report('offline', `unsupported ${type}`);
      ws?.close();
      return;
    }
    sb = ms.addSourceBuffer(type);
    sb.mode = 'segments';
    sb.addEventListener('updateend', pump);
    pump();
  };

  ms.addEventListener('sourceopen', () => {
    const wsUrl = new URL(withToken(url, token), location.href);
    wsUrl.protocol = wsUrl.protocol === 'https:' ? 'wss:' : wsUrl.protocol === 'http:' ? 'ws:' : wsUrl.protocol;
    ws = new WebSocket(wsUrl);
    ws.binaryType = 'arraybuffer';
    ws.onmessage = (ev) => {
      if (typeof ev.data === 'string') {
        // Optional text header: {"mime": "..."} / {"codecs": "..."} / go2rtc {"type":"mse","value":"..."}.
        try {
          const j = JSON.parse(ev.data) as { mime?: string; codecs?: string; value?: string };
          mime = j.mime ?? j.value ?? (j.codecs ? `video/mp4; codecs="${j.codecs}"` : null);
        } catch {
          /* ignore */
        }
        return;
      }
      const chunk = new Uint8Array(ev.data as ArrayBuffer);
      queue.push(chunk);
      if (!sb) open(chunk);
      else pump();
      if (video.paused) void video.play().catch(() => undefined);
    };
    ws.onclose = () => {
      if (!closed) report('offline', 'socket closed');
    };
    ws.onerror = () => report('offline', 'socket error');
  });

  return {
    destroy() {
      closed = true;
      unwatch();
      ws?.close();
      try {
        if (ms.readyState === 'open') ms.endOfStream();
      } catch {
        /* already ended */
      }
      URL.revokeObjectURL(video.src);
      video.removeAttribute('src');
      video.load();
    },
  };
}
