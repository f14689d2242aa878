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
 * Clips and their rows live in dataDir, so they survive a restart; a clip
 * that was recording when the hub stopped is finished from what was linked.
 * In a cluster the recorder also copies a ready clip's MP4 and snapshot into
 * PostgreSQL (`video_clip_parts`, in the transaction that marks it ready) so
 * every node serves it, after its recorder is gone too; a clip above
 * `storeMaxBytes` stays on the recorder's disk alone.
 */
import { createHash, randomUUID } from 'node:crypto';
import { copyFileSync, createReadStream, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { MediaParts, PART_BYTES, type StoredMedia } from '../cases/stored-media.js';
import type { Logger } from '../core/logger.js';
import type { Db, Queryable } from '../store/index.js';
import { concatArgs, frameArgs, run } from './ffmpeg.js';
import type { StreamGateway } from './gateway.js';
import type { Segment } from './stream.js';

export type ClipStatus = 'recording' | 'ready' | 'failed';

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
  created_at: Date;
}

const ms = (d: Date | null) => (d ? new Date(d).getTime() : null);

export function toClip(r: ClipRow): Clip {
  return {
    id: r.id, cameraId: r.camera_id, caseId: r.case_id, alarmId: r.alarm_id, alertKey: r.alert_key, alertType: r.alert_type, trigger: r.trigger,
    gridId: r.grid_id, at: ms(r.at)!, from: ms(r.from_ts), to: ms(r.to_ts), status: r.status, hasSnapshot: r.snapshot !== null, bytes: r.bytes,
    durationMs: r.duration_ms, sha256: r.sha256 ?? null, error: r.error, createdAt: ms(r.created_at)!,
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
  private stopping = false;

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
      /** Cluster: the node recording (written with each clip; a node finishes only its own clips at start). */
      node?: () => { node: string; url: string };
      /** Cluster: ready clips up to this size are copied into the database (`video_clip_parts`); unset: files only. */
      storeMaxBytes?: number;
      logger: Logger;
      onReady: (clip: Clip) => void;
    },
  ) {
    this.parts = new MediaParts(deps.db, 'video_clip_parts', ['clip_id', 'name']);
  }

  private readonly parts: MediaParts;

  /** Cluster: the clip's MP4 or snapshot as stored in the database; null when it is not there (or not a cluster). */
  async stored(id: string, name: 'mp4' | 'jpg'): Promise<StoredMedia | null> {
    if (this.deps.storeMaxBytes === undefined) return null;
    return this.parts.open([id, name]);
  }

  async start(): Promise<void> {
    mkdirSync(this.deps.dir, { recursive: true });
    // Clips interrupted by a stop or crash: finish them from what was linked.
    // In a cluster the parts of a clip are on the disk of the node that recorded it: each node finishes its own.
    const me = this.deps.node?.().node;
    const rows = me
      ? await this.deps.db.query<ClipRow>("select * from video_clips where status = 'recording' and node = $1", [me])
      : await this.deps.db.query<ClipRow>("select * from video_clips where status = 'recording'");
    for (const r of rows) {
      const parts = this.partsDir(r.id);
      const segs = existsSync(parts) ? readdirSync(parts).filter((f) => f.endsWith('.ts')).sort() : [];
      if (segs.length) await this.finalize(r.id, ms(r.at)!, segs.map((f) => path.join(parts, f)), null, null).catch(() => undefined);
      else await this.fail(r.id, 'interrupted by a hub restart before any video was recorded');
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
    const rows = await this.deps.db.query<{ id: string }>(
      `insert into video_clips (id, camera_id, case_id, alarm_id, alert_key, alert_type, trigger, grid_id, at, status, node, node_url)
       values ($1, $2, $3, $4, $5, $6, $7, $8, to_timestamp($9 / 1000.0), 'recording', $10, $11)
       on conflict (id) do nothing returning id`,
      [id, input.cameraId, input.caseId ?? null, input.alarmId ?? null, input.alertKey ?? null, input.alertType ?? null, input.trigger, input.gridId, input.at,
        node?.node ?? null, node?.url || null],
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

  private record(id: string, input: CaptureInput): void {
    const stream = this.deps.gateway.stream(input.cameraId);
    if (!stream || this.stopping) {
      void this.fail(id, 'camera unavailable');
      return;
    }
    const parts = this.partsDir(id);
    mkdirSync(parts, { recursive: true });
    // One segment of margin: segment times are the hub's receive clock, a little after the camera's capture clock,
    // so the picture at the start of the clip is at least preS before the alert.
    const from = input.at - this.deps.preS * 1000 - 1_500;
    let to = Math.max(input.at, input.postFrom ?? input.at) + this.deps.postS * 1000;
    const late = input.postFrom !== undefined;
    const linked = new Map<number, { seg: Segment; file: string }>();
    const release = stream.acquire();
    const take = (s: Segment) => {
      if (linked.has(s.seq) || s.startMs + s.durMs <= from || s.startMs >= to) return;
      // Zero-padded names keep concat order = time order.
      const file = path.join(parts, `${String(s.startMs).padStart(15, '0')}_${s.file}`);
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
          ? this.finalize(id, input.at, list.map((x) => x.file), first && last ? { from: first.seg.startMs, to: last.seg.startMs + last.seg.durMs } : null,
              alertSeg ? { file: alertSeg.file, offsetS: Math.max(0, (input.at - alertSeg.seg.startMs) / 1000) } : null)
          : this.fail(id, 'no video from the camera in the clip window');
        work.catch((err) => this.deps.logger.error({ err, clipId: id }, 'clip failed')).finally(resolve);
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
    this.jobs.set(id, { id, finishNow: () => finish(), done, at: input.at, cameraId: input.cameraId });
  }

  private async finalize(id: string, at: number, files: string[], span: { from: number; to: number } | null, frame: { file: string; offsetS: number } | null): Promise<void> {
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
    const ready = (q: Queryable) => q.query<ClipRow>(
      `update video_clips set status = 'ready', file = $2, snapshot = $3, bytes = $4, duration_ms = $5,
         from_ts = case when $6::float8 is null then from_ts else to_timestamp($6 / 1000.0) end,
         to_ts = case when $7::float8 is null then to_ts else to_timestamp($7 / 1000.0) end,
         sha256 = $8
       where id = $1 returning *`,
      [id, path.basename(out), snapshot, bytes, durationMs, span?.from ?? null, span?.to ?? null, sha256],
    );
    const rows = maxBytes === undefined ? await ready(this.deps.db) : await this.deps.db.tx(async (q) => {
      // Cluster: the bytes are in the database before anyone sees the clip ready (streamed in 1 MiB parts, never one buffer).
      if (bytes <= maxBytes) await this.parts.write(q, [id, 'mp4'], createReadStream(out, { highWaterMark: PART_BYTES }));
      else this.deps.logger.warn({ clipId: id, bytes, maxBytes }, 'clip larger than GRIDLINK_VIDEO_CLIP_STORE_MAX_MB: kept on this node only');
      // ffmpeg may exit cleanly without writing the frame (an offset past the segment's end).
      if (snapshot && existsSync(this.snapshotFile(id))) await this.parts.write(q, [id, 'jpg'], readFileSync(this.snapshotFile(id)));
      return ready(q);
    });
    rmSync(parts, { recursive: true, force: true });
    this.deps.logger.info({ clipId: id, at, bytes, durationMs }, 'evidence clip ready');
    if (rows[0]) this.deps.onReady(toClip(rows[0]));
  }

  /**
   * Retention: a clip is kept while its case is open and for `retentionDays`
   * after the case was closed or rejected; a clip without a case for
   * `retentionDays` after it was made. Returns the ids removed (files, clip
   * rows and their rows in the case evidence list).
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

  private async fail(id: string, error: string): Promise<void> {
    rmSync(this.partsDir(id), { recursive: true, force: true });
    await this.deps.db.query("update video_clips set status = 'failed', error = $2 where id = $1", [id, error]).catch(() => undefined);
    this.deps.logger.warn({ clipId: id, error }, 'evidence clip failed');
  }
}

export function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file).on('data', (d) => h.update(d)).on('error', reject).on('end', () => resolve(h.digest('hex')));
  });
}
