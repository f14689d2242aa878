/**
 * docs/architecture.md names the rooms, their doors and the files and
 * functions on two paths through the hub; every repository path it names
 * must exist and every function it names next to a file must be in that
 * file, so the page cannot drift from the tree.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../../..');

describe('docs/architecture.md', () => {
  it('should name only files that exist', () => {
    const text = readFileSync(path.join(root, 'docs/architecture.md'), 'utf8');
    const named = [...text.matchAll(/`((?:hub|console|devices|simulators)\/[\w./-]+\.(?:ts|tsx))`/g)].map((m) => m[1]!);
    expect(named.length).toBeGreaterThan(30);
    const missing = [...new Set(named)].filter((p) => !existsSync(path.join(root, p)));
    expect(missing).toEqual([]);
  });

  it('should name only functions that are in the file named with them', () => {
    const text = readFileSync(path.join(root, 'docs/architecture.md'), 'utf8').replace(/\s+/g, ' ');
    // `name` (`file`, `name`, `file` or `A` → `B` in `file`: each identifier before the next file must be in it.
    const pairs: Array<[string, string]> = [];
    for (const m of text.matchAll(/((?:`[A-Za-z_][\w.]*`[^`]{0,12}?)+)\(?`((?:hub|console|devices)\/[\w./-]+\.tsx?)`/g)) {
      for (const id of m[1]!.matchAll(/`([A-Za-z_][\w.]*)`/g)) pairs.push([id[1]!, m[2]!]);
    }
    expect(pairs.length).toBeGreaterThan(20);
    const missing = pairs.filter(([id, file]) => {
      const src = existsSync(path.join(root, file)) ? readFileSync(path.join(root, file), 'utf8') : '';
      return !id.split('.').every((part) => new RegExp(`\\b${part}\\b`).test(src));
    });
    expect(missing).toEqual([]);
  });
});
