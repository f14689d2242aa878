/**
 * One bad message never blocks a good one. The poison of the original report
 * (U+0000 in a string) is now refused at decode; a row the database still
 * refuses for good is stood in for by a CHECK constraint, as an operator
 * might add one: the batch holding it is split until it stands alone, it
 * goes to dead_letters, and every other message of the batch commits.
 */
import { describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { uplinkTopic } from '@gridlink/devices';
import type { Db } from '../../src/store/db.js';
import { engines, publishAck, startHub, until } from '../helpers.js';

function gatedDb() {
  let gate: Promise<void> | null = null;
  let open: (() => void) | null = null;
  const g = {
    refused: 0,
    hold() {
      gate = new Promise((r) => (open = r));
    },
    release() {
      open?.();
      gate = null;
    },
    wrap(db: Db): Db {
      return {
        ...db,
        kind: db.kind,
        timescale: db.timescale,
        query: async (sql, params) => {
          const batch = /^(insert|with w0)/.test(sql) && sql.includes('from unnest(');
          if (batch && gate) await gate;
          try {
            return await db.query(sql, params);
          } catch (err) {
            if ((err as { code?: string }).code === '23514') g.refused++;
            throw err;
          }
        },
      };
    },
  };
  return g;
}

describe.each(engines())('a poison message among 50 devices on $name', ({ url }) => {
  it('should store every other message, keep the refused one in dead_letters, count it, and list it to an admin only', { timeout: 120_000 }, async () => {
    const gate = gatedDb();
    const t = await startHub({ databaseUrl: url, deviceRate: 100_000, deviceBurst: 100_000, batchSize: 5_000 }, { modules: [], wrapDb: (d) => gate.wrap(d) });
    const clients: MqttClient[] = [];
    try {
      await t.hub.ctx.db.exec('alter table readings add constraint no_666 check (value is distinct from 666)');
      const devices = [];
      for (let k = 0; k < 50; k++) devices.push(await t.registerDevice('sensor.water_level', `wl-poison-${k}`));
      for (const d of devices) clients.push(await t.connect(d.id, d.secret));
      const poisonDevice = devices[25]!;
      const nulDevice = devices[30]!;
      const t0 = Date.now() - 3_600_000;
      const poisonPayload = JSON.stringify({ ts: t0 + 10_000, seq: 10, values: { water_level_cm: 666 } });

      gate.hold();
      const acks: Array<Promise<void>> = [];
      for (let i = 0; i < 20; i++) {
        devices.forEach((d, k) => {
          const body = k === 25 && i === 10 ? poisonPayload : JSON.stringify({ ts: t0 + i * 1000, seq: i, values: { water_level_cm: (k + i) % 100 } });
          acks.push(publishAck(clients[k]!, uplinkTopic(d.id, 'telemetry'), body));
        });
        if (i === 5) acks.push(publishAck(clients[30]!, uplinkTopic(nulDevice.id, 'event'), '{"type":"tamper","data":{"note":"a\\u0000b"}}'));
      }
      // Everything (but the U+0000 message, refused at decode) waits in one batch.
      await until(() => t.hub.ctx.store.writer.pending === 1000, 60_000);
      gate.release();
      await Promise.all(acks);

      const rows = await t.hub.ctx.db.query<{ n: number }>("select count(*)::int as n from readings where device_id like 'wl-poison-%'");
      expect(rows[0]!.n).toBe(999);
      expect(gate.refused).toBeGreaterThanOrEqual(2);
      const dead = await t.hub.ctx.db.query<{ device_id: string; channel: string; reason: string; detail: string; payload: Uint8Array; payload_bytes: number }>(
        'select device_id, channel, reason, detail, payload, payload_bytes from dead_letters',
      );
      expect(dead).toHaveLength(1);
      expect(dead[0]).toMatchObject({ device_id: poisonDevice.id, channel: 'telemetry', reason: 'db_rejected' });
      expect(dead[0]!.detail).toContain('23514');
      expect(Buffer.from(dead[0]!.payload).toString()).toBe(poisonPayload);
      expect(Number(dead[0]!.payload_bytes)).toBe(Buffer.byteLength(poisonPayload));

      expect(t.hub.ctx.ingest.rejectedFor(poisonDevice.id)).toEqual({ db_rejected: 1 });
      expect(t.hub.ctx.ingest.rejectedFor(nulDevice.id)).toEqual({ bad_text: 1 });
      const device = await t.api<{ rejected: Record<string, number> }>('GET', `/devices/${poisonDevice.id}`);
      expect(device.body.rejected).toEqual({ db_rejected: 1 });
      const metrics = await (await fetch(`${t.http}/metrics`)).text();
      expect(metrics).toMatch(/gridlink_messages_rejected_total\{reason="db_rejected"\} 1/);
      expect(metrics).toMatch(/gridlink_messages_rejected_total\{reason="bad_text"\} 1/);

      const listed = await t.api<{ items: Array<{ deviceId: string; payload: string; truncated: boolean }> }>('GET', `/dead-letters?deviceId=${poisonDevice.id}`);
      expect(listed.status).toBe(200);
      expect(listed.body.items).toHaveLength(1);
      expect(Buffer.from(listed.body.items[0]!.payload, 'base64').toString()).toBe(poisonPayload);
      expect(listed.body.items[0]!.truncated).toBe(false);
      expect((await t.api<{ items: unknown[] }>('GET', `/dead-letters?deviceId=${devices[0]!.id}`)).body.items).toEqual([]);

      // Not for a duty officer; not without a token.
      expect((await t.api('POST', '/users', { username: 'duty-1', password: 'duty-password-1', role: 'officer' })).status).toBe(201);
      const login = await t.api<{ token: string }>('POST', '/auth/login', { username: 'duty-1', password: 'duty-password-1' }, '');
      expect((await t.api('GET', '/dead-letters', undefined, login.body.token)).status).toBe(403);
      expect((await t.api('GET', '/dead-letters', undefined, '')).status).toBe(401);

      // Ingest goes on: a good message after the poison is stored and acked.
      await publishAck(clients[25]!, uplinkTopic(poisonDevice.id, 'telemetry'), { ts: t0 + 99_000, values: { water_level_cm: 1 } });
      expect((await t.hub.ctx.db.query<{ n: number }>('select count(*)::int as n from readings where device_id = $1', [poisonDevice.id]))[0]!.n).toBe(20);
    } finally {
      gate.release();
      await t.stop();
    }
  });
});
