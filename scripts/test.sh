#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs, fetches the test models,
# builds, and runs every test. Tests that need a model fail (never skip) under CI=true when
# it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

eval "$(scripts/setup.sh)"
eval "$(scripts/fetch-test-models.sh)"
export LLAMA_DASHBOARD_PYTHON LLAMA_DASHBOARD_TEST_MODEL LLAMA_DASHBOARD_TEST_MODEL_2

echo "test models: $LLAMA_DASHBOARD_TEST_MODEL $LLAMA_DASHBOARD_TEST_MODEL_2" >&2
rc=0
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --all-targets --no-fail-fast "$@" || rc=$?
else
  cargo test --workspace --all-targets --no-fail-fast "$@" || rc=$?
fi
# The web dashboard: Vitest, then Playwright against the binary the run above built.
web_start=$(date +%s)
scripts/web-test.sh || rc=$?
echo "web tests took $(( $(date +%s) - web_start )) s" >&2
exit $rc
