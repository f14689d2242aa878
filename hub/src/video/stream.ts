/**
 * One camera's stream: a supervised ffmpeg that exists only while someone
 * watches (or a clip is being recorded).
 *
 *   idle ──first viewer──▶ starting ──first segment──▶ live
 *   live ──exit / no segment for stallS──▶ stalled ──restart ok──▶ live
 *   stalled/starting ──offlineAfterFailures failed starts──▶ offline ──▶ live
 *   any ──last viewer gone for graceS──▶ idle (ffmpeg stopped)
 *
 * Restarts back off exponentially with jitter. ffmpeg runs in its own
 * process group (detached) so a kill takes anything it forked; its pid is
 * tracked by the gateway so a crashed hub's leftovers are reaped at start.
 * ffmpeg also dies on its own when the hub dies: its fMP4 output is our
 * stdout pipe, so the next write fails (EPIPE) and ffmpeg exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdirSync, readFileSync, rmSync, statSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../core/logger.js';
import { streamArgs, type FfmpegInfo } from './ffmpeg.js';
import { codecOf, Fmp4Splitter, type Fragment } from './fmp4.js';
import { redactText } from './url.js';

export type StreamState = 'idle' | 'starting' | 'live' | 'stalled' | 'offline';

export interface StreamSettings {
  /** HLS target segment length (cut at keyframes, so the camera GOP rules in practice). */
  segmentS: number;
  listSize: number;
  /** Seconds of segments kept on disk for evidence (pre-roll): the rolling buffer. */
  ringS: number;
  /** Bytes of segments kept on disk at most per camera (the buffer's size budget); 0 = no limit. */
  ringBytesMax: number;
  /** No new segment for this long while live → stalled, ffmpeg restarted. */
  stallS: number;
  /** A start that produced no segment within this long counts as failed. */
  startTimeoutS: number;
  /** RTSP socket timeout given to ffmpeg. */
  ioTimeoutS: number;
  /** ffmpeg keeps running this long after the last viewer left. */
  graceS: number;
  /** An HLS viewer that fetched nothing for this long has left. */
  leaseS: number;
  backoffMinMs: number;
  backoffMaxMs: number;
  /** Consecutive failed starts after which the camera is reported offline. */
  offlineAfterFailures: number;
}

export const defaultStreamSettings: StreamSettings = {
  segmentS: 1,
  listSize: 6,
  ringS: 15,
  ringBytesMax: 32 * 1024 * 1024,
  stallS: 6,
  startTimeoutS: 15,
  ioTimeoutS: 5,
  graceS: 20,
  leaseS: 15,
  backoffMinMs: 500,
  backoffMaxMs: 30_000,
  offlineAfterFailures: 3,
};

export interface Segment {
  seq: number;
  file: string;
  path: string;
  /** Wall clock of the first frame (EXT-X-PROGRAM-DATE-TIME), epoch ms. */
  startMs: number;
  durMs: number;
  bytes: number;
}

/** A WebSocket-like sink for the fMP4 path. */
export interface LiveSink {
  send(data: string | Buffer): void;
  readonly bufferedAmount: number;
}

interface LiveClient {
  sink: LiveSink;
  needKey: boolean;
  sentInit: boolean;
}

export interface StreamDeps {
  id: string;
  ff: FfmpegInfo;
  dir: string;
  settings: StreamSettings;
  transcode: () => boolean;
  /** The URL for ffmpeg (parsed, allow-listed, host resolved) and the secrets to redact from its output. */
  target: () => Promise<{ url: string; secrets: string[] }>;
  logger: Logger;
  onPid: (pid: number, alive: boolean) => void;
}

const MAX_CLIENT_BUFFER = 4 * 1024 * 1024;

export class CameraStream extends EventEmitter {
  state: StreamState = 'idle';
  readonly id: string;
  pid: number | null = null;
  /** Timing of the current run, for the benchmark and REST. */
  startedAt: number | null = null;
  firstSegmentAt: number | null = null;
  firstFragmentAt: number | null = null;
  lastSegmentAt: number | null = null;
  failures = 0;
  restarts = 0;
  readonly ring: Segment[] = [];

  private proc: ChildProcess | null = null;
  private exited: Promise<void> | null = null;
  private readonly holds = new Set<object>();
  private readonly leases = new Map<string, number>();
  private readonly clients = new Set<LiveClient>();
  private init: Buffer | null = null;
  private mime = '';
  private gop: Buffer[] = [];
  private playlistStamp = '';
  private lastSeq = -1;
  private restartTimer: NodeJS.Timeout | null = null;
  private idleSince: number | null = null;
  private killing = false;
  private closed = false;
  private preparing = false;
  /** Why the last run ended (redacted), for the state log line and REST. */
  lastError: string | null = null;

