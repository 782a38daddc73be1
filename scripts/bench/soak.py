"""Soak: N clients for M minutes against one running llama-dashboard, mixing what real and
hostile clients send; the server must answer every request with a success or a 4xx (never a
5xx, never a dropped connection) and must not grow.

Usage: soak.py BASE_URL PID CHAT_MODEL OTHER_MODEL CLIENTS MINUTES

Each client loops over, at random (seeded per client):
  chat      a non-streamed chat answer (CHAT_MODEL)
  cancel    a streamed chat read half-way, then the connection is closed
  embed     /v1/embeddings of a few inputs, and the native /embedding per token
  switch    a completion on OTHER_MODEL (with --models-max 1 this swaps the loaded model)
  invalid   one of many bad requests (malformed JSON, unknown model, bad role, limits,
            foreign Origin, unknown route, wrong method): a 4xx is the right answer
RSS of PID is sampled every 5 s. Which model is loaded changes the RSS by hundreds of MiB,
so growth is measured in one state: after the warm-up (the first 10 % of the run, at least
60 s) and at the end, the clients pause, every model is unloaded, CHAT_MODEL answers once,
and the RSS is read ("start" and "end"). Prints one summary and a JSON line; exits 1 on any 5xx or
transport error. Only the standard library is used.
"""

import http.client
import json
import random
import statistics
import sys
import threading
import time
import urllib.parse

base, pid, chat_model, other_model = sys.argv[1:5]
clients, minutes = int(sys.argv[5]), float(sys.argv[6])
url = urllib.parse.urlparse(base)
deadline = time.monotonic() + minutes * 60
warmup = max(60.0, minutes * 6.0)

lock = threading.Lock()
statuses = {}  # (kind, status) -> count
latencies = {}  # kind -> [ms]
failures = []  # first few 5xx / transport errors, for the report


