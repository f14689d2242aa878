/**
 * A clip cut short on the single process, and clip files of clips gone.
 *
 * The hub (hub/src/main.ts, embedded PGlite on disk, a real RTSP camera) is
 * SIGKILLed while an alert's clip records; started again on the same data
 * directory it settles the clip once: ready from the segments its disk kept
 * (and the rest of the window when it is still open), saying it was
 * interrupted, in the case the alert opened — never left `recording`. A
 * clean stop mid-clip finishes the clip before the hub exits, noted too.
 *
 * Retention deletes clip rows on one node; each node's own clip files of
 * clips gone are removed by that node (two recorders on one database).
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes, randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { publishAlert, rtspCameraSupport, startRtspCamera, type RtspCamera } from '@gridlink/simulators/camera';
import { createLogger } from '../../src/core/logger.js';
import { openDb } from '../../src/store/index.js';
import { migrate } from '../../src/store/migrate.js';
import { videoMigrations } from '../../src/video/cameras.js';
import { ClipRecorder } from '../../src/video/clips.js';
import { findFfmpeg } from '../../src/video/ffmpeg.js';
import { StreamGateway } from '../../src/video/gateway.js';
import { defaultStreamSettings } from '../../src/video/stream.js';
import { api, login, startNode, type HubNode } from '../cluster/harness.js';
import { REQUIRE_ALL, until } from '../helpers.js';

const support = rtspCameraSupport();
if (support.missing.length && REQUIRE_ALL) throw new Error(`GRIDLINK_REQUIRE_ALL=1 but missing: ${support.missing.join(', ')}`);
const ff = findFfmpeg(process.env.GRIDLINK_FFMPEG);
if (!ff && REQUIRE_ALL) throw new Error('GRIDLINK_REQUIRE_ALL=1 but ffmpeg is missing');

interface ClipView { id: string; status: string; error: string | null; note?: string | null; caseId: string | null; from: number | null; to: number | null; bytes: number | null; video: string }

describe.runIf(support.missing.length === 0)('a clip cut short by a hub crash (single process, PGlite on disk, real RTSP camera)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gridlink-clip-restart-'));
  let cam: RtspCamera | undefined;
  let hub: HubNode | undefined;
  const id = 'cam-restart-1';
  const PRE_S = 3;
  /** Long enough that a hub back within it records the rest of the window. */
  const POST_S = 30;
  const env = {
    GRIDLINK_DATA_DIR: dir, DATABASE_URL: '', GRIDLINK_REDIS_URL: '',
    GRIDLINK_JWT_SECRET: randomBytes(32).toString('hex'), GRIDLINK_ADMIN_PASSWORD: 'admin-pass-123',
    GRIDLINK_HOST: '127.0.0.1', GRIDLINK_HTTP_PORT: '0', GRIDLINK_MQTT_PORT: '0', GRIDLINK_LOG_LEVEL: 'warn',
    GRIDLINK_VIDEO_CLIP_PRE_S: String(PRE_S), GRIDLINK_VIDEO_CLIP_POST_S: String(POST_S), GRIDLINK_VIDEO_BUFFER_S: '8',
  };

  afterAll(async () => {
    if (process.env.GRIDLINK_CLUSTER_LOGS === '1' && hub) process.stderr.write(`--- single\n${hub.output()}\n`);
    await hub?.kill('SIGKILL');
    await cam?.stop();
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('settles the clip once after the restart: ready from what the disk kept, marked INTERRUPTED, in its case', async () => {
    cam = await startRtspCamera({ id, width: 320, height: 180, fps: 10 });
    hub = await startNode('single', env);
    let token = await login(hub.http, 'admin', 'admin-pass-123');
    const r = await api<{ secret: string }>(hub.http, 'POST', '/cameras', { id, name: 'restart camera', rtspUrl: cam.url, lat: 30.61, lon: 104.005, buffer: true }, token);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const secret = r.body.secret;
    // The rolling buffer holds the pre-alert seconds.
    const s = await until(async () => {
      const c = await api<{ buffering: boolean }>(hub!.http, 'GET', `/cameras/${id}`, undefined, token);
      return c.body.buffering ? api<{ hls: string }>(hub!.http, 'GET', `/cameras/${id}/stream`, undefined, token) : null;
    }, 120_000, 250);
    await until(async () => {
      const p = await fetch(`${hub!.http}${s.body.hls}`);
      return p.status === 200 && ((await p.text()).match(/^seg_/gm)?.length ?? 0) >= PRE_S + 2 ? true : null;
    }, 120_000, 500);

    const mq = await mqtt.connectAsync(`mqtt://127.0.0.1:${hub.mqttPort}`, { clientId: id, username: id, password: secret, reconnectPeriod: 0 });
    const at = (await publishAlert(mq, id, 'fight', { confidence: 0.9 })).ts as number;
    await mq.endAsync();
    const clip = await until(async () => {
      const l = await api<{ items: ClipView[] }>(hub!.http, 'GET', `/clips?cameraId=${id}`, undefined, token);
      return l.body.items.find((c) => c.status === 'recording') ?? null;
    }, 120_000, 100);
    // The pre-alert segments are linked into the clip's work directory at once: the hub dies with them on its disk.
    const parts = path.join(dir, 'video', 'clips', `${clip.id}.parts`);
    await until(() => (existsSync(parts) && readdirSync(parts).filter((f) => f.endsWith('.ts')).length >= PRE_S ? true : null), 60_000, 50);
    await hub.kill('SIGKILL');
    const killedAt = Date.now();

    hub = await startNode('single', env);
    const backAt = Date.now();
    token = await login(hub.http, 'admin', 'admin-pass-123');
    const settled = await until(async () => {
      const c = await api<ClipView>(hub!.http, 'GET', `/clips/${clip.id}`, undefined, token);
      return c.body.status !== 'recording' ? c.body : null;
    }, 180_000, 250);
    expect(settled).toMatchObject({ status: 'ready', note: 'INTERRUPTED', error: null });
    // What the disk kept before the crash is in it: the pre-alert seconds.
    expect(settled.from!).toBeLessThanOrEqual(at - PRE_S * 1000);
    expect(settled.bytes!).toBeGreaterThan(1000);
    if (process.env.GRIDLINK_CLUSTER_LOGS === '1') process.stderr.write(`restart: back ${backAt - at} ms after the alert; clip ${JSON.stringify(settled)}\n`);
    if (backAt < at + POST_S * 1000 - 5_000) {
      // Back while the window was open: the rest of it was recorded after the restart, after the kept seconds.
      expect(settled.to!).toBeGreaterThan(backAt);
    } else {
      // Back after the window: the clip is what the disk kept, nothing after the crash.
      expect(settled.to!).toBeLessThanOrEqual(killedAt + 2_000);
    }
    const mp4 = await fetch(`${hub.http}${settled.video}`);
    expect(mp4.status).toBe(200);
    expect((await mp4.arrayBuffer()).byteLength).toBe(settled.bytes);
    // The case the alert opened lists it, with its note; nothing of it is left recording.
    const inCase = await until(async () => {
      const c = await api<ClipView>(hub!.http, 'GET', `/clips/${clip.id}`, undefined, token);
      return c.body.caseId ? c.body : null;
    }, 120_000, 250);
    const list = await api<{ items: ClipView[] }>(hub.http, 'GET', `/clips?caseId=${inCase.caseId}`, undefined, token);
    expect(list.body.items.map((c) => [c.id, c.status, c.note])).toContainEqual([clip.id, 'ready', 'INTERRUPTED']);
    const all = await api<{ items: ClipView[] }>(hub.http, 'GET', `/clips?cameraId=${id}`, undefined, token);
    expect(all.body.items.filter((c) => c.status === 'recording')).toEqual([]);
    expect(existsSync(parts)).toBe(false);

    // A clean stop (SIGTERM) mid-clip: the hub finishes the clip from what it has before it exits, and says it was cut short.
    const mq2 = await mqtt.connectAsync(`mqtt://127.0.0.1:${hub.mqttPort}`, { clientId: id, username: id, password: secret, reconnectPeriod: 0 });
    const at2 = (await publishAlert(mq2, id, 'waterlogging', { confidence: 0.9 })).ts as number;
    await mq2.endAsync();
    const clip2 = await until(async () => {
      const l = await api<{ items: ClipView[] }>(hub!.http, 'GET', `/clips?cameraId=${id}`, undefined, token);
      return l.body.items.find((c) => c.status === 'recording' && c.id !== clip.id) ?? null;
    }, 120_000, 100);
    await hub.kill('SIGTERM');
    const stoppedAt = Date.now();
    hub = await startNode('single', env);
    token = await login(hub.http, 'admin', 'admin-pass-123');
    const stopped = (await api<ClipView>(hub.http, 'GET', `/clips/${clip2.id}`, undefined, token)).body;
    expect(stopped).toMatchObject({ status: 'ready', note: 'INTERRUPTED', error: null });
    expect(stopped.from!).toBeLessThanOrEqual(at2 - PRE_S * 1000);
    expect(stopped.to!).toBeLessThanOrEqual(stoppedAt);
  }, 600_000);
});

