//! Models as the application sees them: what the catalog discovered, what the user set in
//! the store (alias, favorite, template, launch parameters), and what the manager has
//! loaded. Every protocol resolves a request's `model` field here.

use crate::chat_format::TemplateChoice;
use crate::error::ServiceError;
use crate::limits::{Admission, Ticket};
use crate::load_params::{load_spec, manager_config};
use crate::loader::{EngineLoader, LoadSpec, LoadedModel};
use crate::reasoning::ReasoningDefaults;
use crate::resolve::Routing;
use catalog::{ModelEntry, Root, ScanReport};
use config::ModelsConfig;
use manager::{KeepAlive, Lease, Manager};
use serde_json::{Map, Value};
use std::sync::{Arc, RwLock};
use store::{ModelSettings, Store};

/// A request's hold on a loaded model.
pub type ModelLease = Lease<EngineLoader>;

/// The catalog, the store and the manager together.
pub struct Models {
    roots: RwLock<Vec<Root>>,
    catalog: RwLock<Arc<ScanReport>>,
    /// Only reached through [`with_store`](Self::with_store), on a blocking thread: a call
    /// can wait seconds for another process's write lock, and must not hold an async worker.
    store: Option<Arc<Store>>,
    manager: Manager<EngineLoader>,
    /// `[models]`: where load parameters start (see [`crate::load_spec`]).
    config: RwLock<ModelsConfig>,
    capabilities: crate::capabilities::Cache,
    /// The requests in flight and the engine caps of `[limits]`.
    admission: Arc<Admission>,
    /// `serve`'s own model, its names, single-model mode and the fallback ([`Self::pick`]).
    routing: RwLock<Routing>,
    /// `serve`'s launch-parameter flags: every model's spec, above its stored parameters.
    launch_flags: RwLock<Map<String, Value>>,
    /// `[reasoning]`: every chat prompt is rendered with them ([`Self::template_choice`]).
    reasoning: RwLock<ReasoningDefaults>,
    /// Whether the first scan is done: `serve` answers `/health` before it, and a request
    /// that arrives in between must wait for it, not be told its model does not exist.
    scanned: tokio::sync::watch::Sender<bool>,
}

/// A model as the model lists show it.
#[derive(Debug, Clone)]
pub struct Listed {
    pub entry: ModelEntry,
    /// The id clients see: [`Routing::public_id`].
    pub id: String,
    /// Every other name that reaches it: the stored alias, `--alias` names.
    pub aliases: Vec<String>,
    /// `--tags`.
    pub tags: Vec<String>,
}

impl Models {
    /// Starts a manager with the limits of `config` (`models_max`, `sleep_idle_seconds`);
    /// the catalog is empty until [`rescan`](Self::rescan) (which can take a while on big
    /// folders, so a server can answer `/health` first). Must be called inside a tokio
    /// runtime.
    pub fn new(roots: Vec<Root>, store: Option<Store>, config: ModelsConfig) -> Self {
        Models {
            roots: RwLock::new(roots),
            catalog: RwLock::new(Arc::new(ScanReport::default())),
            store: store.map(Arc::new),
            manager: Manager::new(
                EngineLoader {
                    placement: Arc::new(RwLock::new(crate::loader::Placement {
                        process: config.isolation != "thread",
                        program: crate::loader::worker_program(),
                        warned: false,
                    })),
                    ..EngineLoader::default()
                },
                manager_config(&config),
            ),
            config: RwLock::new(config),
            capabilities: Default::default(),
            admission: Admission::new(config::LimitsConfig::default()),
            routing: Default::default(),
            launch_flags: Default::default(),
            reasoning: Default::default(),
            scanned: tokio::sync::watch::Sender::new(false),
        }
    }

    /// Waits for the first [`rescan`](Self::rescan) (at once after it).
    async fn first_scan(&self) {
        let mut rx = self.scanned.subscribe();
        // The sender lives in `self`: waiting cannot fail while it is borrowed.
        let _ = rx.wait_for(|done| *done).await;
    }

