//! Thinking models end to end: SmolLM2 with a Qwen3-style template (thinking tags and
//! `enable_thinking`) as its custom template, and a grammar that forces the reply's text, so
//! the split of thoughts from the answer is tested without depending on what the model would
//! write.

use super::*;

/// Qwen3's template reduced to what matters here: a thinking block in past turns is dropped,
/// and `enable_thinking = false` writes an empty block after the assistant header.
const QWEN3_STYLE: &str = r#"{%- for m in messages -%}
<|im_start|>{{ m.role }}
{% if m.role == 'assistant' and '</think>' in m.content %}{{ m.content.split('</think>')[-1].lstrip('\n') }}{% else %}{{ m.content }}{% endif %}<|im_end|>
{% endfor -%}
{%- if tools %}<|im_start|>system
Tools: {{ tools | tojson }}. Call one as <tool_call>{"name": ..., "arguments": ...}</tool_call><|im_end|>
{% endif -%}
{%- if add_generation_prompt %}<|im_start|>assistant
{% if enable_thinking is defined and enable_thinking is false %}<think>

</think>

{% endif %}{% endif %}"#;

/// QwQ / DeepSeek R1 style: the header opens the block itself, and closes it right away when
/// thinking is off.
pub const FORCED_OPEN: &str = r#"{%- for m in messages -%}
<|im_start|>{{ m.role }}
{{ m.content }}<|im_end|>
{% endfor -%}
{%- if add_generation_prompt %}<|im_start|>assistant
<think>
{% if not enable_thinking %}</think>{% endif %}{% endif %}"#;

