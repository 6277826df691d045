import { defineConfig } from 'vitest/config'
import vue from '@vitejs/plugin-vue'
import ElementPlus from 'unplugin-element-plus/vite'

// The Go server (default :8080) answers /api and the health endpoints; in
// development Vite serves the console and forwards those to it.
const backend = process.env.SWITCHBOARD_BACKEND ?? 'http://127.0.0.1:8080'

export default defineConfig({
  // Adds each Element Plus component's stylesheet next to its import, so only
  // the CSS of components we actually use ends up in the bundle.
  plugins: [vue(), ElementPlus({})],
  define: {
    // vue-i18n compile-time flags (plugin-vue sets Vue's own): we use only the
    // Composition API, so the legacy API and devtools hooks are dropped.
    __VUE_I18N_FULL_INSTALL__: 'false',
    __VUE_I18N_LEGACY_API__: 'false',
    __INTLIFY_PROD_DEVTOOLS__: 'false',
  },
  server: {
    proxy: {
      // ws: the inbox's live updates (/api/v1/realtime) are a WebSocket.
      '/api': { target: backend, ws: true },
      '/readyz': backend,
      '/healthz': backend,
    },
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // dist/ is committed and embedded in the Go binary: keep it small and
    // reproducible (no source maps pointing at local paths).
    sourcemap: false,
    chunkSizeWarningLimit: 600,
  },
  test: {
    include: ['tests/**/*.test.ts'],
    environment: 'node',
  },
})