describe.runIf(!!ff)('each node prunes its own clip files (two recorders, one database)', () => {
  it('removes the files of clips whose rows retention deleted on the other node, and work directories of clips not recording here', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'gridlink-clip-prune-'));
    const db = await openDb({ url: 'memory://', dataDir: root });
    try {
      await migrate(db, videoMigrations);
      const logger = createLogger('silent');
      const recorder = (node: string) => {
        const gateway = new StreamGateway({ ff: ff!, root: path.join(root, node), settings: defaultStreamSettings, logger, camera: () => undefined, onState: () => undefined });
        return new ClipRecorder({
          db, gateway, dir: path.join(root, node, 'clips'), ffmpeg: ff!.path, preS: 3, postS: 3, startAllowanceS: 5, logger, onReady: () => undefined,
          node: () => ({ node, url: '' }),
        });
      };
      const a = recorder('node-a');
      const b = recorder('node-b');
      const clip = async (node: string, status: string, createdDaysAgo: number) => {
        const cid = randomUUID();
        await db.query(
          `insert into video_clips (id, camera_id, trigger, at, status, node, created_at)
           values ($1, 'cam-p', 'alert', now(), $2, $3, now() - make_interval(days => $4))`, [cid, status, node, createdDaysAgo]);
        const clips = path.join(root, node, 'clips');
        mkdirSync(clips, { recursive: true });
        writeFileSync(path.join(clips, `${cid}.mp4`), 'mp4');
        writeFileSync(path.join(clips, `${cid}.jpg`), 'jpg');
        return cid;
      };
      const oldOnB = await clip('node-b', 'ready', 400);
      const newOnB = await clip('node-b', 'ready', 1);
      const recordingOnB = await clip('node-b', 'recording', 0);
      mkdirSync(path.join(root, 'node-b', 'clips', `${recordingOnB}.parts`));
      const oldOnA = await clip('node-a', 'ready', 400);
      // A clip another node took over from B: B's work directory of it is stale.
      const takenFromB = await clip('node-a', 'recording', 0);
      mkdirSync(path.join(root, 'node-b', 'clips', `${takenFromB}.parts`));
      // Not a clip file: left alone.
      writeFileSync(path.join(root, 'node-b', 'clips', 'notes.txt'), 'keep');

      // Retention runs on node A: the old rows go, and A's files of them.
      expect((await a.prune(180, Date.now())).sort()).toEqual([oldOnA, oldOnB].sort());
      expect(existsSync(path.join(root, 'node-a', 'clips', `${oldOnA}.mp4`))).toBe(false);
      const onB = () => readdirSync(path.join(root, 'node-b', 'clips')).sort();
      expect(onB()).toContain(`${oldOnB}.mp4`);
      // Node B removes its own files of the clips gone, and the work directory of the clip it no longer records.
      expect((await b.pruneFiles()).sort()).toEqual([`${oldOnB}.jpg`, `${oldOnB}.mp4`, `${takenFromB}.parts`].sort());
      expect(onB()).toEqual([`${newOnB}.jpg`, `${newOnB}.mp4`, `${recordingOnB}.jpg`, `${recordingOnB}.mp4`, `${recordingOnB}.parts`, 'notes.txt'].sort());
      expect(await b.pruneFiles()).toEqual([]);
    } finally {
      await db.close();
      rmSync(root, { recursive: true, force: true });
    }
  }, 120_000);
});
