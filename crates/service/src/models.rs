//! Models as the application sees them: what the catalog discovered, what the user set in
//! the store (alias, favorite, template, launch parameters), and what the manager has
//! loaded. Every protocol resolves a request's `model` field here.

use crate::error::ServiceError;
use crate::loader::{EngineLoader, LoadSpec, LoadedModel};
use catalog::{ModelEntry, Root, ScanReport};
use engine::{ContextParams, ModelParams};
use manager::{KeepAlive, Lease, Manager, ManagerConfig};
use serde_json::{Map, Value};
use std::sync::{Arc, RwLock};
use store::{ModelSettings, Store};

/// A request's hold on a loaded model.
pub type ModelLease = Lease<EngineLoader>;

/// The catalog, the store and the manager together.
pub struct Models {
    roots: RwLock<Vec<Root>>,
    catalog: RwLock<Arc<ScanReport>>,
    /// `Store` is `Sync` (it serialises its own connection use).
    store: Option<Store>,
    manager: Manager<EngineLoader>,
    defaults: RwLock<LoadSpec>,
}

impl Models {
    /// Starts a manager; the catalog is empty until [`rescan`](Self::rescan) (which can take
    /// a while on big folders, so a server can answer `/health` first). Must be called
    /// inside a tokio runtime.
    pub fn new(
        roots: Vec<Root>,
        store: Option<Store>,
        defaults: LoadSpec,
        manager: ManagerConfig,
    ) -> Self {
        Models {
            roots: RwLock::new(roots),
            catalog: RwLock::new(Arc::new(ScanReport::default())),
            store,
            manager: Manager::new(EngineLoader, manager),
            defaults: RwLock::new(defaults),
        }
    }

    pub fn manager(&self) -> &Manager<EngineLoader> {
        &self.manager
    }

