import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REQUIRE_ALL } from '../helpers.js';

const root = path.resolve(import.meta.dirname, '../../..');
const hasMosquitto = spawnSync('which', ['mosquitto_pub']).status === 0;

function startMain(env: Record<string, string>): { child: ChildProcess; ports: Promise<{ http: number; mqtt: number }>; output: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'hub/src/main.ts'], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const ports = new Promise<{ http: number; mqtt: number }>((resolve, reject) => {
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      for (const line of out.split('\n')) {
        if (line.startsWith('{"msg":"listening"')) resolve(JSON.parse(line));
      }
    });
    child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    child.on('exit', (code) => reject(new Error(`hub exited ${code}: ${out}`)));
  });
  return { child, ports, output: () => out };
}

describe('hub main process', () => {
  const dirs: string[] = [];
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const c of children) c.kill('SIGKILL');
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('should exit non-zero before listening, naming every bad setting', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'hub/src/main.ts'], {
      cwd: root,
      env: { ...process.env, GRIDLINK_MQTT_PORT: 'x', GRIDLINK_BATCH_SIZE: '0' },
      encoding: 'utf8',
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('GRIDLINK_MQTT_PORT');
    expect(r.stderr).toContain('GRIDLINK_BATCH_SIZE');
    expect(r.stdout).not.toContain('listening');
  });

  it('should name bad module settings with the core ones, with the same exit code and no stack trace', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'hub/src/main.ts'], {
      cwd: root,
      env: { ...process.env, GRIDLINK_MQTT_PORT: 'x', GRIDLINK_DISPATCH_MAX_ATTEMPTS: 'zero', GRIDLINK_VIDEO_SEGMENT_S: '-1', GRIDLINK_MOBILE_POSITION_S: '0' },
      encoding: 'utf8',
    });
    expect(r.status).toBe(2);
    for (const name of ['GRIDLINK_MQTT_PORT', 'GRIDLINK_DISPATCH_MAX_ATTEMPTS', 'GRIDLINK_VIDEO_SEGMENT_S', 'GRIDLINK_MOBILE_POSITION_S']) expect(r.stderr).toContain(name);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stdout).not.toContain('listening');
  });

  it.runIf(hasMosquitto || REQUIRE_ALL)('should start on the embedded database, store a mosquitto_pub reading and serve it back, then stop on SIGTERM', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gridlink-main-'));
    dirs.push(dir);
    const h = startMain({ GRIDLINK_DATA_DIR: dir, GRIDLINK_HTTP_PORT: '0', GRIDLINK_MQTT_PORT: '0', GRIDLINK_HOST: '127.0.0.1', GRIDLINK_ADMIN_PASSWORD: 'admin-pass-123', DATABASE_URL: '' });
    children.push(h.child);
    const ports = await h.ports;
    const base = `http://127.0.0.1:${ports.http}/api/v1`;
    const login = await fetch(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'admin-pass-123' }) }).then((r) => r.json() as Promise<{ token: string }>);
    const auth = { authorization: `Bearer ${login.token}`, 'content-type': 'application/json' };
    const dev = await fetch(`${base}/devices`, { method: 'POST', headers: auth, body: JSON.stringify({ id: 'wl-cli', type: 'sensor.water_level' }) }).then((r) => r.json() as Promise<{ secret: string }>);
    const pub = spawnSync('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(ports.mqtt), '-i', 'wl-cli', '-u', 'wl-cli', '-P', dev.secret, '-q', '1',
      '-t', 'gridlink/v1/wl-cli/telemetry', '-m', JSON.stringify({ values: { water_level_cm: 31.5 } })], { encoding: 'utf8' });
    expect(pub.status, pub.stderr).toBe(0);
    const tel = await fetch(`${base}/devices/wl-cli/telemetry?metric=water_level_cm`, { headers: auth }).then((r) => r.json() as Promise<{ points: Array<{ value: number }> }>);
    expect(tel.points.map((p: { value: number }) => p.value)).toEqual([31.5]);
    const exited = new Promise<number | null>((r) => h.child.once('exit', (code) => r(code)));
    h.child.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 300_000);
});
