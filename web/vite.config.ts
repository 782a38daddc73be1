/// <reference types="vitest/config" />
import { defineConfig, type Plugin } from 'vite'
import vue from '@vitejs/plugin-vue'
import { brotliCompressSync, gzipSync, constants } from 'node:zlib'
import { fileURLToPath } from 'node:url'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

// Precompressed copies of every text file (.br and .gz beside it), made once at build time so
// the server sends them as they are (crates/web, server::pages) instead of compressing per
// request. Made from the files as written (after every other plugin has changed them).
function precompress(): Plugin {
  return {
    name: 'llama-dashboard-precompress',
    apply: 'build',
    writeBundle(options) {
      const dir = options.dir!
      const walk = (d: string): string[] =>
        readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)]))
      for (const file of walk(dir)) {
        if (!/\.(js|css|html|svg|json|txt)$/.test(file)) continue
        const bytes = readFileSync(file)
        writeFileSync(`${file}.br`, brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }))
        writeFileSync(`${file}.gz`, gzipSync(bytes, { level: 9 }))
      }
    },
  }
}

function proxy() {
  const target = process.env.LD_SERVER ?? 'http://127.0.0.1:8080'
  return {
    '/api': target,
    '/v1': target,
    '/apply-template': target,
    '/ws': { target: target.replace(/^http/, 'ws'), ws: true },
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
  // `npm run dev` / `vite preview` against a running `llama-dashboard serve` (LD_SERVER, else
  // its default port).
  server: { proxy: proxy() },
  preview: { proxy: proxy() },
  test: {
    environment: 'jsdom',
    include: ['tests/unit/**/*.test.ts'],
  },
})