def rss_mb():
    """The server's resident memory, or 0 once it is gone (then every request fails too)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


def record(kind, status, ms, detail=""):
    with lock:
        statuses[(kind, status)] = statuses.get((kind, status), 0) + 1
        latencies.setdefault(kind, []).append(ms)
        wrong = status == "error" or (isinstance(status, int) and (status >= 500 or (kind == "invalid" and status < 400)))
        if wrong and len(failures) < 20:
            failures.append(f"{kind}: {status} {detail[:300]}")


def request(method, path, body=None, headers=None, raw=None):
    c = http.client.HTTPConnection(url.hostname, url.port, timeout=300)
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    data = raw if raw is not None else (json.dumps(body) if body is not None else None)
    c.request(method, path, data, h)
    r = c.getresponse()
    payload = r.read()
    c.close()
    return r.status, payload


def timed(kind, fn):
    t0 = time.perf_counter()
    try:
        status, detail = fn()
    except Exception as e:  # a dropped connection or a timeout is a failure
        status, detail = "error", repr(e)
    record(kind, status, (time.perf_counter() - t0) * 1e3, detail)


def chat(rng):
    q = rng.choice(["What is the capital of France?", "Name a colour.", "Count to five.", "Say hello."])
    s, p = request("POST", "/v1/chat/completions", {
        "model": chat_model, "messages": [{"role": "user", "content": q}],
        "max_tokens": rng.randint(4, 32), "temperature": rng.choice([0, 0.7])})
    return s, p.decode(errors="replace")


def cancel(rng):
    c = http.client.HTTPConnection(url.hostname, url.port, timeout=300)
    c.request("POST", "/v1/chat/completions", json.dumps({
        "model": chat_model, "stream": True, "max_tokens": 64, "ignore_eos": True,
        "messages": [{"role": "user", "content": "Tell me a long story about the sea."}]}),
        {"Content-Type": "application/json"})
    r = c.getresponse()
    if r.status != 200:
        return r.status, r.read().decode(errors="replace")
    want, got = rng.randint(1, 16), 0
    while got < want:
        line = r.readline()
        if not line:
            break
        if line.startswith(b"data:"):
            got += 1
    c.close()  # hang up mid-stream: the server must free the slot
    return 200, ""


def embed(rng):
    if rng.random() < 0.5:
        s, p = request("POST", "/v1/embeddings", {
            "model": chat_model, "input": [f"text {rng.random()}" for _ in range(rng.randint(1, 4))]})
    else:
        s, p = request("POST", "/embedding", {"model": chat_model, "content": "per token embeddings"})
    return s, p.decode(errors="replace")[:300]


def switch(rng):
    s, p = request("POST", "/v1/completions", {
        "model": other_model, "prompt": "The sky is", "max_tokens": rng.randint(2, 8)})
    return s, p.decode(errors="replace")


def invalid(rng):
    msgs = [{"role": "user", "content": "hi"}]
    cases = [
        lambda: request("POST", "/v1/chat/completions", raw="{not json"),
        lambda: request("POST", "/v1/chat/completions", {"model": "no-such-model", "messages": msgs}),
        lambda: request("POST", "/v1/chat/completions", {"model": chat_model, "messages": [{"role": "wizard", "content": "hi"}]}),
        lambda: request("POST", "/v1/chat/completions", {"model": chat_model, "messages": msgs, "max_tokens": "lots"}),
        lambda: request("POST", "/v1/chat/completions", {"model": chat_model, "messages": msgs,
                                                          "logit_bias": {str(i): 1 for i in range(5000)}}),
        lambda: request("POST", "/v1/chat/completions", {"model": chat_model, "messages": msgs,
                                                          "stop": ["x" * 50] * 500}),
        lambda: request("POST", "/completion", {"model": chat_model, "prompt": "a", "grammar": "root ::= " + "(" * 5000 + "\"a\"" + ")" * 5000}),
        lambda: request("POST", "/api/system/shutdown", raw="{}", headers={"Origin": "https://evil.example", "Content-Type": "text/plain"}),
        lambda: request("GET", "/api/config", headers={"Host": "evil.example"}),
        lambda: request("GET", "/no/such/route"),
        lambda: request("DELETE", "/v1/chat/completions"),
        lambda: request("POST", "/v1/embeddings", {"model": chat_model, "input": []}),
    ]
    i = rng.randrange(len(cases))
    s, p = cases[i]()
    if s < 400:
        return s, f"invalid case {i} answered {s}: {p.decode(errors='replace')[:200]}"
    return s, p.decode(errors="replace")


KINDS = [(chat, 30), (cancel, 20), (embed, 15), (switch, 10), (invalid, 25)]


running = threading.Semaphore(clients)  # a client holds one while it sends a request
resume = threading.Event()
resume.set()


def client(i):
    rng = random.Random(i)
    fns = [f for f, w in KINDS for _ in range(w)]
    while time.monotonic() < deadline:
        resume.wait()
        with running:
            f = rng.choice(fns)
            timed(f.__name__, lambda: f(rng))


def quiet_rss():
    """Pauses the clients, unloads every model, loads CHAT_MODEL with one answer, reads RSS."""
    resume.clear()
    for _ in range(clients):
        running.acquire()
    try:
        for m in (chat_model, other_model):  # unloading a model that is not loaded is a 4xx
            request("POST", f"/api/models/{urllib.parse.quote(m, safe='')}/unload")
        request("POST", "/v1/chat/completions", {
            "model": chat_model, "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 4})
        time.sleep(2)
        return rss_mb()
    except Exception as e:
        print("quiet RSS measurement failed:", repr(e))
        return rss_mb()
    finally:
        for _ in range(clients):
            running.release()
        resume.set()


rss = []  # (seconds since start, MiB)
t_start = time.monotonic()
done = threading.Event()


def sampler():
    while not done.wait(5):
        rss.append((time.monotonic() - t_start, rss_mb()))


threading.Thread(target=sampler, daemon=True).start()
threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
for t in threads:
    t.start()
time.sleep(max(0.0, min(warmup, deadline - time.monotonic() - 10)))
rss_start = quiet_rss()
for t in threads:
    t.join()
done.set()
rss_end = quiet_rss()
rss.append((time.monotonic() - t_start, rss_end))
rss_max = max(m for _, m in rss)
growth = (rss_end - rss_start) / rss_start * 100 if rss_start else 0.0
total = sum(statuses.values())
by_status = {}
for (_, s), n in statuses.items():
    by_status[str(s)] = by_status.get(str(s), 0) + n
five = sum(n for (_, s), n in statuses.items() if s == "error" or (isinstance(s, int) and s >= 500))


def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * q))]


print(f"soak: {clients} clients, {minutes:g} min, {total} requests; statuses {dict(sorted(by_status.items()))}")
for kind in sorted(latencies):
    v = latencies[kind]
    per = {str(s): n for (k, s), n in sorted(statuses.items(), key=str) if k == kind}
    print(f"  {kind:8s} n={len(v):6d}  p50 {statistics.median(v):8.1f} ms  p99 {pct(v, 0.99):8.1f} ms  {per}")
all_lat = [x for v in latencies.values() for x in v]
print(f"latency all: p50 {statistics.median(all_lat):.1f} ms, p99 {pct(all_lat, 0.99):.1f} ms")
print(f"RSS with only {chat_model} loaded: after warm-up ({warmup:.0f} s) {rss_start:.1f} MiB, end {rss_end:.1f} MiB "
      f"(growth {growth:+.2f} %); max while running {rss_max:.1f} MiB")
for f in failures:
    print("  failure:", f)
print(json.dumps({"requests": total, "statuses": by_status, "5xx_or_errors": five,
                  "p50_ms": statistics.median(all_lat), "p99_ms": pct(all_lat, 0.99),
                  "rss_start_mb": rss_start, "rss_end_mb": rss_end, "rss_growth_pct": growth}))
sys.exit(1 if five else 0)
