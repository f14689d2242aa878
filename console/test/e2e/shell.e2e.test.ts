/**
 * Shell end to end in real Chromium against a real hub: the login page is
 * what a fresh start shows, login works, and the language switch changes
 * every visible label (English pages carry no Chinese; data here is ASCII).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CJK, skipE2E, startE2E, visibleText, type E2E } from './harness';

describe.skipIf(skipE2E)('console shell (e2e, chromium)', () => {
  let e: E2E;
  beforeAll(async () => {
    e = await startE2E();
  }, 120_000);
  afterAll(async () => {
    await e?.stop();
  });

  it('should serve the login page at / in Chinese by default', async () => {
    const page = await e.page();
    await page.goto(e.hub.http + '/');
    await page.waitForSelector('[data-testid=login-form]');
    const text = await visibleText(page);
    expect(text).toContain('登录');
    expect(await page.evaluate(() => document.documentElement.lang)).toBe('zh-CN');
  });

  it('should reject a wrong password and log in with the right one', async () => {
    const page = await e.page();
    await page.goto(e.hub.http + '/');
    await page.fill('input[name=username]', 'admin');
    await page.fill('input[name=password]', 'wrong-password');
    await page.click('[data-testid=login-submit]');
    await page.waitForSelector('.login-card .error');
    expect(await page.textContent('.login-card .error')).toBe('用户名或密码错误');
    await page.fill('input[name=password]', e.hub.config.adminPassword!);
    await page.click('[data-testid=login-submit]');
    await page.waitForSelector('.shell');
    await page.waitForSelector('[data-testid=conn][data-state=online]', { timeout: 10_000 });
    expect(await page.locator('[data-nav]').count()).toBeGreaterThanOrEqual(6);
  });

  it('should change every visible label when the language is switched', async () => {
    const creds = await e.user('admin', 'ops-admin', 'Ops Admin');
    const page = await e.page();
    // Login page: Chinese → English → no Chinese left.
    await page.goto(e.hub.http + '/');
    await page.waitForSelector('[data-testid=login-form]');
    const zhLogin = await visibleText(page);
    await page.click('[data-testid=lang-switch]');
    const enLogin = await visibleText(page);
    expect(enLogin).not.toMatch(CJK);
    expect(enLogin).not.toBe(zhLogin);
    await page.click('[data-testid=lang-switch]');
    await e.login(page, creds);
    const navs = await page.$$eval('[data-nav]', (els) => els.map((el) => (el as HTMLElement).dataset.nav!));
    const zh: Record<string, string> = {};
    for (const n of navs) {
      await page.click(`[data-nav=${n}]`);
      await page.waitForFunction(() => !document.querySelector('.loading'));
      zh[n] = await visibleText(page);
      expect(zh[n], `${n} in Chinese`).toMatch(CJK);
    }
    await page.click('.topbar [data-testid=lang-switch]');
    expect(await page.evaluate(() => document.documentElement.lang)).toBe('en');
    for (const n of navs) {
      await page.click(`[data-nav=${n}]`);
      await page.waitForFunction(() => !document.querySelector('.loading'));
      const en = await visibleText(page);
      const cjk = en.split('\n').filter((l) => CJK.test(l));
      expect(cjk, `${n} in English still shows Chinese`).toEqual([]);
      expect(en).not.toBe(zh[n]);
    }
  });
});
