/**
 * 地图上报: the console opens a case at a point picked on the map through
 * `POST /cases` (officer or dispatcher, source officer, optional photos).
 * Attacks on that write path: a point outside the caller's region, an
 * unknown category, a photo that is too large or not an image, fields the
 * caller must not set, a value the database cannot store. None of them
 * leaves a case, a history row or an evidence file behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CaseDetail } from '../../src/cases/index.js';
import { engines } from '../helpers.js';
import { AT, JPEG_B64, startCaseHub, type CaseHub } from './fixtures.js';

const PNG_B64 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';

for (const engine of engines()) {
  describe(`a case opened from the map (${engine.name})`, () => {
    let h: CaseHub;
    beforeAll(async () => {
      h = await startCaseHub({ databaseUrl: engine.url, rules: false });
    });
    afterAll(async () => h?.stop());

    const rows = async () => {
      const [c] = await h.hub.ctx.db.query<{ n: number }>('select count(*)::int as n from cases');
      const [e] = await h.hub.ctx.db.query<{ n: number }>('select count(*)::int as n from evidence');
      const [x] = await h.hub.ctx.db.query<{ n: number }>('select count(*)::int as n from case_history');
      return { cases: c!.n, evidence: e!.n, history: x!.n };
    };

    it('should open a reported case where the dispatcher clicked, in that grid, with the description and the photos', async () => {
      const r = await h.as('dispatcherA')<CaseDetail>('POST', '/cases', { category: '暴露垃圾', ...AT.A2, description: '东门垃圾桶满溢', source: 'officer', photos: [JPEG_B64, `data:image/png;base64,${PNG_B64}`] });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      expect(r.body).toMatchObject({ status: 'reported', source: 'officer', gridId: 'G-A2', category: { code: 'E0101' }, lat: AT.A2.lat, lon: AT.A2.lon });
      const d = (await h.as('officerA')<CaseDetail>('GET', `/cases/${r.body.id}`)).body;
      expect(d.description).toBe('东门垃圾桶满溢');
      expect(d.evidence.map((x) => x.mime).sort()).toEqual(['image/jpeg', 'image/png']);
      expect(d.history[0]).toMatchObject({ action: 'create' });
      expect(JSON.stringify(d.reporter)).toContain('dispatcherA');
      // The board lists it and counts it.
      const list = await h.as('dispatcherA')<{ items: Array<{ id: string }> }>('GET', '/cases?status=reported');
      expect(list.body.items.map((c) => c.id)).toContain(r.body.id);
    });

    it('should refuse a point outside the caller\'s region (403) and leave nothing behind', async () => {
      const before = await rows();
      const r = await h.as('dispatcherA')<{ code: string }>('POST', '/cases', { category: 'E0101', ...AT.B1, description: 'over the border', photos: [JPEG_B64] });
      expect(r.status).toBe(403);
      expect(r.body.code).toBe('OUTSIDE_REGION');
      // Outside every grid is outside a scoped caller's region too.
      expect((await h.as('dispatcherA')('POST', '/cases', { category: 'E0101', lat: 31.5, lon: 105.5 })).status).toBe(403);
      expect(await rows()).toEqual(before);
    });

    it('should refuse an unknown category with CATEGORY_NOT_FOUND', async () => {
      const before = await rows();
      for (const category of ['E9999', 'no_such_key', '不存在的类别']) {
        const r = await h.as('dispatcher')<{ code: string }>('POST', '/cases', { category, ...AT.A1, description: 'x' });
        expect(r.status, category).toBe(400);
        expect(r.body.code).toBe('CATEGORY_NOT_FOUND');
      }
      expect(await rows()).toEqual(before);
    });

    it('should refuse a photo that is not an image, one too large, and more than nine', async () => {
      const before = await rows();
      const gif = Buffer.from('GIF89a\x01\x00\x01\x00\x00\x00\x00;').toString('base64');
      const text = Buffer.from('just some words, not a photo').toString('base64');
      for (const photo of [gif, text, `data:image/jpeg;base64,${text}`]) {
        const r = await h.as('dispatcher')<{ code: string }>('POST', '/cases', { category: 'E0101', ...AT.A1, photos: [photo] });
        expect(r.status).toBe(400);
        expect(r.body.code).toBe('EVIDENCE_INVALID');
      }
      // Over the 1,400,000-character limit of one photo (about 1 MB), though it starts like a JPEG.
      const huge = Buffer.concat([Buffer.from(JPEG_B64, 'base64'), Buffer.alloc(1_100_000)]).toString('base64');
      expect((await h.as('dispatcher')('POST', '/cases', { category: 'E0101', ...AT.A1, photos: [huge] })).status).toBe(400);
      expect((await h.as('dispatcher')('POST', '/cases', { category: 'E0101', ...AT.A1, photos: Array(10).fill(JPEG_B64) })).status).toBe(400);
      expect(await rows()).toEqual(before);
    });

    it('should refuse fields the caller must not set and values the database cannot store', async () => {
      const before = await rows();
      const base = { category: 'E0101', ...AT.A1, description: 'x' };
      for (const extra of [{ status: 'closed' }, { gridId: 'G-B1' }, { workerId: 'w1' }, { departmentId: 'chengguan' }, { deadline: 0 }, { reporter: { kind: 'citizen' } }, { id: 'mine' }]) {
        const r = await h.as('dispatcher')('POST', '/cases', { ...base, ...extra });
        expect(r.status, JSON.stringify(extra)).toBe(400);
      }
      // A rule or handheld source is the hub's to set; citizen cases come through Open311 / 12345 with a token.
      for (const source of ['rule', 'worker', 'device']) expect((await h.as('dispatcher')('POST', '/cases', { ...base, source })).status).toBe(400);
      expect((await h.as('dispatcher')('POST', '/cases', { ...base, description: 'nul \u0000 byte' })).status).toBe(400);
      expect((await h.as('dispatcher')('POST', '/cases', { ...base, lat: 91 })).status).toBe(400);
      expect((await h.as('dispatcher')('POST', '/cases', { ...base, description: 'x'.repeat(2001) })).status).toBe(400);
      // A worker cannot open one from the console.
      expect((await h.as('w1')('POST', '/cases', base)).status).toBe(403);
      expect(await rows()).toEqual(before);
    });
  });
}
