//! `/metrics` with llama-server's `llamacpp:*` families, and models that sleep
//! (`models.sleep_idle_seconds`, llama-server's `--sleep-idle-seconds`).

use super::*;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The unlabelled `llamacpp:*` series (the server's totals) as {name: (type, value)}, as
/// llama.cpp's test suite reads them; every one must have `# HELP` and `# TYPE` lines.
fn server_totals(text: &str) -> HashMap<String, (String, f64)> {
    let mut types = HashMap::new();
    let mut out = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            types.insert(name.to_string(), kind.to_string());
        } else if line.starts_with("llamacpp:") && !line.contains('{') {
            let (name, value) = line.split_once(' ').unwrap();
            let kind = types
                .get(name)
                .unwrap_or_else(|| panic!("{name} has no # TYPE line"));
            assert!(
                text.contains(&format!("# HELP {name} ")),
                "{name} has no help"
            );
            out.insert(name.to_string(), (kind.clone(), value.parse().unwrap()));
        }
    }
    out
}

fn value(m: &HashMap<String, (String, f64)>, name: &str) -> f64 {
    m.get(&format!("llamacpp:{name}"))
        .unwrap_or_else(|| panic!("no llamacpp:{name} in {m:?}"))
        .1
}

/// Every `llamacpp:` line of a scrape (families and samples).
fn llamacpp_lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.contains("llamacpp:")).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn llama_servers_families_count_what_the_requests_report() {
    let Some(s) = TestServer::start(Opts {
        parallel: Some(1),
        ..Default::default()
    })
    .await
    else {
        return;
    };
    let prompt = "the quick brown fox jumps over the lazy dog";
    let (mut prompt_n, mut cache_n, mut predicted_n) = (0.0, 0.0, 0.0);
    for n_predict in [4, 4, 16] {
        let (status, body) = s
            .post(
                "/completion",
                &json!({"model": SMOL, "prompt": prompt, "n_predict": n_predict}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let t = &body["timings"];
        prompt_n += t["prompt_n"].as_f64().unwrap();
        cache_n += t["cache_n"].as_f64().unwrap();
        predicted_n += t["predicted_n"].as_f64().unwrap();
    }
    assert!(
        cache_n > 0.0,
        "the same prompt again reuses the slot's cache"
    );

    let text = s.text("/metrics").await;
    let m = server_totals(&text);
    for counter in [
        "prompt_tokens_total",
        "prompt_tokens_cached_total",
        "prompt_seconds_total",
        "tokens_predicted_total",
        "tokens_predicted_seconds_total",
        "n_decode_total",
        "n_tokens_max",
        "spec_decode_num_draft_tokens_total",
        "spec_decode_num_accepted_tokens_total",
        "spec_decode_num_drafts_total",
    ] {
        assert_eq!(m[&format!("llamacpp:{counter}")].0, "counter", "{counter}");
    }
    for gauge in [
        "prompt_tokens_seconds",
        "predicted_tokens_seconds",
        "requests_processing",
        "requests_deferred",
        "n_busy_slots_per_decode",
    ] {
        assert_eq!(m[&format!("llamacpp:{gauge}")].0, "gauge", "{gauge}");
    }
    // Cached prompt tokens are counted apart: they cost no decode.
    assert_eq!(value(&m, "prompt_tokens_total"), prompt_n);
    assert_eq!(value(&m, "prompt_tokens_cached_total"), cache_n);
    assert_eq!(value(&m, "tokens_predicted_total"), predicted_n);
    assert!(value(&m, "n_decode_total") > 0.0);
    assert_eq!(value(&m, "n_busy_slots_per_decode"), 1.0, "one slot");
    assert!(value(&m, "n_tokens_max") >= predicted_n / 3.0);
    assert_eq!(value(&m, "requests_processing"), 0.0);
    assert_eq!(value(&m, "spec_decode_num_drafts_total"), 0.0);
    // The throughput of what finished since the last scrape, then of nothing.
    assert!(value(&m, "predicted_tokens_seconds") > 0.0);
    assert!(value(&m, "prompt_tokens_seconds") > 0.0);
    let again = server_totals(&s.text("/metrics").await);
    assert_eq!(value(&again, "predicted_tokens_seconds"), 0.0);
    assert_eq!(value(&again, "prompt_tokens_seconds"), 0.0);
    assert_eq!(value(&again, "tokens_predicted_total"), predicted_n);
    // The model's own series: the same figures, labelled.
    assert!(
        text.contains(&format!(
            "llamacpp:tokens_predicted_total{{model=\"{SMOL}\"}} {predicted_n}"
        )),
        "{text}"
    );
}

/// Polls `/props` until the model sleeps.
async fn wait_for_sleep(s: &TestServer) {
    let start = Instant::now();
    loop {
        let (status, props) = s.get("/props").await;
        assert_eq!(status, 200, "{props}");
        if props["is_sleeping"] == true {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the model did not sleep: {props}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sleeping_model_keeps_its_metrics_and_status_reads_do_not_wake_it() {
    let Some(s) = TestServer::start(
        Opts {
            routing: service::Routing {
                single: true,
                model: Some(SMOL.into()),
                ..Default::default()
            },
            ..Default::default()
        }
        .tweak(|c| c.models.sleep_idle_seconds = 1),
    )
    .await
    else {
        return;
    };
    let (status, body) = s
        .post("/completion", &json!({"prompt": "Hello", "n_predict": 8}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, props) = s.get("/props").await;
    assert_eq!(props["is_sleeping"], false, "{props}");

    wait_for_sleep(&s).await;
    assert!(s.state.models.peek(SMOL).is_none(), "asleep means unloaded");
    // What it showed awake, from memory.
    let (_, props) = s.get("/props").await;
    assert_eq!(props["model_alias"], SMOL, "{props}");
    assert!(props["total_slots"].as_u64().unwrap() > 0, "{props}");
    assert!(
        props["chat_template"]
            .as_str()
            .unwrap()
            .contains("<|im_start|>")
    );

    // The first scrape reports the last generation's throughput, the next an empty window;
    // the totals are what they were on going to sleep.
    let first = s.text("/metrics").await;
    assert!(value(&server_totals(&first), "predicted_tokens_seconds") > 0.0);
    let asleep = s.text("/metrics").await;
    let totals = server_totals(&asleep);
    assert_eq!(value(&totals, "predicted_tokens_seconds"), 0.0);
    assert_eq!(value(&totals, "tokens_predicted_total"), 8.0);
    assert_eq!(value(&totals, "requests_processing"), 0.0);

    // Read-only routes do not wake it.
    for path in ["/health", "/props", "/models", "/v1/models", "/metrics"] {
        let (status, body) = s.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    assert!(s.state.models.is_sleeping(SMOL));
    assert!(
        s.state.models.peek(SMOL).is_none(),
        "woken by a status read"
    );
    assert_eq!(
        llamacpp_lines(&s.text("/metrics").await),
        llamacpp_lines(&asleep),
        "nothing moves while it sleeps"
    );

    // A request that needs the model wakes it; the window it reported stays reported.
    let (status, body) = s.post("/tokenize", &json!({"content": "Hello"})).await;
    assert_eq!(status, 200, "{body}");
    let (_, props) = s.get("/props").await;
    assert_eq!(props["is_sleeping"], false, "{props}");
    let woken = server_totals(&s.text("/metrics").await);
    assert_eq!(value(&woken, "predicted_tokens_seconds"), 0.0);
    assert_eq!(value(&woken, "tokens_predicted_total"), 8.0);

    // Counting a chat's tokens wakes it too.
    wait_for_sleep(&s).await;
    let (status, counted) = s
        .post(
            "/chat/completions/input_tokens",
            &json!({"messages": [{"role": "user", "content": "Hello world"}]}),
        )
        .await;
    assert_eq!(status, 200, "{counted}");
    assert!(counted["input_tokens"].as_u64().unwrap() > 0, "{counted}");
    assert!(!s.state.models.is_sleeping(SMOL));
}

/// `--cache-ram` (launch parameter `cache_ram_mib`) on a one-slot server: two prompts
/// alternating, the second request for A restores its prefix from the host-RAM cache
/// (`timings.cache_n`; `/metrics` counts the restore and the cache's bytes); with 0, A is
/// evaluated again.
#[tokio::test(flavor = "multi_thread")]
async fn cache_ram_restores_an_overwritten_prompt() {
    for (mib, reused) in [(64, true), (0, false)] {
        let mut launch = serde_json::Map::new();
        launch.insert("cache_ram_mib".into(), json!(mib));
        let Some(s) = TestServer::start(Opts {
            parallel: Some(1),
            launch,
            ..Default::default()
        })
        .await
        else {
            return;
        };
        let a = format!("Towers. {}", "The tower is old and tall. ".repeat(12));
        let b = format!("Rivers. {}", "The river is wide and long. ".repeat(12));
        let mut timings = Vec::new();
        for prompt in [&a, &b, &a] {
            let (status, body) = s
                .post(
                    "/completion",
                    &json!({"model": SMOL, "prompt": prompt, "n_predict": 2}),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            timings.push(body["timings"].clone());
        }
        let n_a = timings[0]["prompt_n"].as_u64().unwrap();
        assert!(n_a > 60, "{}", timings[0]);
        let m = server_totals(&s.text("/metrics").await);
        if reused {
            assert_eq!(timings[2]["cache_n"], n_a - 1, "{}", timings[2]);
            assert_eq!(timings[2]["prompt_n"], 1, "{}", timings[2]);
            assert_eq!(value(&m, "prompt_cache_hits_total"), 1.0);
            assert!(value(&m, "prompt_cache_bytes") > 0.0);
        } else {
            assert!(
                timings[2]["prompt_n"].as_u64().unwrap() > n_a - 5,
                "{}",
                timings[2]
            );
            assert_eq!(value(&m, "prompt_cache_hits_total"), 0.0);
            assert_eq!(value(&m, "prompt_cache_bytes"), 0.0);
        }
    }
}
