/**
 * Evidence: camera snapshots and worker photos, one row each in `evidence`.
 * Rows carry the grid of the case or alarm they belong to so serving a file
 * checks the region without a join.
 *
 * Where the bytes live: the single process keeps them as files under
 * `${dataDir}/evidence` (a temp directory for an in-memory database). A hub
 * of several nodes (cluster mode) keeps them in PostgreSQL (`evidence_parts`,
 * written in the transaction that writes the row), so every node serves
 * them and a node that is gone takes none with it. Clips (kind `clip`) are
 * the video module's: it says where their bytes are (setSource).
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, mkdirSync, mkdtempSync } from 'node:fs';
import { stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Config } from '../core/config.js';
import { Errors } from '../core/errors.js';
import type { Actor } from '../core/services.js';
import type { Db, Queryable } from '../store/index.js';
import { MediaParts, type StoredMedia } from './stored-media.js';

export type EvidenceKind = 'snapshot' | 'photo' | 'clip';

/**
 * The largest image evidence item stored, bytes: above every image limit of
 * the routes (console photos ~1 MB, handheld photos GRIDLINK_MOBILE_MAX_PHOTO_BYTES,
 * 4 MiB by default), so it only stops a caller that bypasses them.
 */
export const MAX_EVIDENCE_BYTES = 16 * 1024 * 1024;

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
  /** Cluster mode: bytes in the database (`evidence_parts`), not on this node's disk. */
  readonly shared: boolean;
  private readonly parts: MediaParts;
  private readonly sources = new Map<EvidenceKind, (id: string) => Promise<StoredMedia | null>>();

  constructor(private readonly db: Db, config: Config, opts: { shared?: boolean } = {}) {
    this.memory = config.databaseUrl?.startsWith('memory://') ?? false;
    this.dir = this.memory ? '' : path.join(config.dataDir, 'evidence');
    this.shared = opts.shared ?? false;
    this.parts = new MediaParts(db, 'evidence_parts', ['evidence_id']);
  }

  private readonly memory: boolean;

  /** Where the stored bytes of another module's evidence kind are (the video module: clips in `video_clip_parts`). */
  setSource(kind: EvidenceKind, open: (id: string) => Promise<StoredMedia | null>): void {
    this.sources.set(kind, open);
  }

  /** Creates the directory (start(), not the constructor). */
  init(): void {
    if (this.memory) {
      if (!this.dir) (this as { dir: string }).dir = mkdtempSync(path.join(os.tmpdir(), 'gridlink-evidence-'));
    } else mkdirSync(this.dir, { recursive: true });
  }

  async save(input: { bytes: Uint8Array; kind: 'snapshot' | 'photo'; caseId?: string | null; alarmId?: string | null; deviceId?: string | null; gridId?: string | null; actor?: Actor; at: number }, q: Queryable = this.db): Promise<Evidence> {
    const mime = imageMime(input.bytes);
    if (!mime) throw Errors.evidenceInvalid('evidence must be a JPEG or PNG image');
    if (input.bytes.byteLength > MAX_EVIDENCE_BYTES) throw Errors.payloadTooLarge(`an evidence image may have at most ${MAX_EVIDENCE_BYTES} bytes`);
    const id = randomUUID();
    const file = `${id}.${mime === 'image/png' ? 'png' : 'jpg'}`;
    const sha256 = createHash('sha256').update(input.bytes).digest('hex');
    const insert = async (tx: Queryable) => {
      const rows = await tx.query<EvidenceRow>(
        `insert into evidence (id, case_id, alarm_id, kind, mime, size, sha256, file, device_id, grid_id, actor, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, to_timestamp($12 / 1000.0)) returning *`,
        [id, input.caseId ?? null, input.alarmId ?? null, input.kind, mime, input.bytes.byteLength, sha256, file, input.deviceId ?? null, input.gridId ?? null, input.actor ? JSON.stringify(input.actor) : null, input.at],
      );
      // Cluster: the bytes go with the row, in its transaction (the caller's, or one of their own here).
      if (this.shared) await this.parts.write(tx, [id], input.bytes);
      return toEvidence(rows[0]!);
    };
    if (this.shared) return q === this.db ? this.db.tx(insert) : insert(q);
    await writeFile(path.join(this.dir, file), input.bytes);
    return insert(q);
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

  /**
   * The bytes of an evidence item: from the database in cluster mode (a file
   * on this node's disk is still served, e.g. one made before the district
   * went from one node to several), from the evidence directory otherwise.
   * Null when they are nowhere.
   */
  async open(e: { id: string; kind: EvidenceKind; file: string }): Promise<StoredMedia | null> {
    if (this.shared) {
      const source = this.sources.get(e.kind);
      const stored = source ? await source(e.id) : await this.parts.open([e.id]);
      if (stored) return stored;
    }
    const file = path.join(this.dir, path.basename(e.file));
    const st = await stat(file).catch(() => null);
    if (!st?.isFile()) return null;
    return { size: st.size, stream: (start, end) => createReadStream(file, { start, end }) };
  }

  /** All bytes of an (image) evidence item, or null. */
  async read(e: { id: string; kind: EvidenceKind; file: string }): Promise<Buffer | null> {
    const m = await this.open(e);
    if (!m) return null;
    const chunks: Buffer[] = [];
    for await (const c of m.stream(0, m.size - 1)) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }
}
