//! `serve`: flags become configuration overrides (so they win over env and file, and are
//! validated with the same messages), then the server crate runs.

use crate::args::{GlobalArgs, ServeArgs};
use anyhow::{Context, Result};
use config::Paths;
use serde_json::{Map, Value, json};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

pub fn run(global: &GlobalArgs, args: ServeArgs) -> Result<ExitCode> {
    let paths = Paths::resolve(global.config_dir.clone(), global.data_dir.clone())?;
    let mut flags = overrides(&args, global.verbose);
    if let Some(format) = &global.log_format {
        flags.push(("log.format".into(), format.clone()));
    }
    if let Some(file) = &args.chat_template_file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("--chat-template-file {}", file.display()))?;
        flags.push(("models.chat_template".into(), text));
    }
    let loaded = config::load(&paths, std::env::vars_os(), &flags)?;
    let config = loaded.config;
    check_chat_template(&config)?;
    let filter = std::env::var(config::LOG_ENV).unwrap_or_else(|_| match global.verbose {
        0 => format!("{},tower_http=warn", config.log.level.as_str()),
        1 => "debug,tower_http=info".into(),
        _ => "trace".into(),
    });
    let logs = server::logs::Logs::install(&filter, config.log.format)?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let extra_keys = match &args.api_key_file {
        Some(f) => server::auth::Keys::read_file(f)?,
        None => (Vec::new(), Vec::new()),
    };
    let launch = checked_launch_flags(&args, &config)?;
    let opts = server::ServeOptions {
        paths,
        config,
        extra_keys,
        routing: routing(&args),
        launch,
        grace: Duration::from_secs(args.grace),
        logs,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(server::serve(opts))?;
    Ok(ExitCode::SUCCESS)
}

