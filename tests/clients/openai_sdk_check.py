"""Drives a running llama-dashboard with the official `openai` Python SDK.

Usage: openai_sdk_check.py BASE_URL MODEL [API_KEY]

Checks the OpenAI routes (`/v1`, and `/completions` without it) and LM Studio's REST API v0
(`/api/v0`), which OpenAI clients reach by their base URL. Each check prints `ok: <name>`;
the first failure raises (non-zero exit) with what was received. Called by
crates/cli/tests/serve.rs against the real binary and test model.
"""

import base64
import json
import struct
import sys

import openai
from openai import OpenAI

base, model = sys.argv[1], sys.argv[2]
key = sys.argv[3] if len(sys.argv) > 3 else "none"
client = OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, timeout=300)
QUESTION = "What is the capital of France? Answer in one sentence."


def ok(name):
    print(f"ok: {name}", flush=True)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


# Models.
ids = [m.id for m in client.models.list()]
check(model in ids, f"models.list: {ids}")
m = client.models.retrieve(model)
check(m.id == model and m.object == "model", m)
ok("models.list")

# The question every chat check asks, at temperature 0.
ASK = dict(model=model, messages=[{"role": "user", "content": QUESTION}], temperature=0, max_tokens=24)


def chat(c):
    """A chat answer, not streamed (`/v1` and `/api/v0` alike); returns it."""
    r = c.chat.completions.create(**ASK)
    check(r.choices[0].message.content == "The capital of France is Paris.", r)
    check(r.choices[0].finish_reason == "stop", r)
    check(r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0, r.usage)
    return r


def chat_stream(c):
    """A streamed chat answer with usage; returns the last chunk's extra fields."""
    stream = c.chat.completions.create(**ASK, stream=True, stream_options={"include_usage": True})
    text, usage, finish, extra = "", None, None, {}
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for ch in chunk.choices:
            text += ch.delta.content or ""
            finish = ch.finish_reason or finish
        extra = chunk.model_extra or {}
    check(text == "The capital of France is Paris.", text)
    check(finish == "stop" and usage is not None and usage.total_tokens > 0, (finish, usage))
    return extra


chat(client)
ok("chat")
chat_stream(client)
ok("chat stream")

# A tool call round trip.
tools = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather of a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]
messages = [{"role": "user", "content": "What is the weather in Paris?"}]
r = client.chat.completions.create(
    model=model, messages=messages, tools=tools, tool_choice="required", temperature=0, max_tokens=64
)
msg = r.choices[0].message
check(r.choices[0].finish_reason == "tool_calls" and msg.tool_calls, r)
call = msg.tool_calls[0]
check(call.function.name == "get_weather", call)
args = json.loads(call.function.arguments)
check(isinstance(args.get("city"), str), args)
messages.append(msg.model_dump(exclude_none=True))
messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps({"sky": "sunny", "temperature_c": 21})})
r = client.chat.completions.create(model=model, messages=messages, tools=tools, temperature=0, max_tokens=32)
check(r.choices[0].message.content or r.choices[0].message.tool_calls, r)
ok("tool call round trip")

# Streamed tool call: the SDK's accumulation gives one call with parseable arguments.
with client.chat.completions.stream(
    model=model, messages=messages[:1], tools=tools, tool_choice="required", temperature=0, max_tokens=64
) as s:
    for _ in s:
        pass
    final = s.get_final_completion()
calls = final.choices[0].message.tool_calls
check(calls and json.loads(calls[0].function.arguments).get("city"), final)
ok("tool call stream")

# JSON schema output that parses.
schema = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
r = client.chat.completions.create(
    model=model,
    messages=[{"role": "user", "content": "Describe a person as JSON."}],
    response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": schema, "strict": True}},
    temperature=0,
    max_tokens=80,
)
person = json.loads(r.choices[0].message.content)
check(isinstance(person["name"], str) and isinstance(person["age"], int), person)
ok("json_schema")

# Legacy completions.
r = client.completions.create(model=model, prompt="The capital of France is", max_tokens=4, temperature=0)
check(r.choices[0].text.strip() != "" and r.object == "text_completion", r)
ok("completions")

