/**
 * Camera registry: the video side of a `camera` device. The device row (id,
 * secret, grid, position) lives in the device registry; this table adds the
 * RTSP source (sealed with AES-GCM, only a redacted form is ever returned),
 * the view (heading, field of view, range), GB/T 28181 id and codec. All
 * cameras are cached in memory: "nearest cameras" runs on every alarm.
 */
import { Errors } from '../core/errors.js';
import type { DeviceRegistry } from '../registry/index.js';
import type { Db, Migration } from '../store/index.js';
import { coverageRank, covers, distanceM } from './geo.js';
import { redactUrl, type VideoKeys } from './keys.js';
import { ffmpegUrl, parseRtspUrl, resolveCamera, urlSecrets, type NetAllowList } from './url.js';

export type CameraCodec = 'h264' | 'h265';

export interface Camera {
  id: string;
  name: string;
  /** Redacted: no credentials. */
  rtspUrl: string;
  lat: number;
  lon: number;
  heading: number | null;
  fov: number | null;
  rangeM: number | null;
  gridId: string | null;
  gb28181Id: string | null;
  vendor: string | null;
  codec: CameraCodec;
  /** Transcode to H.264 for browsers (default: on for H.265). */
  transcode: boolean;
  /** Keep a rolling buffer (pre-roll for evidence clips) while the camera is online. */
  buffer: boolean;
  createdAt: number;
}

interface Entry extends Camera {
  sealed: string;
}

interface CameraRow {
  id: string;
  name: string;
  rtsp_sealed: string;
  rtsp_redacted: string;
  lat: number;
  lon: number;
  heading: number | null;
  fov: number | null;
  range_m: number | null;
  grid_id: string | null;
  gb28181_id: string | null;
  vendor: string | null;
  codec: CameraCodec;
  transcode: boolean;
  buffer: boolean | null;
  created_at: Date;
}

export const videoMigrations: Migration[] = [
  {
    id: '401_video_cameras',
    async up(db) {
      await db.exec(`
        create table if not exists cameras (
          id text primary key,
          name text not null,
          rtsp_sealed text not null,
          rtsp_redacted text not null,
          lat double precision not null,
          lon double precision not null,
          heading double precision,
          fov double precision,
          range_m double precision,
          grid_id text,
          gb28181_id text,
          vendor text,
          codec text not null default 'h264',
          transcode boolean not null default false,
          created_at timestamptz not null default now()
        );
        create table if not exists video_clips (
          id text primary key,
          camera_id text not null,
          case_id text,
          alarm_id text,
          alert_key text,
          alert_type text,
          trigger text not null,
          grid_id text,
          at timestamptz not null,
          from_ts timestamptz,
          to_ts timestamptz,
          status text not null,
          file text,
          snapshot text,
          bytes integer,
          duration_ms integer,
          error text,
          created_at timestamptz not null default now()
        );
        create index if not exists video_clips_case_idx on video_clips (case_id);
        create index if not exists video_clips_alert_idx on video_clips (alert_key);
        create table if not exists camera_links (
          subject text not null,
          case_id text,
          alarm_id text,
          camera_id text not null,
          rank integer not null,
          distance_m double precision not null,
          covers boolean,
          created_at timestamptz not null default now(),
          primary key (subject, camera_id)
        );
        create index if not exists camera_links_case_idx on camera_links (case_id);
      `);
    },
  },
  {
    // Rolling buffer per camera; clips carry their digest and are kept until their case's retention ends.
    id: '402_video_buffer_evidence',
    async up(db) {
      await db.exec(`
        alter table cameras add column if not exists buffer boolean not null default true;
        alter table video_clips add column if not exists sha256 text;
        create index if not exists video_clips_created_idx on video_clips (created_at);
      `);
    },
  },
  {
    // Cluster: the node that records a clip (its parts and file are on that node's disk).
    id: '403_video_clip_node',
    async up(db) {
      await db.exec(`
        alter table video_clips add column if not exists node text;
        alter table video_clips add column if not exists node_url text;
      `);
    },
  },
  {
    // Cluster: a ready clip's MP4 (name 'mp4') and snapshot ('jpg') in the database, in parts of 1 MiB, gone with the clip row.
    id: '404_video_clip_parts',
    async up(db) {
      await db.exec(`
        create table if not exists video_clip_parts (
          clip_id text not null references video_clips (id) on delete cascade,
          name text not null check (name in ('mp4', 'jpg')),
          part integer not null check (part >= 0),
          data bytea not null,
          primary key (clip_id, name, part)
        );
        alter table video_clip_parts alter column data set storage external;
      `);
    },
  },
  {
    // A clip settled after its recording was cut short (clips.ts, "settle"): a remark on a ready clip, and the recorder it was taken from.
    id: '405_video_clip_settled',
    async up(db) {
      await db.exec(`
        alter table video_clips add column if not exists note text;
        alter table video_clips add column if not exists taken_from text;
        create index if not exists video_clips_recording_idx on video_clips (node) where status = 'recording';
      `);
    },
  },
];

