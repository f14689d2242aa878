/**
 * N open cases in one SQL statement, spread over the unit grids of a district:
 * the board benchmark and the board e2e test need volume, not the creation path
 * (which hub/test/cases tests case by case). Every 5th case is registered,
 * every 7th dispatched, the rest reported; every 3rd is overdue (flagged, due
 * at its creation), the others are due about a week ahead; one a minute back
 * from now.
 */
import type { Hub } from '@gridlink/hub';

interface Feature { properties: { id: string; level: string }; geometry: { type: string; coordinates: unknown } }

/** Unit grids and a point inside each (the mean of the outer ring's corners, fine for the generator's convex blocks). */
export function unitGridPoints(grids: { features: readonly Feature[] }): Array<{ id: string; lat: number; lon: number }> {
  const out: Array<{ id: string; lat: number; lon: number }> = [];
  for (const f of grids.features) {
    if (f.properties.level !== 'grid') continue;
    const ring = (f.geometry.type === 'Polygon' ? (f.geometry.coordinates as number[][][])[0] : (f.geometry.coordinates as number[][][][])[0]![0])!;
    const pts = ring.slice(0, -1);
    const lon = pts.reduce((s, p) => s + p[0]!, 0) / pts.length;
    const lat = pts.reduce((s, p) => s + p[1]!, 0) / pts.length;
    out.push({ id: f.properties.id, lat, lon });
  }
  return out;
}

export async function insertOpenCases(hub: { hub: Hub }, n: number, cells: ReadonlyArray<{ id: string; lat: number; lon: number }>, now = Date.now()): Promise<void> {
  if (!cells.length) throw new Error('no unit grids to put cases in');
  await hub.hub.ctx.db.query(
    `with cells as (select k - 1 as k, id, lat, lon from unnest($3::text[], $4::float8[], $5::float8[]) with ordinality as c(id, lat, lon, k))
     insert into cases (id, code, title, status, category_code, severity, lat, lon, grid_id, source, deadline, overdue, created_at, updated_at)
     select 'bulk-' || i, 'GL-BULK-' || lpad(i::text, 6, '0'), '暴露垃圾 ' || i,
            case when i % 7 = 0 then 'dispatched' when i % 5 = 0 then 'registered' else 'reported' end,
            'E0101', case when i % 11 = 0 then 'major' else 'minor' end, cells.lat, cells.lon, cells.id, 'rule',
            -- Overdue ones are already flagged and the rest are due days ahead, so the hub's supervision pass has nothing to do.
            to_timestamp(($1::bigint + case when i % 3 = 0 then -i * 60000 else 8 * 86400000 - i * 60000 end) / 1000.0), i % 3 = 0,
            to_timestamp(($1::bigint - i * 60000) / 1000.0), to_timestamp(($1::bigint - i * 60000) / 1000.0)
       from generate_series(1, $2::int) as i
       join cells on cells.k = i % $6::int`,
    [now, n, cells.map((c) => c.id), cells.map((c) => c.lat), cells.map((c) => c.lon), cells.length],
  );
}
