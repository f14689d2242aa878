/**
 * Evidence on two nodes: a photo a worker uploads through node A (the
 * handheld `/m` API) is served through node B byte for byte, whole and by
 * range, to an officer of its street and to the worker, and not to an
 * officer of another street; it is still served after node A is SIGKILLed
 * (its bytes are in PostgreSQL, not on node A's disk). A photo over the
 * limit, or a report the database cannot store, leaves neither a row nor
 * bytes behind.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AT, JPEG } from '../cases/fixtures.js';
import { api, login, RUN_CLUSTER, twoNodeDistrict, type HubNode, type TestDatabase } from './harness.js';

const OFFICER_PASSWORD = 'officer-pass-123';
const WORKER_PASSWORD = 'worker-pass-123';

/** A JPEG (by its magic bytes) of `size` bytes: random inside, so no two are alike. */
function photo(size: number): Buffer {
  const b = randomBytes(size);
  JPEG.subarray(0, 4).copy(b, 0);
  b[size - 2] = 0xff;
  b[size - 1] = 0xd9;
  return b;
}

describe.runIf(RUN_CLUSTER)('evidence across two nodes', () => {
  let stop = async () => {};
  let db: TestDatabase;
  let a: HubNode, b: HubNode;
  let token = '';
  /** The worker's handheld session, opened on node A (it uploads there), then one opened on node B. */
  let handheld = '';

  beforeAll(async () => {
    ({ db, a, b, token, stop } = await twoNodeDistrict([{ username: 'officer-sa', regionId: 'S-A' }, { username: 'officer-sb', regionId: 'S-B' }], OFFICER_PASSWORD));
    const u = await api<{ id: string }>(a.http, 'POST', '/users', { username: 'worker-e', password: WORKER_PASSWORD, role: 'worker' }, token);
    expect(u.status, JSON.stringify(u.body)).toBe(201);
    const d = await api(a.http, 'POST', '/devices', { type: 'handheld', id: 'hh-e' }, token);
    expect(d.status, JSON.stringify(d.body)).toBe(201);
    const w = await api(a.http, 'POST', '/workers', { id: 'w-e', name: '王网格', deviceId: 'hh-e', gridIds: ['G-A1'], userId: u.body.id }, token);
    expect(w.status, JSON.stringify(w.body)).toBe(201);
  }, 180_000);

  afterAll(() => stop(), 60_000);

  /** POST /m/reports through `node` as multipart, the way the worker app sends it. */
  async function session(node: HubNode): Promise<string> {
    const s = await api<{ token: string }>(node.http, 'POST', '/m/session', { username: 'worker-e', password: WORKER_PASSWORD });
    expect(s.status, JSON.stringify(s.body)).toBe(201);
    return s.body.token;
  }

  async function report(node: HubNode, fields: Record<string, string | number>, photos: Buffer[]): Promise<{ status: number; body: any }> {
    const f = new FormData();
    for (const [k, v] of Object.entries(fields)) f.append(k, String(v));
    photos.forEach((p, i) => f.append('photos', new Blob([new Uint8Array(p)], { type: 'image/jpeg' }), `p${i}.jpg`));
    const r = await fetch(`${node.http}/api/v1/m/reports`, { method: 'POST', headers: { authorization: `Bearer ${handheld}` }, body: f });
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : null };
  }

  const get = async (url: string, headers: Record<string, string> = {}) => {
    const r = await fetch(url, { headers });
    return { status: r.status, type: r.headers.get('content-type'), range: r.headers.get('content-range'), bytes: Buffer.from(await r.arrayBuffer()) };
  };

  it('serves a worker photo uploaded through node A on node B, byte for byte and by region, and after node A is SIGKILLed', async () => {
    // Over one stored part (1 MiB), under the handheld limit (4 MiB): the range below crosses the part boundary.
    const jpeg = photo(1_500_000);
    handheld = await session(a);
    const r = await report(a, { reportId: 'r-evidence-1', category: 'E0101', description: '占道经营', lat: AT.A1.lat, lon: AT.A1.lon }, [jpeg]);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const caseId = r.body.caseId as string;
    const rows = await db.query<{ id: string; sha256: string; size: number }>("select id, sha256, size from evidence where case_id = $1 and kind = 'photo'", [caseId]);
    expect(rows).toHaveLength(1);
    const ev = rows[0]!;
    expect(ev.size).toBe(jpeg.length);

    // The worker's phone logs in again, now through node B.
    handheld = await session(b);
    const officer = await login(b.http, 'officer-sa', OFFICER_PASSWORD);
    const other = await login(b.http, 'officer-sb', OFFICER_PASSWORD);
    const check = async (node: HubNode) => {
      // The officer of the case's street, on node B: through the case's signed URL (an <img src>) and with the bearer token.
      const detail = await api<{ evidence: Array<{ id: string; url: string }> }>(node.http, 'GET', `/cases/${caseId}`, undefined, officer);
      expect(detail.status, JSON.stringify(detail.body)).toBe(200);
      const signed = detail.body.evidence.find((e) => e.id === ev.id)!;
      const viaUrl = await get(`${node.http}${signed.url}`);
      expect(viaUrl.status).toBe(200);
      expect(viaUrl.type).toBe('image/jpeg');
      expect(viaUrl.bytes.equals(jpeg)).toBe(true);
      const viaBearer = await get(`${node.http}/api/v1/evidence/${ev.id}`, { authorization: `Bearer ${officer}` });
      expect(viaBearer.status).toBe(200);
      expect(viaBearer.bytes.equals(jpeg)).toBe(true);
      const part = await get(`${node.http}/api/v1/evidence/${ev.id}`, { authorization: `Bearer ${officer}`, range: 'bytes=1048000-1049999' });
      expect(part.status).toBe(206);
      expect(part.range).toBe(`bytes 1048000-1049999/${jpeg.length}`);
      expect(part.bytes.equals(jpeg.subarray(1048000, 1050000))).toBe(true);
      // The worker, on their own task's photo.
      const mine = await get(`${node.http}/api/v1/m/evidence/${ev.id}`, { authorization: `Bearer ${handheld}` });
      expect(mine.status).toBe(200);
      expect(mine.bytes.equals(jpeg)).toBe(true);
      // An officer of another street: as if it did not exist, on either path.
      expect((await get(`${node.http}/api/v1/evidence/${ev.id}`, { authorization: `Bearer ${other}` })).status).toBe(404);
      expect((await api(node.http, 'GET', `/cases/${caseId}`, undefined, other)).status).toBe(404);
    };
    await check(b);
    // Node A, which took the upload, dies for good: the photo is still there.
    await a.kill('SIGKILL');
    await check(b);
    // In PostgreSQL, in two parts; nothing of it needed node A's disk.
    expect(await db.query('select part, octet_length(data)::int as n from evidence_parts where evidence_id = $1 order by part', [ev.id])).toEqual([{ part: 0, n: 1024 * 1024 }, { part: 1, n: jpeg.length - 1024 * 1024 }]);
  }, 180_000);

  it('refuses a photo over the limit and a report the database cannot store, leaving no row and no bytes', async () => {
    const count = async () => (await db.query<{ c: number; e: number; p: number }>(
      'select (select count(*)::int from cases) as c, (select count(*)::int from evidence) as e, (select count(*)::int from evidence_parts) as p'))[0]!;
    handheld = await session(b);
    const before = await count();
    // Over the handheld photo limit (GRIDLINK_MOBILE_MAX_PHOTO_BYTES, 4 MiB).
    const big = await report(b, { reportId: 'r-evidence-big', category: 'E0101', description: 'too big', lat: AT.A1.lat, lon: AT.A1.lon }, [photo(5 * 1024 * 1024)]);
    expect(big.status, JSON.stringify(big.body)).toBe(413);
    // A NUL byte PostgreSQL cannot store in text, next to a photo that would have been stored.
    const nul = await report(b, { reportId: 'r-evidence-nul', category: 'E0101', description: 'bad\u0000text', lat: AT.A1.lat, lon: AT.A1.lon }, [photo(200_000)]);
    expect(nul.status, JSON.stringify(nul.body)).toBe(400);
    expect(nul.body.code).toBe('NUL_BYTE');
    // Not a picture at all.
    const junk = await report(b, { reportId: 'r-evidence-junk', category: 'E0101', description: 'junk', lat: AT.A1.lat, lon: AT.A1.lon }, [randomBytes(2000)]);
    expect(junk.status, JSON.stringify(junk.body)).toBe(400);
    expect(await count()).toEqual(before);
  }, 120_000);
});
