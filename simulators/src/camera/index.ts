/**
 * Simulated "天网" cameras: real RTSP streams and real `alert` messages,
 * from nothing but `npm install` (ffmpeg from the system or the npm package
 * @ffmpeg-installer/ffmpeg; the RTSP server is ./rtsp-server.ts).
 *
 * Each picture is a scene drawn by ffmpeg filters (an intersection or a
 * street with traffic), the camera's name, a millisecond wall clock burned in
 * twice: as text for people, and as a row of black/white blocks (the wall
 * clock in ms, modulo 2^bits, one bit per block) that a browser canvas or a
 * test can read back, because no OCR runs here. When the camera raises an
 * alert the picture shows it: a red box around the object with its label,
 * so a clip of the moment is meaningful evidence.
 *
 * ffmpeg encodes H.264 (Annex B on stdout, one access unit delimiter per
 * frame) and the Node RTSP server packetises it per RFC 6184 for every
 * client, RTP interleaved on the RTSP TCP connection. The encoder's stdout is
 * our pipe, so it exits when this process dies.
 *
 * H.265 cameras (`codec: 'h265'`) still go through the GStreamer server
 * (rtsp_server.py, python3-gi + gir1.2-gst-rtsp-server-1.0) when it is
 * installed; nothing in the demo needs it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ALERT_TYPES } from '@gridlink/devices';
import { AnnexBSplitter } from './h264.js';
import { H264Source, RtspServer } from './rtsp-server.js';

/** The RTSP server and RTP packetiser, for tests that drive a camera by hand. */
export { H264Source, RtspServer } from './rtsp-server.js';
export { RtpPacketiser } from './h264.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export const RTSP_SERVER_SCRIPT = path.join(here, 'rtsp_server.py');
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

let ffmpegBin: string | null | undefined;
/** System ffmpeg, else the static build of @ffmpeg-installer/ffmpeg (the hub's optional dependency); null when neither runs. */
export function simFfmpeg(): string | null {
  if (ffmpegBin !== undefined) return ffmpegBin;
  const candidates = [process.env.GRIDLINK_FFMPEG, 'ffmpeg'];
  try {
    const req = createRequire(path.join(here, '../../../hub/package.json'));
    candidates.push((req('@ffmpeg-installer/ffmpeg') as { path?: string }).path);
  } catch {
    /* not installed */
  }
  ffmpegBin = candidates.find((c): c is string => !!c && spawnSync(c, ['-hide_banner', '-version'], { stdio: 'ignore', timeout: 5_000 }).status === 0) ?? null;
  return ffmpegBin;
}

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

const MONO_FONTS = ['/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf', '/usr/share/fonts/truetype/noto/NotoSansMono-Regular.ttf', '/usr/share/fonts/truetype/liberation/LiberationMono-Regular.ttf'];
const CJK_FONTS = ['/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf', '/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc', '/usr/share/fonts/truetype/wqy/wqy-microhei.ttc', '/usr/share/fonts/truetype/arphic/uming.ttc'];

/**
 * A font file for drawtext. The static npm ffmpeg has no usable fontconfig
 * (font=monospace fails), so text needs a file path; without one the picture
 * keeps the scene and the clock blocks and drops the text.
 */
export function fontFile(cjk = false): string | null {
  return (cjk ? CJK_FONTS : MONO_FONTS).find((f) => existsSync(f)) ?? (cjk ? null : CJK_FONTS.find((f) => existsSync(f)) ?? null);
}

function fontArg(): string | null {
  const f = fontFile();
  return f ? `fontfile=${f}` : null;
}

