#!/usr/bin/env python3
"""Chat session streaming latency: the time from the server handing a token's text to the
session stream to this client reading it, at N concurrent sessions (issue 13: <= 5 ms median
at 8 sessions).

The server must run with LLAMA_DASHBOARD_BENCH_STAMPS=1: each SSE `delta` then carries
`emitted_at`, the server's CLOCK_REALTIME (Unix seconds) when the session's send loop got
the text from the generation (the engine's host thread sent it over an in-process channel
just before). This client compares it with its own CLOCK_REALTIME when it has read and
parsed the event, on the same host, so the two clocks are one clock. What is measured: the
send loop, SSE framing, the socket, and the client's read; not the engine's sampling.

usage: chat_stream_latency.py BASE_URL MODEL [SESSIONS=8] [ROUNDS=3] [MAX_TOKENS=128]
Prints one JSON line: deltas counted, median, p90, p99 and max in milliseconds.
"""
import http.client
import json
import statistics
import sys
import threading
import time
import urllib.parse


def post(base, path, body):
    u = urllib.parse.urlparse(base)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    c.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    return c, c.getresponse()


def create(base, model, max_tokens):
    c, r = post(base, "/api/chat/sessions/create",
                {"model": model, "params": {"max_tokens": max_tokens, "temperature": 0.8}})
    body = json.loads(r.read())
    c.close()
    if r.status != 201:
        sys.exit(f"create: {r.status} {body}")
    return body["id"]


def one_answer(base, session, turn, out, errors):
    c, r = post(base, "/api/chat/send",
                {"session_id": session, "stream": True,
                 "message": f"Turn {turn}: tell me a story about a sailor."})
    if r.status != 200:
        errors.append(f"send: {r.status} {r.read()[:200]!r}")
        return
    event = None
    while True:
        line = r.readline()
        if not line:
            break
        line = line.rstrip(b"\r\n")
        if line.startswith(b"event: "):
            event = line[7:]
        elif line.startswith(b"data: ") and event == b"delta":
            d = json.loads(line[6:])
            now = time.time()
            at = d.get("emitted_at")
            if at is None:
                errors.append("no emitted_at: start the server with LLAMA_DASHBOARD_BENCH_STAMPS=1")
                break
            out.append((now - at) * 1000.0)
    c.close()


def main():
    base, model = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    max_tokens = int(sys.argv[5]) if len(sys.argv) > 5 else 128
    sessions = [create(base, model, max_tokens) for _ in range(n)]
    lat, errors = [], []
    for turn in range(rounds):
        threads = [threading.Thread(target=one_answer, args=(base, s, turn, lat, errors))
                   for s in sessions]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    if errors:
        sys.exit("; ".join(sorted(set(errors))))
    lat.sort()
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
    print(json.dumps({
        "sessions": n, "rounds": rounds, "deltas": len(lat),
        "median_ms": round(statistics.median(lat), 3),
        "p90_ms": round(q(0.90), 3), "p99_ms": round(q(0.99), 3), "max_ms": round(lat[-1], 3),
    }))


if __name__ == "__main__":
    main()
