import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uplinkTopic } from '@gridlink/devices';
import { publishAck, startHub, type TestHub } from '../helpers.js';

/**
 * The TimescaleDB path, proven on PGlite built with the timescaledb extension
 * (no TimescaleDB server can be installed on these machines).
 */
describe('store on TimescaleDB', () => {
  let t: TestHub;
  beforeAll(async () => {
    t = await startHub({ retentionDays: 30 }, { modules: [], pgliteTimescale: true });
  }, 120_000);
  afterAll(() => t?.stop());

  it('should create hypertables with compression and retention policies', async () => {
    const db = t.hub.ctx.db;
    expect(db.timescale).toBe(true);
    const hts = await db.query<{ hypertable_name: string; compression_enabled: boolean }>(
      'select hypertable_name, compression_enabled from timescaledb_information.hypertables order by 1',
    );
    expect(hts.map((h) => h.hypertable_name)).toEqual(['alerts', 'device_messages', 'device_status', 'events', 'positions', 'readings']);
    expect(hts.every((h) => h.compression_enabled)).toBe(true);
    const seg = await db.query<{ attname: string }>(
      "select attname from timescaledb_information.compression_settings where hypertable_name = 'readings' and segmentby_column_index is not null",
    );
    expect(seg.map((s) => s.attname)).toEqual(['device_id']);
    const jobs = await db.query<{ proc_name: string; hypertable_name: string }>(
      "select proc_name, hypertable_name from timescaledb_information.jobs where hypertable_name = 'readings' order by proc_name",
    );
    expect(jobs.map((j) => j.proc_name)).toEqual(expect.arrayContaining(['policy_compression', 'policy_retention']));
    // Time is indexed with BRIN on the hypertable too (each chunk inherits it), with no b-tree on ts alone.
    const idx = await db.query<{ indexdef: string }>("select indexdef from pg_indexes where tablename = 'readings' order by 1");
    expect(idx.map((i) => i.indexdef)).toEqual(expect.arrayContaining([expect.stringMatching(/USING brin \(ts\)$/), expect.stringMatching(/USING brin \(received_at\)$/)]));
    expect(idx.filter((i) => /USING btree \(ts( DESC)?\)$/.test(i.indexdef))).toEqual([]);
  });

  it('should keep 1-minute and 1-hour continuous aggregates of readings', async () => {
    const db = t.hub.ctx.db;
    const views = await db.query<{ view_name: string }>('select view_name from timescaledb_information.continuous_aggregates order by 1');
    expect(views.map((v) => v.view_name)).toEqual(['readings_1h', 'readings_1m']);
    const d = await t.registerDevice('sensor.water_level', 'wl-ts');
    const c = await t.connect(d.id, d.secret);
    const base = Math.floor((Date.now() - 2 * 3600_000) / 60_000) * 60_000;
    await publishAck(c, uplinkTopic(d.id, 'telemetry'), [10, 20, 30].map((v, i) => ({ ts: base + i * 1000, values: { water_level_cm: v } })));
    await db.exec("call refresh_continuous_aggregate('readings_1m', null, null)");
    const agg = await db.query<{ avg: number; n: number }>("select avg, n from readings_1m where device_id = 'wl-ts' and metric = 'water_level_cm'");
    expect(agg).toEqual([{ avg: 20, n: 3 }]);
  });

  it('should answer bucketed telemetry with time_bucket exactly like plain PostgreSQL does with date_bin', async () => {
    const r = await t.api<{ points: Array<{ value: number; min: number; max: number; n: number }> }>(
      'GET', `/devices/wl-ts/telemetry?metric=water_level_cm&bucket=1m&from=${Date.now() - 3 * 3600_000}`,
    );
    expect(r.status).toBe(200);
    expect(r.body.points).toHaveLength(1);
    expect(r.body.points[0]).toMatchObject({ value: 20, min: 10, max: 30, n: 3 });
  });
});
