#!/usr/bin/env bash
# `llama-dashboard bench` against llama.cpp's `llama-bench` on the same model, threads and
# sizes, interleaved A/B/B/A over several rounds (the machine is noisy), medians and ratios.
# Target (issue #3): pp and tg ratio >= 0.97.
#
#   scripts/bench/bench-vs-llama-bench.sh [MODEL] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL="${1:-${LLAMA_DASHBOARD_TEST_MODEL:-}}"
ROUNDS="${2:-4}"
THREADS="${THREADS:-$(python3 -c 'import os; print(max(1, len(os.sched_getaffinity(0))))')}"
P="${P:-512}"; N="${N:-128}"; R="${R:-3}"
[ -n "$MODEL" ] || MODEL=$(eval "$(scripts/fetch-test-models.sh)"; echo "$LLAMA_DASHBOARD_TEST_MODEL")
REF=$(scripts/bench/build-llama-cpp.sh)
cargo build --release -q -p llama-dashboard
OURS="${CARGO_TARGET_DIR:-target}/release/llama-dashboard"

python3 - "$REF/llama-bench" "$OURS" "$MODEL" "$ROUNDS" "$THREADS" "$P" "$N" "$R" <<'PY'
import json, statistics, subprocess, sys, tempfile, time
ref, ours, model, rounds, threads, p, n, r = sys.argv[1:]
rounds = int(rounds)
common = ["-p", p, "-n", n, "-r", r, "-t", threads]
data = tempfile.mkdtemp()

def llama_bench():
    out = subprocess.run([ref, "-m", model, *common, "-o", "json"], check=True, capture_output=True, text=True).stdout
    rows = json.loads(out)
    return {("pp" if row["n_prompt"] else "tg"): row["avg_ts"] for row in rows}

def dashboard():
    out = subprocess.run([ours, "--data-dir", data, "bench", model, *common, "--json"], check=True,
                         capture_output=True, text=True).stdout
    rows = json.loads(out)["results"]
    return {("pp" if row["n_prompt"] else "tg"): row["avg_ts"] for row in rows}

res = {"llama-bench": {"pp": [], "tg": []}, "llama-dashboard": {"pp": [], "tg": []}}
order = [("llama-bench", llama_bench), ("llama-dashboard", dashboard)]
for i in range(rounds):
    pair = order if i % 2 == 0 else order[::-1]   # A B, then B A
    for name, fn in pair:
        got = fn()
        for k in ("pp", "tg"):
            res[name][k].append(got[k])
        time.sleep(2)
print(f"model {model}, threads {threads}, pp{p} / tg{n}, {r} reps per run, {rounds} rounds A/B/B/A")
for k in ("pp", "tg"):
    a = statistics.median(res["llama-bench"][k]); b = statistics.median(res["llama-dashboard"][k])
    print(f"{k}: llama-bench median {a:8.1f} t/s  llama-dashboard median {b:8.1f} t/s  ratio {b/a:.3f}"
          f"   (runs: {[round(x,1) for x in res['llama-bench'][k]]} vs {[round(x,1) for x in res['llama-dashboard'][k]]})")
PY