const toCamera = (r: CameraRow): Entry => ({
  id: r.id,
  name: r.name,
  rtspUrl: r.rtsp_redacted,
  sealed: r.rtsp_sealed,
  lat: r.lat,
  lon: r.lon,
  heading: r.heading,
  fov: r.fov,
  rangeM: r.range_m,
  gridId: r.grid_id,
  gb28181Id: r.gb28181_id,
  vendor: r.vendor,
  codec: r.codec,
  transcode: r.transcode,
  buffer: r.buffer ?? true,
  createdAt: new Date(r.created_at).getTime(),
});

export function publicCamera(e: Camera): Camera {
  const { sealed: _s, ...rest } = e as Entry;
  return rest;
}

export interface CameraInput {
  id?: string;
  name?: string;
  rtspUrl: string;
  lat: number;
  lon: number;
  heading?: number;
  fov?: number;
  rangeM?: number;
  gridId?: string;
  gb28181Id?: string;
  vendor?: string;
  codec?: CameraCodec;
  transcode?: boolean;
  buffer?: boolean;
}

export interface NearCamera {
  camera: Camera;
  distanceM: number;
  covers: boolean | null;
}

export class CameraRegistry {
  private readonly cameras = new Map<string, Entry>();

  constructor(
    private readonly db: Db,
    private readonly registry: DeviceRegistry,
    private readonly keys: VideoKeys,
    /** The grid a point lies in (routes check a new camera's region with it). */
    readonly locate: (lat: number, lon: number) => string | null,
    /** Camera networks the hub may connect to (empty: any). */
    readonly allow: NetAllowList,
  ) {}

  async load(): Promise<void> {
    const rows = await this.db.query<CameraRow>('select * from cameras');
    this.cameras.clear();
    for (const r of rows) this.cameras.set(r.id, toCamera(r));
  }

  get(id: string): Camera | undefined {
    return this.cameras.get(id);
  }

  list(): Camera[] {
    return [...this.cameras.values()].sort((a, b) => a.id.localeCompare(b.id));
  }

  /** The RTSP URL with credentials, parsed: for the prober and ffmpeg only. */
  rtspUrl(id: string): URL {
    const e = this.cameras.get(id);
    if (!e) throw Errors.notFound('camera not found');
    return parseRtspUrl(this.keys.decrypt(e.sealed, id));
  }

  /**
   * Where to connect, checked now (the allow-list may have changed since
   * registration, and a name may resolve elsewhere): the parsed URL, the
   * checked address, the string for ffmpeg (rebuilt from the parts, host =
   * that address) and the secrets to redact from anything ffmpeg prints.
   */
  async target(id: string): Promise<{ url: URL; address: string; ffmpeg: string; secrets: string[] }> {
    const url = this.rtspUrl(id);
    const address = await resolveCamera(url, this.allow);
    return { url, address, ffmpeg: ffmpegUrl(url, address), secrets: urlSecrets(url) };
  }