pub async fn with_template(template: &str, opts: Opts) -> Option<TestServer> {
    let s = TestServer::start(opts).await?;
    let (status, body) = s
        .send(
            s.client
                .put(s.url(&format!("/api/models/{SMOL}/template")))
                .json(&json!({ "template": template })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    Some(s)
}

/// A GBNF grammar that allows exactly `text`.
fn exactly(text: &str) -> String {
    format!("root ::= {}", serde_json::to_string(text).unwrap())
}

fn forced(text: &str) -> Value {
    json!({
        "model": SMOL,
        "messages": [{"role": "user", "content": "What is 102 + 7?"}],
        "grammar": exactly(text),
        "temperature": 0,
        "max_tokens": 64,
    })
}

/// `(first delta, reasoning, content, finish_reason)` of a streamed chat completion.
async fn streamed(s: &TestServer, req: &Value) -> (Value, String, String, String) {
    let mut req = req.clone();
    req["stream"] = json!(true);
    let events = s.stream("/v1/chat/completions", &req).await;
    let mut first = None;
    let (mut reasoning, mut content, mut finish) = (String::new(), String::new(), String::new());
    for e in events.iter().filter(|e| *e != "[DONE]") {
        let v: Value = serde_json::from_str(e).unwrap();
        let choice = &v["choices"][0];
        let delta = &choice["delta"];
        if first.is_none() {
            first = Some(delta.clone());
            continue;
        }
        assert!(delta.get("role").is_none(), "{v}");
        reasoning.push_str(delta["reasoning_content"].as_str().unwrap_or(""));
        content.push_str(delta["content"].as_str().unwrap_or(""));
        if let Some(f) = choice["finish_reason"].as_str() {
            finish = f.to_owned();
        }
    }
    (first.expect("a first chunk"), reasoning, content, finish)
}

#[tokio::test(flavor = "multi_thread")]
async fn thoughts_come_apart_from_the_answer() {
    let Some(s) = with_template(QWEN3_STYLE, Opts::default()).await else {
        return;
    };
    let req = forced("<think>\nAdd the units.</think>\n\nIt is 109.");
    let (status, body) = s.post("/v1/chat/completions", &req).await;
    assert_eq!(status, 200, "{body}");
    let message = &body["choices"][0]["message"];
    assert_eq!(message["reasoning_content"], "Add the units.", "{body}");
    assert_eq!(message["content"], "It is 109.", "{body}");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");

    // Streamed: the role alone first (content null), thoughts as reasoning_content deltas.
    let (first, reasoning, content, finish) = streamed(&s, &req).await;
    assert_eq!(first, json!({"role": "assistant", "content": null}));
    assert_eq!(reasoning, "Add the units.");
    assert_eq!(content, "It is 109.");
    assert_eq!(finish, "stop");

    // reasoning_format none leaves the thoughts in the content, as the model wrote them.
    let mut none = req.clone();
    none["reasoning_format"] = json!("none");
    let (_, body) = s.post("/v1/chat/completions", &none).await;
    let message = &body["choices"][0]["message"];
    assert_eq!(
        message["content"],
        "<think>\nAdd the units.</think>\n\nIt is 109."
    );
    assert!(message.get("reasoning_content").is_none(), "{body}");
    let (_, reasoning, content, _) = streamed(&s, &none).await;
    assert_eq!(reasoning, "");
    assert!(content.starts_with("<think>"), "{content}");

    // An answer without thoughts has no reasoning_content.
    let (_, body) = s.post("/v1/chat/completions", &forced("Just 109.")).await;
    let message = &body["choices"][0]["message"];
    assert_eq!(message["content"], "Just 109.");
    assert!(message.get("reasoning_content").is_none(), "{body}");

    let mut bad = req.clone();
    bad["reasoning_format"] = json!("r1");
    let (status, body) = s.post("/v1/chat/completions", &bad).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("reasoning_format"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tool_call_after_thinking_is_parsed() {
    let Some(s) = with_template(QWEN3_STYLE, Opts::default()).await else {
        return;
    };
    let mut req = forced(
        "<think>\nI need the weather tool.</think>\n\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
    );
    req["tools"] = json!([{"type": "function", "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    }}]);
    let (status, body) = s.post("/v1/chat/completions", &req).await;
    assert_eq!(status, 200, "{body}");
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls", "{body}");
    assert_eq!(
        choice["message"]["reasoning_content"],
        "I need the weather tool."
    );
    let call = &choice["message"]["tool_calls"][0]["function"];
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["arguments"], r#"{"city":"Paris"}"#);

    // A call written inside the thoughts is thinking, not a call.
    let mut inside = req.clone();
    inside["grammar"] = json!(exactly(
        "<think>\n<tool_call>{\"name\": \"get_weather\", \"arguments\": {}}</tool_call>\n</think>\n\nNo call."
    ));
    let (_, body) = s.post("/v1/chat/completions", &inside).await;
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "stop", "{body}");
    assert_eq!(choice["message"]["content"], "No call.");
    assert!(choice["message"].get("tool_calls").is_none(), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn enable_thinking_reaches_the_template() {
    let Some(s) = with_template(QWEN3_STYLE, Opts::default()).await else {
        return;
    };
    let messages = json!([{"role": "user", "content": "Hi"}]);
    let prompt = |body: Value| body["prompt"].as_str().unwrap_or_default().to_owned();
    let (_, body) = s
        .post("/apply-template", &json!({"messages": messages}))
        .await;
    assert!(prompt(body).ends_with("<|im_start|>assistant\n"));
    let (_, body) = s
        .post(
            "/apply-template",
            &json!({"messages": messages, "chat_template_kwargs": {"enable_thinking": false}}),
        )
        .await;
    assert!(
        prompt(body.clone()).ends_with("<|im_start|>assistant\n<think>\n\n</think>\n\n"),
        "{body}"
    );
    let (status, body) = s
        .post(
            "/v1/chat/completions",
            &json!({"model": SMOL, "messages": messages, "max_tokens": 1,
                    "chat_template_kwargs": {"enable_thinking": "no"}}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("enable_thinking"), "{body}");

    // Thinking off: the template closes the block in the prompt; the reply is all answer.
    for off in [
        json!({"chat_template_kwargs": {"enable_thinking": false}}),
        json!({"reasoning_effort": "none"}),
    ] {
        let mut req = forced("It is 109.");
        for (k, v) in off.as_object().unwrap() {
            req[k] = v.clone();
        }
        let (_, body) = s.post("/v1/chat/completions", &req).await;
        let message = &body["choices"][0]["message"];
        assert_eq!(message["content"], "It is 109.", "{off}: {body}");
        assert!(message.get("reasoning_content").is_none(), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn server_reasoning_settings_are_defaults() {
    let opts = Opts::default().tweak(|c| {
        c.reasoning.thinking = "off".into();
        c.reasoning.format = "none".into();
    });
    let Some(s) = with_template(QWEN3_STYLE, opts).await else {
        return;
    };
    let messages = json!([{"role": "user", "content": "Hi"}]);
    let (_, body) = s
        .post("/apply-template", &json!({"messages": messages}))
        .await;
    assert!(
        body["prompt"]
            .as_str()
            .unwrap()
            .ends_with("<think>\n\n</think>\n\n"),
        "{body}"
    );
    // The request's own kwargs and format win over the server's.
    let (_, body) = s
        .post(
            "/apply-template",
            &json!({"messages": messages, "chat_template_kwargs": {"enable_thinking": true}}),
        )
        .await;
    assert!(
        body["prompt"]
            .as_str()
            .unwrap()
            .ends_with("<|im_start|>assistant\n"),
        "{body}"
    );
    // With the thoughts left in, the content reads as llama-server's does: the empty block
    // the prompt wrote, then the reply.
    let req = forced("<think>\nAdd.</think>\n\n109");
    let (_, body) = s.post("/v1/chat/completions", &req).await;
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "<think>\n\n</think>\n\n<think>\nAdd.</think>\n\n109"
    );
    // Asked to think and to return thoughts apart.
    let mut deepseek = req.clone();
    deepseek["reasoning_format"] = json!("deepseek");
    deepseek["chat_template_kwargs"] = json!({"enable_thinking": true});
    let (_, body) = s.post("/v1/chat/completions", &deepseek).await;
    assert_eq!(body["choices"][0]["message"]["reasoning_content"], "Add.");
    assert_eq!(body["choices"][0]["message"]["content"], "109");
}

/// `[reasoning]` changed through the configuration API applies to the next request, on the
/// routes that render a chat without generating too: the service applies it, not each route.
#[tokio::test(flavor = "multi_thread")]
async fn reasoning_settings_changed_live_reach_every_chat_render() {
    let Some(s) = with_template(QWEN3_STYLE, Opts::default()).await else {
        return;
    };
    let req = json!({"messages": [{"role": "user", "content": "Hi"}]});
    let prompt = |body: Value| body["prompt"].as_str().unwrap().to_string();
    let (_, body) = s.post("/apply-template", &req).await;
    assert!(prompt(body).ends_with("<|im_start|>assistant\n"));
    let (_, body) = s.post("/chat/completions/input_tokens", &req).await;
    let thinking_on = body["input_tokens"].as_u64().unwrap();

    let (status, body) = s
        .send(
            s.client
                .put(s.url("/api/config"))
                .json(&json!({"reasoning": {"thinking": "off"}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = s.post("/apply-template", &req).await;
    assert!(prompt(body).ends_with("<think>\n\n</think>\n\n"));
    let (_, body) = s.post("/chat/completions/input_tokens", &req).await;
    assert!(
        body["input_tokens"].as_u64().unwrap() > thinking_on,
        "the closed thinking block is counted: {body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_block_the_prompt_opened_is_continued() {
    let Some(s) = with_template(FORCED_OPEN, Opts::default()).await else {
        return;
    };
    // The prompt ends in `<think>\n`: the model writes the thoughts and the closing tag only.
    let req = forced("Add the units.</think>\n\nIt is 109.");
    let (_, body) = s.post("/v1/chat/completions", &req).await;
    let message = &body["choices"][0]["message"];
    assert_eq!(message["reasoning_content"], "Add the units.", "{body}");
    assert_eq!(message["content"], "It is 109.");
    let (_, reasoning, content, _) = streamed(&s, &req).await;
    assert_eq!(
        (reasoning.as_str(), content.as_str()),
        ("Add the units.", "It is 109.")
    );

    // Cut off while thinking: all of it is reasoning.
    let mut cut = forced("Still adding the units and carrying the tens");
    cut["max_tokens"] = json!(4);
    let (_, body) = s.post("/v1/chat/completions", &cut).await;
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "length");
    assert!(
        choice["message"]["reasoning_content"]
            .as_str()
            .is_some_and(|r| r.starts_with("Still")),
        "{body}"
    );
    assert_eq!(choice["message"]["content"], "");

    // Thinking off: the prompt closes the block, the reply is the answer.
    let mut off = forced("It is 109.");
    off["chat_template_kwargs"] = json!({"enable_thinking": false});
    let (_, body) = s.post("/v1/chat/completions", &off).await;
    assert_eq!(body["choices"][0]["message"]["content"], "It is 109.");
    assert!(
        body["choices"][0]["message"]
            .get("reasoning_content")
            .is_none()
    );
}

/// `reasoning_budget_tokens` (llama-server's `--reasoning-budget` per request): the block is
/// closed for the model after that many tokens, with the budget message, and the answer
/// follows; 0 is no thinking, as the template writes it.
#[tokio::test(flavor = "multi_thread")]
async fn a_thinking_budget_closes_the_block() {
    let Some(s) = with_template(FORCED_OPEN, Opts::default()).await else {
        return;
    };
    let req = json!({
        "model": SMOL,
        "messages": [{"role": "user", "content": "Think hard about the number seven."}],
        "temperature": 0,
        "max_tokens": 40,
        "ignore_eos": true,
        "reasoning_budget_tokens": 4,
        "reasoning_budget_message": " Time is up.",
    });
    let (status, body) = s.post("/v1/chat/completions", &req).await;
    assert_eq!(status, 200, "{body}");
    let message = &body["choices"][0]["message"];
    let reasoning = message["reasoning_content"].as_str().unwrap_or_default();
    assert!(reasoning.ends_with("Time is up."), "{body}");
    assert!(
        !message["content"].as_str().unwrap_or_default().is_empty(),
        "the answer follows the closed block: {body}"
    );
    let (_, streamed_reasoning, _, _) = streamed(&s, &req).await;
    assert!(
        streamed_reasoning.ends_with("Time is up."),
        "{streamed_reasoning:?}"
    );

    let mut off = req.clone();
    off["reasoning_budget_tokens"] = json!(0);
    let (_, body) = s.post("/v1/chat/completions", &off).await;
    assert!(
        body["choices"][0]["message"]
            .get("reasoning_content")
            .is_none(),
        "{body}"
    );

    let mut bad = req.clone();
    bad["reasoning_budget_tokens"] = json!(-2);
    let (status, body) = s.post("/v1/chat/completions", &bad).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["param"], "reasoning_budget_tokens", "{body}");
}
