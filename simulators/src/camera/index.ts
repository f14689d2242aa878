/**
 * Simulated "天网" cameras: real RTSP streams and real `alert` messages.
 *
 * Each camera is ffmpeg `testsrc2` with the camera id and a millisecond wall
 * clock burned in twice: as text for people, and as a row of black/white
 * blocks (the wall clock in ms, modulo 2^bits, one bit per block) that a
 * browser canvas can read back, because no OCR runs here. ffmpeg encodes
 * H.264 (or H.265) and sends RTP over UDP to a GStreamer RTSP server
 * (rtsp_server.py, python3-gi), which serves `rtsp://127.0.0.1:<port>/<id>`.
 *
 * Why GStreamer: of the RTSP servers that run on these machines it is the one
 * that serves many clients of one live feed with RTSP-over-TCP interleaving,
 * takes a plain RTP/UDP feed (no publish handshake), and costs a few % of a
 * core per camera (measured in docs/video.md). The npm `rtsp-streaming-server`
 * needs an ffmpeg publish and was slower to first frame; rtsp-server-perl is
 * not packaged with an H.265 path.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ALERT_TYPES } from '@gridlink/devices';

const here = path.dirname(fileURLToPath(import.meta.url));
export const RTSP_SERVER_SCRIPT = path.join(here, 'rtsp_server.py');
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

export interface ClockLayout {
  bits: number;
  /** Block size in pixels; blocks sit in one row at the bottom left. */
  size: number;
  x0: number;
  y0: number;
}

/** Where the machine-readable clock blocks are; the reader (browser) uses the same function. */
export function clockLayout(width: number, height: number, bits = 24): ClockLayout {
  const size = Math.max(6, Math.floor((width - 8) / (bits + 1)));
  return { bits, size, x0: 4, y0: height - size - 4 };
}

/**
 * Reads the clock from RGBA pixels of a whole frame (canvas getImageData):
 * samples the centre of each block; bit i is white. Returns ms mod 2^bits.
 */
export function readClock(rgba: Uint8ClampedArray | Uint8Array, width: number, layout: ClockLayout): number {
  let v = 0;
  for (let i = 0; i < layout.bits; i++) {
    const cx = layout.x0 + i * layout.size + (layout.size >> 1);
    const cy = layout.y0 + (layout.size >> 1);
    let sum = 0;
    for (let dy = -1; dy <= 1; dy++) {
      for (let dx = -1; dx <= 1; dx++) {
        const o = ((cy + dy) * width + cx + dx) * 4;
        sum += (rgba[o]! + rgba[o + 1]! + rgba[o + 2]!) / 3;
      }
    }
    if (sum / 9 > 128) v += 2 ** i;
  }
  return v;
}

/** Browser-side copy of clockLayout/readClock (for page.evaluate / test pages). */
export const clockReaderSource = `
function clockLayout(width, height, bits) { bits = bits || 24; const size = Math.max(6, Math.floor((width - 8) / (bits + 1))); return { bits, size, x0: 4, y0: height - size - 4 }; }
function readClock(rgba, width, layout) { let v = 0; for (let i = 0; i < layout.bits; i++) { const cx = layout.x0 + i * layout.size + (layout.size >> 1); const cy = layout.y0 + (layout.size >> 1); let sum = 0; for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) { const o = ((cy + dy) * width + cx + dx) * 4; sum += (rgba[o] + rgba[o + 1] + rgba[o + 2]) / 3; } if (sum / 9 > 128) v += 2 ** i; } return v; }
`;

function fontArg(): string {
  for (const f of ['/usr/share/fonts/truetype/noto/NotoSansMono-Regular.ttf', '/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf']) {
    if (existsSync(f)) return `fontfile=${f}`;
  }
  return 'font=monospace';
}

/**
 * The filter graph: frame pts become the wall clock in ms (RTCTIME when the
 * frame is generated), then id + HH:MM:SS.mmm text and the clock blocks.
 */
