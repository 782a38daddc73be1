//! What a model's packaging says about running it beyond its GGUF header: today an Ollama
//! manifest's layers (`catalog::OllamaModel`). The one mapping from those to ours, used by
//! the template choice (family, system prompt, stop strings), the load spec (context size,
//! batch, GPU layers, threads: a layer just below the user's stored launch parameters) and
//! the sampling every request starts from (below anything the user set).
//!
//! Ollama's template layer is a Go template. We do not run it: a GGUF's own Jinja
//! `tokenizer.chat_template` is preferred, and without one the Go template's turn markers
//! name one of our built-in families (`chat::family_in_text`), which also knows tools and
//! thinking. Rendering Go templates would take a second template engine fed Ollama's own
//! data model (`.Messages`, `.Prompt`/`.Response` turns, `.ToolCalls`, its helper functions).

use crate::sampling::SamplingDefaults;
use catalog::ModelEntry;
use serde_json::{Map, Value};

/// How to prompt the model: what [`crate::TemplateChoice`] carries to every render.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PromptDefaults {
    /// The family the packaging's template names, for a GGUF without its own template.
    pub family: Option<chat::Family>,
    /// The default system prompt: used when a conversation has no system message.
    pub system: Option<String>,
    /// Stop strings added to every request.
    pub stop: Vec<String>,
}

impl PromptDefaults {
    /// Puts the default system prompt first when the conversation has no system message.
    pub fn apply(&self, messages: &mut Vec<chat::ChatMessage>) {
        if let Some(system) = &self.system
            && !messages.iter().any(|m| m.role == "system")
        {
            messages.insert(0, chat::ChatMessage::system(system.clone()));
        }
    }

    /// Adds the stop strings to a request's own.
    pub fn add_stops(&self, stop: &mut Vec<String>) {
        for s in &self.stop {
            if !stop.contains(s) {
                stop.push(s.clone());
            }
        }
    }
}

/// Sampling values the packaging sets; `None` leaves the server's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SamplingOverrides {
    pub temperature: Option<f32>,
    pub top_k: Option<i32>,
    pub top_p: Option<f32>,
    pub min_p: Option<f32>,
    pub repeat_penalty: Option<f32>,
    pub seed: Option<u32>,
    pub n_predict: Option<u32>,
}

/// Everything a model's packaging says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelDefaults {
    pub prompt: PromptDefaults,
    /// Launch parameters by [`crate::launch_param_keys`] names.
    pub launch: Map<String, Value>,
    pub sampling: SamplingOverrides,
}

impl ModelDefaults {
    pub fn of(entry: &ModelEntry) -> Self {
        let Some(o) = &entry.ollama else {
            return ModelDefaults::default();
        };
        let p = &o.params;
        let f32_of = |k: &str| p.get(k).and_then(Value::as_f64).map(|v| v as f32);
        let int_of = |k: &str| p.get(k).and_then(Value::as_i64);
        let stop = match p.get("stop") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        let mut launch = Map::new();
        // Ollama's option names → ours; values of the wrong type are left out, not guessed.
        for (theirs, ours) in [
            ("num_ctx", "ctx_size"),
            ("num_batch", "batch_size"),
            ("num_gpu", "n_gpu_layers"),
            ("num_thread", "threads"),
        ] {
            if let Some(n) = p.get(theirs).and_then(Value::as_u64) {
                launch.insert(ours.into(), n.into());
            }
        }
        ModelDefaults {
            prompt: PromptDefaults {
                family: o.template.as_deref().and_then(chat::family_in_text),
                system: o.system.clone().filter(|s| !s.trim().is_empty()),
                stop: stop.into_iter().filter(|s| !s.is_empty()).collect(),
            },
            launch,
            sampling: SamplingOverrides {
                temperature: f32_of("temperature"),
                top_k: int_of("top_k").and_then(|v| i32::try_from(v).ok()),
                top_p: f32_of("top_p"),
                min_p: f32_of("min_p"),
                repeat_penalty: f32_of("repeat_penalty"),
                seed: int_of("seed").and_then(|v| u32::try_from(v).ok()),
                // Ollama's -1 (no limit) and -2 (fill the context) are no limit of ours.
                n_predict: int_of("num_predict").and_then(|v| u32::try_from(v).ok()),
            },
        }
    }

