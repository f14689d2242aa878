/**
 * Evidence clips: the seconds before and after an alert or a new case, cut
 * from the live ring buffer of HLS segments and remuxed (no re-encode) into
 * one MP4 with ffmpeg's concat demuxer, plus the alert's snapshot or a frame
 * grabbed from the segment at the alert time.
 *
 * The pre-roll segments are hard-linked into the clip's work directory the
 * moment the clip starts, so ffmpeg's segment rotation cannot delete them;
 * the post-roll ones as they appear. A camera that is not live is started
 * for the post-roll part (the recorder holds the stream like a viewer).
 * Clips and their rows live in dataDir, so they survive a restart.
 * In a cluster the recorder also copies a ready clip's MP4 and snapshot into
 * PostgreSQL (`video_clip_parts`, in the transaction that marks it ready) so
 * every node serves it, after its recorder is gone too; a clip above
 * `storeMaxBytes` stays on the recorder's disk, and the other nodes fetch it
 * from there (signed, range by range) while the recorder lives.
 *
 * No clip stays `recording` for ever (docs/video.md, "A clip cut short"): a
 * clip whose recording was cut short (the hub restarted; in a cluster, its
 * recorder died) is settled once, by the node that finds it: the rest of
 * its window is recorded when the window is still open and the camera can be
 * pulled here, otherwise it is finished from what its parts hold, otherwise
 * it fails; either way with a reason code (`note` on a ready clip, `error`
 * on a failed one) the console translates. Every write that settles a clip
 * is conditional on the clip still `recording` on this node, so a clip is
 * settled once whichever nodes race for it.
 */
import { createHash, randomUUID } from 'node:crypto';
import { copyFileSync, createReadStream, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { MediaParts, PART_BYTES, type StoredMedia } from '../cases/stored-media.js';
import { Errors } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Db, Queryable } from '../store/index.js';
import { getFromNode, type NodeAuth } from './cluster.proxy.js';
import { concatArgs, frameArgs, run } from './ffmpeg.js';
import type { StreamGateway } from './gateway.js';
import type { Segment } from './stream.js';

export type ClipStatus = 'recording' | 'ready' | 'failed';

/**
 * Why a clip failed (`error`), or what a ready clip may lack (`note`):
 * stable codes, translated by the console (docs/video.md).
 */
export const ClipReason = {
  /** The camera is not known here or the hub is stopping. */
  cameraUnavailable: 'CAMERA_UNAVAILABLE',
  /** No segment of the camera fell into the clip's window. */
  noVideo: 'NO_VIDEO',
  /** ffmpeg could not cut the MP4 from the segments. */
  cutFailed: 'CUT_FAILED',
  /** The hub restarted while recording: failed, nothing was kept; note, the clip may lack seconds. */
  interrupted: 'INTERRUPTED',
  /** The node recording it died: failed, its window had passed; note, it holds only what the node that took it over recorded. */
  recorderLost: 'RECORDER_LOST',
} as const;
export type ClipReasonCode = (typeof ClipReason)[keyof typeof ClipReason];

/** Raised inside the `ready` transaction when the clip is no longer this node's to finish (another node settled it). */
class NotMine extends Error {}

export interface Clip {
  id: string;
  cameraId: string;
  caseId: string | null;
  alarmId: string | null;
  alertKey: string | null;
  alertType: string | null;
  trigger: 'alert' | 'case' | 'alarm' | 'manual';
  gridId: string | null;
  /** The moment the clip is about (alert ts / case creation), epoch ms. */
  at: number;
  from: number | null;
  to: number | null;
  status: ClipStatus;
  hasSnapshot: boolean;
  bytes: number | null;
  durationMs: number | null;
  /** SHA-256 of the MP4 (hex), once ready. */
  sha256: string | null;
  error: string | null;
  /** A ready clip whose recording was cut short: what it may lack (a ClipReason code); null otherwise. */
  note: string | null;
  createdAt: number;
  /** Relative URLs (send the access token as Bearer or ?token=). */
  video: string;
  snapshot: string;
}

