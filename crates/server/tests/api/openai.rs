//! OpenAI routes beyond the wire format: tool calls (whole and streamed), JSON output,
//! logprobs, stop strings, seeds, multi-model routing.

use super::*;

fn weather_tools() -> Value {
    json!([{"type": "function", "function": {
        "name": "get_weather",
        "description": "Current weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }}])
}

#[tokio::test(flavor = "multi_thread")]
async fn tool_calls_whole_and_streamed() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let mut req = chat("What is the weather in Paris?", 64);
    req["tools"] = weather_tools();
    req["tool_choice"] = json!("required");
    let (status, body) = s.post("/v1/chat/completions", &req).await;
    assert_eq!(status, 200, "{body}");
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert!(choice["message"]["content"].is_null());
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let args = call["function"]["arguments"]
        .as_str()
        .expect("arguments is a JSON string");
    let args: Value = serde_json::from_str(args).unwrap();
    assert!(args["city"].is_string(), "{args}");

    // Streamed: index 0 starts with id, type and name; argument pieces follow; they add up.
    req["stream"] = json!(true);
    let events = s.stream("/v1/chat/completions", &req).await;
    let mut name = None;
    let mut arguments = String::new();
    let mut finish = None;
    for e in events.iter().filter(|e| *e != "[DONE]") {
        let v: Value = serde_json::from_str(e).unwrap();
        let c = &v["choices"][0];
        if let Some(calls) = c["delta"]["tool_calls"].as_array() {
            for tc in calls {
                assert_eq!(tc["index"], 0);
                if let Some(n) = tc["function"]["name"].as_str() {
                    assert!(tc["id"].as_str().unwrap().starts_with("call_"));
                    assert_eq!(tc["type"], "function");
                    name = Some(n.to_string());
                }
                arguments.push_str(tc["function"]["arguments"].as_str().unwrap_or(""));
            }
        }
        if let Some(f) = c["finish_reason"].as_str() {
            finish = Some(f.to_string());
        }
    }
    assert_eq!(name.as_deref(), Some("get_weather"));
    assert_eq!(serde_json::from_str::<Value>(&arguments).unwrap(), args);
    assert_eq!(finish.as_deref(), Some("tool_calls"));

    // The round trip: the tool result goes back and the model answers in text.
    let messages = json!([
        {"role": "user", "content": "What is the weather in Paris?"},
        {"role": "assistant", "content": null, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "{\"temperature_c\": 21, \"sky\": \"sunny\"}"},
    ]);
    let req = json!({"model": SMOL, "messages": messages, "tools": weather_tools(), "temperature": 0, "max_tokens": 40});
    let (status, body) = s.post("/v1/chat/completions", &req).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["usage"]["prompt_tokens"].as_u64().unwrap() > 50);
}

#[tokio::test(flavor = "multi_thread")]
async fn json_modes_logprobs_stop_and_seed() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let schema = json!({"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}, "required": ["name", "age"]});
    let mut req = chat("Describe a person as JSON.", 60);
    req["response_format"] =
        json!({"type": "json_schema", "json_schema": {"name": "person", "schema": schema}});
    let (status, body) = s.post("/v1/chat/completions", &req).await;
    assert_eq!(status, 200, "{body}");
    let content: Value =
        serde_json::from_str(body["choices"][0]["message"]["content"].as_str().unwrap())
            .expect("json_schema output parses");
    assert!(
        content["name"].is_string() && content["age"].is_i64(),
        "{content}"
    );

    // JSON mode: this tiny model writes endless objects, so check the grammar's effect on
    // the start (without it the model answers in prose).
    let mut req = chat("Describe a person.", 8);
    let (_, prose) = s.post("/v1/chat/completions", &req).await;
    assert!(
        !prose["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .starts_with('{')
    );
    req["response_format"] = json!({"type": "json_object"});
    let (_, body) = s.post("/v1/chat/completions", &req).await;
    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(content.starts_with('{'), "{content}");

    let mut req = chat(FRANCE, 5);
    req["logprobs"] = json!(true);
    req["top_logprobs"] = json!(3);
    let (_, body) = s.post("/v1/chat/completions", &req).await;
    let lp = body["choices"][0]["logprobs"]["content"]
        .as_array()
        .unwrap();
    assert_eq!(lp.len(), 5);
    for t in lp {
        assert!(t["logprob"].as_f64().unwrap() <= 0.0);
        assert_eq!(t["top_logprobs"].as_array().unwrap().len(), 3);
        assert!(t["bytes"].is_array());
    }

    let mut req = chat(FRANCE, 24);
    req["stop"] = json!(["France"]);
    let (_, body) = s.post("/v1/chat/completions", &req).await;
    assert_eq!(body["choices"][0]["message"]["content"], "The capital of ");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");

    // max_completion_tokens wins over max_tokens; length is reported.
    let mut req = chat(FRANCE, 24);
    req["max_completion_tokens"] = json!(2);
    let (_, body) = s.post("/v1/chat/completions", &req).await;
    assert_eq!(body["usage"]["completion_tokens"], 2);
    assert_eq!(body["choices"][0]["finish_reason"], "length");

    // The same seed gives the same sample.
    let mut req = chat("Write a random word.", 8);
    req["temperature"] = json!(1.0);
    req["seed"] = json!(1234);
    let (_, a) = s.post("/v1/chat/completions", &req).await;
    let (_, b) = s.post("/v1/chat/completions", &req).await;
    assert_eq!(
        a["choices"][0]["message"]["content"],
        b["choices"][0]["message"]["content"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn model_field_routes_between_models() {
    let Some(s) = TestServer::start(Opts {
        gemma: true,
        ..Default::default()
    })
    .await
    else {
        return;
    };
    let (_, models) = s.get("/v1/models").await;
    assert_eq!(model_ids(&models), [GEMMA, SMOL]);
    assert!(
        models["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["state"] == "unloaded")
    );
    // A request without `model` is ambiguous with two models.
    let (status, body) = s
        .post(
            "/v1/chat/completions",
            &json!({"messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "model");
    // Gemma has no template: the built-in Gemma one is used; it answers.
    let (status, body) = s
        .post("/v1/chat/completions", &json!({"model": GEMMA, "messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 4, "temperature": 0}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["model"], GEMMA);
    let (status, body) = s.post("/v1/chat/completions", &chat(FRANCE, 24)).await;
    assert_eq!(status, 200);
    assert_eq!(body["model"], SMOL);
    let (_, models) = s.get("/v1/models").await;
    assert!(
        models["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["state"] == "loaded"),
        "{models}"
    );
    // An alias routes too.
    s.client
        .put(s.url("/api/models/smol/alias"))
        .json(&json!({"alias": "tiny"}))
        .send()
        .await
        .unwrap();
    let mut req = chat(FRANCE, 24);
    req["model"] = json!("tiny");
    let (status, body) = s.post("/v1/chat/completions", &req).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["model"], SMOL);
}
