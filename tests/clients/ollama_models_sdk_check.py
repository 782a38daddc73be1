"""Drives a running llama-dashboard's Ollama model routes with the official `ollama` library.

Usage: ollama_models_sdk_check.py BASE_URL MODEL INFERENCE_KEY ADMIN_KEY REGISTRY_NAME

list, show, ps (the model is loaded through the OpenAI route, so this needs none of the
Ollama inference routes), copy and delete, and a pull of REGISTRY_NAME (a local registry:
crates/testhub) with Ollama's progress objects; an inference key may read but not pull.
Each check prints `ok: <name>`; the first failure raises (non-zero exit). Called by
crates/cli/tests/serve.rs against the real binary and test model.
"""

import sys

import httpx
import ollama
from ollama import Client

base, model, key, admin_key, registry_name = sys.argv[1:6]
client = Client(host=base, headers={"Authorization": f"Bearer {key}"}, timeout=300)
admin = Client(host=base, headers={"Authorization": f"Bearer {admin_key}"}, timeout=300)


def ok(name):
    print(f"ok: {name}", flush=True)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def refused(call, status):
    try:
        call()
    except ollama.ResponseError as e:
        check(e.status_code == status, e)
        return e.error
    raise AssertionError(f"expected {status}")


def list_show_ps():
    listed = client.list().models
    mine = [m for m in listed if m.model in (model, f"{model}:latest")]
    check(len(mine) == 1 and all(":" in m.model for m in listed), listed)
    m = mine[0]
    check(m.size > 0 and len(m.digest) == 64 and m.modified_at is not None, m)
    check(m.details.format == "gguf" and m.details.family and m.details.parameter_size, m)
    s = client.show(model)
    check("completion" in (s.capabilities or []) and s.modified_at is not None, s)
    check(s.modelinfo["general.architecture"] == m.details.family, s.modelinfo)
    check(s.modelfile.startswith("# Modelfile generated") and s.template, s)
    check(client.ps().models == [], client.ps())
    r = httpx.post(
        f"{base}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1},
        timeout=300,
    )
    check(r.status_code == 200, r.text)
    loaded = client.ps().models
    check(len(loaded) == 1 and loaded[0].model == m.model, loaded)
    p = loaded[0]
    check(p.size > 0 and p.size_vram == 0 and p.context_length > 0 and p.expires_at, p)
    check(p.digest == m.digest and p.details.family == m.details.family, p)
    check("not found" in refused(lambda: client.show("no-such-model"), 404), "404")
    ok("list, show, ps")


def copy_delete():
    refused(lambda: client.copy(model, "beta"), 403)
    admin.copy(model, "beta")
    names = [m.model for m in client.list().models]
    check("beta:latest" in names, names)
    check(client.show("beta").details.family, "show the copy")
    admin.delete("beta")
    names = [m.model for m in client.list().models]
    check("beta:latest" not in names and f"{model}:latest" in names, names)
    refused(lambda: admin.delete("beta"), 404)
    ok("copy, delete")


def pull():
    refused(lambda: client.pull(registry_name), 403)
    parts = list(admin.pull(registry_name, stream=True))
    statuses = [p.status for p in parts]
    check(statuses[0] == "pulling manifest" and statuses[-1] == "success", statuses)
    check(statuses[-3:-1] == ["verifying sha256 digest", "writing manifest"], statuses)
    layers = [p for p in parts if p.digest]
    check(layers and all(p.status == f"pulling {p.digest[7:19]}" for p in layers), layers)
    check(any(p.total and p.completed == p.total for p in layers), layers)
    check(admin.pull(registry_name).status == "success", "pull again")
    check(any(m.model == registry_name for m in client.list().models), client.list())
    # A registry that does not answer: an error, and the server goes on.
    refused(lambda: admin.pull("127.0.0.1:9/library/x", stream=False), 503)
    ok("pull")


if __name__ == "__main__":
    for c in [list_show_ps, copy_delete, pull]:
        c()
    print("all ok")
