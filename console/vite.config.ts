import path from 'node:path';
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';
import { precompress } from './m/precompress';
import { mobilePwa } from './m/pwa';

const hub = process.env.GRIDLINK_HUB_URL ?? 'http://localhost:8080';

// base './': asset URLs are relative so the same build works served at `/`
// by the hub or from any sub-path behind a reverse proxy (routes are hash-based).
export default defineConfig({
  root: import.meta.dirname,
  base: './',
  // precompress last: it also compresses what mobilePwa emits (service worker, manifest).
  plugins: [react(), mobilePwa(), precompress()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 800,
    // The console at / and the grid worker's app at /m/ (console/m/index.html).
    rollupOptions: { input: { main: path.join(import.meta.dirname, 'index.html'), m: path.join(import.meta.dirname, 'm/index.html') } },
  },
  server: {
    proxy: {
      '/api': hub,
      '/video': { target: hub, ws: true },
      '/socket.io': { target: hub, ws: true },
    },
  },
});
