"""The serve benchmarks' A/B/B/A rounds: each test of serve_bench.py on server A then B, then
B then A in the next round, with fresh prompts per round and a pause between switches.

    from ab_rounds import ab_rounds
    med = ab_rounds([("name-a", port_a), ("name-b", port_b)], ["tg", "ttft"], rounds, pause)
    med("name-a", "tg", "tps")   # the median of that figure over the rounds
"""

import json
import statistics
import subprocess
import time


def run(port, test, rnd):
    out = subprocess.run(
        ["python3", "scripts/bench/serve_bench.py", f"http://127.0.0.1:{port}", "model", test, str(rnd)],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out)


def ab_rounds(servers, tests, rounds, pause=1.0):
    """Runs the rounds; returns the results {name: {test: [result, ...]}} and a median getter."""
    res = {name: {t: [] for t in tests} for name, _ in servers}
    for i in range(rounds):
        for test in tests:
            pair = servers if i % 2 == 0 else servers[::-1]  # A B, then B A
            for name, port in pair:
                res[name][test].append(run(port, test, i + 1))
                time.sleep(pause)

    def med(name, test, key):
        return statistics.median(r[key] for r in res[name][test])

    return res, med