export function clockFilter(id: string, width: number, height: number, bits = 24): string {
  const l = clockLayout(width, height, bits);
  const safeId = id.replace(/[^A-Za-z0-9._-]/g, '');
  const fs = Math.max(12, Math.round(height / 15));
  const parts = [
    'settb=1/1000',
    'setpts=RTCTIME/1000',
    `drawtext=${fontArg()}:fontsize=${fs}:fontcolor=white:box=1:boxcolor=black@0.8:x=8:y=8:text='${safeId} %{pts\\:gmtime\\:0\\:%H\\\\\\:%M\\\\\\:%S}.%{eif\\:mod(t*1000\\,1000)\\:d\\:3}'`,
    `drawbox=x=0:y=${l.y0 - 4}:w=${width}:h=${l.size + 8}:color=black:t=fill`,
  ];
  for (let i = 0; i < bits; i++) {
    parts.push(`drawbox=x=${l.x0 + i * l.size}:y=${l.y0}:w=${l.size}:h=${l.size}:color=white:t=fill:enable='mod(floor(t*1000/${2 ** i}),2)'`);
  }
  return parts.join(',');
}

export interface RtspCameraOptions {
  id: string;
  /** RTSP port; 0 or absent picks a free one. Reuse a port to bring a "dead" camera back at the same URL. */
  port?: number;
  width?: number;
  height?: number;
  fps?: number;
  /** Keyframe interval in frames (default: one per second). */
  gop?: number;
  codec?: 'h264' | 'h265';
  bitrateK?: number;
  ffmpegPath?: string;
}

export interface RtspCamera {
  id: string;
  url: string;
  port: number;
  /** PID of the RTSP server process (its encoder is its child). */
  pid: number;
  stop(): Promise<void>;
}

function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export function encoderArgs(o: Required<Pick<RtspCameraOptions, 'id' | 'width' | 'height' | 'fps' | 'gop' | 'codec' | 'bitrateK'>>, rtpPort: number): string[] {
  const common = ['-hide_banner', '-loglevel', 'error', '-nostdin', '-re', '-f', 'lavfi', '-i', `testsrc2=size=${o.width}x${o.height}:rate=${o.fps}`, '-vf', clockFilter(o.id, o.width, o.height)];
  const rate = ['-b:v', `${o.bitrateK}k`, '-maxrate', `${o.bitrateK}k`, '-bufsize', `${o.bitrateK}k`];
  const enc = o.codec === 'h265'
    ? ['-c:v', 'libx265', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', String(o.gop), '-bf', '0', '-x265-params', 'repeat-headers=1:log-level=error', ...rate]
    // sliced-threads=0: one NAL per frame, so RTSP clients see one packet per frame.
    : ['-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', String(o.gop), '-bf', '0', '-pix_fmt', 'yuv420p', '-x264-params', 'repeat-headers=1:sliced-threads=0', ...rate];
  return [...common, ...enc, '-f', 'rtp', '-payload_type', '96', `rtp://127.0.0.1:${rtpPort}?pkt_size=1200`];
}

/** True when ffmpeg and the GStreamer RTSP server are available. */
export function rtspCameraSupport(): { ok: boolean; missing: string[] } {
  const missing: string[] = [];
  if (spawnSync('ffmpeg', ['-version'], { stdio: 'ignore' }).status !== 0) missing.push('ffmpeg');
  const py = spawnSync(PYTHON, ['-c', "import gi; gi.require_version('GstRtspServer','1.0'); from gi.repository import GstRtspServer"], { stdio: 'ignore' });
  if (py.status !== 0) missing.push('python3-gi + gir1.2-gst-rtsp-server-1.0');
  return { ok: missing.length === 0, missing };
}

/** Starts one simulated camera; resolves once the RTSP server listens. */
export async function startRtspCamera(opts: RtspCameraOptions): Promise<RtspCamera> {
  const o = {
    width: 640, height: 360, fps: 25, codec: 'h264' as const, bitrateK: 1200, ...opts,
    gop: opts.gop ?? opts.fps ?? 25,
  };
  const rtpPort = await freeUdpPort();
  const enc = [opts.ffmpegPath ?? 'ffmpeg', ...encoderArgs(o, rtpPort)];
  const args = [RTSP_SERVER_SCRIPT, '--port', String(opts.port ?? 0), '--mount', `/${o.id}=${rtpPort}:${o.codec}`, '--exec', JSON.stringify(enc)];
  // stdin stays a pipe: the server exits when it closes (this process died).
  const child: ChildProcess = spawn(PYTHON, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-2000);
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`rtsp camera ${o.id} did not start: ${stderr}`)), 10_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /READY (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      } else if (out.includes('ERROR')) {
        clearTimeout(timer);
        reject(new Error(`rtsp camera ${o.id}: ${out.trim()}`));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`rtsp camera ${o.id} exited with ${code}: ${stderr}`));
    });
  });
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  return {
    id: o.id,
    port,
    pid: child.pid!,
    url: `rtsp://127.0.0.1:${port}/${o.id}`,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 2_000);
        await exited;
        clearTimeout(t);
      }
    },
  };
}

