import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { dict, type DictKey } from '../src/i18n/dict';

const src = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src');
const files = (dir: string): string[] =>
  readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? files(p) : /\.(tsx?|ts)$/.test(f) ? [p] : [];
  });
const placeholders = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

describe('i18n dictionary', () => {
  it('should have a non-empty Chinese and English text for every key', () => {
    const bad = Object.entries(dict).filter(([, v]) => v.length !== 2 || !v[0].trim() || !v[1].trim());
    expect(bad).toEqual([]);
  });

  it('should use the same placeholders in both languages', () => {
    const bad = Object.entries(dict).filter(([, [zh, en]]) => placeholders(zh).join() !== placeholders(en).join()).map(([k]) => k);
    expect(bad).toEqual([]);
  });

  it('should not leave Chinese in the English column', () => {
    // The switch names the other language in its own script, on purpose.
    const bad = Object.entries(dict).filter(([k, [, en]]) => k !== 'lang.switch' && /[\u3400-\u9fff]/.test(en)).map(([k]) => k);
    expect(bad).toEqual([]);
  });

  it('should define every key the source uses', () => {
    const used = new Set<string>();
    for (const f of files(src)) {
      const text = readFileSync(f, 'utf8');
      for (const m of text.matchAll(/\bt\(\s*'([a-zA-Z0-9_.]+)'/g)) used.add(m[1]!);
    }
    const missing = [...used].filter((k) => !(k in dict));
    expect(missing).toEqual([]);
    expect(used.size).toBeGreaterThan(150);
  });

  it('should keep every template-built key (status, severity, role) in the dictionary', () => {
    const families: Record<string, readonly string[]> = {
      'case.status': ['reported', 'registered', 'dispatched', 'accepted', 'on_scene', 'resolved', 'closed', 'rejected'],
      'case.action': ['register', 'dispatch', 'accept', 'decline', 'arrive', 'resolve', 'verify', 'reject', 'rework', 'cancel'],
      'case.source': ['rule', 'worker', 'officer', 'citizen'],
      severity: ['critical', 'major', 'minor', 'warning', 'info'],
      'worker.status': ['available', 'dispatched', 'en_route', 'on_scene', 'off_duty'],
      role: ['admin', 'officer', 'dispatcher', 'worker', 'integrator'],
      'grid.level': ['city', 'district', 'street', 'community', 'grid'],
      'clip.reason': ['CAMERA_UNAVAILABLE', 'NO_VIDEO', 'CUT_FAILED', 'INTERRUPTED', 'RECORDER_LOST'],
      'clip.note': ['INTERRUPTED', 'RECORDER_LOST'],
    };
    const missing = Object.entries(families).flatMap(([p, vs]) => vs.map((v) => `${p}.${v}`)).filter((k) => !((k as DictKey) in dict));
    expect(missing).toEqual([]);
  });

  it('should have no user-visible literal text in JSX outside the dictionary', () => {
    const offenders: string[] = [];
    const VISIBLE_ATTRS = new Set(['title', 'placeholder', 'aria-label', 'alt', 'label']);
    for (const f of files(src).filter((x) => x.endsWith('.tsx'))) {
      const sf = ts.createSourceFile(f, readFileSync(f, 'utf8'), ts.ScriptTarget.Latest, true, ts.ScriptKind.TSX);
      const visit = (n: ts.Node) => {
        if (ts.isJsxText(n) && /[A-Za-z\u3400-\u9fff]/.test(n.text)) offenders.push(`${path.relative(src, f)}: ${n.text.trim()}`);
        if (ts.isJsxAttribute(n) && VISIBLE_ATTRS.has(n.name.getText()) && n.initializer && ts.isStringLiteral(n.initializer) && /[A-Za-z\u3400-\u9fff]/.test(n.initializer.text)) {
          offenders.push(`${path.relative(src, f)}: ${n.name.getText()}="${n.initializer.text}"`);
        }
        // Chinese anywhere in code (outside comments) would be a string that skipped the dictionary.
        if ((ts.isStringLiteral(n) || ts.isNoSubstitutionTemplateLiteral(n)) && /[\u3400-\u9fff]/.test(n.text)) offenders.push(`${path.relative(src, f)}: "${n.text}"`);
        ts.forEachChild(n, visit);
      };
      visit(sf);
    }
    expect(offenders).toEqual([]);
  });
});
