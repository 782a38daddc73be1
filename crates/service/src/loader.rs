//! The engine behind the model manager: how a [`LoadSpec`] becomes a running model.

use crate::chat_format::{ChatFormat, SpecialTokens, TemplateChoice};
use crate::error::ServiceError;
use crate::serving::{ModelCounters, ServingStats};
use engine::{ContextParams, Isolation, ModelHandle, ModelHost, ModelParams, WorkerOptions};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

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

/// Loads models with llama.cpp — each in a worker process of its own, or in this process
/// (`models.isolation`) — counting what each model id serves into the same
/// [`ServingStats`] across its loads.
#[derive(Debug, Default, Clone)]
pub struct EngineLoader {
    pub(crate) serving: Arc<ServingStats>,
    pub(crate) placement: Arc<RwLock<Placement>>,
}

/// Where the next loads run.
#[derive(Debug, Clone, Default)]
pub(crate) struct Placement {
    /// `models.isolation = "process"`.
    pub process: bool,
    /// The executable workers run ([`worker_program`], or the one a test harness names).
    pub program: Option<PathBuf>,
    /// Said once that process isolation is off for want of a program.
    pub warned: bool,
}

/// The environment variable naming the executable a worker runs.
pub const WORKER_EXE_ENV: &str = "LLAMA_DASHBOARD_WORKER_EXE";

/// The executable each model's worker runs: `LLAMA_DASHBOARD_WORKER_EXE`, else this process's
/// own executable when it is `llama-dashboard` (a test harness is not: it names the binary
/// with [`crate::Models::set_worker_program`]).
pub fn worker_program() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(WORKER_EXE_ENV).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let name = exe.file_name()?.to_str()?;
    name.starts_with("llama-dashboard").then_some(exe)
}

impl EngineLoader {
    fn isolation(&self, id: &str) -> Isolation {
        let mut p = self.placement.write().unwrap_or_else(|e| e.into_inner());
        if !p.process {
            return Isolation::Thread;
        }
        match &p.program {
            Some(program) => Isolation::Process(WorkerOptions {
                program: program.clone(),
                name: id.to_string(),
            }),
            None => {
                if !p.warned {
                    p.warned = true;
                    tracing::warn!(
                        "models.isolation is \"process\" but no llama-dashboard executable is \
                         known (set {WORKER_EXE_ENV}); models run in this process"
                    );
                }
                Isolation::Thread
            }
        }
    }
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
        let handle = ModelHost::load_isolated(
            spec.model.clone(),
            spec.context.clone(),
            progress,
            counters.engine(),
            &self.isolation(id),
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
        // Waits until the host thread (or the worker process) has freed the model.
        model.handle.shutdown_blocking();
    }

    fn watch(&self, model: &LoadedModel) -> Option<manager::CrashWatch> {
        model
            .handle
            .crash_watch()
            .map(|w| Box::pin(w) as manager::CrashWatch)
    }
}
