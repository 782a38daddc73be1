//! The one way load parameters are made: the engine's defaults, `[models]` from the
//! configuration, the model's stored launch parameters, and a command's or request's own
//! overrides, in that order of layers:
//!
//! flags (a load request's parameters, `run -c`) > environment > file > stored per model >
//! defaults.
//!
//! Environment, file and command-line flags are already folded into one [`ModelsConfig`] by
//! the config crate (flags > env > file > defaults); here its values split in two: those the
//! user set rank above the stored per-model parameters, those left at their defaults below.

use crate::error::ServiceError;
use crate::loader::LoadSpec;
use config::ModelsConfig;
use engine::{ContextParams, ModelParams};
use serde_json::{Map, Value, json};
use std::path::Path;

/// The load spec for the model file at `path`: see the module documentation for the layers.
/// `stored` is the model's stored launch parameters, `overrides` the caller's own (a load
/// request's `params`; a CLI command's flags that are not config keys).
pub fn load_spec(
    config: &ModelsConfig,
    path: &Path,
    stored: &Map<String, Value>,
    overrides: &Map<String, Value>,
) -> Result<LoadSpec, ServiceError> {
    let mut spec = LoadSpec {
        model: ModelParams::new(path),
        context: ContextParams::default(),
    };
    let (set, defaulted) = config_layers(config);
    apply_overrides(&mut spec, &defaulted)?;
    apply_overrides(&mut spec, stored)?;
    apply_overrides(&mut spec, &set)?;
    apply_overrides(&mut spec, overrides)?;
    Ok(spec)
}

/// The manager's limits from `[models]`.
pub fn manager_config(config: &ModelsConfig) -> manager::ManagerConfig {
    manager::ManagerConfig {
        models_max: config.models_max.max(1) as usize,
        sleep_idle: manager::KeepAlive::from_secs(config.sleep_idle_seconds),
        keep_alive: manager::KeepAlivePolicy {
            clients: config.client_keep_alive,
            min: std::time::Duration::from_secs(config.keep_alive_min_seconds.max(0) as u64),
            max: manager::KeepAlive::from_secs(config.keep_alive_max_seconds),
        },
        crash_limit: config.crash_limit.max(1) as usize,
        crash_window: std::time::Duration::from_secs(config.crash_window_seconds.max(1)),
        ..Default::default()
    }
}

/// `[models]` as launch parameters, split into (set by the user, left at the default).
///
/// "Set" means different from the built-in default: the config crate folds the layers into
/// values without keeping where each came from, so a file that repeats a default value
/// counts as not setting it (the stored per-model value then wins, which is what the user
/// who stored it wants anyway).
fn config_layers(c: &ModelsConfig) -> (Map<String, Value>, Map<String, Value>) {
    let d = ModelsConfig::default();
    let gpu = |g: config::GpuLayers| match g {
        config::GpuLayers::Auto => json!("auto"),
        config::GpuLayers::Count(n) => json!(n),
    };
    let mut pairs: Vec<(&str, Value, bool)> = vec![
        ("ctx_size", json!(c.ctx_size), c.ctx_size != d.ctx_size),
        (
            "parallel",
            json!(c.parallel.max(1)),
            c.parallel != d.parallel,
        ),
        (
            "n_gpu_layers",
            gpu(c.n_gpu_layers),
            c.n_gpu_layers != d.n_gpu_layers,
        ),
    ];
    pairs.push((
        "prefill_chunk",
        json!(c.prefill_chunk),
        c.prefill_chunk != d.prefill_chunk,
    ));
    if let Some(t) = c.threads {
        pairs.push(("threads", json!(t), c.threads != d.threads));
    }
    let (mut set, mut defaulted) = (Map::new(), Map::new());
    for (key, value, is_set) in pairs {
        let layer = if is_set { &mut set } else { &mut defaulted };
        layer.insert(key.to_string(), value);
    }
    (set, defaulted)
}