/// `(config key, value)` for every flag given. `verbose` is the global `-v/--verbose` count:
/// llama-server's `--verbose` also adds `__verbose` to its answers.
fn overrides(a: &ServeArgs, verbose: u8) -> Vec<(String, String)> {
    let mut o: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            o.push((k.to_string(), v));
        }
    };
    put("server.host", a.host.clone());
    put("server.port", a.port.map(|v| v.to_string()));
    // `--ollama-port [N]`: that port, opened at start (the same for LM Studio's).
    put("server.ollama_port", a.ollama_port.map(|v| v.to_string()));
    put(
        "server.ollama_port_enabled",
        a.ollama_port.map(|_| "true".into()),
    );
    put(
        "server.lmstudio_port",
        a.lmstudio_port.map(|v| v.to_string()),
    );
    put(
        "server.lmstudio_port_enabled",
        a.lmstudio_port.map(|_| "true".into()),
    );
    put("server.api_key", a.api_key.clone());
    put("server.admin_api_key", a.admin_api_key.clone());
    put(
        "tools.mcp_servers_config",
        a.mcp_servers_config
            .as_deref()
            .map(|p| absolute(p).to_string_lossy().into_owned()),
    );
    put("tools.mcp_servers_json", a.mcp_servers_json.clone());
    put("server.timeout_seconds", a.timeout.map(|v| v.to_string()));
    put(
        "server.rate_limit_per_minute",
        a.rate_limit.map(|v| v.to_string()),
    );
    put(
        "server.api_key_is_admin",
        a.api_key_is_admin.then(|| "true".into()),
    );
    put(
        "server.allow_open_network",
        a.insecure_open.then(|| "true".into()),
    );
    for (key, items) in [
        ("server.cors_origins", &a.cors_origins),
        ("server.allowed_hosts", &a.allowed_hosts),
    ] {
        if !items.is_empty() {
            put(key, Some(toml_list(items.iter().cloned())));
        }
    }
    if !a.models_dir.is_empty() {
        let dirs = a
            .models_dir
            .iter()
            .map(|d| absolute(d).to_string_lossy().into_owned());
        put("models.dirs", Some(toml_list(dirs)));
    }
    put(
        "server.slot_save_path",
        a.slot_save_path
            .as_deref()
            .map(|d| absolute(d).to_string_lossy().into_owned()),
    );
    put("models.models_max", a.models_max.map(|v| v.to_string()));
    put("models.parallel", a.parallel.map(|v| v.to_string()));
    put(
        "models.ctx_size",
        a.ctx_size.map(|c| ctx_per_slot(c, a).to_string()),
    );
    put("models.n_gpu_layers", a.n_gpu_layers.clone());
    put("models.threads", a.threads.map(|v| v.to_string()));
    put(
        "models.sleep_idle_seconds",
        a.sleep_idle_seconds.map(|v| v.to_string()),
    );
    put("sampling.temperature", a.temp.map(|v| v.to_string()));
    put("sampling.top_k", a.top_k.map(|v| v.to_string()));
    put("sampling.top_p", a.top_p.map(|v| v.to_string()));
    put("sampling.seed", a.seed.map(|v| v.to_string()));
    put("sampling.n_predict", a.n_predict.map(|v| v.to_string()));
    for (key, on, off) in [
        ("server.slots_endpoint", a.slots, a.no_slots),
        ("server.metrics_endpoint", a.metrics, a.no_metrics),
        ("models.autoload", a.models_autoload, a.no_models_autoload),
    ] {
        if on || off {
            put(key, Some(on.to_string()));
        }
    }
    put(
        "server.verbose_responses",
        (verbose > 0).then(|| "true".into()),
    );
    put("models.chat_template", a.chat_template.clone());
    if a.no_jinja || a.jinja {
        put("models.jinja", Some(a.jinja.to_string()));
    }
    put("reasoning.format", a.reasoning_format.clone());
    put(
        "reasoning.thinking",
        a.reasoning.as_deref().map(thinking_word),
    );
    put(
        "reasoning.budget",
        a.reasoning_budget.map(|v| v.to_string()),
    );
    put(
        "reasoning.budget_message",
        a.reasoning_budget_message.clone(),
    );
    // Vertex AI's container contract names the port (llama-server lets it win over --port).
    if let Some(port) = server::api::vertex::Vertex::from_env().and_then(|v| v.port) {
        put("server.port", Some(port.to_string()));
    }
    o
}

/// `-c` as llama-server means it: the context of all slots together. Each of `-np` slots
/// gets its share, or with unified KV ([`unified_kv`]) the whole pool, which any one slot may
/// fill. `models.ctx_size` is one slot's context, so this is what it gets. `-c 0` (the
/// model's training context) stays 0, which the engine reads per slot.
fn ctx_per_slot(ctx: u32, a: &ServeArgs) -> u32 {
    match (unified_kv(a), a.parallel) {
        (false, Some(np)) if np > 0 => ctx / np,
        _ => ctx,
    }
}

/// Whether the slots share one KV pool: `-kvu`, or `-c` without `-np` (llama-server then
/// picks its slots itself and always unifies their KV, whatever `--no-kv-unified` says).
fn unified_kv(a: &ServeArgs) -> bool {
    a.kv_unified || (a.parallel.is_none() && a.ctx_size.is_some())
}

/// A server-wide chat template must name a template we have or compile, as llama-server
/// refuses to start with one it cannot use (a per-request error would hit every chat).
fn check_chat_template(config: &config::Config) -> Result<()> {
    if let Some(value) = &config.models.chat_template {
        let source = chat::named::template_source(value)?;
        chat::ChatTemplate::new(&source).context("models.chat_template")?;
    }
    Ok(())
}

/// `--reasoning` takes llama-server's spellings (`on`/`enabled`/`true`/`1`, `off`/...,
/// `auto`/`-1`); the config key takes `on`, `off` or `auto` and refuses anything else.
fn thinking_word(v: &str) -> String {
    match v.trim().to_ascii_lowercase().as_str() {
        "on" | "enabled" | "true" | "1" => "on".into(),
        "off" | "disabled" | "false" | "0" => "off".into(),
        "auto" | "-1" => "auto".into(),
        _ => v.to_owned(),
    }
}

