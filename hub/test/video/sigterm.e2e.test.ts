/**
 * The hub process with a live camera stream is sent SIGTERM: it exits 0 and
 * no ffmpeg it started is left behind.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { rtspCameraSupport, startRtspCamera, type RtspCamera } from '@gridlink/simulators/camera';
import { ffmpegUnder, REQUIRE_ALL, until } from '../helpers.js';

const support = rtspCameraSupport();
if (support.missing.length && REQUIRE_ALL) throw new Error(`GRIDLINK_REQUIRE_ALL=1 but missing: ${support.missing.join(', ')}`);
const root = path.resolve(import.meta.dirname, '../../..');

describe.skipIf(support.missing.length > 0)('hub process and ffmpeg on SIGTERM', () => {
  let cam: RtspCamera | undefined;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gl-sigterm-'));
  afterAll(async () => {
    if (cam) for (const pid of ffmpegUnder(cam.url)) process.kill(pid, 'SIGKILL');
    await cam?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('should leave no ffmpeg behind after SIGTERM to the hub', async () => {
    cam = await startRtspCamera({ id: 'cam-sigterm' });
    const child = spawn(process.execPath, ['--import', 'tsx', 'hub/src/main.ts'], {
      cwd: root,
      env: { ...process.env, GRIDLINK_DATA_DIR: dir, DATABASE_URL: 'memory://', GRIDLINK_HTTP_PORT: '0', GRIDLINK_MQTT_PORT: '0', GRIDLINK_HOST: '127.0.0.1', GRIDLINK_ADMIN_PASSWORD: 'admin-pass-123', GRIDLINK_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    const ports = await new Promise<{ http: number }>((resolve, reject) => {
      child.stdout!.on('data', (b: Buffer) => {
        out += b.toString();
        const line = out.split('\n').find((l) => l.startsWith('{"msg":"listening"'));
        if (line) resolve(JSON.parse(line));
      });
      child.once('exit', (code) => reject(new Error(`hub exited ${code}`)));
    });
    const base = `http://127.0.0.1:${ports.http}/api/v1`;
    const { token } = await fetch(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'admin-pass-123' }) }).then((r) => r.json() as Promise<{ token: string }>);
    const h = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const reg = await fetch(`${base}/cameras`, { method: 'POST', headers: h, body: JSON.stringify({ id: 'cam-sigterm', name: 'SIGTERM', rtspUrl: cam.url, lat: 30.27, lon: 120.15 }) });
    expect(reg.status).toBe(201);
    const s = (await fetch(`${base}/cameras/cam-sigterm/stream`, { headers: h }).then((r) => r.json())) as { hls: string };
    // Keep watching so the stream stays wanted until the signal.
    await until(async () => (await fetch(new URL(s.hls, `http://127.0.0.1:${ports.http}`))).status === 200, 30_000, 250);
    // The hub's ffmpeg is the one pulling this camera's RTSP URL.
    const hubFfmpeg = () => ffmpegUnder(cam!.url);
    expect(hubFfmpeg().length).toBeGreaterThan(0);
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    await until(() => hubFfmpeg().length === 0, 5_000, 100);
  }, 300_000);
});
