//! Anthropic's Messages API (`/v1/messages`, `/v1/messages/count_tokens`) on the real model:
//! the request fields and what each becomes, the event sequence of a stream, errors in
//! Anthropic's shape. The wire format itself is pinned by golden files (`golden.rs`), which
//! are compared field by field with Anthropic's documented samples.

use super::*;

/// A Messages request for SmolLM2 at temperature 0.
pub fn messages(content: &str, max_tokens: u32) -> Value {
    json!({
        "model": SMOL,
        "max_tokens": max_tokens,
        "temperature": 0,
        "messages": [{"role": "user", "content": content}],
    })
}

pub fn weather_tool() -> Value {
    json!({
        "name": "get_weather",
        "description": "Current weather of a city",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    })
}

/// The `event:` names and the parsed `data:` of an Anthropic stream, checking that each
/// event's name is its data's `type`.
pub async fn events(s: &TestServer, body: &Value) -> Vec<Value> {
    let mut body = body.clone();
    body["stream"] = json!(true);
    let resp = s
        .client
        .post(s.url("/v1/messages"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    let data: Vec<Value> = sse_data(&text)
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(names.len(), data.len(), "{text}");
    for (n, d) in names.iter().zip(&data) {
        assert_eq!(d["type"], json!(n), "{text}");
    }
    data
}

fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            let t = e["type"].as_str().unwrap();
            match e["delta"]["type"].as_str() {
                Some(d) if t == "content_block_delta" => format!("{t}:{d}"),
                _ => t.to_string(),
            }
        })
        .collect()
}

/// The answer holds text blocks only (no thinking, no tool use).
fn text_only(body: &Value) -> bool {
    body["content"]
        .as_array()
        .unwrap()
        .iter()
        .all(|b| b["type"] == "text")
}