    /// `[reasoning]` (the defaults until set); applies to the next request.
    pub fn set_reasoning(&self, reasoning: ReasoningDefaults) {
        *self.reasoning.write().unwrap_or_else(|p| p.into_inner()) = reasoning;
    }

    /// `serve`'s launch-parameter flags; apply at the next load.
    pub fn set_launch_flags(&self, flags: Map<String, Value>) {
        *self.launch_flags.write().unwrap_or_else(|p| p.into_inner()) = flags;
    }

    /// `serve`'s model and names; applies at the next [`rescan`](Self::rescan).
    pub fn set_routing(&self, routing: Routing) {
        *self.routing.write().unwrap_or_else(|p| p.into_inner()) = routing;
    }

    /// A changed `server.default_model`.
    pub fn set_fallback(&self, fallback: Option<String>) {
        self.routing
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .fallback = fallback;
    }

    pub fn routing(&self) -> Routing {
        self.routing
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The requests in flight and the engine caps, with `[limits]` (defaults until
    /// [`Admission::set_config`]).
    pub fn admission(&self) -> &Arc<Admission> {
        &self.admission
    }

    /// A place among the requests in flight ([`Admission::admit`]): take it before acquiring a
    /// model, hand it to [`crate::generate::start`] or [`crate::embed`].
    pub fn admit(&self) -> Result<Ticket, ServiceError> {
        self.admission.admit()
    }

    pub fn manager(&self) -> &Manager<EngineLoader> {
        &self.manager
    }

    /// What every model has served, by id (llama-server's `/metrics`), with the live
    /// figures of the loaded ones. `scrape` starts the throughput windows again, as a
    /// Prometheus scrape does on llama-server.
    pub fn served(&self, scrape: bool) -> Vec<(String, crate::serving::ServedFigures)> {
        let live = |id: &str| {
            let m = self.manager.peek(id)?;
            Some((m.handle.busy_slots() as u64, m.handle.queue_len() as u64))
        };
        let serving = &self.manager.loader().serving;
        if scrape {
            serving.scrape(live)
        } else {
            serving.peek(live)
        }
    }

    /// Whether model `id` is unloaded because it was idle (llama-server's `is_sleeping`):
    /// the next request that needs it wakes (loads) it; status reads do not.
    pub fn is_sleeping(&self, id: &str) -> bool {
        self.manager.is_sleeping(id)
    }

    /// The last scan.
    pub fn catalog(&self) -> Arc<ScanReport> {
        self.catalog
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The configured roots (a `-m` file is added at each scan: [`Routing::roots`]).
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
        let roots = self.routing().roots(self.roots());
        let report = Arc::new(catalog::discover(&roots));
        *self.catalog.write().unwrap_or_else(|p| p.into_inner()) = report.clone();
        self.scanned.send_replace(true);
        report
    }

    /// The load parameters a model with nothing stored starts from (for checking launch
    /// parameters before they are stored).
    pub fn defaults(&self) -> LoadSpec {
        load_spec(
            &self.config(),
            std::path::Path::new(""),
            &Map::new(),
            &Map::new(),
        )
        .unwrap_or_else(|_| LoadSpec {
            model: engine::ModelParams::default(),
            context: engine::ContextParams::default(),
        })
    }

    fn config(&self) -> ModelsConfig {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A changed `[models]` applies to the next load (the manager's limits need a restart).
    pub fn set_config(&self, config: ModelsConfig) {
        self.placement().process = config.isolation != "thread";
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = config;
    }

    fn placement(&self) -> std::sync::RwLockWriteGuard<'_, crate::loader::Placement> {
        self.manager
            .loader()
            .placement
            .write()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The executable model workers run (`models.isolation = "process"`), for a caller that
    /// is not `llama-dashboard` itself (a test harness); the next loads use it.
    pub fn set_worker_program(&self, program: std::path::PathBuf) {
        self.placement().program = Some(program);
    }

    /// Runs `f` on the store, if there is one, on a blocking thread. The one way to the
    /// database from async code: SQLite calls block (on the disk, on another process's
    /// write lock for up to the busy timeout, on this process's other calls), and an async
    /// worker that blocks stalls every request scheduled on it.
    pub async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, store::StoreError> + Send + 'static,
    ) -> Result<Option<T>, ServiceError> {
        let Some(store) = self.store.clone() else {
            return Ok(None);
        };
        let result = tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| ServiceError::Internal(format!("store: {e}")))?;
        result.map(Some).map_err(|e| match e {
            // The caller's mistakes keep their kind; everything else is ours.
            store::StoreError::AliasTaken { .. } => ServiceError::Conflict(e.to_string()),
            store::StoreError::Invalid(reason) => ServiceError::Rejected(reason),
            e => ServiceError::Internal(format!("store: {e}")),
        })
    }

    /// The store itself, for a part of the service that records its own rows (the download
    /// queue records task states; it reaches it only from its runners and on a blocking
    /// thread at start).
    pub(crate) fn store_handle(&self) -> Option<Arc<Store>> {
        self.store.clone()
    }

    /// The user's settings for a model (defaults when none are stored).
    pub async fn settings(&self, id: &str) -> ModelSettings {
        let key = id.to_string();
        self.with_store(move |s| s.model_settings(&key))
            .await
            .ok()
            .flatten()
            .flatten()
            .unwrap_or_else(|| ModelSettings::none(id))
    }

    /// The template a model is prompted with, as the user chose it: the one set for it in the
    /// dashboard, else `models.chat_template` (a llama.cpp built-in name becomes its source);
    /// whether the model's own Jinja template is left aside (`models.jinja`); and the
    /// server's `[reasoning]` defaults its chats are rendered with.
    pub async fn template_choice(&self, id: &str) -> Result<TemplateChoice, ServiceError> {
        let config = self.config();
        let custom = match self.settings(id).await.chat_template {
            Some(own) => Some(own),
            None => match config.chat_template.as_deref() {
                Some(value) => Some(
                    chat::named::template_source(value)
                        .map_err(|e| ServiceError::Template(format!("models.chat_template: {e}")))?
                        .into_owned(),
                ),
                None => None,
            },
        };
        let model = self
            .catalog()
            .models
            .iter()
            .find(|m| m.id == id)
            .map(|m| crate::ModelDefaults::of(m).prompt)
            .unwrap_or_default();
        Ok(TemplateChoice {
            custom,
            model,
            builtin_only: !config.jinja,
            reasoning: self
                .reasoning
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        })
    }

    /// Every stored settings row, by model id.
    pub async fn all_settings(&self) -> std::collections::HashMap<String, ModelSettings> {
        self.with_store(|s| s.all_model_settings())
            .await
            .ok()
            .flatten()
            .unwrap_or_default()
            .into_iter()
            .map(|s| (s.model_id.clone(), s))
            .collect()
    }

    /// Finds a model by id, alias, path or canonical path ([`crate::resolve`]); on a
    /// blocking thread, since aliases are in the database (and paths on the disk).
    pub async fn resolve(&self, name: &str) -> Result<ModelEntry, ServiceError> {
        self.first_scan().await;
        let routing = self.routing();
        // `--alias` names are `-m`'s model (`-m` is never one of them: no loop).
        if let Some(model) = routing.model.as_deref()
            && routing.aliases.iter().any(|a| a == name)
        {
            return Box::pin(self.resolve(model)).await;
        }
        let catalog = self.catalog();
        // Ids need neither: most requests name one.
        if let Some(m) = catalog.find(name) {
            return Ok(m.clone());
        }
        let store = self.store.clone();
        let name = name.to_string();
        tokio::task::spawn_blocking(move || {
            crate::resolve::resolve(&catalog, store.as_deref(), &name)
        })
        .await
        .map_err(|e| ServiceError::Internal(format!("resolve: {e}")))?
    }

    /// The model a request gets for the `model` it names (`None` or blank: it names none).
    /// The one place a request's `model` becomes a model, for every API family:
    /// - single-model mode (`serve -m FILE` alone, [`Routing::single`]): `-m`'s model, whatever
    ///   is named, as a single-model llama-server;
    /// - a name: [`resolve`](Self::resolve); an unknown one gets `server.default_model` if set
    ///   (404 otherwise);
    /// - no name: `server.default_model`, else the only model loaded, else the only model
    ///   discovered; otherwise `model` is required.
    pub async fn pick(&self, named: Option<&str>) -> Result<ModelEntry, ServiceError> {
        self.first_scan().await;
        let routing = self.routing();
        if routing.single
            && let Some(model) = &routing.model
        {
            return self.resolve(model).await;
        }
        let named = named.map(str::trim).filter(|n| !n.is_empty());
        if let Some(name) = named {
            return match (self.resolve(name).await, &routing.fallback) {
                (Err(ServiceError::UnknownModel(_)), Some(fallback)) => {
                    self.resolve(fallback).await
                }
                (found, _) => found,
            };
        }
        if let Some(f) = &routing.fallback {
            return self.resolve(f).await;
        }
        let loaded: Vec<String> = self
            .manager
            .statuses()
            .into_iter()
            .filter(|s| s.state == manager::ModelState::Loaded)
            .map(|s| s.id)
            .collect();
        if let [id] = loaded.as_slice() {
            return self.resolve(id).await;
        }
        let catalog = self.catalog();
        if let [only] = catalog.models.as_slice() {
            return Ok(only.clone());
        }
        Err(ServiceError::invalid(
            "model",
            "is required (several models are available; GET /v1/models lists them)",
        ))
    }

    /// The models clients may name, as the model lists show them: every discovered model, or
    /// in single-model mode `-m`'s alone.
    pub async fn listed(&self) -> Vec<Listed> {
        self.first_scan().await;
        let routing = self.routing();
        let own = match &routing.model {
            Some(m) => self.resolve(m).await.ok().map(|e| e.id),
            None => None,
        };
        let settings = self.all_settings().await;
        self.catalog()
            .models
            .iter()
            .filter(|m| !routing.single || own.as_deref() == Some(m.id.as_str()))
            .map(|m| {
                let is_own = own.as_deref() == Some(m.id.as_str());
                let id = routing.public_id(&m.id, is_own);
                let mut aliases: Vec<String> = settings
                    .get(&m.id)
                    .and_then(|s| s.alias.clone())
                    .into_iter()
                    .collect();
                let mut tags = Vec::new();
                if is_own {
                    aliases.extend(routing.aliases.iter().cloned());
                    tags = routing.tags.clone();
                }
                Listed {
                    entry: m.clone(),
                    id,
                    aliases,
                    tags,
                }
            })
            .collect()
    }

    /// The name responses give the model (`model` fields): the id the model lists show.
    pub fn public_id(&self, entry: &ModelEntry) -> String {
        let routing = self.routing();
        let is_own = routing
            .model
            .as_deref()
            .is_some_and(|m| m == entry.id || entry.parts.iter().any(|p| p.as_os_str() == m));
        routing.public_id(&entry.id, is_own)
    }

    /// What a model can do, from its file; read once per file version and cached.
    pub async fn capabilities(&self, entry: &ModelEntry) -> Vec<String> {
        let loaded_fim = self.peek(&entry.id).map(|m| m.handle.info().has_fim);
        self.capabilities.get(entry, loaded_fim).await
    }

    /// How many weights `entry` has (from its header; cached like the capabilities).
    pub async fn parameter_count(&self, entry: &ModelEntry) -> Option<u64> {
        self.capabilities.parameters(entry).await
    }

    /// Checks a request against what `entry` can do, before it is loaded or anything queued:
    /// image parts need a vision model ([`crate::generate::ChatInput::check_images`]).
    pub async fn check_for(
        &self,
        entry: &ModelEntry,
        req: &crate::generate::Request,
    ) -> Result<(), ServiceError> {
        if let crate::generate::Input::Chat(chat) = &req.input {
            self.check_chat_for(entry, chat).await?;
        }
        Ok(())
    }

    /// [`check_for`](Self::check_for)'s image check for a conversation that is rendered
    /// without being generated (token counts, `/apply-template`): refused as the chat
    /// route refuses it.
    pub async fn check_chat_for(
        &self,
        entry: &ModelEntry,
        chat: &crate::generate::ChatInput,
    ) -> Result<(), ServiceError> {
        chat.check_images(&self.public_id(entry), &self.capabilities(entry).await)
    }

    /// With `models.autoload` off, only a loaded model serves requests: checked when a
    /// request picks its model, before it takes a place among the requests in flight, and
    /// again when it is acquired.
    pub fn check_autoload(&self, entry: &ModelEntry) -> Result<(), ServiceError> {
        if !self.config().autoload && self.peek(&entry.id).is_none() {
            return Err(ServiceError::invalid(
                "model",
                format!(
                    "model '{}' is not loaded, and models.autoload is off \
                     (--no-models-autoload): load it first (POST /api/models/{{id}}/load)",
                    self.public_id(entry)
                ),
            ));
        }
        Ok(())
    }

    /// The sampling a request naming `model` starts from: `server`'s (`[sampling]`, flags,
    /// `POST /props`) with the model's own defaults where the user set nothing
    /// ([`crate::ModelDefaults::sampling`]). A name that finds no model gets the server's;
    /// the request is refused later with the resolver's error.
    pub async fn sampling_for(
        &self,
        model: Option<&str>,
        server: &crate::SamplingDefaults,
    ) -> crate::SamplingDefaults {
        match self.pick(model).await {
            Ok(entry) => crate::ModelDefaults::of(&entry).sampling(server),
            Err(_) => server.clone(),
        }
    }

    /// The load spec for a model ([`crate::load_spec`]): `[models]`, its stored launch
    /// parameters, and `overrides` (a load request's, a command's flags).
    pub async fn spec_for(
        &self,
        entry: &ModelEntry,
        overrides: &Map<String, Value>,
    ) -> Result<LoadSpec, ServiceError> {
        // Missing parts and files cut short are refused here, before llama.cpp sees them.
        if let Some(problem) = entry.problem() {
            return Err(ServiceError::invalid("model", problem));
        }
        // The packaging's launch values (an Ollama model's num_ctx, ...) rank just below the
        // user's stored ones.
        let mut stored = crate::ModelDefaults::of(entry).launch;
        stored.extend(self.settings(&entry.id).await.launch_params);
        // The caller's own overrides rank above the server's flags.
        let mut flags = self
            .launch_flags
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        flags.extend(overrides.clone());
        load_spec(&self.config(), &entry.path, &stored, &flags)
    }

    /// A lease on a model for one request (resolved with [`pick`](Self::pick)), loading it
    /// if needed (an already loaded model is used with whatever parameters it was loaded with).
    pub async fn acquire_entry(
        &self,
        entry: &ModelEntry,
        keep_alive: Option<KeepAlive>,
    ) -> Result<ModelLease, ServiceError> {
        // Again here: the model may have gone to sleep since the request was admitted.
        self.check_autoload(entry)?;
        let spec = self.spec_for(entry, &Map::new()).await?;
        Ok(self
            .manager
            .acquire_any(&entry.id, &spec, keep_alive)
            .await?)
    }

    /// A lease on a model loaded with exactly its spec with `overrides` (reloading it if it
    /// is loaded with other parameters, evicting like any load): for commands that need
    /// their own parameters (`run`, a benchmark that sets `n_gpu_layers`).
    pub async fn acquire_with(
        &self,
        entry: &ModelEntry,
        overrides: &Map<String, Value>,
    ) -> Result<ModelLease, ServiceError> {
        let spec = self.spec_for(entry, overrides).await?;
        Ok(self.manager.acquire(&entry.id, &spec, None).await?)
    }

    /// Loads (or reloads with other parameters) a model and keeps it loaded.
    pub async fn load(
        &self,
        name: &str,
        overrides: &Map<String, Value>,
    ) -> Result<ModelEntry, ServiceError> {
        let entry = self.resolve(name).await?;
        let spec = self.spec_for(&entry, overrides).await?;
        self.manager.load(&entry.id, &spec).await?;
        Ok(entry)
    }

    pub async fn unload(&self, name: &str) -> Result<ModelEntry, ServiceError> {
        let entry = self.resolve(name).await?;
        self.manager.unload(&entry.id)?;
        Ok(entry)
    }

    /// The loaded model, if loaded (no lease: for status pages).
    pub fn peek(&self, id: &str) -> Option<Arc<LoadedModel>> {
        self.manager.peek(id)
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
    // What `pull` fetched from Ollama registries, in Ollama's layout inside our models folder.
    roots.push(Root::new(Source::Ollama, paths.pulled_ollama_dir()));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `serve` answers `/health` before its first scan; a request that comes in between
    /// waits for the scan instead of being told its model does not exist (llama.cpp's
    /// template tests met a 404 in that window).
    #[tokio::test(flavor = "multi_thread")]
    async fn a_request_before_the_first_scan_waits_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("alpha.gguf");
        gguf::fixtures::LlamaLike::new("alpha", "llama", 15, 4096, 300)
            .write_path(&file)
            .unwrap();
        let models = Arc::new(Models::new(Vec::new(), None, ModelsConfig::default()));
        models.set_routing(Routing {
            model: Some(file.to_string_lossy().into_owned()),
            single: true,
            ..Default::default()
        });
        let asking = {
            let m = models.clone();
            tokio::spawn(async move { m.pick(Some("anything")).await })
        };
        let listing = {
            let m = models.clone();
            tokio::spawn(async move { m.listed().await.len() })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!asking.is_finished(), "answered before the scan");
        models.rescan();
        assert_eq!(asking.await.unwrap().unwrap().id, "alpha");
        assert_eq!(listing.await.unwrap(), 1);
    }

    /// A file cut short (an interrupted download) is refused with the catalog's sizes before
    /// any load starts, by every road to a load.
    #[tokio::test(flavor = "multi_thread")]
    async fn loading_a_file_cut_short_is_refused_with_its_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cut.gguf");
        let mut m = gguf::fixtures::LlamaLike::new("cut", "llama", 2, 4096, 300);
        m.with_tensor_data = true;
        let whole = m.write_path(&file).unwrap();
        let header = gguf::scan_path(&file).unwrap().data_offset;
        std::fs::OpenOptions::new()
            .write(true)
            .open(&file)
            .unwrap()
            .set_len(header)
            .unwrap();
        let models = Models::new(
            vec![Root::new(catalog::Source::Folder, dir.path())],
            None,
            ModelsConfig::default(),
        );
        models.rescan();
        let entry = models.resolve("cut").await.unwrap();
        let check = |e: ServiceError| {
            let text = e.to_string();
            assert!(text.contains("incomplete"), "{text}");
            assert!(
                text.contains(&format!("{header} of the {whole} bytes")),
                "{text}"
            );
            assert_eq!(e.kind(), crate::ErrorKind::BadRequest);
        };
        check(models.load("cut", &Map::new()).await.unwrap_err());
        check(
            models
                .acquire_with(&entry, &Map::new())
                .await
                .err()
                .unwrap(),
        );
        check(models.acquire_entry(&entry, None).await.err().unwrap());
        assert!(models.peek("cut").is_none(), "nothing was loaded");
    }
}
