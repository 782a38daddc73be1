"""One measurement against an OpenAI-compatible server (llama-dashboard or llama-server).

Usage: serve_bench.py BASE_URL MODEL TEST ROUND

TEST is one of:
  tg        one stream of 128 generated tokens: tokens/s from the client's clock
  ttft      time to the first streamed token of a short prompt (ms)
  conc4     4 concurrent streams of 64 tokens: aggregate tokens/s
  conc8     8 concurrent streams of 64 tokens: aggregate tokens/s
  queue100  100 concurrent streams of 16 tokens (most of them queued behind the slots):
            wall seconds until the last one finished
  prefix    a ~1600-token prompt, then another sharing all but its last line:
            prompt_ms of both (the server's own timings) and their ratio
  models    GET /v1/models from 100 concurrent connections, 20 each: p50/p99 ms

ROUND makes the prompts fresh (no prompt cache across rounds). Prints one JSON line.
Only the standard library is used, so any Python 3 runs it.
"""

import http.client
import json
import sys
import threading
import time
import urllib.parse

base, model, test, rnd = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
url = urllib.parse.urlparse(base)


def conn():
    return http.client.HTTPConnection(url.hostname, url.port, timeout=600)


def post(path, body, c=None):
    c = c or conn()
    c.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    if r.status != 200:
        raise RuntimeError(f"{path}: {r.status} {data[:300]!r}")
    return json.loads(data)


def stream_tokens(prompt, n, first_token_at=None):
    """Streams a chat completion of exactly n tokens; returns (tokens, seconds, ttft)."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": n,
        "temperature": 0,
        "ignore_eos": True,
        "stream": True,
    }
    c = conn()
    t0 = time.perf_counter()
    c.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse()
    if r.status != 200:
        raise RuntimeError(f"{r.status} {r.read()[:300]!r}")
    ttft = None
    chunks = 0
    while True:
        line = r.readline()
        if not line:
            break
        line = line.strip()
        if not line.startswith(b"data:"):
            continue
        payload = line[5:].strip()
        if payload == b"[DONE]":
            break
        ev = json.loads(payload)
        for ch in ev.get("choices", []):
            if ch.get("delta", {}).get("content"):
                chunks += 1
                if ttft is None:
                    ttft = time.perf_counter() - t0
    return chunks, time.perf_counter() - t0, ttft


def story(i):
    return f"Story {rnd}-{i}: write a long tale about a lighthouse keeper number {rnd * 100 + i}."


def concurrent(k, n):
    results = [None] * k

    def run(i):
        results[i] = stream_tokens(story(i), n)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(k)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    tokens = sum(r[0] for r in results)
    return {"tokens": tokens, "seconds": wall, "tps": tokens / wall}


if test == "tg":
    tokens, secs, ttft = stream_tokens(story(0), 128)
    # Generation speed: tokens after the first over the time after the first.
    out = {"tokens": tokens, "tps": (tokens - 1) / (secs - ttft)}
elif test == "ttft":
    vals = []
    for i in range(5):
        _, _, ttft = stream_tokens(f"Say {rnd}-{i}.", 1)
        vals.append(ttft * 1e3)
    vals.sort()
    out = {"ttft_ms": vals[len(vals) // 2]}
elif test == "conc4":
    out = concurrent(4, 64)
elif test == "conc8":
    out = concurrent(8, 64)
elif test == "queue100":
    out = concurrent(100, 16)
elif test == "prefix":
    facts = " ".join(f"Fact {rnd}.{i}: the number {i} follows {i - 1}." for i in range(90))
    first = post(
        "/completion",
        {"model": model, "prompt": facts + "\nQuestion: what follows 5?", "n_predict": 1, "cache_prompt": True},
    )
    second = post(
        "/completion",
        {"model": model, "prompt": facts + "\nQuestion: what follows 9?", "n_predict": 1, "cache_prompt": True},
    )
    a, b = first["timings"], second["timings"]
    out = {
        "prompt_n_first": a["prompt_n"],
        "prompt_ms_first": a["prompt_ms"],
        "prompt_n_second": b["prompt_n"],
        "prompt_ms_second": b["prompt_ms"],
        "ratio": b["prompt_ms"] / a["prompt_ms"],
    }
elif test == "models":
    lat = []
    lock = threading.Lock()

    def worker():
        c = conn()
        mine = []
        for _ in range(20):
            t0 = time.perf_counter()
            c.request("GET", "/v1/models")
            r = c.getresponse()
            r.read()
            mine.append((time.perf_counter() - t0) * 1e3)
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lat.sort()
    out = {"p50_ms": lat[len(lat) // 2], "p99_ms": lat[int(len(lat) * 0.99) - 1], "n": len(lat)}
else:
    raise SystemExit(f"unknown test {test}")
print(json.dumps(out))
