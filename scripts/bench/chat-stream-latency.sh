#!/usr/bin/env bash
# Chat session streaming latency (issue 13): the time from the server's session send loop
# getting a token's text to the client reading its SSE `delta`, at SESSIONS concurrent
# sessions (default 8), median and tail. Release build only: figures from a debug build mean
# nothing. The server stamps each delta only under LLAMA_DASHBOARD_BENCH_STAMPS=1 (set here).
#
#   scripts/bench/chat-stream-latency.sh [MODEL] [ROUNDS]
#
# SESSIONS (8), MAX_TOKENS (128); THREADS, CTX as in servers.sh; NP defaults to SESSIONS so
# every session has a slot. Prints figures, asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."
SESSIONS="${SESSIONS:-8}"
NP="${NP:-$SESSIONS}"
# shellcheck source=servers.sh
source scripts/bench/servers.sh
bench_args "$@"
export LLAMA_DASHBOARD_BENCH_STAMPS=1
bench_start_servers "$MODEL" ""
echo "model $(basename "$MODEL"), $SESSIONS sessions, $NP slots, $THREADS threads, $ROUNDS rounds"
python3 scripts/bench/chat_stream_latency.py "http://127.0.0.1:$PB" model "$SESSIONS" "$ROUNDS" \
  "${MAX_TOKENS:-128}"
