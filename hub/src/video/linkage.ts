/**
 * 视频联动: on a new case or alarm with a location, the nearest cameras
 * (covering the point first, the alerting camera itself before all) are
 * stored with it (camera_links), pushed to the consoles that may see it as
 * `linkage` (CONTRACT section 6), and the evidence clip is attached: the
 * clip of the alert that opened the case, or a new clip from the best camera.
 */
import type { LinkedCamera } from '@gridlink/devices/contract';
import type { CaseStore } from '../cases/index.js';
import type { CaseSummary } from '../core/services.js';
import type { Logger } from '../core/logger.js';
import type { Db } from '../store/index.js';
import type { CameraRegistry, NearCamera } from './cameras.js';
import type { CaptureInput, Clip, ClipRecorder } from './clips.js';
import { copyFileSync, existsSync, linkSync } from 'node:fs';
import path from 'node:path';
import { distanceM } from './geo.js';

/** A linked camera as REST and the `linkage` event carry it (covers: true in view, false elsewhere, null unknown). */
export type LinkageCamera = LinkedCamera;

export interface LinkagePayload {
  caseId: string | null;
  alarmId?: string;
  lat: number;
  lon: number;
  cameras: LinkageCamera[];
}

/** An alarm as other modules may publish it (CONTRACT section 6 `alarm`); only these fields are read. */
export interface AlarmLike {
  id: string;
  deviceId?: string | null;
  lat?: number | null;
  lon?: number | null;
  gridId?: string | null;
  caseId?: string | null;
  ts?: number;
}

const ALERT_LINK_WINDOW_MS = 120_000;
const SAME_PLACE_M = 30;

export class Linkage {
  private readonly recentAlerts = new Map<string, { at: number; stored: Promise<void> }>();
  private readonly handled = new Set<string>();

  constructor(
    private readonly deps: {
      db: Db;
      cameras: CameraRegistry;
      clips: ClipRecorder;
      /** Clips of a case become its evidence when the cases module is loaded. */
      cases?: Pick<CaseStore, 'evidence'>;
      logger: Logger;
      radiusM: number;
      limit: number;
      now: () => number;
      emit: (payload: LinkagePayload, gridId: string | null) => void;
      /** False for a camera the health probes found offline or unplayable: it goes after the ones that play. */
      playable?: (cameraId: string) => boolean;
      /** Cuts a case's clip (cluster: on the camera's node); the recorder's own capture otherwise. */
      capture?: (input: CaptureInput) => Promise<unknown>;
      /**
       * Cluster: how long a case opened by a camera's alert waits for that
       * alert's clip (asked of the camera's node by the node that took the
       * alert) before it cuts a clip of its own. 0 on the single process,
       * where the alert is noted before its case can open.
       */
      alertClipWaitMs?: number;
      /** Cluster: a ready clip whose file is on another node is published there. */
      publishRemote?: (clip: Clip) => Promise<void>;
    },
  ) {}

  noteAlert(cameraId: string, at: number, stored: Promise<void>): void {
    this.recentAlerts.set(cameraId, { at, stored });
  }

  nearest(lat: number, lon: number, opts: { radiusM?: number; limit?: number; preferCameraId?: string } = {}): NearCamera[] {
    const limit = opts.limit ?? this.deps.limit;
    const all = this.deps.cameras.near(lat, lon, { radiusM: opts.radiusM ?? this.deps.radiusM, limit: limit * 4, ...(opts.preferCameraId ? { preferCameraId: opts.preferCameraId } : {}) });
    const ok = this.deps.playable;
    if (!ok) return all.slice(0, limit);
    // The officer gets pictures first: cameras known to be down keep their place among themselves, after the rest.
    const first = all.filter((n, i) => (i === 0 && n.camera.id === opts.preferCameraId) || ok(n.camera.id));
    return [...first, ...all.filter((n) => !first.includes(n))].slice(0, limit);
  }

