import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

const hub = process.env.GRIDLINK_HUB_URL ?? 'http://localhost:8080';

// base './': asset URLs are relative so the same build works served at `/`
// by the hub or from any sub-path behind a reverse proxy (routes are hash-based).
export default defineConfig({
  root: import.meta.dirname,
  base: './',
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 800,
  },
  server: {
    proxy: {
      '/api': hub,
      '/video': { target: hub, ws: true },
      '/socket.io': { target: hub, ws: true },
    },
  },
});