/// Load parameters a request or the store may set, with where each goes. `ctx_size` is
/// the per-slot context, as in the config file.
const MODEL_KEYS: &[&str] = &[
    "n_gpu_layers",
    "split_mode",
    "main_gpu",
    "tensor_split",
    "use_mmap",
    "use_mlock",
    "lora",
];
const CONTEXT_KEYS: &[&str] = &[
    "ctx_per_slot",
    "parallel",
    "n_batch",
    "n_ubatch",
    "threads",
    "threads_batch",
    "flash_attn",
    "cache_type_k",
    "cache_type_v",
    "rope_scaling",
    "rope_freq_base",
    "rope_freq_scale",
    "yarn",
    "on_context_full",
    "embeddings",
    "pooling",
    "queue_max",
    "kv_unified",
    "swa_full",
    "prefill_chunk",
    "cache_ram_mib",
    "cache_idle_slots",
];

/// Every key [`apply_overrides`] accepts.
pub fn launch_param_keys() -> Vec<&'static str> {
    let mut keys: Vec<&str> = MODEL_KEYS.iter().chain(CONTEXT_KEYS).copied().collect();
    keys.extend(["ctx_size", "batch_size", "ubatch_size", "n_parallel"]);
    keys.sort_unstable();
    keys
}

/// Applies `{"ctx_size": 8192, "n_gpu_layers": "auto", ...}` to a spec. Unknown keys and
/// values of the wrong type are errors naming the key.
pub fn apply_overrides(
    spec: &mut LoadSpec,
    overrides: &Map<String, Value>,
) -> Result<(), ServiceError> {
    if overrides.is_empty() {
        return Ok(());
    }
    let mut model = serde_json::to_value(&spec.model).map_err(internal)?;
    let mut context = serde_json::to_value(&spec.context).map_err(internal)?;
    for (key, value) in overrides {
        let canonical = match key.as_str() {
            "ctx_size" => "ctx_per_slot",
            "batch_size" => "n_batch",
            "ubatch_size" => "n_ubatch",
            "n_parallel" => "parallel",
            k => k,
        };
        let value = match (canonical, value) {
            // "auto" or a number, as the CLI and llama-server take it.
            ("n_gpu_layers", Value::Number(n)) => json!({ "count": n }),
            ("n_gpu_layers", Value::String(s)) if s == "all" => json!({ "count": u32::MAX }),
            (_, v) => v.clone(),
        };
        let target = if MODEL_KEYS.contains(&canonical) {
            &mut model
        } else if CONTEXT_KEYS.contains(&canonical) {
            &mut context
        } else {
            return Err(ServiceError::invalid(
                key,
                format!(
                    "unknown load parameter (known: {})",
                    launch_param_keys().join(", ")
                ),
            ));
        };
        target[canonical] = value;
        // Check each key on its own so the error names it.
        if MODEL_KEYS.contains(&canonical) {
            serde_json::from_value::<ModelParams>(model.clone())
                .map_err(|e| ServiceError::invalid(key, e.to_string()))?;
        } else {
            serde_json::from_value::<ContextParams>(context.clone())
                .map_err(|e| ServiceError::invalid(key, e.to_string()))?;
        }
    }
    spec.model = serde_json::from_value(model).map_err(internal)?;
    spec.context = serde_json::from_value(context).map_err(internal)?;
    spec.model.validate()?;
    spec.context.validate()?;
    Ok(())
}

