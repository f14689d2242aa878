/**
 * Local simulator state: device secrets (the hub returns each once) and the
 * hub's ids for our workers, per hub URL, in `.sim/secrets.json` (gitignored).
 * Written atomically and often during provisioning: a secret that is lost
 * can only be replaced by rotating it.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export const DEFAULT_STATE_PATH = '.sim/secrets.json';

export interface HubState {
  /** MQTT URL devices connect to (from --mqtt at provisioning). */
  mqttUrl?: string;
  devices: Record<string, string>;
  /** district worker key -> hub worker id */
  workers: Record<string, string>;
  provisionedAt?: number;
}

interface StateFile {
  version: 1;
  hubs: Record<string, HubState>;
}

export class SimState {
  private constructor(readonly path: string, private data: StateFile) {}

  static async open(path = DEFAULT_STATE_PATH): Promise<SimState> {
    let data: StateFile = { version: 1, hubs: {} };
    try {
      const parsed = JSON.parse(await readFile(path, 'utf8')) as StateFile;
      if (parsed?.version === 1 && parsed.hubs) data = parsed;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot read simulator state ${path}: ${(err as Error).message}`);
    }
    return new SimState(path, data);
  }

  hub(url: string): HubState {
    const key = url.replace(/\/+$/, '');
    return (this.data.hubs[key] ??= { devices: {}, workers: {} });
  }

  async save(): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(this.data, null, 1), { mode: 0o600 });
    await rename(tmp, this.path);
  }
}
