/**
 * Evidence with pre-roll (real hub with rules, cases and video; real
 * simulated RTSP camera; real ffmpeg): a camera nobody watches keeps a
 * rolling buffer; its alert opens a case whose evidence list holds a clip
 * that starts at least 10 s before the alert, read from the clock burned
 * into the clip's first frame; the clip exports with a SHA-256 sidecar, a
 * one-click snapshot joins the same evidence list, and retention prunes
 * clips of long-closed cases.
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alertMessage, clockLayout, readClock, rtspCameraSupport, simFfmpeg, startRtspCamera, type RtspCamera } from '@gridlink/simulators/camera';
import { productModules } from '../../src/hub.js';
import type { VideoModule } from '../../src/video/index.js';
import { publishAck, startHub, until, type TestHub } from '../helpers.js';

const support = rtspCameraSupport();
const REQUIRE_ALL = process.env.GRIDLINK_REQUIRE_ALL === '1';
if (!support.ok && REQUIRE_ALL) throw new Error(`GRIDLINK_REQUIRE_ALL=1 but missing: ${support.missing.join(', ')}`);

const W = 320;
const H = 180;

interface Evidence {
  id: string;
  kind: string;
  mime: string;
  sha256: string;
  url: string;
}

describe.skipIf(!support.ok)('evidence with pre-roll from the rolling buffer', () => {
  let t: TestHub;
  let cam: RtspCamera;
  let dataDir: string;
  let video: VideoModule;
  let caseId = '';
  let alertAt = 0;
  const id = 'cam-preroll-1';

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'gl-preroll-'));
    cam = await startRtspCamera({ id, width: W, height: H, fps: 10 });
    // A short post-roll keeps the test quick; the pre-roll is the product default (10 s from a 15 s buffer).
    t = await startHub({ dataDir }, { modules: productModules({ video: { postS: 3 } }) });
    video = t.hub.ctx.modules.get('video') as VideoModule;
  }, 300_000);

  afterAll(async () => {
    await t?.stop();
    await cam?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('should put a clip starting at least 10 s before the alert of an unwatched camera into the case evidence', async () => {
    const r = await t.api<{ secret: string }>('POST', '/cameras', { id, name: '西门', rtspUrl: cam.url, lat: 30.66, lon: 104.06 });
    expect(r.status).toBe(201);
    // Nobody opens the stream: the buffer alone keeps it, until it holds 12 s.
    await until(() => {
      const s = video.gateway?.existing(id)?.snapshotInfo();
      return s && s.state === 'live' && s.bufferS >= 12 ? s : null;
    }, 90_000, 250);
    expect(video.gateway!.existing(id)!.viewers).toBe(1);

    const c = await t.connect(id, r.body.secret);
    const body = await alertMessage(id, 'fire', { confidence: 0.95, withSnapshot: true });
    alertAt = body.ts as number;
    await publishAck(c, `gridlink/v1/${id}/alert`, body);

    const kase = await until(async () => {
      const list = await t.api<{ items: Array<{ id: string; createdAt: number }> }>('GET', '/cases');
      for (const k of list.body.items) {
        const d = await t.api<{ id: string; deviceId?: string; evidence: Evidence[] }>('GET', `/cases/${k.id}`);
        if (d.body.evidence?.some((e) => e.kind === 'clip')) return d.body;
      }
      return null;
    }, 90_000, 500);
    caseId = kase.id;
    const clipEv = kase.evidence.find((e) => e.kind === 'clip')!;
    expect(clipEv.mime).toBe('video/mp4');
    expect(kase.evidence.map((e) => e.kind)).toContain('snapshot');

    const clips = await t.api<{ items: Array<{ id: string; from: number; to: number; at: number; sha256: string; bytes: number }> }>('GET', `/clips?caseId=${caseId}`);
    const clip = clips.body.items[0]!;
    expect(clip.id).toBe(clipEv.id);
    expect(clip.at).toBe(alertAt);
    expect(clip.from).toBeLessThanOrEqual(alertAt - 10_000);

    // The file behind the case's evidence entry, and the clock burned into its first frame.
    const res = await fetch(`${t.http}${clipEv.url}`, { headers: { authorization: `Bearer ${t.token}` } });
    expect(res.status).toBe(200);
    const mp4 = Buffer.from(await res.arrayBuffer());
    expect(createHash('sha256').update(mp4).digest('hex')).toBe(clipEv.sha256);
    const file = path.join(dataDir, 'clip.mp4');
    writeFileSync(file, mp4);
    const frame = spawnSync(simFfmpeg()!, ['-v', 'error', '-i', file, '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'rgba', 'pipe:1'], { maxBuffer: 64e6 });
    expect(frame.status).toBe(0);
    const firstClock = readClock(frame.stdout, W, clockLayout(W, H));
    const before = ((alertAt % 2 ** 24) - firstClock + 2 ** 24) % 2 ** 24;
    expect(before).toBeGreaterThanOrEqual(10_000);
    expect(before).toBeLessThan(30_000);
  }, 240_000);

  it('should export the clip with its SHA-256, camera, time range and case in a sidecar', async () => {
    const clips = await t.api<{ items: Array<{ id: string; from: number; to: number; sha256: string; bytes: number }> }>('GET', `/clips?caseId=${caseId}`);
    const clip = clips.body.items[0]!;
    const side = await t.api<Record<string, unknown>>('GET', `/clips/${clip.id}/export.json`);
    expect(side.status).toBe(200);
    expect(side.body).toMatchObject({
      clipId: clip.id, file: `${clip.id}.mp4`, sha256: clip.sha256, bytes: clip.bytes, mime: 'video/mp4',
      camera: { id, name: '西门', lat: 30.66, lon: 104.06 }, from: clip.from, to: clip.to, case: { id: caseId }, trigger: 'alert', alertType: 'fire',
    });
    expect((side.body.case as { code: string }).code).toBeTruthy();
  });

  it('should put the camera picture into the case with one click, and refuse extra fields and unknown cases', async () => {
    const snap = await t.api<{ id: string; kind: string; sha256: string }>('POST', `/cameras/${id}/snapshot`, { caseId });
    expect(snap.status).toBe(201);
    expect(snap.body.kind).toBe('snapshot');
    const d = await t.api<{ evidence: Evidence[] }>('GET', `/cases/${caseId}`);
    expect(d.body.evidence.map((e) => e.id)).toContain(snap.body.id);
    const img = await fetch(`${t.http}/api/v1/evidence/${snap.body.id}`, { headers: { authorization: `Bearer ${t.token}` } });
    expect(img.headers.get('content-type')).toBe('image/jpeg');
    expect((await t.api('POST', `/cameras/${id}/snapshot`, { caseId, deviceId: 'other' })).status).toBe(400);
    expect((await t.api('POST', `/cameras/${id}/snapshot`, { caseId: 'no-such-case' })).status).toBe(404);
    expect((await t.api('POST', `/cameras/${id}/snapshot`, {})).status).toBe(400);
  }, 300_000);

  it('should keep clips of open cases and prune those of cases closed longer ago than the retention', async () => {
    const clips = await t.api<{ items: Array<{ id: string }> }>('GET', `/clips?caseId=${caseId}`);
    const clipId = clips.body.items[0]!.id;
    expect(await video.pruneClips()).toEqual([]);
    await t.hub.ctx.db.query("update cases set status = 'closed', updated_at = now() - interval '400 days' where id = $1", [caseId]);
    expect(await video.pruneClips()).toEqual([clipId]);
    expect((await t.api('GET', `/clips/${clipId}`)).status).toBe(404);
    const d = await t.api<{ evidence: Evidence[] }>('GET', `/cases/${caseId}`);
    expect(d.body.evidence.some((e) => e.id === clipId)).toBe(false);
  });
});
