/**
 * Evidence: camera snapshots and worker photos as files under
 * `${dataDir}/evidence` (a temp directory for an in-memory database), one row
 * each in `evidence`. Rows carry the grid of the case or alarm they belong to
 * so serving a file checks the region without a join.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Config } from '../core/config.js';
import { Errors } from '../core/errors.js';
import type { Actor } from '../core/services.js';
import type { Queryable } from '../store/index.js';

export type EvidenceKind = 'snapshot' | 'photo';

export interface Evidence {
  id: string;
  caseId: string | null;
  alarmId: string | null;
  kind: EvidenceKind;
  mime: string;
  size: number;
  sha256: string;
  deviceId: string | null;
  gridId: string | null;
  createdAt: number;
  url: string;
}

interface EvidenceRow {
  id: string;
  case_id: string | null;
  alarm_id: string | null;
  kind: EvidenceKind;
  mime: string;
  size: number;
  sha256: string;
  file: string;
  device_id: string | null;
  grid_id: string | null;
  created_at: Date;
}

export const evidenceUrl = (id: string) => `/api/v1/evidence/${id}`;

const toEvidence = (r: EvidenceRow): Evidence => ({
  id: r.id, caseId: r.case_id, alarmId: r.alarm_id, kind: r.kind, mime: r.mime, size: r.size, sha256: r.sha256,
  deviceId: r.device_id, gridId: r.grid_id, createdAt: new Date(r.created_at).getTime(), url: evidenceUrl(r.id),
});

/** JPEG or PNG by magic bytes; anything else is refused (the console shows these in an <img>). */
export function imageMime(bytes: Uint8Array): string | null {
  if (bytes.length > 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'image/jpeg';
  if (bytes.length > 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) return 'image/png';
  return null;
}

/** base64 (optionally a data: URL) → bytes; throws EVIDENCE_INVALID when it is not a JPEG/PNG. */
export function decodePhoto(b64: string): Uint8Array {
  const body = b64.startsWith('data:') ? b64.slice(b64.indexOf(',') + 1) : b64;
  const bytes = new Uint8Array(Buffer.from(body, 'base64'));
  if (!imageMime(bytes)) throw Errors.evidenceInvalid('photos must be base64 JPEG or PNG');
  return bytes;
}

export class EvidenceStore {
  readonly dir: string;

  constructor(private readonly db: Queryable, config: Config) {
    this.memory = config.databaseUrl?.startsWith('memory://') ?? false;
    this.dir = this.memory ? '' : path.join(config.dataDir, 'evidence');
  }

  private readonly memory: boolean;

  /** Creates the directory (start(), not the constructor). */
  init(): void {
    if (this.memory) {
      if (!this.dir) (this as { dir: string }).dir = mkdtempSync(path.join(os.tmpdir(), 'gridlink-evidence-'));
    } else mkdirSync(this.dir, { recursive: true });
  }

  async save(input: { bytes: Uint8Array; kind: EvidenceKind; caseId?: string | null; alarmId?: string | null; deviceId?: string | null; gridId?: string | null; actor?: Actor; at: number }, q: Queryable = this.db): Promise<Evidence> {
    const mime = imageMime(input.bytes);
    if (!mime) throw Errors.evidenceInvalid('evidence must be a JPEG or PNG image');
    const id = randomUUID();
    const file = `${id}.${mime === 'image/png' ? 'png' : 'jpg'}`;
    const sha256 = createHash('sha256').update(input.bytes).digest('hex');
    await writeFile(path.join(this.dir, file), input.bytes);
    const rows = await q.query<EvidenceRow>(
      `insert into evidence (id, case_id, alarm_id, kind, mime, size, sha256, file, device_id, grid_id, actor, created_at)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, to_timestamp($12 / 1000.0)) returning *`,
      [id, input.caseId ?? null, input.alarmId ?? null, input.kind, mime, input.bytes.byteLength, sha256, file, input.deviceId ?? null, input.gridId ?? null, input.actor ? JSON.stringify(input.actor) : null, input.at],
    );
    return toEvidence(rows[0]!);
  }

  /** Links alarm evidence to the case the alarm opened or joined. */
  async linkAlarm(alarmId: string, caseId: string, gridId: string | null, q: Queryable = this.db): Promise<void> {
    await q.query('update evidence set case_id = $2, grid_id = coalesce($3, grid_id) where alarm_id = $1 and case_id is null', [alarmId, caseId, gridId]);
  }

  async forCase(caseId: string): Promise<Evidence[]> {
    return (await this.db.query<EvidenceRow>('select * from evidence where case_id = $1 order by created_at, id', [caseId])).map(toEvidence);
  }

  async get(id: string): Promise<(Evidence & { file: string }) | null> {
    if (!/^[0-9a-f-]{36}$/.test(id)) return null;
    const r = (await this.db.query<EvidenceRow>('select * from evidence where id = $1', [id]))[0];
    return r ? { ...toEvidence(r), file: r.file } : null;
  }

  read(file: string): Promise<Buffer> {
    return readFile(path.join(this.dir, path.basename(file)));
  }
}
