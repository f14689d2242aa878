/**
 * Build step of the worker app (/m/): emits the web app manifest, icons and
 * the service worker next to m/index.html, with the exact list of files the
 * app shell needs (the entry's scripts, their static imports and CSS) so the
 * service worker can precache them at install.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { Plugin, Rollup } from 'vite';

type OutputBundle = Rollup.OutputBundle;
type OutputChunk = Rollup.OutputChunk;

const STATIC = path.join(import.meta.dirname, 'static');

export function mobilePwa(): Plugin {
  return {
    name: 'gridlink-m-pwa',
    apply: 'build',
    enforce: 'post',
    generateBundle(_opts, bundle: OutputBundle) {
      const html = bundle['m/index.html'];
      if (!html || html.type !== 'asset') return;
      const files = new Set<string>();
      const visit = (file: string) => {
        if (files.has(file) || !bundle[file]) return;
        files.add(file);
        const out = bundle[file];
        if (out.type === 'chunk') {
          const c = out as OutputChunk & { viteMetadata?: { importedCss: Set<string>; importedAssets: Set<string> } };
          c.imports.forEach(visit);
          c.viteMetadata?.importedCss.forEach(visit);
          c.viteMetadata?.importedAssets.forEach(visit);
        }
      };
      for (const m of String(html.source).matchAll(/(?:src|href)="([^"]+)"/g)) {
        const ref = m[1]!;
        if (/^(https?:|data:)/.test(ref)) continue;
        visit(path.posix.normalize(path.posix.join('m', ref)));
      }
      const statics = readdirSync(STATIC).filter((f) => f !== 'sw.js' && existsSync(path.join(STATIC, f)));
      for (const f of statics) this.emitFile({ type: 'asset', fileName: `m/${f}`, source: readFileSync(path.join(STATIC, f)) });
      const precache = ['./', ...statics.map((f) => `./${f}`), ...[...files].map((f) => path.posix.relative('m', f))];
      const version = createHash('sha256').update(precache.join('\n')).update(String(html.source)).digest('hex').slice(0, 12);
      const sw = readFileSync(path.join(STATIC, 'sw.js'), 'utf8').replace('__VERSION__', version).replace('__PRECACHE__', JSON.stringify(precache));
      this.emitFile({ type: 'asset', fileName: 'm/sw.js', source: sw });
    },
  };
}
