//! The engine behind the model manager: how a [`LoadSpec`] becomes a running model.

use crate::chat_format::{ChatFormat, SpecialTokens, TemplateChoice};
use crate::error::ServiceError;
use crate::serving::{ModelCounters, ServingStats};
use engine::{ContextParams, ModelHandle, ModelHost, ModelParams};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Everything that needs a reload when it changes. Sampling is per request, not here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadSpec {
    pub model: ModelParams,
    pub context: ContextParams,
}

/// A loaded model with what the chat pipeline needs to talk to it.
pub struct LoadedModel {
    pub handle: ModelHandle,
    /// What the model id has served (outlives this load: see [`crate::serving`]).
    pub(crate) counters: Arc<ModelCounters>,
    special: SpecialTokens,
    /// Compiled templates by the user's choice.
    formats: Mutex<HashMap<TemplateChoice, Arc<ChatFormat>>>,
}

impl LoadedModel {
    pub async fn new(handle: ModelHandle, counters: Arc<ModelCounters>) -> Self {
        let special = SpecialTokens::probe(&handle).await;
        LoadedModel {
            handle,
            counters,
            special,
            formats: Mutex::new(HashMap::new()),
        }
    }

    /// The chat format for this model with the user's choice of template; compiled once.
    pub fn chat_format(&self, choice: &TemplateChoice) -> Result<Arc<ChatFormat>, ServiceError> {
        let mut formats = self.formats.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = formats.get(choice) {
            return Ok(f.clone());
        }
        let f = Arc::new(ChatFormat::build(
            self.handle.info(),
            &self.special,
            choice,
        )?);
        formats.insert(choice.clone(), f.clone());
        Ok(f)
    }
}

impl Drop for LoadedModel {
    fn drop(&mut self) {
        // Free the memory now rather than whenever the host thread notices. The manager
        // drops models on a blocking thread; a last lease dropped in async code must not
        // block its worker, so the wait moves to a blocking thread there.
        let handle = self.handle.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(move || handle.shutdown_blocking())),
            Err(_) => handle.shutdown_blocking(),
        }
    }
}

/// Loads models in this process with llama.cpp, counting what each model id serves into
/// the same [`ServingStats`] across its loads.
#[derive(Debug, Default, Clone)]
pub struct EngineLoader {
    pub(crate) serving: Arc<ServingStats>,
}

impl manager::Loader for EngineLoader {
    type Spec = LoadSpec;
    type Model = LoadedModel;

    fn load(
        &self,
        id: &str,
        spec: &LoadSpec,
        progress: &(dyn Fn(f32) + Send + Sync),
    ) -> Result<LoadedModel, String> {
        tracing::info!(model = id, path = %spec.model.path.display(), "loading model");
        let counters = self.serving.of(id);
        let handle = ModelHost::load_counted(
            spec.model.clone(),
            spec.context.clone(),
            progress,
            counters.engine(),
        )
        .map_err(|e| e.to_string())?;
        // Runs on a blocking thread of the runtime: block on the few tokenize calls.
        let model = match tokio::runtime::Handle::try_current() {
            Ok(rt) => rt.block_on(LoadedModel::new(handle, counters)),
            Err(_) => tokio::runtime::Builder::new_current_thread()
                .build()
                .map_err(|e| e.to_string())?
                .block_on(LoadedModel::new(handle, counters)),
        };
        Ok(model)
    }

    fn unload(&self, model: LoadedModel) {
        // Waits until the host thread has freed the model and its contexts.
        model.handle.shutdown_blocking();
    }
}
