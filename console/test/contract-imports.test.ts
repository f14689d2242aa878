/**
 * The console reads the contract's schemas as types only: a value import of
 * `@gridlink/devices/contract` would pull TypeBox into the bundle. Run-time
 * lists come from `@gridlink/devices/workflow` (plain data).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const src = path.resolve(import.meta.dirname, '../src');
const files = (dir: string): string[] =>
  readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? files(p) : /\.tsx?$/.test(f) ? [p] : [];
  });

describe('console imports of the contract', () => {
  it('should import and re-export @gridlink/devices/contract as types only', () => {
    const statements = files(src).flatMap((f) =>
      [...readFileSync(f, 'utf8').matchAll(/^(import|export)\b[^;]*?from\s+'@gridlink\/devices\/contract'/gms)].map((m) => ({ file: path.relative(src, f), text: m[0] })),
    );
    expect(statements.length).toBeGreaterThan(5);
    const values = statements.filter((s) => !/^(import|export)\s+type\b/.test(s.text));
    expect(values.map((s) => `${s.file}: ${s.text.split('\n')[0]}`)).toEqual([]);
  });
});
