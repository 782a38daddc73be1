"""Drives a running llama-dashboard with the official `ollama` Python library.

Usage: ollama_sdk_check.py BASE_URL MODEL [API_KEY]

Each check is one function in CHECKS; each prints `ok: <name>` and the first failure
raises (non-zero exit) with what was received. Called by crates/cli/tests/serve.rs against
the real binary and test model. Checks of other routes (list, show, ps, pull) are added as
functions of their own to CHECKS.
"""

import json
import sys

import ollama
from ollama import Client

base, model = sys.argv[1], sys.argv[2]
key = sys.argv[3] if len(sys.argv) > 3 else None
headers = {"Authorization": f"Bearer {key}"} if key else None
client = Client(host=base, headers=headers, timeout=300)
QUESTION = "What is the capital of France? Answer in one sentence."
# Deterministic answers where a check compares two of them.
T0 = {"temperature": 0, "num_predict": 24}


def ok(name):
    print(f"ok: {name}", flush=True)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def chat():
    r = client.chat(model=model, messages=[{"role": "user", "content": QUESTION}], options=T0)
    check(r.message.role == "assistant" and r.message.content.strip() != "", r)
    check(r.done and r.done_reason in ("stop", "length"), r)
    check(r.prompt_eval_count > 0 and r.eval_count > 0 and r.total_duration > 0, r)
    check(r.created_at and r.model == model, r)
    # Streamed: the pieces make the same answer, the last one carries the metrics.
    parts = list(
        client.chat(
            model=model,
            messages=[{"role": "user", "content": QUESTION}],
            options=T0,
            stream=True,
        )
    )
    check(len(parts) > 2 and not parts[0].done and parts[-1].done, parts)
    text = "".join(p.message.content for p in parts)
    check(text == r.message.content, (text, r.message.content))
    check(parts[-1].eval_count == r.eval_count and parts[-1].done_reason == r.done_reason, parts[-1])
    ok("chat (stream and not)")


def generate():
    r = client.generate(model=model, prompt=QUESTION, options=T0)
    check(r.response.strip() != "" and r.done, r)
    parts = list(client.generate(model=model, prompt=QUESTION, options=T0, stream=True))
    check("".join(p.response for p in parts) == r.response, parts)
    check(parts[-1].done and parts[-1].eval_count == r.eval_count, parts[-1])
    # `num_predict` caps the answer: done_reason "length".
    r = client.generate(model=model, prompt=QUESTION, options={"num_predict": 2})
    check(r.done_reason == "length" and r.eval_count == 2, r)
    # Raw: the prompt as it is.
    r = client.generate(model=model, prompt="The capital of France is", raw=True, options=T0)
    check(r.response.strip() != "", r)
    # No prompt: Ollama's preload.
    r = client.generate(model=model)
    check(r.done and r.done_reason == "load", r)
    ok("generate")


def embed():
    r = client.embed(model=model, input=["Hello world", "Bonjour le monde"])
    check(len(r.embeddings) == 2 and len(r.embeddings[0]) > 0, r)
    norm = sum(x * x for x in r.embeddings[0]) ** 0.5
    check(abs(norm - 1.0) < 1e-3, norm)
    check(r.prompt_eval_count > 0, r)
    legacy = client.embeddings(model=model, prompt="Hello world")
    check(len(legacy.embedding) == len(r.embeddings[0]), legacy)
    ok("embed")


def tool_call():
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Get the current weather in a city",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        }
    ]
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    # Ollama has no tool_choice: a `format` schema in the shape of a call makes this small
    # model call the tool; the server's parser reads the call out of the answer.
    call_shape = {
        "type": "object",
        "properties": {
            "name": {"const": "get_weather"},
            "arguments": {
                "type": "object",
                "properties": {"city": {"type": "string", "maxLength": 20}},
                "required": ["city"],
            },
        },
        "required": ["name", "arguments"],
    }
    r = client.chat(
        model=model, messages=messages, tools=tools, format=call_shape,
        options={"temperature": 0, "num_predict": 40},
    )
    calls = r.message.tool_calls or []
    check(len(calls) >= 1 and calls[0].function.name == "get_weather", r)
    # Arguments arrive as an object, as Ollama sends them.
    check(isinstance(calls[0].function.arguments, dict), calls[0])
    # The round trip: the call goes back as the assistant's, the result as a tool message.
    messages.append(r.message)
    messages.append({"role": "tool", "content": "Sunny, 22 degrees", "tool_name": "get_weather"})
    r = client.chat(model=model, messages=messages, tools=tools, options={"temperature": 0, "num_predict": 8})
    check(r.done, r)
    ok("tool call round trip")


def format_schema():
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
        "required": ["city", "country"],
    }
    r = client.chat(
        model=model,
        messages=[{"role": "user", "content": "Name the capital of France and its country as JSON."}],
        format=schema,
        options={"temperature": 0, "num_predict": 64},
    )
    answer = json.loads(r.message.content)
    check(isinstance(answer.get("city"), str) and isinstance(answer.get("country"), str), answer)
    r = client.generate(model=model, prompt="A JSON object with a key 'ok' set to true.", format="json", options={"temperature": 0, "num_predict": 32})
    check(isinstance(json.loads(r.response), dict), r)
    ok("format")


def think():
    # SmolLM2 does not think: `think` is accepted and the answer is plain.
    r = client.chat(model=model, messages=[{"role": "user", "content": QUESTION}], think=True, options=T0)
    check(r.done and r.message.content.strip() != "", r)
    r = client.chat(model=model, messages=[{"role": "user", "content": QUESTION}], think="low", options=T0)
    check(r.done, r)
    ok("think")


def errors():
    try:
        client.chat(model=model, messages=[{"role": "user", "content": "hi"}], options={"temperature": "hot"})
    except ollama.ResponseError as e:
        check(e.status_code == 400 and "temperature" in e.error, e)
    else:
        raise AssertionError("a bad option was accepted")
    ok("errors")


CHECKS = [chat, generate, embed, tool_call, format_schema, think, errors]

if __name__ == "__main__":
    for c in CHECKS:
        c()
    print("all ok")
