# Sourced by the serve benchmarks — the one copy of their arguments and of their server
# start/stop code.
#
#   bench_args "$@"
#
# MODEL (argument 1, else LLAMA_DASHBOARD_TEST_MODEL, else fetched), ROUNDS (argument 2,
# default 6), THREADS (default: the CPUs we may use), NP slots (4), CTX per slot (2048).
#
#   bench_start_servers MODEL REF_BIN_DIR
#
# Builds `llama-dashboard` (release), starts llama.cpp's `llama-server` from REF_BIN_DIR
# (skipped when REF_BIN_DIR is empty) and `llama-dashboard serve` on the same model with the
# same threads, slots (NP) and per-slot context (CTX), waits until both answer, and warms
# them. Sets PA (llama-server's port, empty without it), PB (ours) and WORK. Both servers
# stop, and WORK is removed, when the calling script exits. EXTRA_SERVE_ARGS go to ours.
bench_start_servers() {
  local model="$1" ref="$2" p
  cargo build --release -q -p llama-dashboard
  local ours="${CARGO_TARGET_DIR:-target}/release/llama-dashboard"
  WORK=$(mktemp -d)
  trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
  mkdir -p "$WORK/models"; ln -s "$(realpath "$model")" "$WORK/models/model.gguf"
  PA=$((18000 + RANDOM % 1000)); PB=$((PA + 1))
  if [ -n "$ref" ]; then
    "$ref/llama-server" -m "$model" --host 127.0.0.1 --port "$PA" -t "$THREADS" -np "$NP" \
      -c $((CTX * NP)) --alias model --log-disable >/dev/null 2>&1 &
  else
    PA=""
  fi
  bench_start_ours "$ours" "$PB" "$WORK/b"
  for p in $PA $PB; do
    for _ in $(seq 600); do curl -sf "127.0.0.1:$p/v1/models" | grep -q model && break; sleep 0.1; done
  done
  # Warm both (loads, first-touch of the weights).
  for p in $PA $PB; do python3 scripts/bench/serve_bench.py "http://127.0.0.1:$p" model tg 0 >/dev/null; done
}

# Starts `llama-dashboard serve` (binary OURS) on PORT over $WORK/models with the benchmark's
# threads, slots and context, its folders under DIR; EXTRA_SERVE_ARGS go to it. In the
# background: wait for it yourself.
bench_start_ours() {
  local ours="$1" port="$2" dir="$3"
  # shellcheck disable=SC2086
  HOME="$WORK" "$ours" --config-dir "$dir/c" --data-dir "$dir/d" serve --port "$port" -t "$THREADS" \
    --parallel "$NP" -c $((CTX * NP)) --models-dir "$WORK/models" -m model ${EXTRA_SERVE_ARGS:-} >/dev/null 2>&1 &
}

bench_args() {
  MODEL="${1:-${LLAMA_DASHBOARD_TEST_MODEL:-}}"
  ROUNDS="${2:-6}"
  THREADS="${THREADS:-$(python3 -c 'import os; print(max(1, len(os.sched_getaffinity(0))))')}"
  NP="${NP:-4}"; CTX="${CTX:-2048}"
  [ -n "$MODEL" ] || MODEL=$(eval "$(scripts/fetch-test-models.sh)"; echo "$LLAMA_DASHBOARD_TEST_MODEL")
}