  /** Registers the `camera` device (MQTT credentials, returned once) and the camera. */
  async create(input: CameraInput): Promise<{ camera: Camera; secret: string }> {
    const url = parseRtspUrl(input.rtspUrl);
    // SSRF: the hub connects only to the camera networks the operator allows (checked again at every connect).
    if (this.allow.size) await resolveCamera(url, this.allow);
    if (input.gb28181Id !== undefined && !/^\d{20}$/.test(input.gb28181Id)) throw Errors.validation('gb28181Id must be 20 digits');
    if ((input.heading === undefined) !== (input.fov === undefined)) throw Errors.validation('heading and fov go together');
    const codec = input.codec ?? 'h264';
    const gridId = input.gridId ?? this.locate(input.lat, input.lon);
    const { device, secret } = await this.registry.register({
      ...(input.id ? { id: input.id } : {}),
      type: 'camera',
      name: input.name ?? input.id,
      lat: input.lat,
      lon: input.lon,
      ...(gridId ? { gridId } : {}),
      meta: { gb28181Id: input.gb28181Id ?? null, vendor: input.vendor ?? null },
    });
    try {
      const rows = await this.db.query<CameraRow>(
        `insert into cameras (id, name, rtsp_sealed, rtsp_redacted, lat, lon, heading, fov, range_m, grid_id, gb28181_id, vendor, codec, transcode, buffer)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) returning *`,
        [
          device.id, device.name, this.keys.encrypt(url.href, device.id), redactUrl(url.href), input.lat, input.lon,
          input.heading ?? null, input.fov ?? null, input.rangeM ?? null, device.gridId, input.gb28181Id ?? null, input.vendor ?? null,
          codec, input.transcode ?? codec === 'h265', input.buffer ?? true,
        ],
      );
      const e = toCamera(rows[0]!);
      this.cameras.set(e.id, e);
      return { camera: publicCamera(e), secret };
    } catch (err) {
      // Keep the two registries consistent: no camera device without a camera.
      await this.registry.remove(device.id).catch(() => undefined);
      throw err;
    }
  }

  async update(id: string, patch: { transcode?: boolean; heading?: number | null; fov?: number | null; rangeM?: number | null; name?: string; buffer?: boolean }): Promise<Camera> {
    const e = this.cameras.get(id);
    if (!e) throw Errors.notFound('camera not found');
    const next: Entry = { ...e, ...Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)) } as Entry;
    // The same rule as create: a view cone needs both, so a patch may not leave one without the other.
    if ((next.heading === null) !== (next.fov === null)) throw Errors.validation('heading and fov go together');
    await this.db.query('update cameras set name = $2, transcode = $3, heading = $4, fov = $5, range_m = $6, buffer = $7 where id = $1', [id, next.name, next.transcode, next.heading, next.fov, next.rangeM, next.buffer]);
    this.cameras.set(id, next);
    return publicCamera(next);
  }

  async forget(id: string): Promise<void> {
    this.cameras.delete(id);
    await this.db.query('delete from cameras where id = $1', [id]);
  }

  /**
   * Cameras within radiusM of a point: covering first (heading/fov known and
   * the point in view), then unknown view, then known to look away; nearest
   * first inside each group. `preferCameraId` goes first whatever its rank.
   */
  near(lat: number, lon: number, opts: { radiusM: number; limit: number; preferCameraId?: string; filter?: (c: Camera) => boolean }): NearCamera[] {
    const out: NearCamera[] = [];
    for (const c of this.cameras.values()) {
      if (opts.filter && !opts.filter(c)) continue;
      const d = distanceM(c.lat, c.lon, lat, lon);
      if (d > opts.radiusM && c.id !== opts.preferCameraId) continue;
      const cov = covers(c, lat, lon, d);
      // A camera with a known range does not cover what lies beyond it.
      out.push({ camera: publicCamera(c), distanceM: Math.round(d * 10) / 10, covers: cov === true && c.rangeM !== null && d > c.rangeM ? false : cov });
    }
    out.sort((a, b) => {
      if (opts.preferCameraId) {
        if (a.camera.id === opts.preferCameraId) return -1;
        if (b.camera.id === opts.preferCameraId) return 1;
      }
      return coverageRank(a.covers) - coverageRank(b.covers) || a.distanceM - b.distanceM;
    });
    return out.slice(0, opts.limit);
  }
}