/// `-m`, its names and whether this is a single-model server (`-m` without `--models-dir`,
/// as llama-server serves its one model). A `-m` file is made absolute: the catalog finds it
/// by that path.
fn routing(a: &ServeArgs) -> service::Routing {
    let model = a.model.as_ref().map(|m| {
        let path = std::path::Path::new(m);
        if path.is_file() {
            absolute(path).to_string_lossy().into_owned()
        } else {
            m.clone()
        }
    });
    service::Routing {
        single: model.is_some() && a.models_dir.is_empty(),
        model,
        aliases: a
            .alias
            .iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        tags: a
            .tags
            .iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        fallback: None,
    }
}

/// [`launch_flags`], refused at start when a model could not load with them (as llama-server
/// refuses a bad flag), not at the first request.
fn checked_launch_flags(a: &ServeArgs, config: &config::Config) -> Result<Map<String, Value>> {
    let flags = launch_flags(a)?;
    service::load_spec(
        &config.models,
        std::path::Path::new(""),
        &Map::new(),
        &flags,
    )?;
    Ok(flags)
}

/// The flags that are launch parameters, for every model: the same keys as a model's stored
/// launch parameters ([`service::load_spec`]: these rank above them, a load request's own
/// above these).
fn launch_flags(a: &ServeArgs) -> Result<Map<String, Value>> {
    let mut m = Map::new();
    if let Some(n) = a.batch_size {
        m.insert("n_batch".into(), json!(n));
    }
    if let Some(n) = a.ubatch_size {
        m.insert("n_ubatch".into(), json!(n));
    }
    if let Some(fa) = &a.flash_attn {
        let word = match fa.trim().to_ascii_lowercase().as_str() {
            "on" | "1" | "true" | "enabled" => "on".to_string(),
            "off" | "0" | "false" | "disabled" => "off".to_string(),
            other => other.to_string(),
        };
        m.insert("flash_attn".into(), json!(word));
    }
    for (key, v) in [
        ("cache_type_k", &a.cache_type_k),
        ("cache_type_v", &a.cache_type_v),
        ("pooling", &a.pooling),
    ] {
        if let Some(v) = v {
            m.insert(key.into(), json!(v.trim().to_ascii_lowercase()));
        }
    }
    if a.embedding || a.reranking {
        m.insert("embeddings".into(), json!(true));
    }
    if a.reranking {
        m.insert("pooling".into(), json!("rank"));
    }
    if a.context_shift || a.no_context_shift {
        let v = if a.context_shift { "shift" } else { "stop" };
        m.insert("on_context_full".into(), json!(v));
    }
    if unified_kv(a) || a.no_kv_unified {
        m.insert("kv_unified".into(), json!(unified_kv(a)));
    }
    if a.swa_full {
        m.insert("swa_full".into(), json!(true));
    }
    if let Some(mib) = a.cache_ram {
        m.insert("cache_ram_mib".into(), json!(mib));
    }
    if a.cache_idle_slots || a.no_cache_idle_slots {
        m.insert("cache_idle_slots".into(), json!(a.cache_idle_slots));
    }
    let mut lora: Vec<Value> = a
        .lora
        .iter()
        .map(|p| json!({"path": absolute(p), "scale": 1.0}))
        .collect();
    for item in &a.lora_scaled {
        let (file, scale) = item
            .rsplit_once(':')
            .and_then(|(f, s)| Some((f, s.trim().parse::<f32>().ok()?)))
            .with_context(|| format!("--lora-scaled {item}: expected FILE:SCALE"))?;
        lora.push(json!({"path": absolute(std::path::Path::new(file)), "scale": scale}));
    }
    if !lora.is_empty() {
        m.insert("lora".into(), Value::Array(lora));
    }
    Ok(m)
}

