#!/usr/bin/env bash
# What running each model in a worker process costs (issue 16): two `llama-dashboard serve`
# on the same model, threads, slots and context, one with `models.isolation = "thread"` (A),
# one with `"process"` (B), measured in turns A/B/B/A over ROUNDS rounds with fresh prompts:
# single-stream tokens/s, 4-stream aggregate, time to first token; medians and ratios
# (targets: >= 0.98x throughput, <= +2 ms TTFT). Then memory: the thread server's RSS
# against the process server's plus its worker's, with the model loaded in both.
#
#   scripts/bench/worker-cost.sh [MODEL] [ROUNDS]
#
# DASHBOARD=path/to/llama-dashboard uses that (release) binary instead of building one.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/bench/servers.sh
bench_args "$@"
if [ -z "${DASHBOARD:-}" ]; then
  cargo build --release -q -p llama-dashboard
  DASHBOARD="${CARGO_TARGET_DIR:-target}/release/llama-dashboard"
fi
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
mkdir -p "$WORK/models"; ln -s "$(realpath "$MODEL")" "$WORK/models/model.gguf"
PA=$((19000 + RANDOM % 1000)); PB=$((PA + 1))
LLAMA_DASHBOARD_MODELS_ISOLATION=thread bench_start_ours "$DASHBOARD" "$PA" "$WORK/a"; PIDA=$!
LLAMA_DASHBOARD_MODELS_ISOLATION=process bench_start_ours "$DASHBOARD" "$PB" "$WORK/b"; PIDB=$!
for p in $PA $PB; do
  for _ in $(seq 600); do curl -sf "127.0.0.1:$p/v1/models" | grep -q model && break; sleep 0.1; done
  python3 scripts/bench/serve_bench.py "http://127.0.0.1:$p" model tg 0 >/dev/null
done

python3 - "$PA" "$PB" "$ROUNDS" "$MODEL" "$THREADS" "$NP" "$CTX" "$PIDA" "$PIDB" <<'PY'
import json, sys, urllib.request
sys.path.insert(0, "scripts/bench")
from ab_rounds import ab_rounds
pa, pb, rounds, model, threads, np_, ctx, pida, pidb = sys.argv[1:]
rounds = int(rounds)
res, med = ab_rounds([("thread", pa), ("process", pb)], ["tg", "conc4", "ttft"], rounds, pause=0.5)
A, B = "thread", "process"
print(f"model {model}, threads {threads}, --parallel {np_}, ctx {ctx}/slot, {rounds} rounds A/B/B/A (medians)")
for test, label in [("tg", "1 stream "), ("conc4", "4 streams")]:
    a, b = med(A, test, "tps"), med(B, test, "tps")
    print(f"{label}  thread {a:8.1f} t/s   process {b:8.1f} t/s   ratio {b/a:.3f}  (target >= 0.98)")
a, b = med(A, "ttft", "ttft_ms"), med(B, "ttft", "ttft_ms")
print(f"ttft       thread {a:8.1f} ms    process {b:8.1f} ms    overhead {b-a:+.2f} ms  (target <= +2 ms)")

def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0
models = json.load(urllib.request.urlopen(f"http://127.0.0.1:{pb}/api/models"))["models"]
worker = next(m["worker"] for m in models if m["id"] == "model")
ta, tb, w = rss_kib(pida), rss_kib(pidb), worker["rss_bytes"] // 1024
print(f"memory     thread server {ta/1024:.0f} MiB; process server {tb/1024:.0f} MiB + worker {w/1024:.0f} MiB "
      f"= {(tb+w)/1024:.0f} MiB: {(tb+w-ta)/1024:+.0f} MiB per worker")
PY