  /** The camera whose alert most likely opened a case here: a recent alert from a camera at the case location. */
  private alertingCamera(lat: number, lon: number, deviceId?: string | null): string | undefined {
    if (deviceId && this.deps.cameras.get(deviceId)) return deviceId;
    const now = this.deps.now();
    let best: { id: string; d: number } | undefined;
    for (const [id, { at }] of this.recentAlerts) {
      if (now - at > ALERT_LINK_WINDOW_MS) {
        this.recentAlerts.delete(id);
        continue;
      }
      const c = this.deps.cameras.get(id);
      if (!c) continue;
      const d = distanceM(c.lat, c.lon, lat, lon);
      if (d <= SAME_PLACE_M && (!best || d < best.d)) best = { id, d };
    }
    return best?.id;
  }

  private remember(subject: string): boolean {
    if (this.handled.has(subject)) return false;
    this.handled.add(subject);
    if (this.handled.size > 10_000) this.handled.delete(this.handled.values().next().value!);
    return true;
  }

  async onCase(c: CaseSummary, hint: { deviceId?: string | null } = {}): Promise<LinkagePayload | null> {
    if (!Number.isFinite(c.lat) || !Number.isFinite(c.lon)) return null;
    const subject = `case:${c.id}`;
    if (!this.remember(subject)) return null;
    const existing = await this.deps.db.query<{ n: number }>('select count(*)::int as n from camera_links where subject = $1', [subject]);
    if ((existing[0]?.n ?? 0) > 0) return null;
    const prefer = this.alertingCamera(c.lat, c.lon, hint.deviceId);
    const list = this.nearest(c.lat, c.lon, prefer ? { preferCameraId: prefer } : {});
    if (!list.length) return null;
    const payload = await this.store(subject, { caseId: c.id, lat: c.lat, lon: c.lon }, list);
    this.deps.emit(payload, c.gridId);
    await this.evidence(c, list, prefer, hint.deviceId ?? null).catch((err) => this.deps.logger.error({ err, caseId: c.id }, 'could not attach evidence'));
    return payload;
  }

  /**
   * An alarm joined an open case (correlation, repeat): alert clips of
   * cameras near the case from the last two minutes become its evidence too.
   */
  async onCaseJoined(c: CaseSummary, deviceId?: string | null): Promise<void> {
    const now = this.deps.now();
    const ids: string[] = [];
    for (const [id, { at }] of this.recentAlerts) {
      const cam = this.deps.cameras.get(id);
      if (!cam || now - at > ALERT_LINK_WINDOW_MS) continue;
      if (id === deviceId || distanceM(cam.lat, cam.lon, c.lat, c.lon) <= this.deps.radiusM) ids.push(id);
    }
    for (const id of ids) await this.recentAlerts.get(id)?.stored;
    for (const clip of await this.deps.clips.unattached(ids, now - ALERT_LINK_WINDOW_MS)) await this.attach(clip, c.id);
  }

  /** The clip joins the case; published here when it is ready by then (otherwise its recorder publishes it when it is). */
  private async attach(clip: Clip, caseId: string): Promise<void> {
    const row = await this.deps.clips.attach(clip.id, caseId);
    if (row?.status === 'ready') await this.publish(row, this.deps.clips.clipFile(row.id));
  }

  async onAlarm(a: AlarmLike): Promise<LinkagePayload | null> {
    // An alarm that already has a case is linked through the case.
    if (a.caseId || typeof a.lat !== 'number' || typeof a.lon !== 'number') return null;
    const subject = `alarm:${a.id}`;
    if (!this.remember(subject)) return null;
    const prefer = this.alertingCamera(a.lat, a.lon, a.deviceId);
    const list = this.nearest(a.lat, a.lon, prefer ? { preferCameraId: prefer } : {});
    if (!list.length) return null;
    const payload = await this.store(subject, { caseId: null, alarmId: a.id, lat: a.lat, lon: a.lon }, list);
    this.deps.emit(payload, a.gridId ?? null);
    return payload;
  }