/// A TOML array literal (JSON string escaping is valid TOML basic-string escaping).
fn toml_list(items: impl Iterator<Item = String>) -> String {
    let quoted: Vec<String> = items
        .map(|s| serde_json::Value::String(s).to_string())
        .collect();
    format!("[{}]", quoted.join(", "))
}

fn absolute(p: &std::path::Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use crate::args::{Cli, Command};
    use clap::Parser;
    use serde_json::{Map, Value, json};

    fn serve_overrides(args: &[&str]) -> Vec<(String, String)> {
        let cli = Cli::try_parse_from([&["llama-dashboard", "serve"], args].concat()).unwrap();
        match cli.command {
            Some(Command::Serve(a)) => super::overrides(&a, 0),
            _ => unreachable!(),
        }
    }

    fn serve_args(args: &[&str]) -> crate::args::ServeArgs {
        let argv = crate::args::llama_style_flags(
            [&["llama-dashboard", "serve"], args]
                .concat()
                .into_iter()
                .map(Into::into),
        );
        match Cli::try_parse_from(argv).unwrap().command {
            Some(Command::Serve(a)) => a,
            _ => unreachable!(),
        }
    }

    #[test]
    fn llama_server_flags_set_config_keys_and_launch_parameters() {
        let a = serve_args(&[
            "--seed",
            "42",
            "-n",
            "64",
            "--no-slots",
            "--metrics",
            "-cb",
            "-b",
            "32",
            "-ub",
            "16",
            "-fa",
            "on",
            "-ctk",
            "q8_0",
            "-ctv",
            "q8_0",
            "--reranking",
            "--context-shift",
            "-kvu",
            "--swa-full",
            "--lora",
            "/a.gguf",
            "--lora-scaled",
            "/b.gguf:0.5",
            "--cors-origins",
            "localhost",
            "--models-max",
            "2",
            "--no-models-autoload",
        ]);
        let mut c = config::Config::default();
        for (k, v) in &super::overrides(&a, 0) {
            c.set(k, v).unwrap();
        }
        assert_eq!((c.sampling.seed, c.sampling.n_predict), (42, 64));
        assert!(!c.server.slots_endpoint && c.server.metrics_endpoint);
        assert_eq!(c.server.cors_origins, ["localhost"]);
        assert_eq!((c.models.models_max, c.models.autoload), (2, false));
        let launch = super::launch_flags(&a).unwrap();
        assert_eq!(
            Value::Object(launch.clone()),
            json!({
                "n_batch": 32, "n_ubatch": 16, "flash_attn": "on", "cache_type_k": "q8_0",
                "cache_type_v": "q8_0", "embeddings": true, "pooling": "rank",
                "on_context_full": "shift", "kv_unified": true, "swa_full": true,
                "lora": [{"path": "/a.gguf", "scale": 1.0}, {"path": "/b.gguf", "scale": 0.5}],
            })
        );
        // They are the launch parameters a model's spec takes.
        let spec = spec_with(&c, &launch);
        assert_eq!((spec.context.n_batch, spec.context.n_ubatch), (32, 16));
        assert!(spec.context.kv_unified && spec.context.swa_full);
        assert_eq!(spec.model.lora.len(), 2);
        // A bad value is refused at start, naming the parameter.
        let bad = serve_args(&["-ctk", "q9"]);
        let err = super::checked_launch_flags(&bad, &c)
            .unwrap_err()
            .to_string();
        assert!(err.contains("cache_type_k"), "{err}");
        // Nothing given, nothing set.
        assert!(super::launch_flags(&serve_args(&[])).unwrap().is_empty());
        assert!(super::overrides(&serve_args(&["-cb"]), 0).is_empty());
    }

    /// The load spec of a model under these launch flags.
    fn spec_with(c: &config::Config, launch: &Map<String, Value>) -> service::LoadSpec {
        service::load_spec(
            &c.models,
            std::path::Path::new("/m.gguf"),
            &Map::new(),
            launch,
        )
        .unwrap()
    }

    #[test]
    fn cache_ram_flags_are_launch_parameters() {
        let flags = |args: &[&str]| Value::Object(super::launch_flags(&serve_args(args)).unwrap());
        assert_eq!(
            flags(&["-cram", "100", "--no-cache-idle-slots"]),
            json!({"cache_ram_mib": 100, "cache_idle_slots": false})
        );
        assert_eq!(
            flags(&["--cache-ram", "-1", "--cache-idle-slots"]),
            json!({"cache_ram_mib": -1, "cache_idle_slots": true})
        );
        let launch = super::launch_flags(&serve_args(&["--cache-ram", "0"])).unwrap();
        let c = config::Config::default();
        let spec = spec_with(&c, &launch);
        assert_eq!(spec.context.cache_ram_mib, 0);
        assert!(spec.context.cache_idle_slots);
        // Not given: llama-server's default.
        let spec = spec_with(&c, &Map::new());
        assert_eq!(
            spec.context.cache_ram_mib,
            service::ContextParams::default().cache_ram_mib
        );
        let bad = serve_args(&["--cache-ram", "-5"]);
        let err = super::checked_launch_flags(&bad, &c)
            .unwrap_err()
            .to_string();
        assert!(err.contains("cache_ram_mib"), "{err}");
    }

    #[test]
    fn ctx_size_is_all_slots_together_as_in_llama_server() {
        // (models.ctx_size: per slot, models.parallel, the kv_unified launch parameter)
        let mapped = |args: &[&str]| {
            let a = serve_args(args);
            let mut c = config::Config::default();
            for (k, v) in &super::overrides(&a, 0) {
                c.set(k, v).unwrap();
            }
            let kvu = super::launch_flags(&a).unwrap().get("kv_unified").cloned();
            (c.models.ctx_size, c.models.parallel, kvu)
        };
        let d = config::Config::default().models;
        // -np slots share -c: each gets its part.
        assert_eq!(mapped(&["-c", "512", "-np", "2"]), (256, 2, None));
        let off = Some(json!(false));
        assert_eq!(
            mapped(&["-c", "512", "-np", "2", "--no-kv-unified"]),
            (256, 2, off)
        );
        // Unified KV: one pool of -c that any slot may fill.
        let on = Some(json!(true));
        assert_eq!(
            mapped(&["-c", "512", "-np", "2", "-kvu"]),
            (512, 2, on.clone())
        );
        // -c without -np: llama-server's automatic slots, always unified.
        assert_eq!(mapped(&["-c", "512"]), (512, d.parallel, on.clone()));
        assert_eq!(
            mapped(&["-c", "512", "--no-kv-unified"]),
            (512, d.parallel, on)
        );
        // No -c: the configuration's per-slot context stays; -c 0 is the model's own.
        assert_eq!(mapped(&["-np", "3"]), (d.ctx_size, 3, None));
        assert_eq!(mapped(&["-c", "0", "-np", "4"]), (0, 4, None));
    }

    #[test]
    fn slot_save_path_is_an_absolute_folder() {
        let mut c = config::Config::default();
        for (k, v) in &super::overrides(&serve_args(&["--slot-save-path", "./tmp"]), 0) {
            c.set(k, v).unwrap();
        }
        let dir = c.server.slot_save_path.unwrap();
        assert!(dir.is_absolute() && dir.ends_with("tmp"), "{dir:?}");
    }

    #[test]
    fn verbose_adds_llama_servers_debug_object() {
        let a = serve_args(&[]);
        let on = super::overrides(&a, 1);
        assert!(on.contains(&("server.verbose_responses".into(), "true".into())));
        assert!(super::overrides(&a, 0).is_empty());
    }

    #[test]
    fn model_flag_alone_is_a_single_model_server() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.gguf");
        std::fs::write(&file, b"GGUF").unwrap();
        let r = super::routing(&serve_args(&[
            "-m",
            file.to_str().unwrap(),
            "--alias",
            "tinyllama-2,fim, code",
            "--tags",
            "chat,fim",
        ]));
        assert!(r.single);
        assert_eq!(r.model.as_deref(), file.to_str());
        assert_eq!(r.aliases, ["tinyllama-2", "fim", "code"]);
        assert_eq!(r.tags, ["chat", "fim"]);
        // A model folder besides makes it a multi-model server; no -m, no model.
        let multi = super::routing(&serve_args(&["-m", "m", "--models-dir", "/tmp"]));
        assert!(!multi.single && multi.model.as_deref() == Some("m"));
        assert_eq!(
            super::routing(&serve_args(&[])),
            service::Routing::default()
        );
    }

    #[test]
    fn browser_and_key_flags_become_config_keys() {
        let o = serve_overrides(&[
            "--cors-origin",
            "https://a.example,localhost",
            "--cors-origin",
            "*",
            "--allowed-host",
            "llm.lan",
            "--insecure-open",
            "--api-key-is-admin",
            "--rate-limit",
            "30",
        ]);
        let mut c = config::Config::default();
        for (k, v) in &o {
            c.set(k, v).unwrap();
        }
        assert_eq!(
            c.server.cors_origins,
            ["https://a.example", "localhost", "*"]
        );
        assert_eq!(c.server.allowed_hosts, ["llm.lan"]);
        assert!(c.server.allow_open_network && c.server.api_key_is_admin);
        assert_eq!(c.server.rate_limit_per_minute, 30);
        // Switches not given leave the configuration alone.
        assert!(serve_overrides(&[]).is_empty());
    }

    #[test]
    fn template_flags_become_config_keys() {
        let config = |args: &[&str]| {
            let mut c = config::Config::default();
            for (k, v) in &serve_overrides(args) {
                c.set(k, v).unwrap();
            }
            c
        };
        let c = config(&["--chat-template", "llama3", "--no-jinja"]);
        assert_eq!(c.models.chat_template.as_deref(), Some("llama3"));
        assert!(!c.models.jinja);
        // The last of --jinja / --no-jinja wins, as in llama-server.
        assert!(config(&["--no-jinja", "--jinja"]).models.jinja);
        assert!(!config(&["--jinja", "--no-jinja"]).models.jinja);
        // Jinja text is kept as given, whitespace and all.
        let c = config(&["--chat-template", " {{ messages[0].content }}\n"]);
        assert_eq!(
            c.models.chat_template.as_deref(),
            Some(" {{ messages[0].content }}\n")
        );
        assert!(super::check_chat_template(&c).is_ok());
        let c = config(&["--chat-template", "gpt-oss"]);
        let err = super::check_chat_template(&c).unwrap_err().to_string();
        assert!(err.contains("gpt-oss"), "{err}");
        let c = config(&["--chat-template", "{% if %}"]);
        assert!(super::check_chat_template(&c).is_err());
    }

    #[test]
    fn reasoning_flags_take_llama_servers_spellings() {
        let o = serve_overrides(&[
            "--reasoning-format",
            "deepseek",
            "--reasoning",
            "disabled",
            "--reasoning-budget",
            "-1",
        ]);
        let mut c = config::Config::default();
        for (k, v) in &o {
            c.set(k, v).unwrap();
        }
        assert_eq!(c.reasoning.format, "deepseek");
        assert_eq!(c.reasoning.thinking, "off");
        assert_eq!(c.reasoning.budget, -1);
        for (k, v) in serve_overrides(&[
            "--reasoning-budget",
            "512",
            "--reasoning-budget-message",
            "Time is up.",
        ]) {
            c.set(&k, &v).unwrap();
        }
        assert_eq!(c.reasoning.budget, 512);
        assert_eq!(c.reasoning.budget_message, "Time is up.");
        for (k, v) in serve_overrides(&["--reasoning", "maybe", "--reasoning-budget", "-2"]) {
            let err = c.set(&k, &v).unwrap_err().to_string();
            assert!(err.contains(&k), "{err}");
        }
    }
}