/** drawtext text escaping: the filter-graph level and the option level. */
function escText(t: string): string {
  return t.replace(/\\/g, '\\\\\\\\').replace(/'/g, '').replace(/:/g, '\\\\:').replace(/%/g, '\\\\%').replace(/,/g, '\\,');
}

/**
 * The filter graph: frame pts become the wall clock in ms (RTCTIME when the
 * frame is generated), then id + HH:MM:SS.mmm text and the clock blocks.
 */
export function clockFilter(id: string, width: number, height: number, bits = 24): string {
  const l = clockLayout(width, height, bits);
  const safeId = id.replace(/[^A-Za-z0-9._-]/g, '');
  const fs = Math.max(12, Math.round(height / 15));
  const font = fontArg();
  const parts = [
    'settb=1/1000',
    'setpts=RTCTIME/1000',
    ...(font ? [`drawtext=${font}:fontsize=${fs}:fontcolor=white:box=1:boxcolor=black@0.8:x=8:y=8:text='${safeId} %{pts\\:gmtime\\:0\\:%H\\\\\\:%M\\\\\\:%S}.%{eif\\:mod(t*1000\\,1000)\\:d\\:3}'`] : []),
    `drawbox=x=0:y=${l.y0 - 4}:w=${width}:h=${l.size + 8}:color=black:t=fill`,
  ];
  for (let i = 0; i < bits; i++) {
    parts.push(`drawbox=x=${l.x0 + i * l.size}:y=${l.y0}:w=${l.size}:h=${l.size}:color=white:t=fill:enable='mod(floor(t*1000/${2 ** i}),2)'`);
  }
  return parts.join(',');
}

export type CameraScene = 'intersection' | 'street';

/** The scene under the clock: roads, lane marks and traffic that moves with the clock, drawn with drawbox only. */
export function sceneFilter(scene: CameraScene, w: number, h: number, seed = 0): string {
  const road = Math.round(h * 0.28);
  const ry = Math.round(h * 0.42);
  const parts: string[] = [];
  // Buildings along the top.
  for (let i = 0; i < 6; i++) {
    const bw = Math.round(w / 7);
    const bh = Math.round(h * (0.18 + ((seed + i * 37) % 5) * 0.035));
    parts.push(`drawbox=x=${Math.round(i * w / 6) + 4}:y=${ry - bh - Math.round(h * 0.04)}:w=${bw}:h=${bh}:color=0x${['6b7b8c', '8c7b6b', '7b8c6b', '8a8a9a'][(seed + i) % 4]}:t=fill`);
  }
  // Sidewalks and the main road with dashed lane marks.
  parts.push(`drawbox=x=0:y=${ry - Math.round(h * 0.04)}:w=${w}:h=${road + Math.round(h * 0.08)}:color=0xb0b0a8:t=fill`);
  parts.push(`drawbox=x=0:y=${ry}:w=${w}:h=${road}:color=0x404448:t=fill`);
  for (let x = 0; x < w; x += 40) parts.push(`drawbox=x=${x}:y=${ry + (road >> 1) - 1}:w=20:h=3:color=white:t=fill`);
  if (scene === 'intersection') {
    const cx = Math.round(w * 0.55);
    const cw = road;
    parts.push(`drawbox=x=${cx}:y=${ry - Math.round(h * 0.04)}:w=${cw}:h=${h - ry}:color=0x404448:t=fill`);
    // Zebra crossing.
    for (let y = ry + 4; y < ry + road - 4; y += 10) parts.push(`drawbox=x=${cx - 26}:y=${y}:w=22:h=5:color=white:t=fill`);
    // Cross traffic, moving down.
    parts.push(`drawbox=x=${cx + (cw >> 2)}:y='mod(t*45+${seed * 13},${h - ry + 40})+${ry - 40}':w=${cw >> 2}:h=30:color=0xd0d040:t=fill`);
    // Traffic light, cycling every 20 s.
    parts.push(`drawbox=x=${cx + cw + 6}:y=${ry - 60}:w=12:h=34:color=black:t=fill`);
    parts.push(`drawbox=x=${cx + cw + 8}:y=${ry - 58}:w=8:h=8:color=red:t=fill:enable='lt(mod(t,20),10)'`);
    parts.push(`drawbox=x=${cx + cw + 8}:y=${ry - 38}:w=8:h=8:color=lime:t=fill:enable='gte(mod(t,20),10)'`);
  }
  // Cars in both directions (positions are functions of time: the picture moves).
  const lane1 = ry + 6;
  const lane2 = ry + (road >> 1) + 6;
  const ch = (road >> 1) - 12;
  const colours = ['0xc03030', '0x3060c0', '0xe0e0e0', '0x30a050'];
  for (let i = 0; i < 3; i++) {
    parts.push(`drawbox=x='mod(t*${60 + i * 17}+${(seed * 53 + i * 170) % w},${w + 80})-80':y=${lane2}:w=${44 + i * 6}:h=${ch}:color=${colours[(seed + i) % 4]}:t=fill`);
    parts.push(`drawbox=x='${w}-mod(t*${50 + i * 13}+${(seed * 31 + i * 150) % w},${w + 80})':y=${lane1}:w=${40 + i * 8}:h=${ch}:color=${colours[(seed + i + 2) % 4]}:t=fill`);
  }
  return parts.join(',');
}

/** Name line, scene label and the alert marker (a red box with its label, read from a file every frame). */
function overlayFilter(o: { name?: string | undefined; scene: CameraScene; alertFile?: string | undefined; width: number; height: number }): string {
  const parts: string[] = [];
  const fs = Math.max(12, Math.round(o.height / 15));
  const cjk = fontFile(true);
  const mono = fontFile();
  if (o.name && cjk) {
    parts.push(`drawtext=fontfile=${cjk}:fontsize=${fs}:fontcolor=white:box=1:boxcolor=black@0.6:x=8:y=${8 + fs + 8}:text='${escText(o.name)}'`);
  }
  if (mono) parts.push(`drawtext=fontfile=${mono}:fontsize=${Math.round(fs * 0.8)}:fontcolor=white@0.9:x=w-tw-8:y=8:text='${o.scene === 'intersection' ? 'INTERSECTION' : 'STREET'}'`);
  if (o.alertFile && mono) {
    // The marked object: text from the file (empty = nothing drawn), a thick red border around it;
    // the Chinese label (second file) under it when a CJK font exists (the CJK fallback font has no Latin glyphs).
    const x = Math.round(o.width * 0.3);
    const y = Math.round(o.height * 0.46);
    parts.push(`drawtext=fontfile=${mono}:textfile=${o.alertFile}:reload=1:fontsize=${fs}:fontcolor=white:box=1:boxcolor=red@0.85:boxborderw=${Math.round(fs * 1.2)}:x=${x}:y=${y}`);
    if (cjk && cjk !== mono) parts.push(`drawtext=fontfile=${cjk}:textfile=${o.alertFile}.zh:reload=1:fontsize=${fs}:fontcolor=yellow:x=${x}:y=${y + Math.round(fs * 1.3)}`);
  }
  return parts.join(',');
}

export interface RtspCameraOptions {
  id: string;
  /** Shown in the picture (CJK text needs a CJK font on the machine; the id is always shown). */
  name?: string;
  scene?: CameraScene;
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
  /** Require RTSP credentials (Basic or Digest); the URL then carries them. */
  auth?: { username: string; password: string };
  /** More paths serving the same feed (load tests: many cameras from one encoder). */
  aliases?: string[];
  /** Other ports serving the same feed at `/{path}` (cameras whose URLs name their own port, sharing one encoder). */
  mirrors?: Array<{ path: string; port: number }>;
}

export interface RtspCamera {
  id: string;
  url: string;
  port: number;
  /** PID of the encoder (H.264) or of the GStreamer RTSP server (H.265). */
  pid: number;
  /** RTSP requests answered so far (Node server only). */
  readonly requests: number;
  /** Show an alert in the picture (a marked object with its label, ASCII, and an optional Chinese label) for `forMs`. */
  mark(label: string, forMs?: number, zh?: string): void;
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

type EncoderInput = Required<Pick<RtspCameraOptions, 'id' | 'width' | 'height' | 'fps' | 'gop' | 'codec' | 'bitrateK'>> & { name?: string | undefined; scene?: CameraScene | undefined; alertFile?: string | undefined };

function pictureFilter(o: EncoderInput): string {
  const scene = o.scene ?? 'street';
  const seed = [...o.id].reduce((a, c) => (a * 31 + c.charCodeAt(0)) % 997, 7);
  const overlay = overlayFilter({ name: o.name, scene, alertFile: o.alertFile, width: o.width, height: o.height });
  return [sceneFilter(scene, o.width, o.height, seed), clockFilter(o.id, o.width, o.height), ...(overlay ? [overlay] : [])].join(',');
}

/** The encoder: the picture as H.264 Annex B on stdout (`out` = 'pipe:1') or RTP to a port (GStreamer path). */
export function encoderArgs(o: EncoderInput, out: number | 'pipe:1'): string[] {
  const common = ['-hide_banner', '-loglevel', 'error', '-nostdin', '-re', '-f', 'lavfi', '-i', `color=c=0x4a5a44:size=${o.width}x${o.height}:rate=${o.fps}`, '-vf', pictureFilter(o)];
  const rate = ['-b:v', `${o.bitrateK}k`, '-maxrate', `${o.bitrateK}k`, '-bufsize', `${o.bitrateK}k`];
  const enc = o.codec === 'h265'
    ? ['-c:v', 'libx265', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', String(o.gop), '-bf', '0', '-x265-params', 'repeat-headers=1:log-level=error', ...rate]
    // sliced-threads=0: one NAL per frame; aud=1: the RTSP server sees where each frame ends; baseline decodes cheaply in browsers.
    : ['-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-profile:v', 'baseline', '-g', String(o.gop), '-bf', '0', '-pix_fmt', 'yuv420p',
        '-x264-params', `repeat-headers=1:sliced-threads=0:aud=1:threads=1`, ...rate];
  if (out === 'pipe:1') return [...common, ...enc, '-f', 'h264', 'pipe:1'];
  return [...common, ...enc, '-f', 'rtp', '-payload_type', '96', `rtp://127.0.0.1:${out}?pkt_size=1200`];
}

/** True when simulated cameras can run: ffmpeg (system or npm); GStreamer only for H.265. */
export function rtspCameraSupport(codec: 'h264' | 'h265' = 'h264'): { ok: boolean; missing: string[] } {
  const missing: string[] = [];
  if (!simFfmpeg()) missing.push('ffmpeg');
  if (codec === 'h265') {
    const py = spawnSync(PYTHON, ['-c', "import gi; gi.require_version('GstRtspServer','1.0'); from gi.repository import GstRtspServer"], { stdio: 'ignore' });
    if (py.status !== 0) missing.push('python3-gi + gir1.2-gst-rtsp-server-1.0');
  }
  return { ok: missing.length === 0, missing };
}

/** Starts one simulated camera; resolves once the RTSP server listens. */
export async function startRtspCamera(opts: RtspCameraOptions): Promise<RtspCamera> {
  const o = {
    width: 640, height: 360, fps: 25, codec: 'h264' as const, bitrateK: 1200, ...opts,
    gop: opts.gop ?? opts.fps ?? 25,
  };
  if (o.codec === 'h265') return startGstCamera(o);
  const ff = opts.ffmpegPath ?? simFfmpeg();
  if (!ff) throw new Error('no ffmpeg for the simulated camera (install ffmpeg or @ffmpeg-installer/ffmpeg)');
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'gridlink-cam-'));
  const alertFile = path.join(tmp, 'alert.txt');
  writeFileSync(alertFile, '');
  writeFileSync(`${alertFile}.zh`, '');
  const source = new H264Source(o.fps);
  const server = new RtspServer({ ...(opts.port ? { port: opts.port } : {}), ...(opts.auth ? { auth: opts.auth } : {}) });
  server.mount(`/${o.id}`, source);
  for (const a of opts.aliases ?? []) server.mount(`/${a}`, source);
  const port = await server.listen();
  const mirrors: RtspServer[] = [];
  for (const m of opts.mirrors ?? []) {
    const s = new RtspServer({ port: m.port, ...(opts.auth ? { auth: opts.auth } : {}) });
    s.mount(`/${m.path}`, source);
    try {
      await s.listen();
      mirrors.push(s);
    } catch {
      // Port taken: that camera stays without a picture, as a real one that is down.
    }
  }
  const closeAll = () => Promise.all([server.close(), ...mirrors.map((s) => s.close())]).then(() => undefined);
  const child: ChildProcess = spawn(ff, encoderArgs({ ...o, alertFile }, 'pipe:1'), { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-2000);
  });
  const splitter = new AnnexBSplitter((au) => source.push(au, splitter.sps, splitter.pps));
  child.stdout!.on('data', (d: Buffer) => splitter.push(d));
  let stopping = false;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // An encoder that dies takes the camera down: the hub must see a dead source, not a silent one.
  void exited.then(() => {
    if (!stopping) void closeAll();
  });
  const started = await source.ready(15_000);
  if (!started) {
    child.kill('SIGKILL');
    await closeAll();
    rmSync(tmp, { recursive: true, force: true });
    throw new Error(`rtsp camera ${o.id} produced no video: ${stderr.trim()}`);
  }
  let unmark: NodeJS.Timeout | null = null;
  const writeAlert = (text: string, zh = '') => {
    // Atomic replace: drawtext re-reads the files every frame.
    try {
      for (const [f, t] of [[alertFile, text], [`${alertFile}.zh`, zh]] as const) {
        writeFileSync(`${f}.tmp`, t);
        renameSync(`${f}.tmp`, f);
      }
    } catch {
      /* stopped */
    }
  };
  const userinfo = opts.auth ? `${encodeURIComponent(opts.auth.username)}:${encodeURIComponent(opts.auth.password)}@` : '';
  return {
    id: o.id,
    port,
    pid: child.pid!,
    url: `rtsp://${userinfo}127.0.0.1:${port}/${o.id}`,
    get requests() {
      return server.requests;
    },
    mark(label: string, forMs = 30_000, zh = '') {
      writeAlert(label, zh);
      if (unmark) clearTimeout(unmark);
      unmark = setTimeout(() => writeAlert(''), forMs);
      unmark.unref();
    },
    async stop() {
      stopping = true;
      if (unmark) clearTimeout(unmark);
      await closeAll();
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 2_000);
        await exited;
        clearTimeout(t);
      }
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}

