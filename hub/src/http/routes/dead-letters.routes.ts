import { DeadLetter, DeadLettersQuery } from '@gridlink/devices/contract';
import type { Auth } from '../../auth/index.js';
import type { DeviceRegistry } from '../../registry/index.js';
import type { Db } from '../../store/db.js';
import type { App } from '../app.js';
import { authenticate, principal, requireRole } from '../guards.js';
import { errors, Items } from '../schemas.js';

interface Row {
  id: string | number;
  ts: Date | string;
  device_id: string;
  channel: string;
  reason: string;
  detail: string;
  payload: Uint8Array | null;
  payload_bytes: number;
}

/**
 * GET /dead-letters (contract extension): messages the database refused for
 * good, newest first, for an admin or integrator to see what a device sent.
 * A user scoped to a region sees only devices in it.
 */
export function deadLetterRoutes(app: App, deps: { auth: Auth; registry: DeviceRegistry; db: Db }): void {
  const { auth, registry, db } = deps;
  app.get('/dead-letters', {
    onRequest: [authenticate(auth), requireRole('integrator')],
    schema: {
      tags: ['devices'],
      summary: 'Messages the database refused for good (kept with reason and raw payload), newest first',
      querystring: DeadLettersQuery,
      response: { 200: Items(DeadLetter), ...errors(400, 401, 403) },
    },
  }, async (req) => {
    const p = principal(req);
    const { deviceId, before } = req.query;
    const limit = req.query.limit ?? 100;
    const where: string[] = [];
    const params: unknown[] = [];
    if (deviceId) where.push(`device_id = $${params.push(deviceId)}`);
    if (before) where.push(`id < $${params.push(before)}::bigint`);
    // Over-fetch a little for a region-scoped user; rows outside the region are filtered below.
    const rows = await db.query<Row>(
      `select id::text as id, ts, device_id, channel, reason, detail, payload, payload_bytes from dead_letters
       ${where.length ? `where ${where.join(' and ')}` : ''} order by id desc limit $${params.push(limit + 1)}`,
      params,
    );
    const more = rows.length > limit;
    const items = rows.slice(0, limit)
      .filter((r) => auth.canSee(p, registry.get(r.device_id)?.gridId))
      .map((r) => {
        const payload = r.payload ? Buffer.from(r.payload) : Buffer.alloc(0);
        return {
          id: String(r.id),
          ts: new Date(r.ts).getTime(),
          deviceId: r.device_id,
          channel: r.channel,
          reason: r.reason,
          detail: r.detail,
          payload: payload.toString('base64'),
          payloadBytes: Number(r.payload_bytes),
          truncated: payload.length < Number(r.payload_bytes),
        };
      });
    const last = rows[limit - 1];
    return more && last ? { items, nextCursor: String(last.id) } : { items };
  });
}