# `/completions` without /v1 answers in OpenAI's and llama-server's shapes together: the
# SDK, pointed at the server's root as some clients are, still reads it.
root = OpenAI(base_url=base, api_key=key, max_retries=0, timeout=300)
r = root.completions.create(model=model, prompt="The capital of France is", max_tokens=4, temperature=0)
check(r.object == "text_completion" and r.choices[0].text.strip() != "", r)
check(r.model_extra.get("content") == r.choices[0].text, r.model_extra)
text = ""
for chunk in root.completions.create(
    model=model, prompt="The capital of France is", max_tokens=4, temperature=0, stream=True
):
    text += "".join(c.text for c in chunk.choices)
check(text == r.choices[0].text, (text, r.choices[0].text))
ok("completions without /v1")

# Embeddings. Without encoding_format the SDK asks for base64 and decodes it itself;
# asked for explicitly, it hands back the string; float is the plain list.
e = client.embeddings.create(model=model, input=["Paris is in France.", "Berlin is in Germany."])
check(len(e.data) == 2 and len(e.data[0].embedding) > 100, len(e.data))
norm = sum(x * x for x in e.data[0].embedding) ** 0.5
check(abs(norm - 1.0) < 1e-3, norm)
ef = client.embeddings.create(model=model, input="Paris is in France.", encoding_format="float")
e64 = client.embeddings.create(model=model, input="Paris is in France.", encoding_format="base64")
raw = base64.b64decode(e64.data[0].embedding)
floats = struct.unpack(f"<{len(raw) // 4}f", raw)
check(len(floats) == len(ef.data[0].embedding), "base64 length")
check(all(abs(a - b) < 1e-5 for a, b in zip(floats, ef.data[0].embedding)), "base64 values")
check(all(abs(a - b) < 1e-5 for a, b in zip(floats, e.data[0].embedding)), "batched = single")
ok("embeddings")

# Responses API, plain and streamed.
r = client.responses.create(model=model, input=QUESTION, temperature=0, max_output_tokens=24)
check(r.output_text == "The capital of France is Paris.", r)
ok("responses")
text = ""
with client.responses.stream(model=model, input=QUESTION, temperature=0, max_output_tokens=24) as s:
    for event in s:
        if event.type == "response.output_text.delta":
            text += event.delta
    final = s.get_final_response()
check(text == final.output_text == "The capital of France is Paris.", (text, final.output_text))
ok("responses stream")

# Errors come back as the SDK's typed exceptions.
try:
    client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    raise AssertionError("an unknown model must fail")
except openai.NotFoundError:
    pass
try:
    client.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}], temperature=-1)
    raise AssertionError("a negative temperature must fail")
except openai.BadRequestError:
    pass
ok("errors")

# LM Studio's REST API v0 through the same SDK (base URL `/api/v0`): the OpenAI answers with
# LM Studio's `stats`, `model_info` and `runtime`, which the SDK keeps in `model_extra`.
lms = OpenAI(base_url=f"{base}/api/v0", api_key=key, max_retries=0, timeout=300)
ids = [m.id for m in lms.models.list()]
check(model in ids, f"lmstudio models.list: {ids}")
m = lms.models.retrieve(model)
check(m.id == model and m.model_extra.get("type") == "llm", m)
check(m.model_extra.get("compatibility_type") == "gguf" and m.model_extra.get("max_context_length"), m)
ok("lmstudio models")
r = chat(lms)
stats = r.model_extra["stats"]
check(stats["stop_reason"] == "eosFound" and stats["tokens_per_second"] > 0, stats)
check(r.model_extra["model_info"]["format"] == "gguf", r.model_extra)
check(r.model_extra["runtime"]["supported_formats"] == ["gguf"], r.model_extra)
ok("lmstudio chat")
extra = chat_stream(lms)
check(extra.get("stats", {}).get("stop_reason") == "eosFound", extra)
ok("lmstudio chat stream")
r = lms.completions.create(model=model, prompt="The capital of France is", max_tokens=4, temperature=0)
check(r.choices[0].text.strip() != "", r)
check(r.model_extra["stats"]["stop_reason"] == "maxPredictedTokensReached", r.model_extra)
ok("lmstudio completions")
e = lms.embeddings.create(model=model, input="Paris is in France.", encoding_format="float")
check(len(e.data) == 1 and len(e.data[0].embedding) == len(ef.data[0].embedding), len(e.data))
check(all(abs(a - b) < 1e-5 for a, b in zip(e.data[0].embedding, ef.data[0].embedding)), "lmstudio = /v1")
ok("lmstudio embeddings")
try:
    lms.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    raise AssertionError("an unknown model must fail")
except openai.NotFoundError:
    pass
ok("lmstudio errors")
print("all ok")