/** H.265: the encoder sends RTP/UDP to the GStreamer RTSP server (optional packages). */
async function startGstCamera(o: EncoderInput & RtspCameraOptions): Promise<RtspCamera> {
  const rtpPort = await freeUdpPort();
  const enc = [o.ffmpegPath ?? simFfmpeg() ?? 'ffmpeg', ...encoderArgs(o, rtpPort)];
  const args = [RTSP_SERVER_SCRIPT, '--port', String(o.port ?? 0), '--mount', `/${o.id}=${rtpPort}:${o.codec}`, '--exec', JSON.stringify(enc)];
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
    requests: 0,
    mark() {
      /* the GStreamer path draws no alert marker */
    },
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

/** A JPEG frame like the camera's (scene + id + time), for `alert` snapshots. */
export function snapshotJpeg(id: string, opts: { width?: number; height?: number; ffmpegPath?: string; name?: string; scene?: CameraScene } = {}): Promise<Buffer> {
  const w = opts.width ?? 640;
  const h = opts.height ?? 360;
  const vf = pictureFilter({ id, width: w, height: h, fps: 1, gop: 1, codec: 'h264', bitrateK: 0, name: opts.name, scene: opts.scene });
  return new Promise((resolve, reject) => {
    const p = spawn(opts.ffmpegPath ?? simFfmpeg() ?? 'ffmpeg', ['-hide_banner', '-loglevel', 'error', '-nostdin', '-f', 'lavfi', '-i', `color=c=0x4a5a44:size=${w}x${h}:rate=1`, '-vf', vf, '-frames:v', '1', '-q:v', '4', '-f', 'mjpeg', 'pipe:1'], { stdio: ['ignore', 'pipe', 'pipe'] });
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
