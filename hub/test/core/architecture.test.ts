/**
 * docs/architecture.md names the rooms, their doors and the files on two
 * paths through the hub; every repository path it names must exist, so the
 * page cannot drift from the tree.
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
});