  private async store(subject: string, head: Omit<LinkagePayload, 'cameras'>, list: NearCamera[]): Promise<LinkagePayload> {
    const cameras = list.map((n) => ({ id: n.camera.id, name: n.camera.name, distanceM: n.distanceM, covers: n.covers, stream: `/api/v1/cameras/${n.camera.id}/stream` }));
    await this.deps.db.query(
      `insert into camera_links (subject, case_id, alarm_id, camera_id, rank, distance_m, covers)
       select $1, $2, $3, u.camera_id, u.rank, u.distance_m, u.covers
       from unnest($4::text[], $5::int[], $6::float8[], $7::bool[]) as u(camera_id, rank, distance_m, covers)
       on conflict do nothing`,
      [subject, head.caseId, head.alarmId ?? null, cameras.map((c) => c.id), cameras.map((_, i) => i), cameras.map((c) => c.distanceM), cameras.map((c) => c.covers)],
    );
    return { ...head, cameras };
  }

  /** The stored linkage of a case, best first. */
  async forCase(caseId: string): Promise<LinkageCamera[]> {
    const rows = await this.deps.db.query<{ camera_id: string; distance_m: number; covers: boolean | null }>(
      'select camera_id, distance_m, covers from camera_links where case_id = $1 order by rank', [caseId],
    );
    return rows.map((r) => ({ id: r.camera_id, name: this.deps.cameras.get(r.camera_id)?.name ?? r.camera_id, distanceM: r.distance_m, covers: r.covers, stream: `/api/v1/cameras/${r.camera_id}/stream` }));
  }

  /** Alert clips waiting for this case are attached; otherwise the best camera records one now. */
  private async evidence(c: CaseSummary, list: NearCamera[], prefer: string | undefined, opener: string | null): Promise<void> {
    const ids = prefer ? [prefer] : list.map((n) => n.camera.id);
    for (const id of ids) await this.recentAlerts.get(id)?.stored;
    let waiting = await this.deps.clips.unattached(ids, this.deps.now() - ALERT_LINK_WINDOW_MS);
    // Cluster: the alert that opened this case may have reached another node, whose request for its clip
    // can still be on its way to the camera's node: wait for that clip rather than cut a second one.
    const waitMs = this.deps.alertClipWaitMs ?? 0;
    if (!waiting.length && waitMs > 0 && prefer && prefer === opener) {
      const until = Date.now() + waitMs;
      while (!waiting.length && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 200));
        waiting = await this.deps.clips.unattached(ids, this.deps.now() - ALERT_LINK_WINDOW_MS);
      }
    }
    if (waiting.length) {
      for (const clip of waiting) await this.attach(clip, c.id);
      return;
    }
    const best = list[0]!.camera;
    const input: CaptureInput = { cameraId: best.id, at: c.createdAt || this.deps.now(), trigger: 'case', caseId: c.id, gridId: best.gridId };
    await (this.deps.capture ? this.deps.capture(input) : this.deps.clips.capture(input));
  }

  /**
   * One evidence model: a ready clip joins the case's evidence list (the
   * cases module's `evidence` table) as kind `clip`, with its SHA-256, next
   * to the snapshots and photos; the file is hard-linked into the evidence
   * directory so the case keeps it whatever happens to the video directory.
   * The clip's id is the evidence id. Without the cases module the clip row
   * is the record.
   */
  async publish(clip: Clip, file: string): Promise<void> {
    if (!clip.caseId || !clip.sha256 || clip.bytes === null) return;
    const store = this.deps.cases?.evidence;
    if (!store?.dir) return;
    // Cluster: the clip was cut on another node; that node adds it to the evidence with its file.
    if (!existsSync(file) && this.deps.publishRemote) return this.deps.publishRemote(clip);
    const name = `${clip.id}.mp4`;
    const target = path.join(store.dir, name);
    if (!existsSync(target)) {
      try {
        linkSync(file, target);
      } catch {
        copyFileSync(file, target);
      }
    }
    await this.deps.db.query(
      `insert into evidence (id, case_id, alarm_id, kind, mime, size, sha256, file, device_id, grid_id, created_at)
       values ($1, $2, $3, 'clip', 'video/mp4', $4, $5, $6, $7, $8, to_timestamp($9 / 1000.0))
       on conflict (id) do update set case_id = excluded.case_id`,
      [clip.id, clip.caseId, clip.alarmId, clip.bytes, clip.sha256, name, clip.cameraId, clip.gridId, clip.from ?? clip.at],
    );
  }
}
