#!/usr/bin/env bash
# Builds llama.cpp's own `llama-server` and `llama-bench` — the reference our benchmarks
# compare against — from the llama.cpp that the PyPI sdist of llama-cpp-python vendors,
# under /tmp (never inside the repository). AMX is off, as in .cargo/config.toml: the CPUs
# here report AMX but llama.cpp's AMX kernels die with SIGILL on them.
# Prints the folder holding the two binaries. Reuses an existing build.
set -euo pipefail
ROOT="${LLAMA_REF_DIR:-/tmp/llama-ref}"
BIN="$ROOT/build/bin"
if [ -x "$BIN/llama-server" ] && [ -x "$BIN/llama-bench" ]; then echo "$BIN"; exit 0; fi
mkdir -p "$ROOT"
if [ ! -f "$ROOT/src/CMakeLists.txt" ]; then
  # The sdist of llama-cpp-python alone: `--no-binary :all:` would also build pip's build
  # dependencies (ninja, cmake) from source just to read the package's metadata.
  python3 -m pip download --quiet --no-deps --no-binary llama-cpp-python llama-cpp-python -d "$ROOT/sdist" >&2
  tar -xzf "$ROOT"/sdist/llama_cpp_python-*.tar.gz -C "$ROOT/sdist"
  rm -rf "$ROOT/src"
  mv "$ROOT"/sdist/llama_cpp_python-*/vendor/llama.cpp "$ROOT/src"
fi
NOAMX="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
cmake -S "$ROOT/src" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
  -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON \
  "-DCMAKE_C_FLAGS=$NOAMX" "-DCMAKE_CXX_FLAGS=$NOAMX" >&2
cmake --build "$ROOT/build" -j"$(nproc)" --target llama-server llama-bench >&2
echo "$BIN"
