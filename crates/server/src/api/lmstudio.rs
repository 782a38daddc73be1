//! LM Studio's REST API v0 (`/api/v0/*`): its model listing (type, state, quantization,
//! context lengths) and its inference routes, which are the OpenAI routes' own handlers
//! (`openai::chat_completions_with`, `completions_with`, `embed::openai_embeddings`) with
//! LM Studio's `stats`, `model_info` and `runtime` added to the answer. Nothing here renders
//! a prompt or maps a sampling field: the request is OpenAI's, read by the same code.
//!
//! Streams: LM Studio itself sends no `stats` in a stream (its clients asked for them:
//! lmstudio-bug-tracker #547, #676); ours carry them on the last chunk before `[DONE]`,
//! where `timings` already ride, and OpenAI clients ignore fields they do not know.

use super::common::Timed;
use super::openai::{self, ChatCompletionRequest, CompletionRequest, DoneFields};
use crate::error::ApiResult;
use crate::extract::ApiJson;
use crate::state::SharedState;
use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use manager::ModelState;
use serde_json::{Map, Value, json};
use service::{Done, Finish, Listed};

/// `GET /api/v0/models`: every model clients may name, loaded or not.
pub async fn list_models(State(state): State<SharedState>) -> Json<Value> {
    let mut data = Vec::new();
    for l in state.models.listed().await {
        data.push(model_json(&state, &l).await);
    }
    Json(json!({"object": "list", "data": data}))
}

/// `GET /api/v0/models/{id}`: one model (id, alias or path, as requests name it).
pub async fn get_model(
    State(state): State<SharedState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let l = openai::find_listed(&state, &id).await?;
    Ok(Json(model_json(&state, &l).await))
}

/// LM Studio's model object. `type` comes from what the model can do (the catalog's
/// capabilities): a projector makes it a `vlm`, a model that only embeds or ranks is
/// `embeddings`, any other an `llm`. `max_context_length` is what it was trained for;
/// `loaded_context_length` (newer LM Studio) what a request gets now, when loaded.
async fn model_json(state: &SharedState, l: &Listed) -> Value {
    let m = &l.entry;
    let caps = state.models.capabilities(m).await;
    let has = |c: &str| caps.iter().any(|x| x == c);
    let kind = if has("vision") {
        "vlm"
    } else if has("chat") || has("completion") {
        "llm"
    } else {
        "embeddings"
    };
    let loaded = openai::model_state(state, &m.id) == ModelState::Loaded;
    let mut v = json!({
        "id": l.id,
        "object": "model",
        "type": kind,
        "publisher": openai::owner(m),
        "arch": m.architecture,
        "compatibility_type": "gguf",
        "quantization": m.quantization,
        "state": if loaded { "loaded" } else { "not-loaded" },
        "max_context_length": m.context_length,
    });
    if loaded && let Some(model) = state.models.peek(&m.id) {
        v["loaded_context_length"] = json!(model.handle.info().n_ctx_slot);
    }
    if has("tools") {
        v["capabilities"] = json!(["tool_use"]);
    }
    v
}

/// `POST /api/v0/chat/completions`: `/v1/chat/completions` with LM Studio's fields.
pub async fn chat_completions(
    State(state): State<SharedState>,
    ApiJson(req): ApiJson<ChatCompletionRequest>,
) -> ApiResult<Response> {
    openai::chat_completions_with(state, req, Some(extra)).await
}

/// `POST /api/v0/completions`: `/v1/completions` with LM Studio's fields.
pub async fn completions(
    State(state): State<SharedState>,
    ApiJson(req): ApiJson<CompletionRequest>,
) -> ApiResult<Response> {
    openai::completions_with(state, req, extra).await
}

/// LM Studio's `model_info` and `runtime` for the model `timed` runs on, and its `stats`
/// once the generation ends.
fn extra(timed: &Timed, params: &service::GenerateRequest) -> DoneFields {
    let info = timed.generation.model_info();
    let model_info = json!({
        "arch": info.architecture,
        "quant": info.quantization,
        "format": "gguf",
        "context_length": info.n_ctx_slot,
    });
    let stops = params.stop.clone();
    std::sync::Arc::new(move |d: &Done| {
        let mut fields = Map::new();
        fields.insert("stats".into(), stats(d, &stops));
        fields.insert("model_info".into(), model_info.clone());
        fields.insert("runtime".into(), runtime());
        fields
    })
}

/// LM Studio's `stats`: speed and times in seconds, and why the generation stopped.
fn stats(d: &Done, request_stops: &[String]) -> Value {
    json!({
        "tokens_per_second": d.timings.predicted_per_second,
        "time_to_first_token": d.timings.prompt_ms / 1000.0,
        "generation_time": d.timings.predicted_ms / 1000.0,
        "stop_reason": stop_reason(d, request_stops),
    })
}

/// LM Studio's stop reasons (its SDK's `LLMPredictionStopReason`). A stop string counts as
/// `stopStringFound` only when the request asked for it: the stop strings the model's family
/// adds are its end of turn, `eosFound`. A full context ends as `maxPredictedTokensReached`
/// too (the engine does not tell the two apart).
fn stop_reason(d: &Done, request_stops: &[String]) -> &'static str {
    match (&d.finish, &d.stop_word) {
        (Finish::Stop, Some(s)) if request_stops.contains(s) => "stopStringFound",
        (Finish::Stop, _) => "eosFound",
        (Finish::Length, _) => "maxPredictedTokensReached",
        (Finish::ToolCalls, _) => "toolCalls",
        (Finish::Cancelled, _) => "userStopped",
    }
}

/// LM Studio's `runtime`: the engine, this server's version, the one format it loads.
fn runtime() -> Value {
    json!({
        "name": format!("llama.cpp-{}-{}", std::env::consts::OS, std::env::consts::ARCH),
        "version": env!("CARGO_PKG_VERSION"),
        "supported_formats": ["gguf"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(finish: Finish, stop_word: Option<&str>) -> Done {
        Done {
            finish,
            stop_word: stop_word.map(str::to_owned),
            usage: Default::default(),
            timings: service::Timings {
                prompt_ms: 250.0,
                predicted_ms: 1500.0,
                predicted_per_second: 20.0,
                ..Default::default()
            },
            slot_id: 0,
        }
    }

    #[test]
    fn stop_reasons_are_lm_studios() {
        let asked = vec!["END".to_string()];
        let cases = [
            (done(Finish::Stop, None), "eosFound"),
            (done(Finish::Stop, Some("END")), "stopStringFound"),
            // The family's end-of-turn string, not the request's.
            (done(Finish::Stop, Some("<|im_end|>")), "eosFound"),
            (done(Finish::Length, None), "maxPredictedTokensReached"),
            (done(Finish::ToolCalls, None), "toolCalls"),
            (done(Finish::Cancelled, None), "userStopped"),
        ];
        for (d, want) in cases {
            assert_eq!(stop_reason(&d, &asked), want, "{d:?}");
        }
    }

    #[test]
    fn stats_are_in_seconds() {
        let s = stats(&done(Finish::Stop, None), &[]);
        assert_eq!(s["time_to_first_token"], json!(0.25));
        assert_eq!(s["generation_time"], json!(1.5));
        assert_eq!(s["tokens_per_second"], json!(20.0));
    }
}
