#!/usr/bin/env bash
# The host-RAM prompt cache (`--cache-ram`, issue 10) on the workload it is for: one slot,
# two long prompts A and B alternating (A B A B ...), so each request overwrites the other's
# KV. Runs `llama-dashboard serve -np 1` with `--cache-ram 0` and with `--cache-ram MIB`,
# ROUNDS requests each, and prints the prompt tokens evaluated (sum of `timings.prompt_n`),
# the tokens reused (`cache_n`) and the wall time, with the on/off ratios. With llama.cpp's
# llama-server in LLAMA_REF_BIN (default /tmp/llama-ref/build/bin) it is measured the same way.
#
#   scripts/bench/cache-ram.sh [MODEL] [ROUNDS]
#
# DASHBOARD=path/to/llama-dashboard (default: the release build in CARGO_TARGET_DIR or
# target/, built if missing). Wall times mean something only for a release build; the token
# counts hold for any build. CACHE_MIB (default 8192, llama-server's default), PROMPT_REPEAT
# (the prompts' length, default 60 sentences ~ 500 tokens), THREADS.
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL="${1:-${LLAMA_DASHBOARD_TEST_MODEL:-}}"
ROUNDS="${2:-10}"
[ -n "$MODEL" ] || { echo "usage: $0 MODEL [ROUNDS] (or set LLAMA_DASHBOARD_TEST_MODEL)" >&2; exit 2; }
THREADS="${THREADS:-$(python3 -c 'import os; print(max(1, len(os.sched_getaffinity(0))))')}"
CACHE_MIB="${CACHE_MIB:-8192}"
OURS="${DASHBOARD:-${CARGO_TARGET_DIR:-target}/release/llama-dashboard}"
if [ ! -x "$OURS" ]; then
  cargo build --release -q --bin llama-dashboard
fi
REF="${LLAMA_REF_BIN:-/tmp/llama-ref/build/bin}"
[ -x "$REF/llama-server" ] || REF=""
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

# start NAME MIB: one server with one slot; sets PORT and PID.
start() {
  local name="$1" mib="$2" port=$((19000 + RANDOM % 1000))
  if [ "$name" = llama-server ]; then
    "$REF/llama-server" -m "$MODEL" --host 127.0.0.1 --port "$port" -t "$THREADS" -np 1 -c 4096 \
      --cache-ram "$mib" --alias model --log-disable >/dev/null 2>&1 &
  else
    HOME="$WORK" "$OURS" --config-dir "$WORK/c$port" --data-dir "$WORK/d$port" serve --port "$port" \
      -t "$THREADS" -np 1 -c 4096 -m "$MODEL" --alias model --cache-ram "$mib" >/dev/null 2>&1 &
  fi
  PID=$!; PORT=$port
  PIDS+=("$PID")
  for _ in $(seq 1200); do curl -sf "127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
}

# measure NAME MIB: one JSON line of the alternating workload's figures.
measure() {
  local name="$1" mib="$2"
  start "$name" "$mib" >&2
  python3 - "$PORT" "$ROUNDS" "${PROMPT_REPEAT:-60}" <<'PY'
import json, sys, time, urllib.request
port, rounds, repeat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
prompts = [f"About towers. {'The old tower stands tall over the town. ' * repeat}",
           f"About rivers. {'The wide river runs slowly to the sea. ' * repeat}"]
def ask(prompt):
    body = json.dumps({"prompt": prompt, "n_predict": 4, "cache_prompt": True}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/completion", body,
                                 {"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req, timeout=600))["timings"]
for p in prompts:          # warm-up: both prompts computed once (not counted)
    ask(p)
evaluated = reused = 0
t0 = time.monotonic()
for i in range(rounds):
    t = ask(prompts[i % 2])
    evaluated += t["prompt_n"]; reused += t["cache_n"]
print(json.dumps({"evaluated": evaluated, "reused": reused, "seconds": time.monotonic() - t0}))
PY
  kill "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
}

echo "model $MODEL, 1 slot, $ROUNDS requests alternating two prompts, threads $THREADS"
for name in ${REF:+llama-server} llama-dashboard; do
  off=$(measure "$name" 0)
  on=$(measure "$name" "$CACHE_MIB")
  python3 - "$name" "$off" "$on" "$CACHE_MIB" <<'PY'
import json, sys
name, off, on, mib = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
for label, r in (("--cache-ram 0", off), (f"--cache-ram {mib}", on)):
    print(f"{name:15s} {label:17s} prompt tokens evaluated {r['evaluated']:7d}, reused {r['reused']:7d}, "
          f"wall {r['seconds']:7.2f} s")
ratio = on["evaluated"] / max(1, off["evaluated"])
print(f"{name:15s} on/off: prompt tokens evaluated {ratio:.3f}x, wall time {on['seconds'] / off['seconds']:.2f}x")
PY
done