interface ClipRow {
  id: string;
  camera_id: string;
  case_id: string | null;
  alarm_id: string | null;
  alert_key: string | null;
  alert_type: string | null;
  trigger: Clip['trigger'];
  grid_id: string | null;
  at: Date;
  from_ts: Date | null;
  to_ts: Date | null;
  status: ClipStatus;
  file: string | null;
  snapshot: string | null;
  bytes: number | null;
  duration_ms: number | null;
  sha256: string | null;
  error: string | null;
  note?: string | null;
  node?: string | null;
  created_at: Date;
}

const ms = (d: Date | null) => (d ? new Date(d).getTime() : null);

export function toClip(r: ClipRow): Clip {
  return {
    id: r.id, cameraId: r.camera_id, caseId: r.case_id, alarmId: r.alarm_id, alertKey: r.alert_key, alertType: r.alert_type, trigger: r.trigger,
    gridId: r.grid_id, at: ms(r.at)!, from: ms(r.from_ts), to: ms(r.to_ts), status: r.status, hasSnapshot: r.snapshot !== null, bytes: r.bytes,
    durationMs: r.duration_ms, sha256: r.sha256 ?? null, error: r.error, note: r.note ?? null, createdAt: ms(r.created_at)!,
    video: `/api/v1/clips/${r.id}/video.mp4`, snapshot: `/api/v1/clips/${r.id}/snapshot.jpg`,
  };
}

export interface CaptureInput {
  /** A clip id decided by the caller (cluster: derived from the alert or case, so a retry or a second node finds the same clip). */
  id?: string;
  cameraId: string;
  at: number;
  trigger: Clip['trigger'];
  gridId: string | null;
  caseId?: string | null;
  alarmId?: string | null;
  alertKey?: string | null;
  alertType?: string | null;
  snapshot?: Uint8Array;
  /**
   * Cluster: the clip was asked late (the camera's node died and the camera
   * moved, epoch ms of the ask). Its pre-alert seconds are gone with that
   * node; the post-alert seconds count from here, or from the first segment
   * when the camera has to be started for it, so the clip holds the scene
   * rather than failing for a window that passed.
   */
  postFrom?: number;
}

interface Job {
  id: string;
  finishNow: () => void;
  done: Promise<void>;
  at: number;
  cameraId: string;
}

export class ClipRecorder {
  private readonly jobs = new Map<string, Job>();
  /** Clips this node is settling now (finishing from parts, or failing), so the sweep does not take them up twice. */
  private readonly settling = new Set<string>();
  private stopping = false;
  /** Cluster: the database's clock when this recorder started; its own `recording` clips from before are leftovers of a crash. */
  private startedAt: Date | null = null;

  constructor(
    private readonly deps: {
      db: Db;
      gateway: StreamGateway;
      dir: string;
      ffmpeg: string;
      preS: number;
      postS: number;
      /** Extra time a not-live camera gets to come up before the post-roll is given up. */
      startAllowanceS: number;
      /** Cluster: the node recording (written with each clip; each node settles its own clips, and those of recorders gone). */
      node?: () => { node: string; url: string };
      /** Cluster: ready clips up to this size are copied into the database (`video_clip_parts`); unset: files only. */
      storeMaxBytes?: number;
      /** Cluster: signs this node's requests for another recorder's clip files. */
      nodeAuth?: NodeAuth;
      /** Cluster: how long a node's heartbeat (`video_nodes`) outlives it, ms: a clip without one that long is a dead recorder's. */
      leaseMs?: number;
      logger: Logger;
      onReady: (clip: Clip) => void;
    },
  ) {
    this.parts = new MediaParts(deps.db, 'video_clip_parts', ['clip_id', 'name']);
  }

  private readonly parts: MediaParts;

  /** This node's id in a cluster; null on the single process (its clip rows carry no node). */
  private me(): string | null {
    return this.deps.node?.().node ?? null;
  }

  /** Cluster: the clip's MP4 or snapshot as stored in the database; null when it is not there (or not a cluster). */
  async stored(id: string, name: 'mp4' | 'jpg'): Promise<StoredMedia | null> {
    if (this.deps.storeMaxBytes === undefined) return null;
    return this.parts.open([id, name]);
  }

