#!/usr/bin/env bash
# The web dashboard's first screen, compressed as the server sends it (brotli): index.html and
# every file it loads at start (its scripts, styles and their static imports; pages and the
# heavy parts are separate chunks fetched later). Builds web/ into web/dist first.
#   scripts/web-size.sh            prints the figure and the files
#   WEB_SIZE_LIMIT=300 ...          fails above that many KB
set -euo pipefail
cd "$(dirname "$0")/../web"
[ -d node_modules ] || npm ci --no-audit --no-fund >&2
npm run build >/dev/null
node --input-type=module - "${WEB_SIZE_LIMIT:-}" <<'JS'
import { readFileSync, statSync, existsSync } from 'node:fs'
const limit = process.argv[2] ? Number(process.argv[2]) : null
const manifest = JSON.parse(readFileSync('dist/.vite/manifest.json', 'utf8'))
const size = (f) => (existsSync(`dist/${f}.br`) ? statSync(`dist/${f}.br`).size : statSync(`dist/${f}`).size)
// The entry, its static imports (not dynamic ones), their CSS, and the first page's chunk.
const entry = Object.values(manifest).find((c) => c.isEntry)
const files = new Set(['index.html'])
const walk = (c) => {
  if (!c || files.has(c.file)) return
  files.add(c.file)
  for (const css of c.css ?? []) files.add(css)
  for (const i of c.imports ?? []) walk(manifest[i])
}
walk(entry)
const first = Object.entries(manifest).find(([k]) => k.endsWith('pages/DashboardPage.vue'))
if (first) walk(first[1])
let total = 0
for (const f of files) {
  const s = size(f)
  total += s
  console.log(`${(s / 1024).toFixed(1).padStart(8)} KB  ${f}`)
}
console.log(`first screen (dashboard), brotli: ${(total / 1024).toFixed(1)} KB`)
if (limit !== null && total / 1024 > limit) {
  console.error(`over the ${limit} KB limit`)
  process.exit(1)
}
JS
