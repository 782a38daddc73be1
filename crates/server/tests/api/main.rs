//! HTTP API tests against the real server in-process (real router, real engine, real test
//! models), one server per test on 127.0.0.1:0. Model tests run on one thread, as all the
//! project's model tests do (two cores shared by parallel tests).

mod admin;
mod anthropic;
mod auth;
mod bench;
mod deployments;
mod downloads;
mod embed;
mod golden;
mod llama_compat;
mod lmstudio;
mod malformed;
mod metrics;
mod models;
mod native;
mod ollama;
mod ollama_chat;
mod ollama_models;
mod openai;
mod reasoning;
mod requests;
mod seed_routes;
mod sessions;
mod switches;
mod templates;
mod tools;
mod web;
mod workers;

#[path = "../support/mod.rs"]
mod support;

use serde_json::{Value, json};
#[allow(unused_imports)]
use server::{ServeOptions, state::SharedState};
use std::path::{Path, PathBuf};
use std::time::Duration;
pub use support::*;

/// Replaces values that change from run to run (ids, times, speeds) with placeholders, so
/// a response can be compared with a golden file.
pub fn normalize(v: &Value) -> Value {
    const VOLATILE: &[&str] = &[
        "id",
        "created",
        "created_at",
        "system_fingerprint",
        "item_id",
        "call_id",
    ];
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| {
                    let v = if VOLATILE.contains(&k.as_str()) && !v.is_null() {
                        json!(format!("<{k}>"))
                    } else if k == "timings" || k.ends_with("_ms") {
                        timings_shape(v)
                    } else if k == "top_logprobs" || k == "top_probs" {
                        alternatives_shape(v)
                    } else if (k == "logprob" || k == "prob") && v.is_number() {
                        // Computed probabilities: other CPUs' kernels give other last
                        // digits, so a golden file pins that the number is there, not its
                        // bits. Settings echoed back (temperature, top_p, ...) stay exact.
                        json!("<float>")
                    } else {
                        normalize(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        _ => v.clone(),
    }
}

/// The runner-up tokens of a logprobs entry: the first (the sampled token at temperature 0)
/// is kept; which tokens come next can swap between CPUs when their probabilities are close,
/// so only their fields are pinned.
fn alternatives_shape(v: &Value) -> Value {
    match v {
        Value::Array(a) => Value::Array(
            a.iter()
                .enumerate()
                .map(|(i, e)| match e {
                    Value::Object(o) if i > 0 => Value::Object(
                        o.keys()
                            .map(|k| (k.clone(), json!("<alternative>")))
                            .collect(),
                    ),
                    e => normalize(e),
                })
                .collect(),
        ),
        other => normalize(other),
    }
}

/// Keeps the keys of a timings object; numbers become `"<number>"`.
fn timings_shape(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), timings_shape(v)))
                .collect(),
        ),
        Value::Number(_) => json!("<number>"),
        other => other.clone(),
    }
}

/// Compares `actual` with `tests/golden/<name>.json`. `UPDATE_GOLDEN=1` (re)writes the
/// file; a missing file fails (a golden test must have something to compare with).
pub fn assert_golden(name: &str, actual: &Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.json"));
    let pretty = serde_json::to_string_pretty(actual).unwrap() + "\n";
    if std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1") {
        std::fs::write(&path, &pretty).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "golden file {} is missing (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    let expected: Value = serde_json::from_str(&expected).unwrap();
    assert_eq!(
        &expected,
        actual,
        "{name}: the response differs from {}; actual:\n{pretty}",
        path.display()
    );
}