    /// The sampling a request for this model starts from: the server's, with the model's
    /// values where the server's are still the built-in defaults (a value the user set, by
    /// `[sampling]`, a flag or `POST /props`, wins), as load parameters rank (`load_spec`).
    pub fn sampling(&self, server: &SamplingDefaults) -> SamplingDefaults {
        let builtin = SamplingDefaults::from_config(&config::SamplingConfig::default());
        let m = &self.sampling;
        let mut out = server.clone();
        macro_rules! fill {
            ($($f:ident),*) => { $(
                if let Some(v) = m.$f && server.$f == builtin.$f {
                    out.$f = v;
                }
            )* };
        }
        fill!(temperature, top_k, top_p, min_p, repeat_penalty);
        if server.seed == builtin.seed && m.seed.is_some() {
            out.seed = m.seed;
        }
        if server.n_predict == builtin.n_predict && m.n_predict.is_some() {
            out.n_predict = m.n_predict;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(template: Option<&str>, system: Option<&str>, params: Value) -> ModelEntry {
        ModelEntry {
            id: "m:latest".into(),
            source: catalog::Source::Ollama,
            path: "/x".into(),
            parts: vec!["/x".into()],
            split_count: 1,
            missing_parts: Vec::new(),
            mmproj: None,
            architecture: Some("llama".into()),
            name: None,
            file_type: None,
            quantization: None,
            context_length: None,
            size: 0,
            repo: None,
            incomplete: None,
            ollama: Some(catalog::OllamaModel {
                manifest: "/m".into(),
                template: template.map(str::to_owned),
                system: system.map(str::to_owned),
                params: params.as_object().cloned().unwrap_or_default(),
            }),
        }
    }

    #[test]
    fn ollama_layers_become_our_defaults() {
        let d = ModelDefaults::of(&entry(
            Some("{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>{{ end }}"),
            Some("Be brief."),
            serde_json::json!({"stop": ["<|im_end|>", ""], "temperature": 0.25, "top_k": 7,
                "num_ctx": 4096, "num_predict": -1, "num_thread": "many"}),
        ));
        assert_eq!(d.prompt.family, Some(chat::Family::ChatML));
        assert_eq!(d.prompt.system.as_deref(), Some("Be brief."));
        assert_eq!(d.prompt.stop, ["<|im_end|>"]);
        assert_eq!(
            d.launch,
            serde_json::json!({"ctx_size": 4096})
                .as_object()
                .cloned()
                .unwrap()
        );
        assert_eq!(d.sampling.temperature, Some(0.25));
        assert_eq!(d.sampling.n_predict, None, "-1 is no limit");

        // The model's values fill what the user left at the built-in defaults only.
        let builtin = SamplingDefaults::from_config(&config::SamplingConfig::default());
        let s = d.sampling(&builtin);
        assert_eq!((s.temperature, s.top_k), (0.25, 7));
        let mut set = builtin.clone();
        set.temperature = 1.5;
        let s = d.sampling(&set);
        assert_eq!((s.temperature, s.top_k), (1.5, 7));

        let mut messages = vec![chat::ChatMessage::user("hi")];
        d.prompt.apply(&mut messages);
        assert_eq!(messages[0].role, "system");
        let mut own = vec![
            chat::ChatMessage::system("mine"),
            chat::ChatMessage::user("hi"),
        ];
        d.prompt.apply(&mut own);
        assert_eq!(own.len(), 2, "a conversation's own system message wins");

        // A template with no marker we know names no family; a folder model has no defaults.
        let plain = ModelDefaults::of(&entry(Some("{{ .Prompt }}"), None, Value::Null));
        assert_eq!(plain.prompt.family, None);
        let mut folder = entry(None, None, Value::Null);
        folder.ollama = None;
        assert_eq!(ModelDefaults::of(&folder), ModelDefaults::default());
    }
}