    /// The last scan.
    pub fn catalog(&self) -> Arc<ScanReport> {
        self.catalog
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn roots(&self) -> Vec<Root> {
        self.roots.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the roots (model paths changed) and rescans.
    pub fn set_roots(&self, roots: Vec<Root>) -> Arc<ScanReport> {
        *self.roots.write().unwrap_or_else(|p| p.into_inner()) = roots;
        self.rescan()
    }

    /// Scans the roots again.
    pub fn rescan(&self) -> Arc<ScanReport> {
        let report = Arc::new(catalog::discover(&self.roots()));
        *self.catalog.write().unwrap_or_else(|p| p.into_inner()) = report.clone();
        report
    }

    /// The load parameters every model starts from.
    pub fn defaults(&self) -> LoadSpec {
        self.defaults
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_defaults(&self, spec: LoadSpec) {
        *self.defaults.write().unwrap_or_else(|p| p.into_inner()) = spec;
    }

    /// Runs `f` on the store, if there is one.
    pub fn with_store<T>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, store::StoreError>,
    ) -> Result<Option<T>, ServiceError> {
        let Some(store) = &self.store else {
            return Ok(None);
        };
        f(store).map(Some).map_err(|e| match e {
            // The caller's mistakes keep their kind; everything else is ours.
            store::StoreError::AliasTaken { .. } => ServiceError::Conflict(e.to_string()),
            store::StoreError::Invalid(reason) => ServiceError::Rejected(reason),
            e => ServiceError::Internal(format!("store: {e}")),
        })
    }

    /// The user's settings for a model (defaults when none are stored).
    pub fn settings(&self, id: &str) -> ModelSettings {
        self.with_store(|s| s.model_settings(id))
            .ok()
            .flatten()
            .flatten()
            .unwrap_or_else(|| ModelSettings {
                model_id: id.to_string(),
                alias: None,
                favorite: false,
                capabilities: None,
                chat_template: None,
                launch_params: Map::new(),
                updated_at: 0,
            })
    }

    /// Every stored settings row, by model id.
    pub fn all_settings(&self) -> std::collections::HashMap<String, ModelSettings> {
        self.with_store(|s| s.all_model_settings())
            .ok()
            .flatten()
            .unwrap_or_default()
            .into_iter()
            .map(|s| (s.model_id.clone(), s))
            .collect()
    }

    /// Finds a model by id, alias or path.
    pub fn resolve(&self, name: &str) -> Result<ModelEntry, ServiceError> {
        let catalog = self.catalog();
        if let Some(m) = catalog.find(name) {
            return Ok(m.clone());
        }
        if let Ok(Some(Some(id))) = self.with_store(|s| s.resolve_alias(name))
            && let Some(m) = catalog.find(&id)
        {
            return Ok(m.clone());
        }
        Err(ServiceError::UnknownModel(name.to_string()))
    }

    /// The load spec for a model: defaults, then its stored launch parameters, then
    /// `overrides` (from a load request).
    pub fn spec_for(
        &self,
        entry: &ModelEntry,
        overrides: &Map<String, Value>,
    ) -> Result<LoadSpec, ServiceError> {
        if !entry.is_complete() {
            return Err(ServiceError::invalid(
                "model",
                format!(
                    "model '{}' is missing split part(s) {:?}",
                    entry.id, entry.missing_parts
                ),
            ));
        }
        let mut spec = self.defaults();
        spec.model.path = entry.path.clone();
        let stored = self.settings(&entry.id).launch_params;
        apply_overrides(&mut spec, &stored)?;
        apply_overrides(&mut spec, overrides)?;
        Ok(spec)
    }

    /// A lease on a model for one request, loading it if needed (an already loaded model is
    /// used with whatever parameters it was loaded with).
    pub async fn acquire(
        &self,
        name: &str,
        keep_alive: Option<KeepAlive>,
    ) -> Result<(ModelEntry, ModelLease), ServiceError> {
        let entry = self.resolve(name)?;
        let spec = self.spec_for(&entry, &Map::new())?;
        let lease = self
            .manager
            .acquire_any(&entry.id, &spec, keep_alive)
            .await?;
        Ok((entry, lease))
    }

    /// Loads (or reloads with other parameters) a model and keeps it loaded.
    pub async fn load(
        &self,
        name: &str,
        overrides: &Map<String, Value>,
    ) -> Result<ModelEntry, ServiceError> {
        let entry = self.resolve(name)?;
        let spec = self.spec_for(&entry, overrides)?;
        self.manager.load(&entry.id, &spec).await?;
        Ok(entry)
    }

    pub fn unload(&self, name: &str) -> Result<ModelEntry, ServiceError> {
        let entry = self.resolve(name)?;
        self.manager.unload(&entry.id)?;
        Ok(entry)
    }

    /// The loaded model, if loaded (no lease: for status pages).
    pub fn peek(&self, id: &str) -> Option<Arc<LoadedModel>> {
        self.manager.peek(id)
    }
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
            ("n_gpu_layers", Value::Number(n)) => serde_json::json!({ "count": n }),
            ("n_gpu_layers", Value::String(s)) if s == "all" => {
                serde_json::json!({ "count": u32::MAX })
            }
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

    #[test]
    fn overrides_reach_both_halves_of_the_spec() {
        let mut s = spec();
        let o: Map<String, Value> = serde_json::from_str(
            r#"{"ctx_size": 2048, "n_gpu_layers": 10, "parallel": 2, "use_mmap": false}"#,
        )
        .unwrap();
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
            let o: Map<String, Value> = serde_json::from_str(json).unwrap();
            let err = apply_overrides(&mut s, &o).unwrap_err();
            assert_eq!(err.param(), Some(key), "{json}: {err}");
        }
    }
}

/// Every place to look for models: configured folders (our own models folder first, made to
/// exist so a first run does not report it missing), then the stores of other apps that
/// are switched on and present.
pub fn roots(config: &config::Config, paths: &config::Paths) -> Vec<Root> {
    use catalog::Source;
    let _ = std::fs::create_dir_all(paths.models_dir());
    let mut roots: Vec<Root> = config
        .model_dirs(paths)
        .into_iter()
        .map(|d| Root::new(Source::Folder, d))
        .collect();
    let dirs = config.sources.dirs();
    if let Some(d) = dirs.ollama {
        roots.push(Root::new(Source::Ollama, d));
    }
    if let Some(d) = dirs.huggingface {
        roots.push(Root::new(Source::HuggingFace, d));
    }
    if let Some(d) = dirs.lmstudio {
        roots.push(Root::new(Source::LmStudio, d));
    }
    roots
}
