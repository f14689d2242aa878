/**
 * `camera.state` in real Chromium against a real hub: a camera whose RTSP
 * address does not answer is shown offline; an RTSP server comes up at that
 * address, the hub's health probe finds it (OPTIONS + DESCRIBE with a video
 * track), pushes `camera.state`, and the open console's camera list turns
 * online without a reload.
 */
import { createServer, type Server } from 'node:net';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { productModules, skipE2E, startE2E, testGrids, type E2E } from './harness';

const LAT = 30.66;
const LON = 104.06;
/** Guards against a hang only: the probe backs off 5 s, 10 s, 20 s … after a failure. */
const GUARD = 120_000;

/** A port that nothing listens on (yet). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** The least an RTSP camera answers: OPTIONS and DESCRIBE with one H.264 video track (RFC 2326 10.1, 10.2). */
function rtspCamera(port: number): Promise<Server> {
  const sdp = 'v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=cam\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:track1\r\n';
  const server = createServer((sock) => {
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      let end: number;
      while ((end = buf.indexOf('\r\n\r\n')) >= 0) {
        const req = buf.slice(0, end);
        buf = buf.slice(end + 4);
        const cseq = /CSeq:\s*(\d+)/i.exec(req)?.[1] ?? '0';
        if (req.startsWith('DESCRIBE')) sock.write(`RTSP/1.0 200 OK\r\nCSeq: ${cseq}\r\nContent-Type: application/sdp\r\nContent-Length: ${Buffer.byteLength(sdp)}\r\n\r\n${sdp}`);
        else sock.write(`RTSP/1.0 200 OK\r\nCSeq: ${cseq}\r\nPublic: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\n\r\n`);
      }
    });
    sock.on('error', () => undefined);
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

describe.skipIf(skipE2E)('camera.state reaches the open console (e2e, chromium)', () => {
  let e: E2E;
  let page: Page;
  let camServer: Server | null = null;
  let port = 0;

  beforeAll(async () => {
    e = await startE2E({}, { modules: await productModules() });
    expect((await e.hub.api('PUT', '/grids', testGrids(LAT, LON))).status).toBe(200);
    port = await freePort();
    const r = await e.hub.api('POST', '/cameras', { id: 'cam-gate', name: '东门摄像头', rtspUrl: `rtsp://127.0.0.1:${port}/live`, lat: LAT + 0.001, lon: LON + 0.002 });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    page = await e.page();
    await e.login(page, { username: 'admin', password: e.hub.config.adminPassword! });
  }, 240_000);

  afterAll(async () => {
    await new Promise<void>((r) => (camServer ? camServer.close(() => r()) : r()));
    await e?.stop();
  });

  it('should turn the camera online in the open list when its RTSP answers, without a reload', async () => {
    await page.goto(page.url().split('#')[0] + '#/admin/cameras');
    const cell = '[data-testid=camera-state][data-camera-id=cam-gate]';
    // Nothing listens yet: the first probe finds it offline (pushed, or read at load).
    await page.waitForSelector(`${cell}[data-state=offline]`, { timeout: GUARD });
    expect(await page.textContent(cell)).toBe('离线');
    await page.evaluate(() => ((window as unknown as { __sameLoad: boolean }).__sameLoad = true));

    camServer = await rtspCamera(port);
    await page.waitForSelector(`${cell}[data-state=online]`, { timeout: GUARD });
    expect(await page.textContent(cell)).toBe('在线');
    // The same page load: the state came over the socket, not from a reload's REST read.
    expect(await page.evaluate(() => (window as unknown as { __sameLoad?: boolean }).__sameLoad)).toBe(true);
  });
});
