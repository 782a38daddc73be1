#!/usr/bin/env bash
# Installs what building and testing needs on a fresh Debian machine with Rust:
#   - Debian packages: cmake and libclang-dev (llama-cpp-sys-2 builds llama.cpp with cmake and
#     generates bindings with bindgen), python3-venv; chromium and chromium-driver (the web
#     dashboard's browser tests drive Debian's Chromium: no browser is downloaded) and a small
#     CJK font (the Chinese screenshots); nodejs and
#     npm when Node.js is missing (crates/web's build script builds web/ with them).
#   - A Python venv with the reference clients (scripts/py/requirements.txt).
# Idempotent and quick when everything is already there. Prints `export` lines for the caller.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "setup: $*" >&2; }

APT_PACKAGES=(cmake libclang-dev clang pkg-config python3-venv chromium chromium-driver fonts-wqy-microhei)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js may come from elsewhere (NodeSource's nodejs holds npm): only a missing one is installed.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  log "installing ${missing[*]}"
  $SUDO apt-get update -qq >&2
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi

VENV="${LLAMA_DASHBOARD_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/llama-dashboard/venv}"
REQ=scripts/py/requirements.txt
if [ ! -x "$VENV/bin/python" ] || ! cmp -s "$REQ" "$VENV/.requirements.txt"; then
  log "creating Python venv at $VENV"
  python3 -m venv "$VENV" >&2
  "$VENV/bin/python" -m pip install --quiet --upgrade pip >&2 || true
  "$VENV/bin/python" -m pip install --quiet -r "$REQ" >&2
  cp "$REQ" "$VENV/.requirements.txt"
fi
echo "export LLAMA_DASHBOARD_PYTHON=$VENV/bin/python"
