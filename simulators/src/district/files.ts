/**
 * The district on disk: plain files an integrator can open in any GIS tool
 * or load into another hub.
 *
 *   district.json    meta (seed, centre, code scheme, counts)
 *   grids.geojson    district, street, community and unit grid polygons
 *   streets.geojson  road network: Point nodes and LineString edges
 *   devices.json     every simulated device (id, type, position, grid)
 *   workers.json     grid workers and leaders, each bound to a handheld
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { District, DistrictMeta, GridCollection, SimDevice, SimWorker, StreetCollection } from './generate.js';

export const DISTRICT_FILES = {
  meta: 'district.json',
  grids: 'grids.geojson',
  streets: 'streets.geojson',
  devices: 'devices.json',
  workers: 'workers.json',
} as const;

export async function writeDistrict(dir: string, d: District): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const out: Array<[string, unknown]> = [
    [DISTRICT_FILES.meta, d.meta],
    [DISTRICT_FILES.grids, d.grids],
    [DISTRICT_FILES.streets, d.streets],
    [DISTRICT_FILES.devices, d.devices],
    [DISTRICT_FILES.workers, d.workers],
  ];
  const paths: string[] = [];
  for (const [name, value] of out) {
    const p = join(dir, name);
    await writeFile(p, JSON.stringify(value, null, 1) + '\n');
    paths.push(p);
  }
  return paths;
}

export async function readDistrict(dir: string): Promise<District> {
  const read = async <T>(name: string): Promise<T> => {
    try {
      return JSON.parse(await readFile(join(dir, name), 'utf8')) as T;
    } catch (err) {
      throw new Error(`cannot read ${join(dir, name)}: ${(err as Error).message} (run \`npm run sim -- generate --out ${dir}\` first)`);
    }
  };
  const meta = await read<DistrictMeta>(DISTRICT_FILES.meta);
  if (meta.format !== 'gridlink-district/1') throw new Error(`${join(dir, DISTRICT_FILES.meta)}: unknown format ${String(meta.format)}`);
  return {
    meta,
    grids: await read<GridCollection>(DISTRICT_FILES.grids),
    streets: await read<StreetCollection>(DISTRICT_FILES.streets),
    devices: await read<SimDevice[]>(DISTRICT_FILES.devices),
    workers: await read<SimWorker[]>(DISTRICT_FILES.workers),
  };
}
