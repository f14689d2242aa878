/**
 * Build step: a `.gz` and a `.br` next to every text asset of the build, so the
 * hub's static server (preCompressed) sends a phone on a mobile network about a
 * third of the bytes without compressing per request.
 */
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import type { Plugin } from 'vite';

const TEXT = /\.(js|css|html|svg|json|webmanifest)$/;

export function precompress(minBytes = 1024): Plugin {
  return {
    name: 'gridlink-precompress',
    apply: 'build',
    enforce: 'post',
    generateBundle(_opts, bundle) {
      for (const out of Object.values(bundle)) {
        if (!TEXT.test(out.fileName)) continue;
        const source = out.type === 'chunk' ? Buffer.from(out.code) : Buffer.from(out.source);
        if (source.length < minBytes) continue;
        this.emitFile({ type: 'asset', fileName: `${out.fileName}.gz`, source: gzipSync(source, { level: 9 }) });
        this.emitFile({ type: 'asset', fileName: `${out.fileName}.br`, source: brotliCompressSync(source, { params: { [constants.BROTLI_PARAM_QUALITY]: 9 } }) });
      }
    },
  };
}