  /**
   * The clip's MP4 or snapshot wherever it is: this node's file, the
   * database (cluster), or, for a clip above the store cap or one still
   * recording, the recorder's file fetched range by range (signed node
   * request). Null when there is none. Throws CLIP_GONE (410) when the clip's
   * bytes are on a recorder that is gone (its heartbeat ran out) or that no
   * longer has them, SERVICE_UNAVAILABLE (503) when the recorder lives but
   * does not answer.
   */
  async media(id: string, name: 'mp4' | 'jpg'): Promise<StoredMedia | null> {
    const file = name === 'mp4' ? this.clipFile(id) : this.snapshotFile(id);
    const st = existsSync(file) ? statSync(file) : null;
    if (st?.isFile()) return { size: st.size, stream: (start, end) => createReadStream(file, { start, end }) };
    const stored = await this.stored(id, name);
    if (stored) return stored;
    const me = this.me();
    const auth = this.deps.nodeAuth;
    if (!me || !auth) return null;
    const [r] = await this.deps.db.query<{ node: string | null; camera_id: string; status: ClipStatus; url: string | null; alive: boolean | null }>(
      `select v.node, v.camera_id, v.status, n.url, n.alive_until > now() as alive
         from video_clips v left join video_nodes n on n.node = v.node where v.id = $1`, [id]);
    if (!r?.node || r.node === me || r.status === 'failed') return null;
    if (!r.alive || !r.url) throw Errors.clipGone();
    const url = r.url;
    const path = `/video/${encodeURIComponent(r.camera_id)}/clips/${id}/${name === 'mp4' ? 'video.mp4' : 'snapshot.jpg'}`;
    // One byte first: the size, and whether the recorder answers, before any header goes to the viewer.
    const probe = await getFromNode(url, path, auth, { range: 'bytes=0-0' }).catch(() => null);
    if (!probe) throw Errors.unavailable('the hub node that holds this clip is not reachable');
    await probe.body?.cancel().catch(() => undefined);
    if (probe.status === 404) {
      // Not cut yet (or no snapshot of a clip still recording); a ready clip whose recorder lost its file is gone.
      if (r.status === 'recording') return null;
      throw Errors.clipGone();
    }
    const size = Number(/\/(\d+)$/.exec(probe.headers.get('content-range') ?? '')?.[1] ?? probe.headers.get('content-length'));
    if (probe.status >= 300 || !Number.isSafeInteger(size) || size <= 0) throw Errors.unavailable('the hub node that holds this clip did not serve it');
    const logger = this.deps.logger;
    return {
      size,
      stream: (start, end) => Readable.from((async function* () {
        const res = await getFromNode(url, path, auth, { range: `bytes=${start}-${end}` });
        if (res.status !== 206 || !res.body) {
          await res.body?.cancel().catch(() => undefined);
          logger.warn({ clipId: id, status: res.status }, 'recorder did not serve a clip range');
          throw new Error(`recorder answered ${res.status}`);
        }
        const reader = res.body.getReader();
        try {
          for (;;) {
            const { done, value } = await reader.read();
            if (done) return;
            yield Buffer.from(value);
          }
        } finally {
          // The viewer went away mid-clip: the recorder stops sending too.
          await reader.cancel().catch(() => undefined);
        }
      })()),
    };
  }

  async start(): Promise<void> {
    mkdirSync(this.deps.dir, { recursive: true });
    if (this.deps.node) {
      // Cluster: this node's clips interrupted by a crash are settled by the sweep once the node is up (it must own
      // their camera to record the rest of a window), like those of a recorder that is gone; they count from here.
      const [r] = await this.deps.db.query<{ now: Date }>('select now() as now');
      this.startedAt = r!.now;
      return;
    }
    // The single process: every clip still `recording` was cut short by a stop or a crash.
    const rows = await this.deps.db.query<ClipRow>("select * from video_clips where status = 'recording'");
    for (const r of rows) await this.settle(r, ClipReason.interrupted, true);
  }