fn internal(e: serde_json::Error) -> ServiceError {
    ServiceError::Internal(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::GpuLayers;

    fn spec() -> LoadSpec {
        LoadSpec {
            model: ModelParams::new("/m.gguf"),
            context: ContextParams::default(),
        }
    }

    fn map(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn overrides_reach_both_halves_of_the_spec() {
        let mut s = spec();
        let o = map(r#"{"ctx_size": 2048, "n_gpu_layers": 10, "parallel": 2, "use_mmap": false}"#);
        apply_overrides(&mut s, &o).unwrap();
        assert_eq!(s.context.ctx_per_slot, 2048);
        assert_eq!(s.context.parallel, 2);
        assert_eq!(s.model.n_gpu_layers, GpuLayers::Count(10));
        assert!(!s.model.use_mmap);
        assert_eq!(s.model.path, std::path::PathBuf::from("/m.gguf"));
    }

    #[test]
    fn bad_overrides_name_the_key() {
        for (json, key) in [
            (r#"{"ctx_size": "big"}"#, "ctx_size"),
            (r#"{"warp_drive": 1}"#, "warp_drive"),
            (r#"{"parallel": 0}"#, "parallel"),
            (r#"{"cache_type_k": "q9"}"#, "cache_type_k"),
        ] {
            let mut s = spec();
            let err = apply_overrides(&mut s, &map(json)).unwrap_err();
            assert_eq!(err.param(), Some(key), "{json}: {err}");
        }
    }

    /// The config as the config crate builds it from file, environment and flags.
    fn config(pairs: &[(&str, &str)]) -> ModelsConfig {
        let mut c = config::Config::default();
        for (k, v) in pairs {
            c.set(k, v).unwrap();
        }
        c.models
    }

    const PATH: &str = "/models/m.gguf";

    #[test]
    fn defaults_come_from_the_config_defaults() {
        let s = load_spec(&config(&[]), Path::new(PATH), &Map::new(), &Map::new()).unwrap();
        let d = ModelsConfig::default();
        assert_eq!(s.context.ctx_per_slot, d.ctx_size);
        assert_eq!(s.context.parallel, d.parallel);
        assert_eq!(s.model.n_gpu_layers, GpuLayers::Auto);
        assert_eq!(s.context.threads, None);
        assert_eq!(s.context.prefill_chunk, d.prefill_chunk);
        assert_eq!(s.context.prefill_chunk, engine::DEFAULT_PREFILL_CHUNK);
        assert_eq!(s.model.path, Path::new(PATH));
    }

    #[test]
    fn the_prefill_chunk_comes_from_the_config_or_the_stored_parameters() {
        let c = config(&[("models.prefill_chunk", "64")]);
        let s = load_spec(&c, Path::new(PATH), &Map::new(), &Map::new()).unwrap();
        assert_eq!(s.context.prefill_chunk, 64);
        let stored = map(r#"{"prefill_chunk": 128}"#);
        let s = load_spec(&config(&[]), Path::new(PATH), &stored, &Map::new()).unwrap();
        assert_eq!(s.context.prefill_chunk, 128);
    }

    #[test]
    fn stored_per_model_parameters_beat_the_defaults() {
        let stored = map(r#"{"ctx_size": 1024, "parallel": 2, "n_gpu_layers": 7, "n_batch": 256}"#);
        let s = load_spec(&config(&[]), Path::new(PATH), &stored, &Map::new()).unwrap();
        assert_eq!(s.context.ctx_per_slot, 1024);
        assert_eq!(s.context.parallel, 2);
        assert_eq!(s.model.n_gpu_layers, GpuLayers::Count(7));
        assert_eq!(s.context.n_batch, 256);
    }

    #[test]
    fn configured_values_beat_stored_ones_and_flags_beat_everything() {
        // models.ctx_size set (file, env or flag: the config crate has layered those).
        let c = config(&[("models.ctx_size", "64"), ("models.threads", "3")]);
        let stored = map(r#"{"ctx_size": 1024, "parallel": 2, "threads": 8}"#);
        let s = load_spec(&c, Path::new(PATH), &stored, &Map::new()).unwrap();
        assert_eq!(s.context.ctx_per_slot, 64, "file/env beat stored");
        assert_eq!(s.context.threads, Some(3), "file/env beat stored");
        assert_eq!(s.context.parallel, 2, "stored beats a default");
        let flags = map(r#"{"ctx_size": 128, "parallel": 1}"#);
        let s = load_spec(&c, Path::new(PATH), &stored, &flags).unwrap();
        assert_eq!(s.context.ctx_per_slot, 128);
        assert_eq!(s.context.parallel, 1);
        assert_eq!(s.context.threads, Some(3));
    }

    #[test]
    fn gpu_layers_from_the_config_keep_their_meaning() {
        let c = config(&[("models.n_gpu_layers", "12")]);
        let s = load_spec(&c, Path::new(PATH), &Map::new(), &Map::new()).unwrap();
        assert_eq!(s.model.n_gpu_layers, GpuLayers::Count(12));
        let stored = map(r#"{"n_gpu_layers": "auto"}"#);
        let s = load_spec(&config(&[]), Path::new(PATH), &stored, &Map::new()).unwrap();
        assert_eq!(s.model.n_gpu_layers, GpuLayers::Auto);
    }

    #[test]
    fn a_bad_stored_value_is_an_error_naming_it() {
        let stored = map(r#"{"parallel": 0}"#);
        let err = load_spec(&config(&[]), Path::new(PATH), &stored, &Map::new()).unwrap_err();
        assert_eq!(err.param(), Some("parallel"));
    }
}
