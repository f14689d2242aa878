/**
 * Crash safety for real: a hub in a child process is killed with SIGKILL in
 * the middle of QoS 1 load, restarted on the same data (embedded PGlite in a
 * data directory, or PostgreSQL), and every message it acknowledged is there.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import mqtt, { type MqttClient } from 'mqtt';
import { uplinkTopic } from '@gridlink/devices';
import { freshPostgresUrl, PG_URL, REQUIRE_ALL, until } from '../helpers.js';

const FIXTURE = path.join(import.meta.dirname, 'fixtures', 'crash-hub.ts');

interface Child {
  proc: ChildProcess;
  next(): Promise<Record<string, unknown>>;
  exited: Promise<void>;
}

function startChild(env: Record<string, string>): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', FIXTURE], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'inherit'] });
  const queue: string[] = [];
  const waiters: Array<(l: string) => void> = [];
  createInterface({ input: proc.stdout! }).on('line', (l) => {
    if (!l.startsWith('{"')) return;
    const w = waiters.shift();
    if (w) w(l);
    else queue.push(l);
  });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  return {
    proc,
    exited,
    next: () =>
      new Promise((resolve, reject) => {
        const l = queue.shift();
        if (l) return resolve(JSON.parse(l));
        waiters.push((x) => resolve(JSON.parse(x)));
        void exited.then(() => reject(new Error('hub process exited')));
      }),
  };
}

describe('SIGKILL in the middle of QoS 1 load', { timeout: 240_000 }, () => {
  const children: Child[] = [];
  const clients: MqttClient[] = [];
  const dirs: string[] = [];
  afterEach(async () => {
    clients.splice(0).forEach((c) => c.end(true));
    for (const c of children.splice(0)) {
      c.proc.kill('SIGKILL');
      await c.exited;
    }
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  async function crashAndCount(env: Record<string, string>) {
    const first = startChild(env);
    children.push(first);
    const ready = (await first.next()) as { mqtt: number; secrets: Record<string, string> };
    const acked = new Map<string, Set<number>>();
    const t0 = Date.now() - 3_600_000;
    for (const [id, secret] of Object.entries(ready.secrets)) {
      const c = mqtt.connect(`mqtt://127.0.0.1:${ready.mqtt}`, { clientId: id, username: id, password: secret, reconnectPeriod: 0 });
      clients.push(c);
      await new Promise<void>((resolve, reject) => c.once('connect', () => resolve()).once('error', reject));
      const got = new Set<number>();
      acked.set(id, got);
      c.on('error', () => undefined);
      // A window of 20 in flight per device, for as long as the hub lives.
      let seq = 0;
      const send = () => {
        const i = seq++;
        c.publish(uplinkTopic(id, 'telemetry'), JSON.stringify({ ts: t0 + i, seq: i, values: { water_level_cm: i % 100 } }), { qos: 1 }, (err) => {
          if (err) return;
          got.add(i);
          send();
        });
      };
      for (let w = 0; w < 20; w++) send();
    }
    const total = () => [...acked.values()].reduce((n, s) => n + s.size, 0);
    await until(() => total() >= 3_000, 120_000);
    first.proc.kill('SIGKILL');
    await first.exited;
    const ackedAtKill = total();
    clients.splice(0).forEach((c) => c.end(true));

    const second = startChild(env);
    children.push(second);
    await second.next();
    second.proc.stdin!.write('seqs\n');
    const { seqs } = (await second.next()) as { seqs: Record<string, number[]> };
    let missing = 0;
    for (const [id, got] of acked) {
      const stored = new Set(seqs[id] ?? []);
      for (const i of got) if (!stored.has(i)) missing++;
    }
    expect(ackedAtKill).toBeGreaterThanOrEqual(3_000);
    expect(missing).toBe(0);
    second.proc.stdin!.write('stop\n');
    await second.next();
  }

  it('should find every acknowledged message after a restart on the embedded database (PGlite data directory)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gridlink-crash-'));
    dirs.push(dir);
    await crashAndCount({ GRIDLINK_DATA_DIR: dir, DATABASE_URL: '' });
  });

  it.runIf(PG_URL || REQUIRE_ALL)('should find every acknowledged message after a restart on PostgreSQL', async () => {
    if (!PG_URL) throw new Error('TEST_DATABASE_URL is required');
    const dir = mkdtempSync(path.join(tmpdir(), 'gridlink-crash-'));
    dirs.push(dir);
    await crashAndCount({ GRIDLINK_DATA_DIR: dir, DATABASE_URL: await freshPostgresUrl(PG_URL) });
  });
});
