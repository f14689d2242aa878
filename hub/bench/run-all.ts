/**
 * npm run bench — runs every `bench:*` script of the root package.json in turn
 * and prints one JSON document: { <name>: <that benchmark's JSON> }.
 * A benchmark that fails is reported with its exit code instead of stopping the rest.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '../..');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
const only = process.argv.slice(2);
const names = Object.keys(pkg.scripts).filter((n) => n.startsWith('bench:') && (only.length === 0 || only.includes(n.slice(6))));
const results: Record<string, unknown> = {};
for (const name of names) {
  process.stderr.write(`\n== ${name}\n`);
  const r = spawnSync('npm', ['run', '--silent', name], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 * 1024 * 1024 });
  const text = r.stdout.trim();
  const start = text.indexOf('{');
  try {
    results[name.slice(6)] = r.status === 0 && start >= 0 ? JSON.parse(text.slice(start)) : { failed: r.status, output: text.slice(-2000) };
  } catch {
    results[name.slice(6)] = { failed: r.status, output: text.slice(-2000) };
  }
}
process.stdout.write(`${JSON.stringify({ machine: { cpus: (await import('node:os')).cpus().length, node: process.version }, results }, null, 2)}\n`);
