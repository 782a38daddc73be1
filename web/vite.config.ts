/// <reference types="vitest/config" />
import { defineConfig, type Plugin } from 'vite'
import vue from '@vitejs/plugin-vue'
import { brotliCompressSync, gzipSync, constants } from 'node:zlib'
import { fileURLToPath } from 'node:url'

// Precompressed copies of every text file (.br and .gz beside it), made once at build time so
// the server sends them as they are (crates/web, server::pages) instead of compressing per
// request.
function precompress(): Plugin {
  return {
    name: 'llama-dashboard-precompress',
    apply: 'build',
    enforce: 'post',
    generateBundle(_options, bundle) {
      for (const [name, item] of Object.entries(bundle)) {
        if (!/\.(js|css|html|svg|json|txt)$/.test(name)) continue
        const source = item.type === 'chunk' ? item.code : item.source
        const bytes = typeof source === 'string' ? Buffer.from(source) : Buffer.from(source)
        this.emitFile({
          type: 'asset',
          fileName: `${name}.br`,
          source: brotliCompressSync(bytes, {
            params: { [constants.BROTLI_PARAM_QUALITY]: 11 },
          }),
        })
        this.emitFile({ type: 'asset', fileName: `${name}.gz`, source: gzipSync(bytes, { level: 9 }) })
      }
    },
  }
}

export default defineConfig({
  plugins: [vue(), precompress()],
  resolve: { alias: { '@': fileURLToPath(new URL('./src', import.meta.url)) } },
  build: {
    target: 'es2020',
    // index.html, assets/ (hashed names: cached for good), public files.
    assetsDir: 'assets',
    chunkSizeWarningLimit: 400,
    reportCompressedSize: false,
    // scripts/web-size.sh reads it to measure the first screen.
    manifest: true,
  },
  server: {
    // `npm run dev` against a running `llama-dashboard serve` on its default port.
    proxy: {
      '/api': 'http://127.0.0.1:8080',
      '/v1': 'http://127.0.0.1:8080',
      '/ws': { target: 'ws://127.0.0.1:8080', ws: true },
    },
  },
  test: {
    environment: 'jsdom',
    include: ['tests/unit/**/*.test.ts'],
  },
})
