/**
 * Evidence bytes in the database (cluster mode): parts of 1 MiB, ranges
 * read across part boundaries, the bytes written in the evidence row's
 * transaction (a rolled-back one leaves neither), the size bound, and the
 * single process writing files and no parts. PGlite, and PostgreSQL when
 * TEST_DATABASE_URL is set.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EvidenceStore, MAX_EVIDENCE_BYTES } from '../../src/cases/evidence.js';
import { caseMigrations } from '../../src/cases/schema.js';
import { MediaParts, PART_BYTES } from '../../src/cases/stored-media.js';
import { testConfig } from '../../src/core/config.js';
import { isGridError } from '../../src/core/errors.js';
import { openDb, type Db } from '../../src/store/index.js';
import { migrate } from '../../src/store/migrate.js';
import { engines, freshPostgresUrl } from '../helpers.js';
import { JPEG } from './fixtures.js';

function jpeg(size: number): Buffer {
  const b = randomBytes(size);
  JPEG.subarray(0, 4).copy(b, 0);
  return b;
}

async function collect(s: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe.each(engines())('evidence bytes in the database ($name)', ({ url }) => {
  let db: Db;
  let dir: string;
  let shared: EvidenceStore;

  beforeAll(async () => {
    db = await openDb({ url: url.startsWith('memory://') ? url : await freshPostgresUrl(url), dataDir: '' });
    await migrate(db, caseMigrations);
    dir = mkdtempSync(path.join(os.tmpdir(), 'gridlink-stored-'));
    shared = new EvidenceStore(db, testConfig({ dataDir: dir, databaseUrl: 'postgres://unused' }), { shared: true });
    shared.init();
  });

  afterAll(async () => {
    await db?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const count = async () => (await db.query<{ e: number; p: number }>('select (select count(*)::int from evidence) as e, (select count(*)::int from evidence_parts) as p'))[0]!;

  it('should store an image in parts of 1 MiB and read any range of it back, across part boundaries', async () => {
    const bytes = jpeg(2 * PART_BYTES + 12_345);
    const e = await shared.save({ bytes, kind: 'photo', gridId: 'G-A1', at: Date.now() });
    expect(await db.query('select part, octet_length(data)::int as n from evidence_parts where evidence_id = $1 order by part', [e.id]))
      .toEqual([{ part: 0, n: PART_BYTES }, { part: 1, n: PART_BYTES }, { part: 2, n: 12_345 }]);
    // Nothing on this node's disk.
    expect(readdirSync(shared.dir)).toEqual([]);
    const row = (await shared.get(e.id))!;
    const m = (await shared.open(row))!;
    expect(m.size).toBe(bytes.length);
    const last = bytes.length - 1;
    for (const [from, to] of [[0, 0], [0, last], [PART_BYTES - 1, PART_BYTES], [PART_BYTES, PART_BYTES], [PART_BYTES - 10, 2 * PART_BYTES + 10], [last, last], [123, 456]]) {
      expect((await collect(m.stream(from!, to!))).equals(bytes.subarray(from, to! + 1)), `${from}-${to}`).toBe(true);
    }
    expect((await shared.read(row))!.equals(bytes)).toBe(true);
  });

  it('should cut a stream of odd chunks into the same parts as one buffer', async () => {
    const parts = new MediaParts(db, 'evidence_parts', ['evidence_id']);
    const e = await shared.save({ bytes: jpeg(100), kind: 'photo', gridId: null, at: Date.now() });
    const bytes = randomBytes(PART_BYTES + 777);
    async function* odd() {
      for (let i = 0; i < bytes.length; i += 300_001) yield bytes.subarray(i, i + 300_001);
    }
    expect(await db.tx((q) => parts.write(q, [e.id], odd()))).toBe(bytes.length);
    expect(await db.query('select part, octet_length(data)::int as n from evidence_parts where evidence_id = $1 order by part', [e.id]))
      .toEqual([{ part: 0, n: PART_BYTES }, { part: 1, n: 777 }]);
    expect((await parts.read([e.id]))!.equals(bytes)).toBe(true);
    expect(await parts.open(['no-such-evidence'])).toBeNull();
  });

  it('should write the bytes in the row\'s transaction: one rolled back leaves neither row nor bytes', async () => {
    const before = await count();
    await expect(db.tx(async (q) => {
      await shared.save({ bytes: jpeg(50_000), kind: 'photo', gridId: 'G-A1', at: Date.now() }, q);
      // What a case insert does with text PostgreSQL cannot store, after the photos.
      await q.query('select $1::text', ['bad\u0000text']);
    })).rejects.toThrow();
    expect(await count()).toEqual(before);
  });

  it('should refuse an image over the bound (413) and a non-image (400), writing nothing', async () => {
    const before = await count();
    const big = await shared.save({ bytes: jpeg(MAX_EVIDENCE_BYTES + 1), kind: 'photo', gridId: null, at: Date.now() }).catch((err: unknown) => err);
    expect(isGridError(big) && big.statusCode).toBe(413);
    const junk = await shared.save({ bytes: Buffer.from('not an image at all'), kind: 'photo', gridId: null, at: Date.now() }).catch((err: unknown) => err);
    expect(isGridError(junk) && junk.statusCode).toBe(400);
    expect(await count()).toEqual(before);
  });

  it('should keep files on disk and write no parts on the single process', async () => {
    const single = new EvidenceStore(db, testConfig({ dataDir: dir, databaseUrl: 'postgres://unused' }));
    single.init();
    const before = await count();
    const bytes = jpeg(3_000);
    const e = await single.save({ bytes, kind: 'snapshot', gridId: null, at: Date.now() });
    expect(await count()).toEqual({ e: before.e + 1, p: before.p });
    expect(readdirSync(single.dir)).toContain(`${e.id}.jpg`);
    expect((await single.read((await single.get(e.id))!))!.equals(bytes)).toBe(true);
  });
});
