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
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --all-targets --no-fail-fast "$@"
else
  cargo test --workspace --all-targets --no-fail-fast "$@"
fi
