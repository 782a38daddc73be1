#!/usr/bin/env bash
# Runs llama.cpp's own server test suite (tools/server/tests, from the llama.cpp that the PyPI
# sdist of llama-cpp-python vendors: the tree scripts/bench builds llama-server from) against
# llama-server and against `llama-dashboard serve`, on the same local model, and prints per-file
# pass counts and the tests that pass on llama-server and fail on ours (scripts/compat/compare.py).
#
#   scripts/compat/llama-server-suite.sh                 # whole suite (not the "slow" marker)
#   scripts/compat/llama-server-suite.sh unit/test_basic.py -k health   # pytest selection
#   COMPAT_ONLY=ours scripts/compat/llama-server-suite.sh ...           # reuse llama-server's last report
#   COMPAT_ONLY=ref  scripts/compat/llama-server-suite.sh               # llama-server alone (the yardstick)
#   PORT=8180 ...    the suite's first server port (default 8080), so two runs can share a machine
#
# The suite downloads its tiny models from Hugging Face, which is unreachable here; the wrapper
# (as-llama-server.py) gives both servers SmolLM2 instead, so tests that check stories260K's
# exact text fail on both and are not counted. Reports go to $COMPAT_OUT.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="${LLAMA_DASHBOARD_CACHE:-$HOME/.cache/llama-dashboard}"
OUT="${COMPAT_OUT:-$CACHE/compat}"
mkdir -p "$OUT"

REF_BIN="$("$ROOT/scripts/bench/build-llama-cpp.sh")"
REF_ROOT="$(dirname "$(dirname "$REF_BIN")")"
eval "$("$ROOT/scripts/fetch-test-models.sh")"
MODEL="${COMPAT_MODEL:-$LLAMA_DASHBOARD_TEST_MODEL}"

# The suite runs in a copy (it writes tmp/ and logs next to its files), laid out as in the
# llama.cpp tree: its template tests read ../../../models/templates.
SUITE="$OUT/llama.cpp/tools/server/tests"
rm -rf "$OUT/llama.cpp" && mkdir -p "$(dirname "$SUITE")"
cp -r "$REF_ROOT/src/tools/server/tests" "$SUITE"
ln -s "$REF_ROOT/src/models" "$OUT/llama.cpp/models"

VENV="$CACHE/compat-venv"
if [ ! -x "$VENV/bin/pytest" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
  # The suite's own pins, loosened to what installs on this Python.
  "$VENV/bin/pip" install --quiet pytest requests wget openai numpy prometheus-client filelock \
    aiohttp pytest-timeout
fi

# COMPAT_DASHBOARD=path/to/llama-dashboard skips the release build (e.g. a debug binary
# from `cargo nextest run --no-run` while iterating on one test file).
DASH="${COMPAT_DASHBOARD:-}"
if [ -z "$DASH" ]; then
  (cd "$ROOT" && cargo build --release --bin llama-dashboard >&2)
  DASH="${CARGO_TARGET_DIR:-$ROOT/target}/release/llama-dashboard"
fi

SEL=("$@")
[ ${#SEL[@]} -eq 0 ] && SEL=(unit -m "not slow")

run() { # target report
  local target="$1" report="$2"
  rm -rf "$OUT/homes" && mkdir -p "$OUT/homes"
  echo "== $target: ${SEL[*]}" >&2
  (cd "$SUITE" && COMPAT_TARGET="$target" COMPAT_MODEL="$MODEL" \
    COMPAT_LLAMA_SERVER="$REF_BIN/llama-server" COMPAT_DASHBOARD="$DASH" \
    COMPAT_DROPPED="$OUT/dropped-flags.txt" COMPAT_HOMES="$OUT/homes" \
    LLAMA_SERVER_BIN_PATH="$HERE/as-llama-server.py" \
    "$VENV/bin/pytest" -p no:cacheprovider -q --timeout 300 --junitxml="$report" "${SEL[@]}" \
    >"$OUT/$target.log" 2>&1) || true
  tail -1 "$OUT/$target.log" >&2
}
if [ "${COMPAT_ONLY:-}" != ours ]; then run ref "$OUT/ref.xml"; fi
if [ "${COMPAT_ONLY:-}" != ref ]; then rm -f "$OUT/dropped-flags.txt"; run ours "$OUT/ours.xml"; fi
"$VENV/bin/python" "$HERE/compare.py" "$OUT/ref.xml" "$OUT/ours.xml" "$ROOT/docs/COMPATIBILITY.md" \
  "$OUT/dropped-flags.txt" | tee "$OUT/report.txt"
