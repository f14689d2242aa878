/**
 * Loads a district into a hub through its public REST API, exactly as an
 * integrator would: grids (PUT /grids), devices (POST /devices, secret kept
 * locally), cameras (POST /cameras), workers (POST /workers). Idempotent: a
 * device already on the hub with a known secret is reused, one without a
 * known secret gets a rotated one. A route the hub does not serve yet is
 * skipped with a message naming it.
 */
import type { CreateCameraBody, CreateWorkerBody, GridUpload, RegisterDeviceBody } from '@gridlink/devices/contract';
import type { District, SimDevice, SimWorker } from './district/generate.js';
import { HubClient, HubError } from './hub-client.js';
import type { HubState, SimState } from './state.js';
import { mapPool } from './util/pool.js';

export interface ProvisionOptions {
  hub: HubClient;
  state: SimState;
  district: District;
  /** MQTT URL recorded with the secrets for `sim district` / `sim run`. */
  mqttUrl?: string;
  /** Issue new secrets for every device even when one is known. */
  rotate?: boolean;
  /** Set provisioned workers on duty. */
  onDuty?: boolean;
  concurrency?: number;
  /** district worker key → id of the user (role worker) who acts as that worker in 网格通; set when the worker is created. */
  appUsers?: Record<string, string>;
  /** Host in the cameras' RTSP URLs (where `sim district --rtsp` serves them). */
  rtspHost?: string;
  log?: (msg: string) => void;
}

export interface ProvisionReport {
  grids: number | 'skipped';
  devices: { created: number; reused: number; rotated: number };
  cameras: number | 'skipped';
  workers: { created: number; reused: number } | 'skipped';
  onDuty: number | 'skipped';
  skipped: string[];
  ms: number;
}

export async function provision(opts: ProvisionOptions): Promise<ProvisionReport> {
  const { hub, state, district } = opts;
  const log = opts.log ?? (() => undefined);
  const t0 = Date.now();
  const hs = state.hub(hub.base);
  if (opts.mqttUrl) hs.mqttUrl = opts.mqttUrl;
  const skipped: string[] = [];
  const skip = (what: string, err: HubError) => {
    const msg = `${what}: the hub has no ${err.method} /api/v1${err.path.split('?')[0]} yet (module not loaded); skipped`;
    skipped.push(msg);
    log(`! ${msg}`);
  };
  const conc = opts.concurrency ?? 8;

  // 1. grids
  let grids: ProvisionReport['grids'] = 'skipped';
  try {
    await hub.putGrids(district.grids satisfies GridUpload);
    grids = district.grids.features.length;
    log(`grids: ${grids} polygons loaded`);
  } catch (err) {
    if (err instanceof HubError && err.routeMissing) skip('grids', err);
    else throw err;
  }

  // 2. devices. With the video module loaded a camera is registered through
  // POST /cameras (which creates its device and returns the secret);
  // without it, as a plain `camera` device.
  let cameraRoute = true;
  try {
    await hub.listCameras();
  } catch (err) {
    if (err instanceof HubError && err.routeMissing) {
      cameraRoute = false;
      skip('cameras (registered as plain devices instead)', err);
    } else throw err;
  }
  const existing = new Set((await hub.listDevices()).items.map((d) => d.id));
  const counts = { created: 0, reused: 0, rotated: 0 };
  let cameras = 0;
  let sinceSave = 0;
  const saveSometimes = async () => {
    if (++sinceSave >= 50) {
      sinceSave = 0;
      await state.save();
    }
  };
  const cameraIndex = new Map(district.devices.filter((d) => d.type === 'camera').map((d, i) => [d.id, i]));
  await mapPool(district.devices, conc, async (d) => {
    if (existing.has(d.id)) {
      if (hs.devices[d.id] && !opts.rotate) {
        counts.reused++;
        return;
      }
      const r = await hub.rotateSecret(d.id);
      hs.devices[d.id] = r.secret;
      counts.rotated++;
    } else if (d.type === 'camera' && cameraRoute) {
      const r = await hub.createCamera(cameraBody(d, rtspUrlFor(d, cameraIndex.get(d.id) ?? 0, opts.rtspHost)));
      hs.devices[d.id] = r.secret;
      counts.created++;
      cameras++;
    } else {
      const r = await hub.registerDevice(deviceBody(d));
      hs.devices[d.id] = r.secret;
      counts.created++;
    }
    await saveSometimes();
  });
  await state.save();
  log(`devices: ${counts.created} registered${cameraRoute ? ` (${cameras} cameras with RTSP URLs)` : ''}, ${counts.reused} reused, ${counts.rotated} secrets rotated`);

  // 4. workers
  let workers: ProvisionReport['workers'] = 'skipped';
  let onDuty: ProvisionReport['onDuty'] = 'skipped';
  try {
    const list = (await hub.listWorkers()).items;
    const byDevice = new Map(list.map((w) => [w.deviceId, w]));
    const wc = { created: 0, reused: 0 };
    await mapPool(district.workers, conc, async (w) => {
      const found = byDevice.get(w.deviceId);
      if (found) {
        hs.workers[w.key] = found.id;
        wc.reused++;
        return;
      }
      const userId = opts.appUsers?.[w.key];
      const r = await hub.createWorker({ ...workerBody(w), ...(userId ? { userId } : {}) });
      hs.workers[w.key] = r.id;
      wc.created++;
    });
    workers = wc;
    await state.save();
    log(`workers: ${wc.created} created, ${wc.reused} reused`);
    if (opts.onDuty) {
      let n = 0;
      await mapPool(district.workers, conc, async (w) => {
        const id = hs.workers[w.key];
        if (!id) return;
        await hub.setDuty(id, true);
        n++;
      });
      onDuty = n;
      log(`workers: ${n} on duty`);
    }
  } catch (err) {
    if (err instanceof HubError && err.routeMissing) skip('workers', err);
    else throw err;
  }

  hs.provisionedAt = Date.now();
  await state.save();
  return { grids, devices: counts, cameras: cameraRoute ? cameras : 'skipped', workers, onDuty, skipped, ms: Date.now() - t0 };
}

export function deviceBody(d: SimDevice): RegisterDeviceBody {
  return { id: d.id, type: d.type, name: d.name, lat: d.lat, lon: d.lon, gridId: d.gridId, meta: { ...d.meta, simulated: true } };
}

function cameraBody(d: SimDevice, rtspUrl: string): CreateCameraBody {
  return { id: d.id, name: d.name, rtspUrl, lat: d.lat, lon: d.lon, gridId: d.gridId, vendor: 'gridlink-sim' };
}

/** Base port of the simulated RTSP cameras: camera i serves rtsp://host:(RTSP_BASE_PORT + i)/{id}. */
export const RTSP_BASE_PORT = 8554;

export function rtspUrlFor(d: SimDevice, index: number, host = '127.0.0.1'): string {
  return `rtsp://${host}:${RTSP_BASE_PORT + index}/${d.id}`;
}

function workerBody(w: SimWorker): CreateWorkerBody {
  return { id: w.key, name: w.name, deviceId: w.deviceId, gridIds: w.gridIds, team: w.role === 'leader' ? 'grid_leader' : 'grid_worker' };
}
