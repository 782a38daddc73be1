#!/usr/bin/env python3
"""Starts a server the way llama.cpp's server test suite starts `llama-server`.

The suite (tools/server/tests) launches `$LLAMA_SERVER_BIN_PATH <llama-server flags>`. This
wrapper is that binary for both servers of a comparison run:

  COMPAT_TARGET=ref   runs llama.cpp's own llama-server   (COMPAT_LLAMA_SERVER)
  COMPAT_TARGET=ours  runs `llama-dashboard serve`        (COMPAT_DASHBOARD)

Only the model changes: the suite fetches its tiny models from Hugging Face, which cannot be
reached here, so `--hf-repo/--hf-file/--model-url` become `-m $COMPAT_MODEL` for both servers.
Every other flag reaches the server unchanged, except, for ours, flags `serve --help` does not
list: those are dropped and recorded in $COMPAT_DROPPED (one line each), so the report can say
which llama-server flags we lack instead of every test failing at start-up.
"""
import os
import re
import subprocess
import sys
import tempfile

MODEL_SOURCE = {"--hf-repo", "-hf", "-hfr", "--hf-file", "-hff", "--model-url", "-mu"}
# Flags of the suite's that only steer llama-server's own Hugging Face cache.
CACHE_ONLY = {"--offline"}


def takes_value(args, i):
    """A dropped flag's value is the next argument unless that is another flag."""
    if i + 1 >= len(args):
        return False
    nxt = args[i + 1]
    return not nxt.startswith("-") or re.fullmatch(r"-\d+(\.\d+)?", nxt) is not None


def known_flags(dashboard):
    out = subprocess.run([dashboard, "serve", "--help"], capture_output=True, text=True).stdout
    return set(re.findall(r"(?<![\w-])(-{1,2}[A-Za-z][\w-]*)", out))


def main():
    args = sys.argv[1:]
    model = os.environ["COMPAT_MODEL"]
    target = os.environ["COMPAT_TARGET"]
    out, wants_model, i = [], False, 0
    known = known_flags(os.environ["COMPAT_DASHBOARD"]) if target == "ours" else None
    dropped = []
    while i < len(args):
        a = args[i]
        if a in MODEL_SOURCE:
            wants_model = True
            i += 2
            continue
        if a in CACHE_ONLY:
            i += 1
            continue
        flag = a.split("=", 1)[0]
        # A negative number is a value (`--reasoning-budget -1`), not a flag.
        number = re.fullmatch(r"-\d+(\.\d+)?", a) is not None
        if known is not None and flag.startswith("-") and not number and flag not in known:
            n = 2 if "=" not in a and takes_value(args, i) else 1
            dropped.append(" ".join(args[i : i + n]))
            i += n
            continue
        out.append(a)
        i += 1
    if wants_model and "--model" not in out and "-m" not in out:
        out += ["-m", model]
    if dropped and os.environ.get("COMPAT_DROPPED"):
        with open(os.environ["COMPAT_DROPPED"], "a") as f:
            for d in dropped:
                f.write(d + "\n")
    if target == "ref":
        cmd = [os.environ["COMPAT_LLAMA_SERVER"], *out]
        env = os.environ
    else:
        # A home of its own: no config file, database or model folders of the user's leak in,
        # so `-m` alone is a single-model server as with llama-server.
        # Under the run's folder (the suite script empties it per run): the server is exec'd,
        # so nothing here could remove it afterwards.
        home = tempfile.mkdtemp(prefix="home-", dir=os.environ.get("COMPAT_HOMES"))
        env = {
            **os.environ,
            "HOME": home,
            "LLAMA_DASHBOARD_CONFIG_DIR": os.path.join(home, "config"),
            "LLAMA_DASHBOARD_DATA_DIR": os.path.join(home, "data"),
        }
        cmd = [os.environ["COMPAT_DASHBOARD"], "serve", *out]
    sys.stdout.flush()
    os.execvpe(cmd[0], cmd, env)


if __name__ == "__main__":
    main()
