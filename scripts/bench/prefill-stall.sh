#!/usr/bin/env bash
# How long a long prompt stalls the streams already running (issue 8, chunked prefill):
# 3 streams generate, then a 4th request brings a ~1500-token prompt. Reports the running
# streams' largest and p99 inter-token gap while that prompt is read, and the 4th request's
# time to first token: `llama-dashboard serve` (release) against llama.cpp's `llama-server`,
# A/B then B/A over ROUNDS rounds, medians. Targets: our largest gap <= half of
# llama-server's, our TTFT <= 1.15x llama-server's.
#
#   scripts/bench/prefill-stall.sh [MODEL] [ROUNDS]
#
# llama-server is taken from LLAMA_REF_BIN (default /tmp/llama-ref/build/bin, built by
# scripts/bench/build-llama-cpp.sh); without it only ours is measured. EXTRA_SERVE_ARGS go
# to ours (e.g. a different prefill chunk).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/bench/servers.sh
bench_args "$@"
REF="${LLAMA_REF_BIN:-/tmp/llama-ref/build/bin}"
if [ ! -x "$REF/llama-server" ]; then
  echo "no llama-server in $REF (scripts/bench/build-llama-cpp.sh builds it): measuring ours only" >&2
  REF=""
fi
bench_start_servers "$MODEL" "$REF"

python3 - "${PA:-}" "$PB" "$ROUNDS" "$MODEL" "$THREADS" "$NP" "$CTX" <<'PY'
import json, statistics, subprocess, sys, time
pa, pb, rounds, model, threads, np_, ctx = sys.argv[1:]
rounds = int(rounds)
servers = ([("llama-server", pa)] if pa else []) + [("llama-dashboard", pb)]
res = {name: [] for name, _ in servers}
for i in range(rounds):
    pair = servers if i % 2 == 0 else servers[::-1]   # A B, then B A
    for name, port in pair:
        out = subprocess.run(["python3", "scripts/bench/prefill_stall.py", f"http://127.0.0.1:{port}", str(i + 1)],
                             check=True, capture_output=True, text=True).stdout
        res[name].append(json.loads(out))
        time.sleep(1)
med = lambda name, key: statistics.median(r[key] for r in res[name] if r[key] is not None)
print(f"model {model}, threads {threads}, --parallel {np_}, ctx {ctx}/slot, {rounds} rounds A/B/B/A (medians)")
for name, _ in servers:
    print(f"{name:15s} prompt {res[name][0]['prompt_n']} tok: largest gap {med(name, 'max_gap_ms'):7.1f} ms, "
          f"p99 gap {med(name, 'p99_gap_ms'):7.1f} ms, pace before {med(name, 'pace_ms'):5.1f} ms/token, "
          f"4th TTFT {med(name, 'ttft_ms'):7.1f} ms")
if pa:
    A, B = "llama-server", "llama-dashboard"
    g = med(B, "max_gap_ms") / med(A, "max_gap_ms")
    t = med(B, "ttft_ms") / med(A, "ttft_ms")
    print(f"ratios          largest gap {g:.2f}x (target <= 0.50), 4th TTFT {t:.2f}x (target <= 1.15)")
PY
