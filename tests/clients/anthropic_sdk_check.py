"""Drives a running llama-dashboard with the official `anthropic` Python SDK (2.x).

Usage: anthropic_sdk_check.py BASE_URL MODEL [API_KEY]

Each check prints `ok: <name>`; the first failure raises (non-zero exit) with what was
received. Called by crates/cli/tests/serve.rs against the real binary and test model. The
2.x SDK's own request shapes are used as they are (`thinking`, `output_config`), with the
older clients' `temperature` where a check needs a deterministic answer.
"""

import json
import sys

import anthropic
from anthropic import Anthropic

base, model = sys.argv[1], sys.argv[2]
key = sys.argv[3] if len(sys.argv) > 3 else "none"
# The SDK sends the key as `x-api-key` and its `anthropic-version` header.
client = Anthropic(base_url=base, api_key=key, max_retries=0, timeout=300)
QUESTION = "What is the capital of France? Answer in one sentence."
# The 2.x SDK has no `temperature` argument any more; older clients send it, and so does
# this check (through the SDK's `extra_body`) where it needs a deterministic answer.
T0 = {"temperature": 0}


def ok(name):
    print(f"ok: {name}", flush=True)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


# Messages, not streamed.
m = client.messages.create(
    model=model,
    max_tokens=24,
    extra_body=T0,
    system="You are a helpful assistant.",
    messages=[{"role": "user", "content": QUESTION}],
)
check(m.type == "message" and m.role == "assistant", m)
check(len(m.content) == 1 and m.content[0].type == "text", m)
check(m.stop_reason == "end_turn" and m.stop_sequence is None, m)
check(m.usage.input_tokens + (m.usage.cache_read_input_tokens or 0) > 0 and m.usage.output_tokens > 0, m.usage)
first = m.content[0].text
check(first.strip() != "", m)
ok("messages")

# Streamed: the SDK's event accumulation gives the same message.
with client.messages.stream(
    model=model,
    max_tokens=24,
    extra_body=T0,
    system="You are a helpful assistant.",
    messages=[{"role": "user", "content": QUESTION}],
) as s:
    text = "".join(s.text_stream)
    final = s.get_final_message()
check(text == first == final.content[0].text, (text, first, final))
check(final.stop_reason == "end_turn" and final.usage.output_tokens == m.usage.output_tokens, final)
ok("messages stream")

# The raw events, in Anthropic's order (the SDK swallows `ping`; the Rust tests see it).
kinds = [e.type for e in client.messages.create(
    model=model, max_tokens=8, extra_body=T0, stream=True,
    messages=[{"role": "user", "content": QUESTION}],
)]
check(kinds[:3] == ["message_start", "content_block_start", "content_block_delta"], kinds)
check(kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"], kinds)
ok("stream events")

# Stop sequences.
m = client.messages.create(
    model=model, max_tokens=24, extra_body=T0, stop_sequences=["Paris"],
    system="You are a helpful assistant.",
    messages=[{"role": "user", "content": QUESTION}],
)
check(m.stop_reason == "stop_sequence" and m.stop_sequence == "Paris", m)
check("Paris" not in m.content[0].text, m)
ok("stop_sequences")

# A tool_use -> tool_result round trip.
tools = [{
    "name": "get_weather",
    "description": "Current weather of a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}]
messages = [{"role": "user", "content": "What is the weather in Paris?"}]
m = client.messages.create(
    model=model, max_tokens=64, extra_body=T0, tools=tools,
    tool_choice={"type": "any"}, messages=messages,
)
check(m.stop_reason == "tool_use", m)
call = next(b for b in m.content if b.type == "tool_use")
check(call.name == "get_weather" and isinstance(call.input.get("city"), str), call)
messages.append({"role": "assistant", "content": m.content})
messages.append({"role": "user", "content": [{
    "type": "tool_result",
    "tool_use_id": call.id,
    "content": json.dumps({"sky": "sunny", "temperature_c": 21}),
}]})
m = client.messages.create(model=model, max_tokens=32, extra_body=T0, tools=tools, messages=messages)
check(m.content and m.stop_reason in ("end_turn", "max_tokens", "tool_use"), m)
ok("tool_use round trip")

# Streamed tool use: the SDK joins the input_json_delta pieces into the block's input.
with client.messages.stream(
    model=model, max_tokens=64, extra_body=T0, tools=tools,
    tool_choice={"type": "tool", "name": "get_weather"}, messages=messages[:1],
) as s:
    final = s.get_final_message()
call = next(b for b in final.content if b.type == "tool_use")
check(isinstance(call.input.get("city"), str) and final.stop_reason == "tool_use", final)
ok("tool_use stream")

# count_tokens, without generating: the prompt the same message runs on.
counted = client.messages.count_tokens(
    model=model,
    system="You are a helpful assistant.",
    messages=[{"role": "user", "content": QUESTION}],
)
check(counted.input_tokens > 0, counted)
m = client.messages.create(
    model=model, max_tokens=1, system="You are a helpful assistant.",
    messages=[{"role": "user", "content": QUESTION}],
)
check(counted.input_tokens == m.usage.input_tokens + (m.usage.cache_read_input_tokens or 0), (counted, m.usage))
ok("count_tokens")

# What the 2.x SDK sends: thinking (SmolLM2 does not think: no thinking block, no error)...
for thinking in ({"type": "enabled", "budget_tokens": 16}, {"type": "adaptive"}, {"type": "disabled"}):
    m = client.messages.create(
        model=model, max_tokens=32, thinking=thinking,
        messages=[{"role": "user", "content": QUESTION}],
    )
    check(m.content and all(b.type == "text" for b in m.content), (thinking, m))
with client.messages.stream(
    model=model, max_tokens=32, thinking={"type": "enabled", "budget_tokens": 16},
    messages=[{"role": "user", "content": QUESTION}],
) as s:
    final = s.get_final_message()
check(final.content and final.stop_reason in ("end_turn", "max_tokens"), final)
ok("thinking")

# ... and output_config: a JSON schema answer that parses, with an effort level (sampled:
# the schema bounds its length to fit in max_tokens whatever is drawn).
schema = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
m = client.messages.create(
    model=model, max_tokens=200,
    output_config={"format": {"type": "json_schema", "schema": schema}, "effort": "low"},
    metadata={"user_id": "sdk-check"},
    messages=[{"role": "user", "content": "Describe a person as JSON."}],
)
person = json.loads(m.content[0].text)
check(isinstance(person["name"], str) and isinstance(person["age"], int), person)
ok("output_config.format")

# Errors come back as the SDK's typed exceptions.
try:
    client.messages.create(model="no-such-model", max_tokens=4, messages=[{"role": "user", "content": "x"}])
    raise AssertionError("an unknown model must fail")
except anthropic.NotFoundError as e:
    check(e.body["type"] == "error" and e.body["error"]["type"] == "not_found_error", e.body)
try:
    client.messages.create(model=model, max_tokens=0, messages=[{"role": "user", "content": "x"}])
    raise AssertionError("max_tokens 0 must fail")
except anthropic.BadRequestError as e:
    check(e.body["error"]["type"] == "invalid_request_error", e.body)
bad = Anthropic(base_url=base, api_key="wrong-key", max_retries=0, timeout=60)
try:
    bad.messages.create(model=model, max_tokens=4, messages=[{"role": "user", "content": "x"}])
    if key != "none":
        raise AssertionError("a wrong key must fail")
except anthropic.AuthenticationError as e:
    check(e.body["error"]["type"] == "authentication_error", e.body)
ok("errors")
print("all ok")
