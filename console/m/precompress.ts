/**
 * Build step: a `.gz` and a `.br` next to every text asset of the build, so the
 * hub's static server (preCompressed) sends a phone on a mobile network about a
 * third of the bytes without compressing per request.
 *
 * It compresses the files as written (writeBundle), not the chunks seen in
 * generateBundle: Vite finishes chunks after that hook (the dynamic-import
 * preload helper is filled in late), and a browser that accepts br would
 * otherwise get code that fails with "__VITE_PRELOAD__ is not defined".
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import type { Plugin } from 'vite';

const TEXT = /\.(js|css|html|svg|json|webmanifest)$/;

export function precompress(minBytes = 1024): Plugin {
  return {
    name: 'gridlink-precompress',
    apply: 'build',
    enforce: 'post',
    writeBundle(opts, bundle) {
      const dir = opts.dir ?? path.dirname(opts.file ?? '.');
      for (const fileName of Object.keys(bundle)) {
        if (!TEXT.test(fileName)) continue;
        const file = path.join(dir, fileName);
        const source = readFileSync(file);
        if (source.length < minBytes) continue;
        writeFileSync(`${file}.gz`, gzipSync(source, { level: 9 }));
        writeFileSync(`${file}.br`, brotliCompressSync(source, { params: { [constants.BROTLI_PARAM_QUALITY]: 9 } }));
      }
    },
  };
}