  /**
   * Cluster: settles the clips left `recording` by a recorder that is gone
   * (its `video_nodes` heartbeat ran out) and this node's own leftovers from
   * before it started. A clip whose window is still open is taken by the
   * camera's owner (`owns` takes a camera whose owner is gone, so the first
   * node to look becomes it), which records the rest of the window; once the
   * window has passed any node takes it. Returns the clips taken.
   */
  async sweep(owns: (cameraId: string) => Promise<boolean>): Promise<number> {
    const me = this.me();
    if (!me || !this.startedAt || this.stopping) return 0;
    const leaseMs = this.deps.leaseMs ?? 10_000;
    // A recorder that never wrote a heartbeat (a node of an older version, or the single process the district ran before):
    // its clip is gone once it is older than any recording lasts.
    const longestMs = (this.deps.preS + this.deps.postS + this.deps.startAllowanceS) * 1000 + 2 * leaseMs;
    const rows = await this.deps.db.query<ClipRow>(
      `select v.* from video_clips v left join video_nodes n on n.node = v.node
        where v.status = 'recording' and (
          (v.node = $1 and v.created_at < $2)
          or (v.node is distinct from $1 and (n.alive_until < now() or (n.node is null and v.created_at < now() - make_interval(secs => $3::float8 / 1000)))))
        order by v.at limit 100`,
      [me, this.startedAt, longestMs],
    );
    let taken = 0;
    for (const r of rows) {
      if (this.stopping) break;
      if (this.jobs.has(r.id) || this.settling.has(r.id)) continue;
      const windowOpen = Date.now() < windowEnd(r, this.deps.postS);
      const mine = await owns(r.camera_id).catch(() => false);
      // While the window is open the clip is the camera's owner's: it can pull the camera for the rest.
      if (!mine && windowOpen) continue;
      if (r.node !== me) {
        const claimed = await this.deps.db.query<ClipRow>(
          `update video_clips set node = $2, node_url = $3, taken_from = node
            where id = $1 and status = 'recording' and node is not distinct from $4 returning *`,
          [r.id, me, this.deps.node!().url || null, r.node],
        );
        if (!claimed[0]) continue;
        this.deps.logger.warn({ clipId: r.id, recorder: r.node, windowOpen }, 'clip left recording by a recorder that is gone: taken over');
      }
      taken++;
      await this.settle(r, r.node === me ? ClipReason.interrupted : ClipReason.recorderLost, mine);
    }
    return taken;
  }

  /**
   * Settles one clip cut short, already this node's: records the rest of its
   * window when it is still open (or the camera's live buffer holds part of
   * it) and the camera may be pulled here, adding what this node's disk kept
   * of it; otherwise finishes it from that alone; otherwise fails it.
   */
  private async settle(r: ClipRow, reason: ClipReasonCode, mayPull: boolean): Promise<void> {
    const input: CaptureInput = {
      cameraId: r.camera_id, at: ms(r.at)!, trigger: r.trigger, gridId: r.grid_id, caseId: r.case_id, alarmId: r.alarm_id,
      alertKey: r.alert_key, alertType: r.alert_type,
    };
    const end = windowEnd(r, this.deps.postS);
    const dir = this.partsDir(r.id);
    const kept = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.ts')).sort().map((f) => path.join(dir, f)) : [];
    const stream = mayPull && !this.stopping ? this.deps.gateway.existing(r.camera_id) ?? null : null;
    if (mayPull && !this.stopping && (Date.now() < end || stream?.live)) {
      this.record(r.id, input, { kept, reason, windowEnd: end });
      return;
    }
    this.settling.add(r.id);
    try {
      if (kept.length) await this.finish(r.id, input.at, kept, spanOf(kept), null, reason);
      else await this.fail(r.id, reason);
    } finally {
      this.settling.delete(r.id);
    }
  }

