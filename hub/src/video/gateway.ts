/**
 * The stream gateway: one CameraStream per camera, created on demand, ticked
 * a few times a second, and the ledger of every ffmpeg pid it started.
 *
 * The ledger (`ffmpeg.pids` in the video directory) is what makes "no
 * orphan ffmpeg" hold even when the hub itself was killed: at start the
 * gateway kills process groups left over from the last run, after checking
 * in /proc that the pid still runs an ffmpeg writing into our directory (pids
 * get reused). A synchronous exit hook kills what is still running when the
 * process exits without stop() (uncaught exception, process.exit).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../core/logger.js';
import type { FfmpegInfo } from './ffmpeg.js';
import { CameraStream, type StreamSettings, type StreamState } from './stream.js';

export interface GatewayCamera {
  id: string;
  transcode: boolean;
  /** The URL ffmpeg opens (parsed, allow-listed, host resolved) and the secrets to redact from its output. */
  target: () => Promise<{ url: string; secrets: string[] }>;
}

export class StreamGateway {
  private readonly streams = new Map<string, CameraStream>();
  private readonly pids = new Set<number>();
  private timer: NodeJS.Timeout | null = null;
  private readonly exitHook = () => this.killAllSync();
  private readonly ledger: string;

  constructor(
    private readonly deps: {
      ff: FfmpegInfo;
      root: string;
      settings: StreamSettings;
      logger: Logger;
      camera: (id: string) => GatewayCamera | undefined;
      onState: (cameraId: string, state: StreamState, from: StreamState) => void;
    },
  ) {
    this.ledger = path.join(deps.root, 'ffmpeg.pids');
  }

  get ffmpegPath(): string {
    return this.deps.ff.path;
  }

  start(): void {
    this.reapLeftovers();
    this.timer = setInterval(() => {
      const now = Date.now();
      for (const s of this.streams.values()) s.tick(now);
    }, 200);
    this.timer.unref();
    process.on('exit', this.exitHook);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await Promise.all([...this.streams.values()].map((s) => s.close()));
    for (const s of this.streams.values()) s.cleanup();
    this.streams.clear();
    this.killAllSync();
    process.off('exit', this.exitHook);
  }

  /** The stream of a camera (created idle); undefined for an unknown camera. */
  stream(id: string): CameraStream | undefined {
    let s = this.streams.get(id);
    if (s) return s;
    const cam = this.deps.camera(id);
    if (!cam) return undefined;
    s = new CameraStream({
      id,
      ff: this.deps.ff,
      dir: path.join(this.deps.root, 'live', id),
      settings: this.deps.settings,
      transcode: () => this.deps.camera(id)?.transcode ?? cam.transcode,
      target: () => (this.deps.camera(id) ?? cam).target(),
      logger: this.deps.logger,
      onPid: (pid, alive) => this.track(pid, alive),
    });
    s.on('state', (to: StreamState, from: StreamState) => this.deps.onState(id, to, from));
    this.streams.set(id, s);
    return s;
  }

  existing(id: string): CameraStream | undefined {
    return this.streams.get(id);
  }

  all(): CameraStream[] {
    return [...this.streams.values()];
  }

  /** Pids of running ffmpeg processes (tests and the benchmark check these). */
  runningPids(): number[] {
    return [...this.pids];
  }

  private track(pid: number, alive: boolean): void {
    if (alive) this.pids.add(pid);
    else this.pids.delete(pid);
    try {
      writeFileSync(this.ledger, JSON.stringify([...this.pids]));
    } catch (err) {
      this.deps.logger.warn({ err: (err as Error).message }, 'cannot write the ffmpeg pid ledger');
    }
  }

  private reapLeftovers(): void {
    let pids: number[] = [];
    try {
      pids = JSON.parse(readFileSync(this.ledger, 'utf8')) as number[];
    } catch {
      return;
    }
    for (const pid of pids) {
      let cmd = '';
      try {
        cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        continue;
      }
      if (!cmd.includes('ffmpeg') || !cmd.includes(this.deps.root)) continue;
      try {
        process.kill(-pid, 'SIGKILL');
        this.deps.logger.warn({ pid }, 'killed an ffmpeg left over from a previous run');
      } catch {
        /* gone */
      }
    }
    try {
      writeFileSync(this.ledger, '[]');
    } catch {
      /* ignore */
    }
  }

  private killAllSync(): void {
    for (const pid of this.pids) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
}
