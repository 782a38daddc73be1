#!/usr/bin/env bash
# `llama-dashboard serve` against llama.cpp's `llama-server`: same model, threads, slots
# and per-slot context, both running at once, measured in turns A/B/B/A over ROUNDS rounds
# with fresh prompts and pauses between switches; medians and ratios (issue #4 targets:
# single-stream tg >= 0.97, TTFT overhead <= 5 ms, 4/8-stream aggregate >= 0.97, /v1/models
# p99 under 100 connections; issue #3: 4-stream gain >= llama-server's, shared-prefix
# second prompt <= 20% of the first; issue #8: 100 queued 16-token streams >= 1.00, as
# llama-server's wall time over ours).
#
#   scripts/bench/serve-vs-llama-server.sh [MODEL] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/bench/servers.sh
bench_args "$@"
REF=$(scripts/bench/build-llama-cpp.sh)
bench_start_servers "$MODEL" "$REF"

python3 - "$PA" "$PB" "$ROUNDS" "$MODEL" "$THREADS" "$NP" "$CTX" <<'PY'
import statistics, sys
sys.path.insert(0, "scripts/bench")
from ab_rounds import ab_rounds
pa, pb, rounds, model, threads, np_, ctx = sys.argv[1:]
rounds = int(rounds)
servers = [("llama-server", pa), ("llama-dashboard", pb)]
tests = ["tg", "ttft", "conc4", "conc8", "queue100", "prefix", "models"]
res, med = ab_rounds(servers, tests, rounds)
A, B = "llama-server", "llama-dashboard"
print(f"model {model}, threads {threads}, --parallel {np_}, ctx {ctx}/slot, {rounds} rounds A/B/B/A (medians)")
for test, key, unit, higher in [("tg", "tps", "t/s", True), ("conc4", "tps", "t/s", True), ("conc8", "tps", "t/s", True)]:
    a, b = med(A, test, key), med(B, test, key)
    print(f"{test:7s} llama-server {a:8.1f} {unit}  llama-dashboard {b:8.1f} {unit}  ratio {b/a:.3f}")
a, b = med(A, "queue100", "seconds"), med(B, "queue100", "seconds")
print(f"queue   llama-server {a:8.2f} s    llama-dashboard {b:8.2f} s    ratio {a/b:.3f} (100 streams x 16 tokens, wall)")
a, b = med(A, "ttft", "ttft_ms"), med(B, "ttft", "ttft_ms")
print(f"ttft    llama-server {a:8.1f} ms   llama-dashboard {b:8.1f} ms   overhead {b-a:+.1f} ms")
for name in (A, B):
    gain = med(name, "conc4", "tps") / med(name, "tg", "tps")
    print(f"gain    {name}: 4 streams / 1 stream = {gain:.2f}x")
for name in (A, B):
    r = res[name]["prefix"]
    print(f"prefix  {name}: first {statistics.median(x['prompt_ms_first'] for x in r):.0f} ms "
          f"({r[0]['prompt_n_first']} tok), second {statistics.median(x['prompt_ms_second'] for x in r):.1f} ms "
          f"({r[0]['prompt_n_second']} tok), ratio {statistics.median(x['ratio'] for x in r):.3f}")
for name in (A, B):
    print(f"models  {name}: /v1/models p50 {med(name, 'models', 'p50_ms'):.1f} ms, p99 {med(name, 'models', 'p99_ms'):.1f} ms (100 connections)")
PY