  /** Finishes clips in progress from what they have; never holds a shutdown for more than `maxWaitMs`. */
  async stop(maxWaitMs = 10_000): Promise<void> {
    this.stopping = true;
    const jobs = [...this.jobs.values()];
    for (const j of jobs) j.finishNow();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(jobs.map((j) => j.done.catch(() => undefined))),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, maxWaitMs);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
  }

  clipFile(id: string): string {
    return path.join(this.deps.dir, `${id}.mp4`);
  }

  snapshotFile(id: string): string {
    return path.join(this.deps.dir, `${id}.jpg`);
  }

  private partsDir(id: string): string {
    return path.join(this.deps.dir, `${id}.parts`);
  }

  /** A clip of this camera already recording whose window holds `at` (noisy AI cameras alert in bursts). */
  recordingCovering(cameraId: string, at: number): string | null {
    for (const j of this.jobs.values()) {
      if (j.cameraId === cameraId && at >= j.at && at <= j.at + this.deps.postS * 1000) return j.id;
    }
    return null;
  }

  async get(id: string): Promise<Clip | null> {
    const rows = await this.deps.db.query<ClipRow>('select * from video_clips where id = $1', [id]);
    return rows[0] ? toClip(rows[0]) : null;
  }

  async list(filter: { caseId?: string; cameraId?: string; alertKey?: string; limit?: number }): Promise<Clip[]> {
    const rows = await this.deps.db.query<ClipRow>(
      `select * from video_clips where ($1::text is null or case_id = $1) and ($2::text is null or camera_id = $2) and ($3::text is null or alert_key = $3)
       order by at desc limit $4`,
      [filter.caseId ?? null, filter.cameraId ?? null, filter.alertKey ?? null, filter.limit ?? 100],
    );
    return rows.map(toClip);
  }

  /**
   * Gives the clip its case, once: the clip as it is then, or null when it had
   * a case already. Serialised with the clip's `ready` update on the row, so
   * exactly one of the two sees the clip both ready and in its case and
   * publishes it.
   */
  async attach(clipId: string, caseId: string): Promise<Clip | null> {
    const rows = await this.deps.db.query<ClipRow>('update video_clips set case_id = $2 where id = $1 and case_id is null returning *', [clipId, caseId]);
    return rows[0] ? toClip(rows[0]) : null;
  }

  /** The node that recorded the clip and its URL (cluster; null on the single process). */
  async recorder(clipId: string): Promise<{ node: string; url: string } | null> {
    const rows = await this.deps.db.query<{ node: string | null; node_url: string | null }>('select node, node_url from video_clips where id = $1', [clipId]);
    const r = rows[0];
    return r?.node && r.node_url ? { node: r.node, url: r.node_url } : null;
  }

  /** Unattached clips of these cameras about moments since `since` (alerts waiting for their case). */
  async unattached(cameraIds: string[], since: number): Promise<Clip[]> {
    if (!cameraIds.length) return [];
    const rows = await this.deps.db.query<ClipRow>(
      `select * from video_clips where case_id is null and camera_id = any($1::text[]) and at >= to_timestamp($2 / 1000.0) order by at desc`,
      [cameraIds, since],
    );
    return rows.map(toClip);
  }

  /** Starts recording; resolves with the clip id once the row exists (the video follows). */
  async capture(input: CaptureInput): Promise<string> {
    const id = input.id ?? randomUUID();
    const node = this.deps.node?.();
    // The window it means to record (the span actually recorded replaces it once ready): a clip cut short is settled by it.
    const from = input.at - this.deps.preS * 1000;
    const to = Math.max(input.at, input.postFrom ?? input.at) + this.deps.postS * 1000;
    const rows = await this.deps.db.query<{ id: string }>(
      `insert into video_clips (id, camera_id, case_id, alarm_id, alert_key, alert_type, trigger, grid_id, at, status, node, node_url, from_ts, to_ts)
       values ($1, $2, $3, $4, $5, $6, $7, $8, to_timestamp($9 / 1000.0), 'recording', $10, $11, to_timestamp($12 / 1000.0), to_timestamp($13 / 1000.0))
       on conflict (id) do nothing returning id`,
      [id, input.cameraId, input.caseId ?? null, input.alarmId ?? null, input.alertKey ?? null, input.alertType ?? null, input.trigger, input.gridId, input.at,
        node?.node ?? null, node?.url || null, from, to],
    );
    // The clip exists already (asked again after a lost answer, or by a second node): it is recorded once.
    if (!rows[0]) return id;
    if (input.snapshot?.length) {
      writeFileSync(this.snapshotFile(id), input.snapshot);
      await this.deps.db.query('update video_clips set snapshot = $2 where id = $1', [id, path.basename(this.snapshotFile(id))]);
    }
    this.record(id, input);
    return id;
  }

  /**
   * Records the clip's window from the camera's stream. `resume`: a clip cut
   * short being settled here: the segments this disk kept of it (`kept`), the
   * window's end as first planned, and the reason it was cut short (its note
   * once ready, its error when nothing comes).
   */
  private record(id: string, input: CaptureInput, resume?: { kept: string[]; reason: ClipReasonCode; windowEnd: number }): void {
    const stream = this.deps.gateway.stream(input.cameraId);
    if (!stream || this.stopping) {
      void (resume?.kept.length
        ? this.finish(id, input.at, resume.kept, spanOf(resume.kept), null, resume.reason)
        : this.fail(id, resume?.reason ?? ClipReason.cameraUnavailable));
      return;
    }
    const parts = this.partsDir(id);
    mkdirSync(parts, { recursive: true });
    // One segment of margin: segment times are the hub's receive clock, a little after the camera's capture clock,
    // so the picture at the start of the clip is at least preS before the alert.
    const from = input.at - this.deps.preS * 1000 - 1_500;
    let to = resume ? resume.windowEnd : Math.max(input.at, input.postFrom ?? input.at) + this.deps.postS * 1000;
    const late = input.postFrom !== undefined;
    const linked = new Map<number, { seg: Segment; file: string }>();
    // What this disk kept of a clip cut short by a restart (negative keys: never a stream's sequence number).
    for (const [i, file] of (resume?.kept ?? []).entries()) {
      const startMs = Number(path.basename(file).split('_')[0]);
      linked.set(-1 - i, { seg: { seq: -1 - i, file: path.basename(file), path: file, startMs, durMs: 1_000, bytes: 0 }, file });
    }
    const release = stream.acquire();
    const take = (s: Segment) => {
      if (linked.has(s.seq) || s.startMs + s.durMs <= from || s.startMs >= to) return;
      // Zero-padded names keep concat order = time order.
      const file = path.join(parts, `${String(s.startMs).padStart(15, '0')}_${s.file}`);
      if (resume && existsSync(file)) return;
      try {
        linkSync(s.path, file);
      } catch {
        try {
          copyFileSync(s.path, file);
        } catch {
          return; // rotated away already
        }
      }
      linked.set(s.seq, { seg: s, file });
    };
    for (const s of stream.ring) take(s);
    let finish!: () => void;
    // A stopping hub finishes the clip from what it has: cut short before its window ended, it says so.
    let stoppedEarly = false;
    const done = new Promise<void>((resolve) => {
      let over = false;
      finish = () => {
        if (over) return;
        over = true;
        clearTimeout(timer);
        stream.off('segment', onSegment);
        release();
        this.jobs.delete(id);
        const list = [...linked.values()].sort((a, b) => a.seg.startMs - b.seg.startMs);
        const first = list[0];
        const last = list.at(-1);
        const alertSeg = list.find((x) => x.seg.startMs <= input.at && x.seg.startMs + x.seg.durMs > input.at) ?? first;
        const work = list.length
          ? this.finish(id, input.at, list.map((x) => x.file), first && last ? { from: first.seg.startMs, to: last.seg.startMs + last.seg.durMs } : null,
              alertSeg ? { file: alertSeg.file, offsetS: Math.max(0, (input.at - alertSeg.seg.startMs) / 1000) } : null,
              resume?.reason ?? (stoppedEarly ? ClipReason.interrupted : null))
          : this.fail(id, resume?.reason ?? ClipReason.noVideo);
        work.finally(resolve);
      };
      const onSegment = (s: Segment) => {
        if (late && linked.size === 0 && s.startMs >= to) to = s.startMs + this.deps.postS * 1000;
        take(s);
        if (s.startMs + s.durMs >= to) finish();
      };
      stream.on('segment', onSegment);
      const waitMs = Math.max(0, to - Date.now()) + (stream.live ? 5_000 : this.deps.startAllowanceS * 1000);
      const timer = setTimeout(() => finish(), waitMs);
      timer.unref();
    });
    this.jobs.set(id, { id, finishNow: () => { stoppedEarly = Date.now() < to; finish(); }, done, at: input.at, cameraId: input.cameraId });
    // A window that passed already: what the buffer held of it is all there is.
    if (resume && to <= Date.now()) setImmediate(() => finish());
  }

  /** finalize(), and the clip failed (CUT_FAILED) when it cannot be cut: never left `recording`. */
  private async finish(id: string, at: number, files: string[], span: { from: number; to: number } | null, frame: { file: string; offsetS: number } | null, note: ClipReasonCode | null): Promise<void> {
    try {
      await this.finalize(id, at, files, span, frame, note);
    } catch (err) {
      this.deps.logger.error({ err, clipId: id }, 'clip could not be cut');
      await this.fail(id, ClipReason.cutFailed);
    }
  }

  private async finalize(id: string, at: number, files: string[], span: { from: number; to: number } | null, frame: { file: string; offsetS: number } | null, note: ClipReasonCode | null): Promise<void> {
    const parts = this.partsDir(id);
    const listFile = path.join(parts, 'list.txt');
    writeFileSync(listFile, files.map((f) => `file '${f.replace(/'/g, "'\\''")}'`).join('\n') + '\n');
    const out = this.clipFile(id);
    await run(this.deps.ffmpeg, concatArgs(listFile, out));
    let snapshot: string | null = existsSync(this.snapshotFile(id)) ? path.basename(this.snapshotFile(id)) : null;
    if (!snapshot && frame) {
      try {
        await run(this.deps.ffmpeg, frameArgs(frame.file, frame.offsetS, this.snapshotFile(id)), 20_000);
        snapshot = path.basename(this.snapshotFile(id));
      } catch (err) {
        this.deps.logger.warn({ clipId: id, err: (err as Error).message }, 'could not grab a frame for the clip');
      }
    }
    const bytes = statSync(out).size;
    const sha256 = await sha256File(out);
    const durationMs = span ? span.to - span.from : null;
    const maxBytes = this.deps.storeMaxBytes;
    // Only while the clip is still recording on this node (the single process: any): a node that took it over
    // (this one stalled past its heartbeat) settles it instead.
    const ready = (q: Queryable) => q.query<ClipRow>(
      `update video_clips set status = 'ready', file = $2, snapshot = $3, bytes = $4, duration_ms = $5,
         from_ts = case when $6::float8 is null then from_ts else to_timestamp($6 / 1000.0) end,
         to_ts = case when $7::float8 is null then to_ts else to_timestamp($7 / 1000.0) end,
         sha256 = $8, note = $9
       where id = $1 and status = 'recording' and ($10::text is null or node = $10) returning *`,
      [id, path.basename(out), snapshot, bytes, durationMs, span?.from ?? null, span?.to ?? null, sha256, note, this.me()],
    );
    let rows: ClipRow[] = [];
    try {
      rows = maxBytes === undefined ? await ready(this.deps.db) : await this.deps.db.tx(async (q) => {
        // Cluster: the bytes are in the database before anyone sees the clip ready (streamed in 1 MiB parts, never one buffer).
        if (bytes <= maxBytes) await this.parts.write(q, [id, 'mp4'], createReadStream(out, { highWaterMark: PART_BYTES }));
        else this.deps.logger.warn({ clipId: id, bytes, maxBytes }, 'clip larger than GRIDLINK_VIDEO_CLIP_STORE_MAX_MB: kept on this node, fetched from here by the others');
        // ffmpeg may exit cleanly without writing the frame (an offset past the segment's end).
        if (snapshot && existsSync(this.snapshotFile(id))) await this.parts.write(q, [id, 'jpg'], readFileSync(this.snapshotFile(id)));
        const r = await ready(q);
        if (!r[0]) throw new NotMine();
        return r;
      });
    } catch (err) {
      if (!(err instanceof NotMine)) throw err;
    }
    rmSync(parts, { recursive: true, force: true });
    if (!rows[0]) {
      // Settled elsewhere meanwhile: this node's cut is not the clip.
      for (const f of [out, this.snapshotFile(id)]) rmSync(f, { force: true });
      this.deps.logger.warn({ clipId: id }, 'clip settled by another node meanwhile; this cut is dropped');
      return;
    }
    this.deps.logger.info({ clipId: id, at, bytes, durationMs, note }, 'evidence clip ready');
    this.deps.onReady(toClip(rows[0]));
  }

  /**
   * Retention: a clip is kept while its case is open and for `retentionDays`
   * after the case was closed or rejected; a clip without a case for
   * `retentionDays` after it was made. Returns the ids removed (files, clip
   * rows and their rows in the case evidence list). Whichever node removes
   * the rows, each node removes its own clip files at its next run
   * (`pruneFiles`).
   */
  async prune(retentionDays: number, now: number): Promise<string[]> {
    const horizon = now - retentionDays * 86_400_000;
    const sql = `select v.id from video_clips v left join cases c on c.id = v.case_id
        where v.status <> 'recording' and (
          (v.case_id is null and v.created_at < to_timestamp($1 / 1000.0))
          or (c.status in ('closed', 'rejected') and c.updated_at < to_timestamp($1 / 1000.0))
          or (v.case_id is not null and c.id is null and v.created_at < to_timestamp($1 / 1000.0)))
        limit 1000`;
    // Without the cases module there is no cases table: every clip is judged by its own age.
    const rows = await this.deps.db.query<{ id: string }>(sql, [horizon]).catch(() =>
      this.deps.db.query<{ id: string }>("select id from video_clips where status <> 'recording' and created_at < to_timestamp($1 / 1000.0) limit 1000", [horizon]));
    for (const { id } of rows) {
      for (const f of [this.clipFile(id), this.snapshotFile(id)]) rmSync(f, { force: true });
      await this.deps.db.query('delete from video_clips where id = $1', [id]);
    }
    return rows.map((r) => r.id);
  }

  /**
   * This node's clip files whose clip is no more (retention ran on another
   * node, or the clip was settled elsewhere while this node was away): the
   * MP4, snapshot or work directory of a clip without a row, and a work
   * directory of a clip that is not recording here. Returns the names removed.
   */
  async pruneFiles(): Promise<string[]> {
    const names = existsSync(this.deps.dir) ? readdirSync(this.deps.dir).filter((n) => CLIP_FILE.test(n)) : [];
    if (!names.length) return [];
    const ids = [...new Set(names.map((n) => n.slice(0, 36)))];
    const rows = await this.deps.db.query<{ id: string; status: ClipStatus; node: string | null }>(
      'select id, status, node from video_clips where id = any($1::text[])', [ids]);
    const known = new Map(rows.map((r) => [r.id, r]));
    const me = this.me();
    const gone: string[] = [];
    for (const n of names) {
      const id = n.slice(0, 36);
      if (this.jobs.has(id) || this.settling.has(id)) continue;
      const r = known.get(id);
      const orphan = !r || (n.endsWith('.parts') && !(r.status === 'recording' && r.node === me));
      if (!orphan) continue;
      rmSync(path.join(this.deps.dir, n), { recursive: true, force: true });
      gone.push(n);
    }
    if (gone.length) this.deps.logger.info({ files: gone.length }, 'removed clip files of clips gone');
    return gone;
  }

  /** Fails the clip, only while it is still recording on this node (the single process: any; a node that took it over settles it). */
  private async fail(id: string, error: ClipReasonCode): Promise<void> {
    rmSync(this.partsDir(id), { recursive: true, force: true });
    const rows = await this.deps.db.query<{ id: string }>(
      "update video_clips set status = 'failed', error = $2 where id = $1 and status = 'recording' and ($3::text is null or node = $3) returning id",
      [id, error, this.me()]).catch((err: Error): Array<{ id: string }> => {
      this.deps.logger.error({ clipId: id, err: err.message }, 'clip could not be marked failed');
      return [];
    });
    if (rows[0]) this.deps.logger.warn({ clipId: id, error }, 'evidence clip failed');
  }
}

/** A clip's MP4, snapshot or work directory in the clips directory. */
const CLIP_FILE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.(mp4|jpg|parts)$/;

/** Where the clip's window ends as planned (`to_ts` written at capture), epoch ms. */
function windowEnd(r: ClipRow, postS: number): number {
  return ms(r.to_ts) ?? ms(r.at)! + postS * 1000;
}

/** The span of kept segment files (named `<start ms>_seg_N.ts`), the last one counted as a second. */
function spanOf(files: string[]): { from: number; to: number } | null {
  const starts = files.map((f) => Number(path.basename(f).split('_')[0])).filter(Number.isFinite);
  return starts.length ? { from: Math.min(...starts), to: Math.max(...starts) + 1_000 } : null;
}

export function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file).on('data', (d) => h.update(d)).on('error', reject).on('end', () => resolve(h.digest('hex')));
  });
}