fn streamed_text(events: &[Value]) -> String {
    events
        .iter()
        .filter_map(|e| e["delta"]["text"].as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_and_its_stream_say_the_same_in_anthropics_order() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let req = messages(FRANCE, 24);
    let (status, body) = s
        .send(
            s.client
                .post(s.url("/v1/messages"))
                .header("x-api-key", "ignored-on-an-open-server")
                .header("anthropic-version", "2023-06-01")
                .json(&req),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["type"], "message");
    assert_eq!(
        body["content"][0]["text"],
        "The capital of France is Paris."
    );
    assert_eq!(body["stop_reason"], "end_turn");
    assert!(
        body["usage"]["input_tokens"].as_u64().unwrap() > 0,
        "{body}"
    );
    assert!(body.get("timings").is_none());

    let ev = events(&s, &req).await;
    let k = kinds(&ev);
    assert_eq!(
        k[..3],
        ["message_start", "content_block_start", "ping"],
        "{k:?}"
    );
    assert!(
        k[3..k.len() - 3]
            .iter()
            .all(|k| k == "content_block_delta:text_delta"),
        "{k:?}"
    );
    assert_eq!(
        k[k.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
    assert_eq!(streamed_text(&ev), "The capital of France is Paris.");
    let start = &ev[0]["message"];
    assert_eq!(start["content"], json!([]));
    assert_eq!(start["stop_reason"], Value::Null);
    // The whole prompt is announced before generation (cached or not, it is the prompt).
    let prompt = body["usage"]["input_tokens"].as_u64().unwrap()
        + body["usage"]["cache_read_input_tokens"].as_u64().unwrap();
    assert_eq!(start["usage"]["input_tokens"].as_u64(), Some(prompt));
    let delta = &ev[ev.len() - 2];
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(
        delta["usage"]["output_tokens"],
        body["usage"]["output_tokens"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn system_prefill_and_stop_sequences() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    // System as blocks (cache_control accepted), turns, and an assistant prefill that the
    // answer continues: the same text as the whole answer minus the prefill.
    let mut whole = messages(FRANCE, 24);
    whole["system"] = json!([{"type": "text", "text": "You are a helpful assistant.",
                              "cache_control": {"type": "ephemeral"}}]);
    whole["metadata"] = json!({"user_id": "u1"});
    whole["service_tier"] = json!("auto");
    let (status, full) = s.post("/v1/messages", &whole).await;
    assert_eq!(status, 200, "{full}");
    let text = full["content"][0]["text"].as_str().unwrap().to_string();
    let (head, tail) = text.split_at(text.find(" is ").expect("an answer about Paris"));
    let mut prefilled = whole.clone();
    prefilled["messages"]
        .as_array_mut()
        .unwrap()
        .push(json!({"role": "assistant", "content": [{"type": "text", "text": head}]}));
    let (status, cont) = s.post("/v1/messages", &prefilled).await;
    assert_eq!(status, 200, "{cont}");
    assert_eq!(cont["content"][0]["text"], tail, "{cont}");

    // A stop sequence that occurs: `stop_sequence` names it, and the text stops before it.
    let mut stopped = whole.clone();
    stopped["stop_sequences"] = json!(["Paris", "never"]);
    let (status, body) = s.post("/v1/messages", &stopped).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stop_reason"], "stop_sequence", "{body}");
    assert_eq!(body["stop_sequence"], "Paris");
    assert_eq!(body["content"][0]["text"], "The capital of France is ");
    let ev = events(&s, &stopped).await;
    let delta = &ev[ev.len() - 2];
    assert_eq!(delta["delta"]["stop_reason"], "stop_sequence");
    assert_eq!(delta["delta"]["stop_sequence"], "Paris");

    // Out of tokens: `max_tokens`.
    let (status, body) = s.post("/v1/messages", &messages(FRANCE, 2)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stop_reason"], "max_tokens");
    assert_eq!(body["stop_sequence"], Value::Null);
    assert_eq!(body["usage"]["output_tokens"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tool_use_round_trip() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let mut req = messages("What is the weather in Paris?", 64);
    req["tools"] = json!([weather_tool()]);
    req["tool_choice"] = json!({"type": "any"});
    let (status, body) = s.post("/v1/messages", &req).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stop_reason"], "tool_use", "{body}");
    let call = body["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "tool_use")
        .expect("a tool_use block")
        .clone();
    assert_eq!(call["name"], "get_weather");
    assert!(call["input"]["city"].is_string(), "{call}");

    // Streamed: the block starts with the name and an empty input, arguments come as
    // input_json_delta pieces that join to the same JSON.
    let ev = events(&s, &req).await;
    let start = ev
        .iter()
        .find(|e| e["type"] == "content_block_start" && e["content_block"]["type"] == "tool_use")
        .expect("a tool_use block");
    assert_eq!(start["content_block"]["input"], json!({}));
    let index = &start["index"];
    let json_text: String = ev
        .iter()
        .filter(|e| &e["index"] == index && e["delta"]["type"] == "input_json_delta")
        .map(|e| e["delta"]["partial_json"].as_str().unwrap())
        .collect();
    let input: Value = serde_json::from_str(&json_text).unwrap();
    assert_eq!(input, call["input"]);
    assert_eq!(ev[ev.len() - 2]["delta"]["stop_reason"], "tool_use");
    // Blocks are numbered from 0 without gaps, each started and stopped once.
    let starts: Vec<&Value> = ev
        .iter()
        .filter(|e| e["type"] == "content_block_start")
        .map(|e| &e["index"])
        .collect();
    let stops: Vec<&Value> = ev
        .iter()
        .filter(|e| e["type"] == "content_block_stop")
        .map(|e| &e["index"])
        .collect();
    assert_eq!(starts, stops);
    assert_eq!(
        starts,
        (0..starts.len())
            .map(|i| json!(i))
            .collect::<Vec<_>>()
            .iter()
            .collect::<Vec<_>>()
    );

    // The result goes back as a tool_result block (with text beside it) and is answered.
    let mut next = req.clone();
    next["tool_choice"] = json!({"type": "auto"});
    let msgs = next["messages"].as_array_mut().unwrap();
    msgs.push(json!({"role": "assistant", "content": body["content"]}));
    msgs.push(json!({"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": call["id"],
         "content": [{"type": "text", "text": "{\"sky\": \"sunny\", \"temperature_c\": 21}"}]},
        {"type": "text", "text": "Answer in one sentence."},
    ]}));
    let (status, body) = s.post("/v1/messages", &next).await;
    assert_eq!(status, 200, "{body}");
    assert!(!body["content"].as_array().unwrap().is_empty(), "{body}");

    // A named tool, and `none`: no call is made.
    let mut named = req.clone();
    named["tool_choice"] = json!({"type": "tool", "name": "get_weather"});
    let (status, body) = s.post("/v1/messages", &named).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stop_reason"], "tool_use", "{body}");
    let mut none = req.clone();
    none["tool_choice"] = json!({"type": "none"});
    none["max_tokens"] = json!(8);
    let (status, body) = s.post("/v1/messages", &none).await;
    assert_eq!(status, 200, "{body}");
    assert!(text_only(&body), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn thinking_effort_and_structured_output_as_the_2x_sdk_sends_them() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    // No temperature: the SDK 2.x sends thinking and output_config instead. The answer is
    // sampled, so the schema bounds its length to fit in max_tokens whatever is drawn.
    let schema = json!({
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": false,
    });
    let req = json!({
        "model": SMOL,
        "max_tokens": 200,
        "messages": [{"role": "user", "content": "Describe a person as JSON."}],
        "thinking": {"type": "enabled", "budget_tokens": 32},
        "output_config": {"format": {"type": "json_schema", "schema": schema}, "effort": "low"},
        "container": null,
        "context_management": {"edits": []},
    });
    let (status, body) = s.post("/v1/messages", &req).await;
    assert_eq!(status, 200, "{body}");
    // SmolLM2 does not think: no thinking block, and the answer keeps the schema.
    let blocks = body["content"].as_array().unwrap();
    assert!(blocks.iter().all(|b| b["type"] == "text"), "{body}");
    let person: Value = serde_json::from_str(blocks[0]["text"].as_str().unwrap()).unwrap();
    assert!(
        person["name"].is_string() && person["age"].is_i64(),
        "{person}"
    );
    for thinking in [json!({"type": "adaptive"}), json!({"type": "disabled"})] {
        let mut r = messages(FRANCE, 8);
        r["thinking"] = thinking;
        let (status, body) = s.post("/v1/messages", &r).await;
        assert_eq!(status, 200, "{body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn count_tokens_counts_the_prompt_the_message_runs_on() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let mut req = messages(FRANCE, 4);
    req["system"] = json!("You are terse.");
    let (status, counted) = s.post("/v1/messages/count_tokens", &req).await;
    assert_eq!(status, 200, "{counted}");
    assert_eq!(counted.as_object().unwrap().len(), 1, "{counted}");
    let (status, answered) = s.post("/v1/messages", &req).await;
    assert_eq!(status, 200, "{answered}");
    let prompt = answered["usage"]["input_tokens"].as_u64().unwrap()
        + answered["usage"]["cache_read_input_tokens"]
            .as_u64()
            .unwrap();
    assert_eq!(counted["input_tokens"].as_u64(), Some(prompt));
    // max_tokens is not needed to count; tools count.
    let mut with_tools = req.clone();
    with_tools.as_object_mut().unwrap().remove("max_tokens");
    with_tools["tools"] = json!([weather_tool()]);
    let (status, more) = s.post("/v1/messages/count_tokens", &with_tools).await;
    assert_eq!(status, 200, "{more}");
    assert!(
        more["input_tokens"].as_u64() > counted["input_tokens"].as_u64(),
        "{more}"
    );
}

/// A failed tool call (`is_error: true`) reaches the model as one: the prompt says so, so it
/// holds more tokens than the same result given as a success. A tool without a name is
/// refused by the one tool validator the other families use.
#[tokio::test(flavor = "multi_thread")]
async fn a_tool_error_reaches_the_model_and_tools_are_validated() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let conversation = |is_error: bool| {
        json!({"model": SMOL, "max_tokens": 8, "tools": [weather_tool()], "messages": [
            {"role": "user", "content": "What is the weather in Paris?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1",
                "name": "get_weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                "content": "service down", "is_error": is_error}]},
        ]})
    };
    let (status, ok) = s
        .post("/v1/messages/count_tokens", &conversation(false))
        .await;
    assert_eq!(status, 200, "{ok}");
    let (status, failed) = s
        .post("/v1/messages/count_tokens", &conversation(true))
        .await;
    assert_eq!(status, 200, "{failed}");
    assert!(
        failed["input_tokens"].as_u64() > ok["input_tokens"].as_u64(),
        "{failed} vs {ok}"
    );
    for tool in [
        json!({"name": "", "input_schema": {"type": "object"}}),
        json!({"name": "f", "description": 7, "input_schema": {"type": "object"}}),
    ] {
        let mut req = messages(FRANCE, 4);
        req["tools"] = json!([tool]);
        let (status, body) = s.post("/v1/messages", &req).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_in_anthropics_shape() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let red_pixel = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
    let user = |content: Value| json!({"model": SMOL, "max_tokens": 8, "messages": [{"role": "user", "content": content}]});
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "max_tokens missing",
            json!({"model": SMOL, "messages": [{"role": "user", "content": "x"}]}),
            400,
            "max_tokens",
        ),
        (
            "max_tokens zero",
            json!({"model": SMOL, "max_tokens": 0, "messages": [{"role": "user", "content": "x"}]}),
            400,
            "max_tokens",
        ),
        (
            "messages missing",
            json!({"model": SMOL, "max_tokens": 8}),
            400,
            "messages",
        ),
        (
            "empty messages",
            json!({"model": SMOL, "max_tokens": 8, "messages": []}),
            400,
            "messages",
        ),
        (
            "system role",
            json!({"model": SMOL, "max_tokens": 8, "messages": [{"role": "system", "content": "x"}]}),
            400,
            "system",
        ),
        (
            "unknown block",
            user(json!([{"type": "hologram"}])),
            400,
            "hologram",
        ),
        (
            "image on a text model",
            user(
                json!([{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": red_pixel}}, {"type": "text", "text": "What is this?"}]),
            ),
            400,
            "cannot read images",
        ),
        (
            "server tool",
            json!({"model": SMOL, "max_tokens": 8, "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "web_search_20250305", "name": "web_search"}]}),
            400,
            "web_search_20250305",
        ),
        (
            "tool without schema",
            json!({"model": SMOL, "max_tokens": 8, "messages": [{"role": "user", "content": "x"}], "tools": [{"name": "f"}]}),
            400,
            "input_schema",
        ),
        (
            "unknown tool_choice",
            json!({"model": SMOL, "max_tokens": 8, "messages": [{"role": "user", "content": "x"}], "tool_choice": {"type": "maybe"}}),
            400,
            "tool_choice",
        ),
        (
            "budget over max_tokens",
            json!({"model": SMOL, "max_tokens": 8, "messages": [{"role": "user", "content": "x"}], "thinking": {"type": "enabled", "budget_tokens": 1024}}),
            400,
            "budget_tokens",
        ),
        (
            "bad format",
            json!({"model": SMOL, "max_tokens": 8, "messages": [{"role": "user", "content": "x"}], "output_config": {"format": {"type": "yaml"}}}),
            400,
            "output_config.format",
        ),
        (
            "negative top_k",
            json!({"model": SMOL, "max_tokens": 8, "messages": [{"role": "user", "content": "x"}], "top_k": -1}),
            400,
            "top_k",
        ),
        (
            "unknown model",
            json!({"model": "claude-nope", "max_tokens": 8, "messages": [{"role": "user", "content": "x"}]}),
            404,
            "claude-nope",
        ),
    ];
    for (what, body, status, needle) in cases {
        let (got, resp) = s.post("/v1/messages", &body).await;
        assert_eq!(got, status, "{what}: {resp}");
        assert_eq!(resp["type"], "error", "{what}: {resp}");
        let kind = if status == 404 {
            "not_found_error"
        } else {
            "invalid_request_error"
        };
        assert_eq!(resp["error"]["type"], kind, "{what}: {resp}");
        let message = resp["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{what}: {resp}");
    }
    // Errors made before a handler runs (broken JSON, a wrong method) take the shape too.
    let (status, resp) = s
        .send(
            s.client
                .post(s.url("/v1/messages"))
                .header("content-type", "application/json")
                .body("{not json"),
        )
        .await;
    assert_eq!((status, &resp["type"]), (400, &json!("error")), "{resp}");
    let (status, resp) = s.get("/v1/messages/count_tokens").await;
    assert_eq!(status, 405);
    assert_eq!(resp["error"]["type"], "invalid_request_error", "{resp}");
}

/// With keys on, `x-api-key` is the inference key, as a Bearer token is.
#[tokio::test(flavor = "multi_thread")]
async fn x_api_key_is_the_inference_key() {
    let Some(s) = TestServer::start(Opts {
        api_key: Some("inference-key".into()),
        ..Default::default()
    })
    .await
    else {
        return;
    };
    let req = messages(FRANCE, 4);
    let send = |key: Option<&'static str>| {
        let mut r = s
            .client
            .post(s.url("/v1/messages"))
            .header("anthropic-version", "2023-06-01")
            .json(&req);
        if let Some(k) = key {
            r = r.header("x-api-key", k);
        }
        s.send(r)
    };
    let (status, body) = send(None).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["type"], "authentication_error", "{body}");
    let (status, body) = send(Some("wrong")).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = send(Some("inference-key")).await;
    assert_eq!(status, 200, "{body}");
}

/// `thinking` on a thinking template (SmolLM2 with a template that opens the block, as
/// DeepSeek R1's does): the thoughts come as a `thinking` block before the text, closed by
/// the engine's budget after `budget_tokens`; streamed as `thinking_delta`s and a
/// `signature_delta`. `display: "omitted"` keeps the block and hides its text; `disabled`
/// has the template close the block, so there are no thoughts.
#[tokio::test(flavor = "multi_thread")]
async fn thinking_blocks_come_before_the_answer() {
    let Some(s) =
        super::reasoning::with_template(super::reasoning::FORCED_OPEN, Opts::default()).await
    else {
        return;
    };
    let req = json!({
        "model": SMOL,
        "max_tokens": 40,
        "temperature": 0,
        "thinking": {"type": "enabled", "budget_tokens": 4},
        "messages": [{"role": "user", "content": "Think hard about the number seven."}],
    });
    let (status, body) = s.post("/v1/messages", &req).await;
    assert_eq!(status, 200, "{body}");
    let content = body["content"].as_array().unwrap();
    assert_eq!(content[0]["type"], "thinking", "{body}");
    let thoughts = content[0]["thinking"].as_str().unwrap();
    assert!(!thoughts.is_empty(), "{body}");
    assert_eq!(content[0]["signature"], "");
    assert_eq!(content[1]["type"], "text", "{body}");
    assert!(
        !content[1]["text"].as_str().unwrap().contains("<think>"),
        "{body}"
    );

    let ev = events(&s, &req).await;
    let k = kinds(&ev);
    assert_eq!(
        k[..4],
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta:thinking_delta"
        ],
        "{k:?}"
    );
    assert_eq!(ev[1]["content_block"]["type"], "thinking");
    let streamed: String = ev
        .iter()
        .filter_map(|e| e["delta"]["thinking"].as_str())
        .collect();
    assert_eq!(streamed, thoughts);
    let sig = k
        .iter()
        .position(|k| k == "content_block_delta:signature_delta")
        .expect("a signature before the block stops");
    assert_eq!(ev[sig + 1]["type"], "content_block_stop");
    assert_eq!(ev[sig + 1]["index"], 0);
    assert_eq!(ev[sig + 2]["type"], "content_block_start");
    assert_eq!(ev[sig + 2]["index"], 1);
    assert_eq!(ev[sig + 2]["content_block"]["type"], "text");
    assert_eq!(streamed_text(&ev), content[1]["text"].as_str().unwrap());

    let mut omitted = req.clone();
    omitted["thinking"]["display"] = json!("omitted");
    let (status, body) = s.post("/v1/messages", &omitted).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["content"][0]["type"], "thinking", "{body}");
    assert_eq!(body["content"][0]["thinking"], "", "{body}");

    let mut off = req.clone();
    off["thinking"] = json!({"type": "disabled"});
    let (status, body) = s.post("/v1/messages", &off).await;
    assert_eq!(status, 200, "{body}");
    assert!(text_only(&body), "{body}");
}
