#!/usr/bin/env bash
# Soak test (issue 9; not in CI): CLIENTS clients for MINUTES minutes against a release
# `llama-dashboard serve --models-max 1` with the two test models, mixing chat, streams
# cancelled half-way, embeddings, invalid and hostile requests and model switches. Prints
# requests, statuses, p50/p99 latency and RSS after warm-up and at the end (soak.py).
# Target: 0 5xx, RSS growth under 5 % after warm-up.
#
#   scripts/bench/soak.sh [CLIENTS=8] [MINUTES=20]
set -euo pipefail
cd "$(dirname "$0")/../.."
CLIENTS="${1:-8}"; MINUTES="${2:-20}"
eval "$(scripts/fetch-test-models.sh)"
cargo build --release -q -p llama-dashboard
ours="${CARGO_TARGET_DIR:-target}/release/llama-dashboard"
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
mkdir -p "$WORK/models"
ln -s "$(realpath "$LLAMA_DASHBOARD_TEST_MODEL")" "$WORK/models/smol.gguf"
ln -s "$(realpath "$LLAMA_DASHBOARD_TEST_MODEL_2")" "$WORK/models/gemma.gguf"
PORT=$((19000 + RANDOM % 1000))
HOME="$WORK" "$ours" --config-dir "$WORK/c" --data-dir "$WORK/d" serve --port "$PORT" \
  --models-dir "$WORK/models" --models-max 1 --parallel 4 -c 8192 >"$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 600); do curl -sf "127.0.0.1:$PORT/v1/models" | grep -q smol && break; sleep 0.1; done
status=0
python3 scripts/bench/soak.py "http://127.0.0.1:$PORT" "$PID" smol gemma "$CLIENTS" "$MINUTES" || status=$?
kill -0 "$PID" 2>/dev/null || { echo "the server died:"; tail -30 "$WORK/server.log"; exit 1; }
echo "server log panics: $(grep -ci panicked "$WORK/server.log" || true)"
exit $status
