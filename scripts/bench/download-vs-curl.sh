#!/usr/bin/env bash
# Benchmark: download a 1 GiB file from the local test hub (testhub: the hub's resolve route
# redirects to its CDN, which honours Range) with `curl -L` and with our transfer (the code
# every download task runs: redirects by hand, sha256 checked, atomic move), A/B interleaved
# so that both see the same machine. Ours runs with one stream and with parallel ranged
# parts. Prints each run, the medians and the ratio of our throughput to curl's (issue 11
# target: >= 0.90).
#
# Ours ends with the file flushed to disk (fsync) before it is renamed into place, so that
# a crash never leaves a model with missing bytes; plain curl ends when the bytes are in the
# page cache. "curl + fsync" is curl followed by an fdatasync of its file: the same
# guarantee, the fair comparison when the disk is slower than the loopback network.
# "curl + sha256 + fsync" also checks the file's sha256 afterwards (Python's hashlib, i.e.
# OpenSSL): every guarantee ours gives, done one after the other. "curl | tee | openssl
# sha256 + fsync" gives the same guarantees with the hash computed while the bytes arrive,
# in another process (as ours does on another thread): the fair yardstick for a verified
# download. "curl | openssl sha256" writes no file at all: how fast this machine can receive
# and hash, the ceiling for any download that verifies its bytes.
#
#   scripts/bench/download-vs-curl.sh [ROUNDS] [MiB] [PARTS]     (defaults 5, 1024, 4)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS="${1:-5}"
MIB="${2:-1024}"
PARTS="${3:-4}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"

# download and testhub do not link llama.cpp: selecting them builds nothing of it.
cargo build --release -q -p download -p testhub --example fetch_url --example bench_hub
FETCH="$TARGET_DIR/release/examples/fetch_url"
HUB="$TARGET_DIR/release/examples/bench_hub"
command -v curl >/dev/null || { echo "curl is needed" >&2; exit 1; }

DIR=$(mktemp -d /tmp/ld-dl-bench.XXXXXX)
"$HUB" "$MIB" >"$DIR/hub.out" &
HUB_PID=$!
trap 'kill "$HUB_PID" 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 600); do
  [ -s "$DIR/hub.out" ] && break
  sleep 0.1
done
read -r URL SHA SIZE <"$DIR/hub.out"
echo "serving $SIZE bytes at $URL" >&2

python3 - "$FETCH" "$URL" "$SHA" "$SIZE" "$DIR" "$ROUNDS" "$PARTS" <<'PY'
import os, statistics, subprocess, sys, time
fetch, url, sha, size, folder, rounds, parts = sys.argv[1:8]
size, rounds = int(size), int(rounds)
out = os.path.join(folder, "file")

def clean():
    for p in (out, out + ".part", out + ".part.json"):
        if os.path.exists(p):
            os.remove(p)

def curl():
    t = time.perf_counter()
    subprocess.run(["curl", "-sS", "-L", "-o", out, url], check=True)
    dt = time.perf_counter() - t
    assert os.path.getsize(out) == size
    return dt

def curl_fsync():
    t = time.perf_counter()
    subprocess.run(["curl", "-sS", "-L", "-o", out, url], check=True)
    fd = os.open(out, os.O_RDONLY)
    os.fdatasync(fd)
    os.close(fd)
    dt = time.perf_counter() - t
    assert os.path.getsize(out) == size
    return dt

def curl_sha_fsync():
    import hashlib
    t = time.perf_counter()
    subprocess.run(["curl", "-sS", "-L", "-o", out, url], check=True)
    h = hashlib.sha256()
    with open(out, "rb") as f:
        while block := f.read(4 << 20):
            h.update(block)
    assert h.hexdigest() == sha
    fd = os.open(out, os.O_RDONLY)
    os.fdatasync(fd)
    os.close(fd)
    dt = time.perf_counter() - t
    assert os.path.getsize(out) == size
    return dt

def curl_piped(write):
    def run():
        import shlex
        t = time.perf_counter()
        sink = f"tee {shlex.quote(out)} | " if write else ""
        got = subprocess.run(f"curl -sS -L {shlex.quote(url)} | {sink}openssl dgst -sha256 -r",
                             shell=True, check=True, capture_output=True, text=True).stdout
        assert got.split()[0] == sha, got
        if write:
            fd = os.open(out, os.O_RDONLY)
            os.fdatasync(fd)
            os.close(fd)
            assert os.path.getsize(out) == size
        return time.perf_counter() - t
    return run

def ours(n):
    def run():
        t = time.perf_counter()
        subprocess.run([fetch, url, out, sha, str(size), str(n)], check=True,
                       stdout=subprocess.DEVNULL)
        return time.perf_counter() - t
    return run

contenders = {"curl": curl, "curl + fsync": curl_fsync,
              "curl + sha256 + fsync": curl_sha_fsync,
              "curl | openssl sha256": curl_piped(False),
              "curl | tee | openssl sha256 + fsync": curl_piped(True),
              "ours, 1 stream": ours(1),
              f"ours, {parts} parts": ours(parts)}
times = {name: [] for name in contenders}
names = list(contenders)
for r in range(rounds):
    # A different order each round, so no contender always runs first on a cooler machine.
    order = names[r % len(names):] + names[:r % len(names)]
    for name in order:
        clean()
        os.sync()
        dt = contenders[name]()
        times[name].append(dt)
        print(f"round {r + 1} {name:>35}: {dt:6.2f} s  {size / dt / 2**20:8.1f} MiB/s", flush=True)
clean()
mib = size / 2**20
med = {name: statistics.median(ts) for name, ts in times.items()}
print()
for name in names:
    print(f"{name:>35}: median {med[name]:6.2f} s = {mib / med[name]:8.1f} MiB/s "
          f"(min {min(times[name]):.2f}, max {max(times[name]):.2f}, {rounds} runs)")
print(f"load average: {open('/proc/loadavg').read().split()[:3]}")
ours_names = [n for n in names if n.startswith("ours")]
for name in ours_names:
    for base in [n for n in names if not n.startswith("ours")]:
        target = " (issue 11 target: >= 0.90)" if base == "curl" else ""
        print(f"ratio {name} / {base} throughput: {med[base] / med[name]:.2f}{target}")
PY