/** A JPEG frame like the camera's (testsrc2 + id + time), for `alert` snapshots. */
export function snapshotJpeg(id: string, opts: { width?: number; height?: number; ffmpegPath?: string } = {}): Promise<Buffer> {
  const w = opts.width ?? 640;
  const h = opts.height ?? 360;
  return new Promise((resolve, reject) => {
    const p = spawn(opts.ffmpegPath ?? 'ffmpeg', ['-hide_banner', '-loglevel', 'error', '-nostdin', '-f', 'lavfi', '-i', `testsrc2=size=${w}x${h}:rate=1`, '-vf', clockFilter(id, w, h), '-frames:v', '1', '-q:v', '4', '-f', 'mjpeg', 'pipe:1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let err = '';
    p.stdout.on('data', (d: Buffer) => chunks.push(d));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.once('error', reject);
    p.once('exit', (code) => (code === 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`snapshot failed: ${err}`))));
  });
}


/** The body of an `alert` message (CONTRACT section 3) with a JPEG snapshot. */
export async function alertMessage(id: string, type: string, opts: { confidence?: number; ts?: number; withSnapshot?: boolean } = {}): Promise<Record<string, unknown>> {
  const body: Record<string, unknown> = { ts: opts.ts ?? Date.now(), type, confidence: opts.confidence ?? 0.9 };
  if (opts.withSnapshot !== false) body.snapshot = (await snapshotJpeg(id)).toString('base64');
  return body;
}

/** Minimal MQTT surface (mqtt.js MqttClient fits). */
export interface AlertPublisher {
  publish(topic: string, payload: string, opts: { qos: 0 | 1 }, cb?: (err?: Error) => void): unknown;
}

/** Publishes one alert with a snapshot on `gridlink/v1/{id}/alert`; resolves on PUBACK. */
export async function publishAlert(client: AlertPublisher, id: string, type: string, opts: { confidence?: number; ts?: number; withSnapshot?: boolean } = {}): Promise<Record<string, unknown>> {
  const body = await alertMessage(id, type, opts);
  await new Promise<void>((resolve, reject) => client.publish(`gridlink/v1/${id}/alert`, JSON.stringify(body), { qos: 1 }, (err) => (err ? reject(err) : resolve())));
  return body;
}

/** Publishes alerts on a schedule (every `everyMs`, random type); returns a stop function. */
export function scheduleAlerts(client: AlertPublisher, id: string, everyMs: number, types: readonly string[] = ALERT_TYPES): () => void {
  let i = 0;
  const timer = setInterval(() => {
    const type = types[i++ % types.length]!;
    publishAlert(client, id, type, { confidence: 0.6 + Math.random() * 0.4 }).catch(() => undefined);
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
