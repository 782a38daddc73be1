//! Chat templates as llama-server applies them: message content as text parts, how a prompt
//! ends (`add_generation_prompt`, prefill, `continue_final_message`) and the checks on it,
//! `/chat/completions/input_tokens`, and the server-wide template (`--chat-template`,
//! `--no-jinja`).

use super::*;

fn book(user: Value) -> Value {
    json!([
        {"role": "system", "content": "Book"},
        {"role": "user", "content": user},
    ])
}

async fn prompt_of(s: &TestServer, body: Value) -> String {
    let (status, body) = s.post("/apply-template", &body).await;
    assert_eq!(status, 200, "{body}");
    body["prompt"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn text_parts_render_with_a_template_that_wants_strings() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    // SmolLM2's template concatenates `'...' + message['content']`; a list of parts failed
    // with "string + sequence" before. llama.cpp joins the parts with a newline.
    let parts =
        json!([{"type": "text", "text": "What is"}, {"type": "text", "text": "the best book"}]);
    let prompt = prompt_of(&s, json!({"model": SMOL, "messages": book(parts.clone())})).await;
    assert!(
        prompt.ends_with(
            "<|im_start|>system\nBook<|im_end|>\n<|im_start|>user\nWhat is\nthe best book<|im_end|>\n<|im_start|>assistant\n"
        ),
        "{prompt}"
    );
    for path in ["/v1/chat/completions", "/chat/completions"] {
        let req = json!({"model": SMOL, "messages": book(parts.clone()), "max_tokens": 2, "temperature": 0});
        let (status, body) = s.post(path, &req).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body["usage"]["completion_tokens"], 2);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn how_a_prompt_ends_and_what_is_refused() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let user = json!([{"role": "user", "content": "Hi"}]);
    let with = prompt_of(&s, json!({"model": SMOL, "messages": user})).await;
    let without = prompt_of(
        &s,
        json!({"model": SMOL, "messages": user, "add_generation_prompt": false}),
    )
    .await;
    assert_eq!(with, format!("{without}<|im_start|>assistant\n"));

    // A trailing assistant message is the start of the reply (llama-server's prefill), with
    // or without `continue_final_message`.
    let prefill = json!([
        {"role": "user", "content": "What is the best book"},
        {"role": "assistant", "content": "Whill"},
    ]);
    let expected = format!("{without}").replace("Hi", "What is the best book")
        + "<|im_start|>assistant\nWhill";
    assert_eq!(
        prompt_of(&s, json!({"model": SMOL, "messages": prefill})).await,
        expected
    );
    let continued = json!({"model": SMOL, "messages": prefill, "add_generation_prompt": false, "continue_final_message": true});
    assert_eq!(prompt_of(&s, continued.clone()).await, expected);
    // llama-server also takes which part of the message to continue.
    let mut by_part = continued.clone();
    by_part["continue_final_message"] = json!("content");
    assert_eq!(prompt_of(&s, by_part).await, expected);
    let mut chat = continued.clone();
    chat["max_tokens"] = json!(2);
    let (status, body) = s.post("/v1/chat/completions", &chat).await;
    assert_eq!(status, 200, "{body}");

    // llama-server's refusals, in its words, on every route that renders a chat.
    let both = json!({"model": SMOL, "messages": prefill, "add_generation_prompt": true, "continue_final_message": true, "max_tokens": 2});
    let two = json!({"model": SMOL, "max_tokens": 2, "messages": [
        {"role": "user", "content": "test"},
        {"role": "assistant", "content": "test"},
        {"role": "assistant", "content": "test"},
    ]});
    let calls = json!({"model": SMOL, "max_tokens": 2, "add_generation_prompt": false, "continue_final_message": true, "messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
    ]});
    for (req, message) in [
        (
            &both,
            "Cannot set both add_generation_prompt and continue_final_message to true.",
        ),
        (
            &two,
            "Cannot have 2 or more assistant messages at the end of the list.",
        ),
        (
            &calls,
            "Cannot continue an assistant message that contains tool calls.",
        ),
    ] {
        for path in [
            "/v1/chat/completions",
            "/apply-template",
            "/chat/completions/input_tokens",
        ] {
            let (status, body) = s.post(path, req).await;
            assert_eq!(status, 400, "{path}: {body}");
            let text = body["error"]["message"].as_str().unwrap();
            assert!(text.contains(message), "{path}: {text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn input_tokens_counts_the_prompt_the_chat_route_would_send() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    let req = json!({"model": SMOL, "messages": book(json!("What is the best book")), "max_tokens": 1, "temperature": 0});
    let (status, chat) = s.post("/v1/chat/completions", &req).await;
    assert_eq!(status, 200, "{chat}");
    let prompt_tokens = chat["usage"]["prompt_tokens"].as_u64().unwrap();
    for path in [
        "/chat/completions/input_tokens",
        "/v1/chat/completions/input_tokens",
    ] {
        let (status, body) = s.post(path, &req).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body["input_tokens"].as_u64(), Some(prompt_tokens), "{body}");
        assert_eq!(body["object"], "response.input_tokens");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_schema_that_is_not_an_object_is_refused_before_loading() {
    let Some(s) = TestServer::start(Opts::default()).await else {
        return;
    };
    for format in [
        json!({"type": "json_object", "schema": 123}),
        json!({"type": "json_schema", "json_schema": {"schema": "x"}}),
    ] {
        let mut req = chat("Write an example", 4);
        req["response_format"] = format;
        let (status, body) = s.post("/v1/chat/completions", &req).await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("response_format.schema"),
            "{body}"
        );
    }
    // The check runs before the model is acquired: nothing was loaded for it.
    assert!(s.state.models.peek(SMOL).is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn server_wide_template_by_name_text_or_no_jinja() {
    let messages = json!([
        {"role": "system", "content": "You are a test."},
        {"role": "user", "content": "Hi there"},
    ]);
    // A llama.cpp built-in name (`--chat-template command-r`).
    let opts = Opts::default().tweak(|c| c.models.chat_template = Some("command-r".into()));
    let Some(s) = TestServer::start(opts).await else {
        return;
    };
    assert_eq!(
        prompt_of(&s, json!({"model": SMOL, "messages": messages})).await,
        "<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>You are a test.<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Hi there<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>"
    );
    drop(s);

    // Jinja text, with the context llama.cpp gives templates (today's date).
    let opts = Opts::default().tweak(|c| {
        c.models.chat_template = Some(
            "{{ date_string }}|{{ datetime }}|{% for m in messages %}{{ m.content }};{% endfor %}"
                .into(),
        )
    });
    let s = TestServer::start(opts).await.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let prompt = prompt_of(&s, json!({"model": SMOL, "messages": messages})).await;
    let (date_string, datetime) = (
        chat::strftime("%d %b %Y", now),
        chat::strftime("%b %d %Y", now),
    );
    // (A render right at midnight UTC could see the next day; good enough.)
    assert_eq!(
        prompt,
        format!("{date_string}|{datetime}|You are a test.;Hi there;")
    );
    drop(s);

    // `--no-jinja`: the built-in template of the model's family, not the one in its file
    // (SmolLM2's own adds a default system prompt; the built-in ChatML does not).
    let own = TestServer::start(Opts::default()).await.unwrap();
    let user = json!({"model": SMOL, "messages": [{"role": "user", "content": "Hi"}]});
    assert!(prompt_of(&own, user.clone()).await.contains("SmolLM"));
    drop(own);
    let s = TestServer::start(Opts::default().tweak(|c| c.models.jinja = false))
        .await
        .unwrap();
    assert_eq!(
        prompt_of(&s, user.clone()).await,
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
    let (status, props) = s.get("/props?model=smol").await;
    assert_eq!(status, 200, "{props}");
    assert_eq!(props["chat_template_origin"], "builtin:chatml");
}
