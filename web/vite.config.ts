// Vite build, dev server and Vitest configuration for the trading screen.
// The dev server proxies the API and the WebSocket to a local `quanttrader run`
// (port 8080 by default, QT_API to override) so the app always talks to its own origin,
// exactly as it does when the binary serves the built assets.
import { defineConfig } from 'vitest/config';
import react from '@vitejs/plugin-react';

const api = process.env.QT_API ?? 'http://127.0.0.1:8080';

export default defineConfig({
  plugins: [react()],
  server: {
    proxy: {
      '/api': { target: api, changeOrigin: true },
      '/ws': { target: api, ws: true, changeOrigin: true },
    },
  },
  build: {
    outDir: 'dist',
    sourcemap: true,
    // React + lightweight-charts make one ~430 kB (135 kB gzip) bundle; served once, cached.
    chunkSizeWarningLimit: 600,
  },
  test: {
    environment: 'jsdom',
    globals: true,
    setupFiles: ['src/test/setup.ts'],
    include: ['src/**/*.test.{ts,tsx}'],
    css: false,
  },
});
