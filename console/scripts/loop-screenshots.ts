/**
 * `npm run screenshots:loop`: the 闭环 screens in docs/screenshots/ from a
 * real hub with the simulators' demo district, everything through REST as a
 * dispatcher, a department and the hub's own timers do it:
 * - dept-board.png   — a 城管局 user's workbench (only cases routed to it: 待签收, 处置中, 已办结);
 * - assessment.png   — the monthly 考核 league table by street, from cases closed, rated, reworked and overdue;
 * - case-escalated.png — a 施工扬尘 case routed to 城管局 that ran past its limit: 黄牌, 红牌,
 *   automatic 督办 to the department and its leader, escalation to the street, and a leader's manual 督办.
 * The escalated case is real: its category's limit is set to 2 minutes for the run, and the
 * hub's supervision pass (every 30 s) does the rest, so the script takes about 4 minutes.
 * SCREENSHOTS_DIR writes elsewhere (to look before replacing).
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { unitGridPoints } from './bulk-cases';
import { runWithScene } from './scene';

const out = path.resolve(process.env.SCREENSHOTS_DIR ?? path.resolve(import.meta.dirname, '../../docs/screenshots'));
mkdirSync(out, { recursive: true });

async function shot(page: Page, name: string) {
  await page.waitForTimeout(1500);
  await page.screenshot({ path: path.join(out, `${name}.png`) });
  process.stdout.write(`${path.join(out, name)}.png\n`);
}

runWithScene({ devices: true, cases: false }, async (scene, browser) => {
  const { hub } = scene;
  const api = async <T = any>(method: string, p: string, body?: unknown): Promise<T> => {
    const r = await hub.api<T>(method, p, body);
    if (r.status >= 300) throw new Error(`${method} ${p}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  const act = (id: string, action: string, extra: Record<string, unknown> = {}) => api('POST', `/cases/${id}/actions`, { action, ...extra });
  const cells = unitGridPoints(scene.district.grids as never);
  const workers = (await api<{ items: Array<{ id: string; gridIds: string[] }> }>('GET', '/workers')).items;
  const cellOf = (w: { gridIds: string[] }) => cells.find((c) => c.id === w.gridIds[0]) ?? cells[0]!;
  const at = (c: { lat: number; lon: number }, k: number) => ({ lat: c.lat + ((k % 3) - 1) * 0.0004, lon: c.lon + ((k % 2) - 0.5) * 0.0006 });
  const create = async (category: string, p: { lat: number; lon: number }, description: string) =>
    api<{ id: string; code: string }>('POST', '/cases', { category, ...p, description });

  // Users: a 城管局 member (also its leader) and a duty officer.
  const password = 'screenshots-1';
  const cg = await api<{ id: string }>('POST', '/users', { username: 'cg-zhang', password, role: 'officer', displayName: '张科长（城管局）' });
  await api('PATCH', '/departments/chengguan', { userIds: [cg.id], leaderUserId: cg.id });

  // 考核: grid workers' cases across the district — on time and rated, one rated poorly and reworked, some left open.
  const texts = ['小区门口垃圾堆放', '人行道散落建筑垃圾', '垃圾桶满溢', '路面油污', '井盖松动', '占道摆摊', '工地扬尘', '墙面小广告'];
  const cats = ['E0101', 'E0102', 'E0103', 'E0102', 'C0101', 'E0501', 'E0301', 'E0201'];
  let k = 0;
  // Workers taken street by street in turn, so every street has cases in the league table.
  const feats = (scene.district.grids as unknown as { features: Array<{ properties: { id: string; level: string; parentId: string | null } }> }).features;
  const parent = new Map(feats.map((f) => [f.properties.id, f.properties]));
  const streetOf = (gridId: string | undefined) => {
    for (let g = gridId ? parent.get(gridId) : undefined; g; g = g.parentId ? parent.get(g.parentId) : undefined) if (g.level === 'street') return g.id;
    return '';
  };
  const byStreet = new Map<string, typeof workers>();
  for (const w of workers) byStreet.set(streetOf(w.gridIds[0]), [...(byStreet.get(streetOf(w.gridIds[0])) ?? []), w]);
  const queues = [...byStreet.values()];
  const picked: typeof workers = [];
  for (let i = 0; picked.length < 24 && queues.some((q) => q.length > i); i++) for (const q of queues) if (q[i] && picked.length < 24) picked.push(q[i]!);
  // One case per worker (a worker holds one dispatch at a time).
  for (const w of picked) {
    {
      const c = await create(cats[k % cats.length]!, at(cellOf(w), k), texts[k % texts.length]!);
      k++;
      await act(c.id, 'register');
      const m = k % 6;
      if (m === 5) continue; // registered, never dispatched
      await act(c.id, 'dispatch', { workerId: w.id });
      if (m === 4) continue; // dispatched, not yet acknowledged
      await act(c.id, 'accept');
      await act(c.id, 'arrive');
      await act(c.id, 'resolve', { note: '已清理完毕' });
      if (m === 3) continue; // resolved, waiting for 核查
      await act(c.id, 'verify', { note: '核查通过' });
      await act(c.id, 'rate', { rating: m === 2 ? 2 : k % 2 ? 5 : 4, note: m === 2 ? '清理不彻底' : '处理及时' });
      if (m === 2) await act(c.id, 'rework', { note: '群众反映清理不彻底，返工' });
    }
  }

  // 分流 to 城管局: one waiting for 签收, one signed, one replied.
  const dept: string[] = [];
  for (const [i, [cat, text]] of ([['E0101', '农贸市场门口垃圾堆积'], ['E0501', '夜市摊点占用消防通道'], ['E0201', '公交站亭张贴小广告']] as const).entries()) {
    const c = await create(cat, at(cells[(i * 7) % cells.length]!, i), text);
    await act(c.id, 'register');
    await act(c.id, 'route', { departmentId: 'chengguan', note: '请城管局处置' });
    dept.push(c.id);
  }

  // The escalated case: 施工扬尘 with a 2-minute limit in calendar time for this run (set back at the end), routed to 城管局 and never signed.
  const cat = (await api<{ items: Array<{ code: string; timeLimitMin: number; ackLimitMin: number; limitUnit: string }> }>('GET', '/categories')).items.find((c) => c.code === 'E0301')!;
  await api('PATCH', '/categories/E0301', { timeLimitMin: 2, ackLimitMin: 1, limitUnit: 'calendar' });
  const late = await create('E0301', at(cells[Math.floor(cells.length / 2)]!, 1), '工地未覆盖防尘网，渣土车带泥上路');
  await act(late.id, 'register');
  await act(late.id, 'route', { departmentId: 'chengguan', note: '请城管局立即处置' });

  // The department works two of its cases meanwhile (as its member).
  const cgTok = (await hub.api<{ token: string }>('POST', '/auth/login', { username: 'cg-zhang', password })).body.token;
  const asCg = async (id: string, action: string, note?: string) => {
    const r = await hub.api('POST', `/cases/${id}/actions`, { action, ...(note ? { note } : {}) }, cgTok);
    if (r.status >= 300) throw new Error(`${action}: ${r.status} ${JSON.stringify(r.body)}`);
  };
  await asCg(dept[1]!, 'sign');
  await asCg(dept[2]!, 'sign');
  await asCg(dept[2]!, 'reply', '已清除小广告 12 处');

  // Wait for the supervision pass: 黄牌 at 1.5 min, 红牌 + 督办 + escalation to the street at 2 min.
  for (let i = 0; i < 60; i++) {
    const c = await api<{ escalatedTo?: string | null }>('GET', `/cases/${late.id}`);
    if (c.escalatedTo) break;
    await new Promise((r) => setTimeout(r, 5000));
  }
  await act(late.id, 'supervise', { note: '请城管局今日 18:00 前处置完毕并回复' });

  const ctx = await browser.newContext({ viewport: { width: 1920, height: 1080 }, locale: 'zh-CN' });
  const page = await ctx.newPage();
  const login = async (username: string, pw: string) => {
    await page.goto(hub.http + '/');
    await page.evaluate(() => localStorage.clear());
    await page.goto(hub.http + '/');
    await page.waitForSelector('[data-testid=login-form]');
    await page.fill('input[name=username]', username);
    await page.fill('input[name=password]', pw);
    await page.click('[data-testid=login-submit]');
    await page.waitForSelector('[data-testid=conn][data-state=online]');
  };

  // The department's workbench.
  await login('cg-zhang', password);
  await page.goto(hub.http + '/#/cases');
  await page.waitForSelector(`[data-case-id="${late.id}"]`);
  await shot(page, 'dept-board');

  // The duty officer's views: the escalated case, the 考核 page.
  await login('admin', hub.config.adminPassword!);
  await page.goto(`${hub.http}/#/cases/${late.id}`);
  await page.waitForSelector('[data-testid=case-escalated]');
  await shot(page, 'case-escalated');
  await page.goto(hub.http + '/#/assessment');
  await page.waitForSelector('[data-testid=assessment-page] table');
  await shot(page, 'assessment');
  await api('PATCH', '/categories/E0301', { timeLimitMin: cat.timeLimitMin, ackLimitMin: cat.ackLimitMin, limitUnit: cat.limitUnit });
});
