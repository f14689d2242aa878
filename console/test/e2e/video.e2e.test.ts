/**
 * A camera plays in the video wall: a real RTSP camera (the simulators'
 * GStreamer/ffmpeg source), the hub's video module (real ffmpeg), and the
 * console's player in real Chromium: low-latency fMP4 over WebSocket into
 * MSE, and plain HLS through hls.js. Skips only when a binary is missing,
 * never under GRIDLINK_REQUIRE_ALL=1.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rtspCameraSupport, startRtspCamera, type RtspCamera } from '@gridlink/simulators/camera';
import { hasChromium, productModules, REQUIRE_ALL, startE2E, type E2E } from './harness';

const support = rtspCameraSupport();
const skip = (!hasChromium || !support.ok) && !REQUIRE_ALL;

describe.skipIf(skip)('console video wall (e2e, RTSP → ffmpeg → chromium)', () => {
  let e: E2E;
  let cam: RtspCamera;
  let page: Page;
  const id = 'cam-wall-1';

  beforeAll(async () => {
    cam = await startRtspCamera({ id });
    e = await startE2E({}, { modules: await productModules() });
    const r = await e.hub.api('POST', '/cameras', { id, name: 'East Gate', rtspUrl: cam.url, lat: 30.66, lon: 104.06 });
    expect(r.status).toBe(201);
    const officer = await e.user('officer', 'wall-officer', 'Wall Officer');
    page = await e.page();
    await e.login(page, officer);
  }, 180_000);

  afterAll(async () => {
    await e?.stop();
    await cam?.stop();
  });

  // Functions, not strings: the console's Content-Security-Policy refuses string evaluation.
  const played = (mode: string) =>
    page.waitForFunction(
      ({ id, mode }) => {
        const p = document.querySelector<HTMLElement>(`[data-testid=camera-player][data-camera="${id}"]`);
        const v = p?.querySelector('video');
        return !!p && !!v && p.dataset.state === 'playing' && p.dataset.mode === mode && v.currentTime > 0.5 && v.videoWidth > 0;
      },
      { id, mode },
      { timeout: 120_000 },
    );

  it('should play the camera in the wall over the low-latency WebSocket/MSE path', async () => {
    await page.goto(`${e.hub.http}/#/video?cams=${id}`);
    await page.waitForSelector(`[data-testid=camera-player][data-camera="${id}"]`);
    await played('live');
  });

  it('should play the same camera over HLS when low latency is switched off', async () => {
    await page.evaluate(() => localStorage.setItem('gridlink.video.lowLatency', '0'));
    await page.goto(`${e.hub.http}/#/video?cams=${id}`);
    await page.reload();
    await played('hls');
    await page.evaluate(() => localStorage.removeItem('gridlink.video.lowLatency'));
  });
});
