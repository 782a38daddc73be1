"""One prefill-stall measurement against llama-dashboard or llama-server (issue 8).

Usage: prefill_stall.py BASE_URL ROUND

Three streams generate; once each has produced a few tokens, a fourth request arrives with
a ~1500-token prompt (fresh each ROUND, so no prompt cache helps). While that prompt is
read, the running streams' tokens are held up by it: we report their inter-token gaps that
overlap the window from the fourth request's send to its first token (largest and p99, ms),
the same streams' median gap before it (the undisturbed pace), and the fourth request's
time to first token (ms) and prompt size (the server's `timings.prompt_n`).
Uses the native `/completion` stream, which both servers speak. Standard library only.
Prints one JSON line.
"""

import http.client
import json
import statistics
import sys
import threading
import time
import urllib.parse

base, rnd = sys.argv[1], int(sys.argv[2])
url = urllib.parse.urlparse(base)
RUNNING = 3
WARM_TOKENS = 8


def stream(prompt, n_predict, on_token, stop_flag=None):
    """Streams /completion; calls on_token(t) per token; returns the final event."""
    c = http.client.HTTPConnection(url.hostname, url.port, timeout=600)
    body = {
        "prompt": prompt,
        "n_predict": n_predict,
        "temperature": 0,
        "ignore_eos": True,
        "cache_prompt": False,
        "stream": True,
    }
    c.request("POST", "/completion", json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse()
    if r.status != 200:
        raise RuntimeError(f"{r.status} {r.read()[:300]!r}")
    last = {}
    while True:
        if stop_flag is not None and stop_flag.is_set():
            c.close()  # cancels the request
            return last
        line = r.readline()
        if not line:
            return last
        line = line.strip()
        if not line.startswith(b"data:"):
            continue
        payload = line[5:].strip()
        if payload == b"[DONE]":
            return last
        ev = json.loads(payload)
        if ev.get("stop"):
            return ev
        on_token(time.perf_counter())
        last = ev


arrivals = [[] for _ in range(RUNNING)]
done = threading.Event()
warm = threading.Barrier(RUNNING + 1)


def runner(i):
    warmed = False

    def on_token(t):
        nonlocal warmed
        arrivals[i].append(t)
        if not warmed and len(arrivals[i]) >= WARM_TOKENS:
            warmed = True
            warm.wait()

    stream(f"Story {rnd}-{i}: the lighthouse keeper number {rnd * 100 + i} said", 4000, on_token, done)


threads = [threading.Thread(target=runner, args=(i,), daemon=True) for i in range(RUNNING)]
for t in threads:
    t.start()
warm.wait(timeout=120)

facts = " ".join(f"Fact {rnd}.{i}: the number {i} follows {i - 1}." for i in range(85))
prompt = f"Round {rnd}. " + facts + "\nQuestion: what follows 5?"
first = []
t_send = time.perf_counter()
final = stream(prompt, 1, lambda t: first.append(t))
t_first = first[0] if first else time.perf_counter()
time.sleep(0.2)  # a few tokens after the window, so the gap spanning its end is seen
done.set()
for t in threads:
    t.join(timeout=30)

before, during = [], []
for ts in arrivals:
    for a, b in zip(ts, ts[1:]):
        gap = (b - a) * 1e3
        if b <= t_send:
            before.append(gap)
        elif a < t_first:
            during.append(gap)  # overlaps the window [t_send, t_first]
during.sort()
print(
    json.dumps(
        {
            "max_gap_ms": during[-1] if during else None,
            "p99_gap_ms": during[max(0, int(len(during) * 0.99) - 1)] if during else None,
            "gaps_in_window": len(during),
            "pace_ms": statistics.median(before) if before else None,
            "ttft_ms": (t_first - t_send) * 1e3,
            "prompt_n": final.get("timings", {}).get("prompt_n"),
        }
    )
)