  constructor(private readonly deps: StreamDeps) {
    super();
    this.id = deps.id;
  }

  get viewers(): number {
    return this.holds.size + this.leases.size + this.clients.size;
  }

  get live(): boolean {
    return this.state === 'live';
  }

  /** A holder (clip recorder, test) keeps the stream up until it calls the returned release. */
  acquire(): () => void {
    const token = {};
    this.holds.add(token);
    this.wake();
    return () => {
      this.holds.delete(token);
    };
  }

  /** An HLS viewer identified by its token nonce; renewed by every playlist/segment fetch. */
  touchLease(nonce: string, now = Date.now()): void {
    this.leases.set(nonce, now);
    this.wake();
  }

  addClient(sink: LiveSink): () => void {
    const c: LiveClient = { sink, needKey: true, sentInit: false };
    this.clients.add(c);
    if (this.init) this.sendInit(c, true);
    this.wake();
    return () => {
      this.clients.delete(c);
    };
  }

  /** Waits until the stream is live (or the timeout passes); true when live. */
  waitLive(timeoutMs: number): Promise<boolean> {
    if (this.state === 'live') return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(t);
        this.off('state', onState);
        resolve(ok);
      };
      const onState = (s: StreamState) => {
        if (s === 'live') done(true);
      };
      const t = setTimeout(() => done(false), timeoutMs);
      this.on('state', onState);
    });
  }

  playlistPath(): string {
    return path.join(this.deps.dir, 'index.m3u8');
  }

  segmentPath(file: string): string {
    return path.join(this.deps.dir, file);
  }

  /**
   * One log line per state change, not per restart: a camera that stays
   * down costs nothing in the log. `live` and `offline` are worth an
   * operator's attention (info/warn); the transitions between are debug
   * (the health watcher reports the camera itself).
   */
  private setState(s: StreamState): void {
    if (this.state === s) return;
    const from = this.state;
    this.state = s;
    const line = { cameraId: this.id, from, to: s, ...(s !== 'live' && this.lastError ? { reason: this.lastError } : {}) };
    if (s === 'offline') this.deps.logger.warn(line, 'camera stream offline');
    else if (s === 'live' && from !== 'starting') this.deps.logger.info(line, 'camera stream live again');
    else this.deps.logger.debug(line, 'camera stream state');
    this.emit('state', s, from);
  }

  private wake(): void {
    this.idleSince = null;
    if (this.closed) return;
    if (!this.proc && !this.restartTimer && !this.preparing) this.prepare();
  }

  /** Resolves the camera address (allow-list, DNS) before each start; a refusal counts as a failed start. */
  private prepare(): void {
    this.preparing = true;
    // Starting from the viewer's request on, not from when the address is resolved.
    if (this.state === 'idle') this.setState('starting');
    this.deps.target().then(
      (t) => {
        this.preparing = false;
        if (this.closed || this.proc || this.restartTimer) return;
        if (this.viewers === 0) return this.setState('idle');
        this.spawn(t.url, t.secrets);
      },
      (err: Error) => {
        this.preparing = false;
        this.lastError = redactText(err.message);
        this.failures++;
        this.setState('offline');
        this.scheduleRestart();
      },
    );
  }

  private spawn(url: string, secrets: string[]): void {
    if (this.closed || this.proc) return;
    const { dir, ff, settings } = this.deps;
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    this.ring.length = 0;
    this.playlistStamp = '';
    this.lastSeq = -1;
    this.init = null;
    this.gop = [];
    for (const c of this.clients) {
      c.sentInit = false;
      c.needKey = true;
    }
    const args = streamArgs(ff, {
      rtspUrl: url, dir, segmentS: settings.segmentS, listSize: settings.listSize,
      keepSegments: Math.ceil(settings.ringS / settings.segmentS) + 2, transcode: this.deps.transcode(), ioTimeoutS: settings.ioTimeoutS,
    });
    const proc = spawn(ff.path, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    this.startedAt = Date.now();
    this.firstSegmentAt = null;
    this.firstFragmentAt = null;
    if (this.state === 'idle') this.setState('starting');
    const pid = proc.pid;
    if (pid) {
      this.pid = pid;
      this.deps.onPid(pid, true);
    }
    let stderr = '';
    proc.stderr!.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-1500);
    });
    const redacted = () => redactText(stderr.trim().split('\n').slice(-2).join(' | '), secrets);
    const splitter = new Fmp4Splitter((init) => this.onInit(init), (f) => this.onFragment(f));
    proc.stdout!.on('data', (d: Buffer) => splitter.push(d));
    proc.stdout!.on('error', () => undefined);
    this.exited = new Promise((resolve) => {
      proc.once('error', (err) => {
        this.deps.logger.error({ cameraId: this.id, err: redactText(err.message, secrets) }, 'ffmpeg could not start');
      });
      proc.once('close', (code, signal) => {
        if (pid) this.deps.onPid(pid, false);
        this.proc = null;
        this.pid = null;
        resolve();
        this.onExit(code, signal, redacted());
      });
    });
  }

  private onInit(init: Buffer): void {
    this.init = init;
    this.mime = `video/mp4; codecs="${codecOf(init)}"`;
    for (const c of this.clients) this.sendInit(c, false);
  }

  private sendInit(c: LiveClient, withGop: boolean): void {
    if (!this.init) return;
    try {
      c.sink.send(JSON.stringify({ type: 'init', mime: this.mime, cameraId: this.id }));
      c.sink.send(this.init);
      c.sentInit = true;
      c.needKey = true;
      if (withGop && this.gop.length) {
        // The fragments since the last keyframe: the viewer decodes at once.
        for (const f of this.gop) c.sink.send(f);
        c.needKey = false;
      }
    } catch {
      this.clients.delete(c);
    }
  }

  private onFragment(f: Fragment): void {
    if (this.firstFragmentAt === null) {
      this.firstFragmentAt = Date.now();
      this.emit('fragment');
    }
    if (f.key) this.gop = [f.data];
    else if (this.gop.length > 0 && this.gop.length < 600) this.gop.push(f.data);
    for (const c of this.clients) {
      if (!c.sentInit) continue;
      if (c.needKey && !f.key) continue;
      if (c.sink.bufferedAmount > MAX_CLIENT_BUFFER) {
        // A slow viewer skips to the next keyframe instead of growing our memory.
        c.needKey = true;
        continue;
      }
      try {
        c.sink.send(f.data);
        c.needKey = false;
      } catch {
        this.clients.delete(c);
      }
    }
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null, stderr: string): void {
    const wanted = !this.closed && this.viewers > 0 && !this.killingForIdle;
    this.killing = false;
    if (!wanted) {
      this.killingForIdle = false;
      this.failures = 0;
      this.setState('idle');
      return;
    }
    const producedSegments = this.firstSegmentAt !== null;
    if (producedSegments) this.failures = 1;
    else this.failures++;
    this.restarts++;
    this.lastError = stderr || `ffmpeg exited with ${code ?? signal}`;
    this.deps.logger.debug({ cameraId: this.id, code, signal, failures: this.failures, err: stderr }, 'ffmpeg exited; restarting');
    if (this.failures >= this.deps.settings.offlineAfterFailures) this.setState('offline');
    else if (this.state !== 'offline') this.setState('stalled');
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    if (this.closed || this.restartTimer) return;
    const { backoffMinMs, backoffMaxMs } = this.deps.settings;
    const base = Math.min(backoffMaxMs, backoffMinMs * 2 ** Math.max(0, this.failures - 1));
    // Full jitter on half the delay: restarts of many cameras after a network blip spread out.
    const delay = base / 2 + Math.random() * (base / 2);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (!this.closed && this.viewers > 0) this.prepare();
      else this.setState('idle');
    }, delay);
    this.restartTimer.unref();
  }

  private killingForIdle = false;

  /** Called by the gateway several times a second. */
  tick(now = Date.now()): void {
    for (const [nonce, at] of this.leases) if (now - at > this.deps.settings.leaseS * 1000) this.leases.delete(nonce);
    if (this.proc) this.pollPlaylist(now);
    this.trimRing(now);
    const s = this.deps.settings;
    if (this.proc && !this.killing) {
      if (this.state === 'live' && this.lastSegmentAt !== null && now - this.lastSegmentAt > s.stallS * 1000) {
        this.lastError = `no video for ${Math.round((now - this.lastSegmentAt) / 1000)} s`;
        this.setState('stalled');
        this.kill();
      } else if (this.state !== 'live' && this.startedAt !== null && this.firstSegmentAt === null && now - this.startedAt > s.startTimeoutS * 1000) {
        this.lastError = `no video within ${s.startTimeoutS} s of starting`;
        this.kill();
      }
    }
    if (this.viewers === 0 && (this.proc || this.restartTimer)) {
      this.idleSince ??= now;
      if (now - this.idleSince > s.graceS * 1000) {
        this.idleSince = null;
        if (this.restartTimer) {
          clearTimeout(this.restartTimer);
          this.restartTimer = null;
          this.setState('idle');
        }
        if (this.proc) {
          this.killingForIdle = true;
          this.kill();
        }
      }
    } else if (this.viewers > 0) this.idleSince = null;
  }

  private pollPlaylist(now: number): void {
    let text: string;
    try {
      const st = statSync(this.playlistPath());
      const stamp = `${st.mtimeMs}:${st.size}`;
      if (stamp === this.playlistStamp) return;
      this.playlistStamp = stamp;
      text = readFileSync(this.playlistPath(), 'utf8');
    } catch {
      return;
    }
    let seq = 0;
    let dur = 0;
    let pdt: number | null = null;
    const fresh: Segment[] = [];
    for (const line of text.split('\n')) {
      const l = line.trim();
      if (l.startsWith('#EXT-X-MEDIA-SEQUENCE:')) seq = Number(l.slice(22));
      else if (l.startsWith('#EXTINF:')) dur = Number.parseFloat(l.slice(8));
      else if (l.startsWith('#EXT-X-PROGRAM-DATE-TIME:')) pdt = Date.parse(l.slice(25).replace(/([+-]\d\d)(\d\d)$/, '$1:$2'));
      else if (l && !l.startsWith('#')) {
        if (seq > this.lastSeq) {
          const prev = fresh.at(-1) ?? this.ring.at(-1);
          const startMs = pdt ?? (prev ? prev.startMs + prev.durMs : now - dur * 1000);
          let bytes = 0;
          try {
            bytes = statSync(this.segmentPath(l)).size;
          } catch {
            /* rotated already */
          }
          fresh.push({ seq, file: l, path: this.segmentPath(l), startMs, durMs: Math.round(dur * 1000), bytes });
          this.lastSeq = seq;
        }
        seq++;
        pdt = null;
      }
    }
    if (!fresh.length) return;
    this.ring.push(...fresh);
    this.lastSegmentAt = now;
    if (this.firstSegmentAt === null) this.firstSegmentAt = now;
    if (this.state !== 'live') {
      this.failures = 0;
      this.setState('live');
    }
    for (const s of fresh) this.emit('segment', s);
  }

  /** Bytes of the rolling buffer on disk. */
  get ringBytes(): number {
    let n = 0;
    for (const s of this.ring) n += s.bytes;
    return n;
  }

  /**
   * The rolling buffer: segments older than ringS leave the ring (ffmpeg
   * deletes their files a few segments later), and past the size budget the
   * oldest files are deleted at once, keeping the playlist's own window.
   */
  private trimRing(now: number): void {
    const { ringS, ringBytesMax, listSize } = this.deps.settings;
    const horizon = now - ringS * 1000;
    while (this.ring.length && this.ring[0]!.startMs + this.ring[0]!.durMs < horizon) this.ring.shift();
    if (!ringBytesMax) return;
    let bytes = this.ringBytes;
    while (bytes > ringBytesMax && this.ring.length > listSize + 1) {
      const old = this.ring.shift()!;
      bytes -= old.bytes;
      try {
        // Clips hard-link what they need, so deleting here never takes evidence.
        unlinkSync(old.path);
      } catch {
        /* gone */
      }
    }
  }

  /** SIGTERM to the process group, SIGKILL after 2 s. */
  private kill(): void {
    const p = this.proc;
    if (!p || !p.pid) return;
    this.killing = true;
    const pid = p.pid;
    try {
      process.kill(-pid, 'SIGTERM');
    } catch {
      /* already gone */
    }
    const t = setTimeout(() => {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, 2_000);
    t.unref();
    void this.exited?.then(() => clearTimeout(t));
  }

  /** Simulates nothing: forces a restart (used when settings change, e.g. transcode toggled). */
  restart(): void {
    if (this.proc) this.kill();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    this.kill();
    await this.exited;
    this.clients.clear();
    this.setState('idle');
  }

  /** Removes the live segment directory (after close). */
  cleanup(): void {
    rmSync(this.deps.dir, { recursive: true, force: true });
  }

  snapshotInfo(): { state: StreamState; viewers: number; pid: number | null; failures: number; restarts: number; startedAt: number | null; firstSegmentAt: number | null; firstFragmentAt: number | null; lastSegmentAt: number | null; bufferS: number; bufferBytes: number; lastError: string | null } {
    const first = this.ring[0];
    const last = this.ring.at(-1);
    return {
      bufferS: first && last ? Math.round((last.startMs + last.durMs - first.startMs) / 100) / 10 : 0, bufferBytes: this.ringBytes, lastError: this.lastError,
      state: this.state, viewers: this.viewers, pid: this.pid, failures: this.failures, restarts: this.restarts,
      startedAt: this.startedAt, firstSegmentAt: this.firstSegmentAt, firstFragmentAt: this.firstFragmentAt, lastSegmentAt: this.lastSegmentAt,
    };
  }
}
