#!/usr/bin/env bash
# The web dashboard's tests, after the Rust tests (which built the debug binary and the test
# hub): type check, Vitest (stores, the SSE parser), then Playwright in Debian's Chromium
# against the real binary serving the real test model. Prints how long each part took.
# Under CI=true a missing browser, binary or model fails; elsewhere the browser tests are
# skipped with a note.
set -euo pipefail
cd "$(dirname "$0")/../web"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$(cd .. && pwd)/target}"

t() { date +%s; }
took() { echo "web: $1 took $(( $(t) - $2 )) s" >&2; }

t0=$(t)
if [ ! -d node_modules ] || ! cmp -s package-lock.json node_modules/.llama-dashboard-lock; then
  npm ci --no-audit --no-fund
  cp package-lock.json node_modules/.llama-dashboard-lock
fi
took "npm ci" "$t0"

t0=$(t); npx vue-tsc --noEmit -p tsconfig.json; took "type check" "$t0"
t0=$(t); npx vitest run; took "vitest" "$t0"

missing=()
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || missing+=("chromium (scripts/setup.sh installs it)")
[ -x "$CARGO_TARGET_DIR/debug/llama-dashboard" ] || missing+=("$CARGO_TARGET_DIR/debug/llama-dashboard (cargo build)")
[ -n "${LLAMA_DASHBOARD_TEST_MODEL:-}" ] && [ -f "$LLAMA_DASHBOARD_TEST_MODEL" ] || missing+=("the test model (scripts/fetch-test-models.sh)")
if [ ${#missing[@]} -gt 0 ]; then
  if [ "${CI:-}" = true ]; then
    echo "web: the browser tests need: ${missing[*]}" >&2
    exit 1
  fi
  echo "web: browser tests skipped, missing: ${missing[*]}" >&2
  exit 0
fi
mkdir -p ../target/ui-screenshots
t0=$(t); npx playwright test; took "playwright" "$t0"
