//! `run`: chat with a model in the terminal, or answer one prompt and exit.
//!
//! Interactive mode has line editing and history (rustyline), multi-line input between
//! `"""` lines, and the commands `/clear`, `/set <param> <value>`, `/show`, `/help`, `/bye`.
//! Ctrl-C stops the answer being written, not the program.

use crate::args::RunArgs;
use crate::context::{Context, locate};
use anyhow::{Context as _, Result, bail};
use chat::ChatMessage;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, json};
use service::{
    ChatInput, Finish, GenerateRequest, Input, ModelLease, Models, Output, ReasoningDefaults,
    Request, ResponseFormat, SamplingDefaults, SamplingParams,
};
use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use std::sync::Arc;

/// The config keys `run`'s flags set: they join the config's layers (flags > env > file),
/// so the model loads by the same rules as everywhere ([`service::load_spec`]).
pub fn config_flags(a: &RunArgs) -> Vec<(String, String)> {
    let pairs = [
        ("models.ctx_size", a.ctx_size.map(|v| v.to_string())),
        ("models.threads", a.threads.map(|v| v.to_string())),
        ("models.n_gpu_layers", a.n_gpu_layers.clone()),
        ("sampling.temperature", a.temp.map(|v| v.to_string())),
        ("sampling.top_k", a.top_k.map(|v| v.to_string())),
        ("sampling.top_p", a.top_p.map(|v| v.to_string())),
    ];
    pairs
        .into_iter()
        .filter_map(|(k, v)| Some((k.to_string(), v?)))
        .collect()
}

pub fn run(ctx: &Context, args: RunArgs) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run_async(ctx, args))
}

/// Per-answer settings that `/set` changes.
struct Settings {
    sampling: SamplingParams,
    max_tokens: Option<u32>,
    system: Option<String>,
    timings: bool,
}

async fn run_async(ctx: &Context, args: RunArgs) -> Result<ExitCode> {
    let entry = locate(ctx, &args.model)?;
    let models = Arc::new(Models::new(
        Vec::new(),
        ctx.store().ok(),
        ctx.config.models.clone(),
    ));
    models.admission().set_config(ctx.config.limits.clone());
    // `[reasoning]`: whether thinking models think, and how their thoughts come back.
    models.set_reasoning(ReasoningDefaults::from_config(&ctx.config.reasoning));
    let template = models.template_choice(&entry.id).await?;

    // A prompt from the arguments and/or piped standard input means: answer once.
    let mut once = (!args.prompt.is_empty()).then(|| args.prompt.join(" "));
    if !std::io::stdin().is_terminal() {
        let mut piped = String::new();
        std::io::stdin().read_to_string(&mut piped)?;
        if !piped.trim().is_empty() {
            once = Some(match once {
                Some(p) => format!("{p}\n\n{}", piped.trim_end()),
                None => piped.trim_end().to_string(),
            });
        }
    }

    let lease = load(&models, &entry).await?;
    let format = lease
        .chat_format(&template)
        .context("compiling the chat template")?;
    tracing::info!(template = %format.origin, "chat template");

    if let Some(which) = &args.session {
        let stored = StoredChat::open(ctx, &models, &entry, template.clone(), &args, which).await?;
        let result = stored.chat(ctx, once).await;
        drop(lease);
        models.manager().shutdown().await;
        return result;
    }

    let mut sampling = SamplingDefaults::from_config(&ctx.config.sampling).params();
    sampling.seed = args.seed;
    let template_origin = format.origin.to_string();
    let mut session = Session {
        models: &models,
        entry: &entry,
        template,
        settings: Settings {
            sampling,
            max_tokens: u32::try_from(args.n_predict).ok(),
            system: args.system.clone(),
            timings: args.timings,
        },
    };
    let mut history: Vec<ChatMessage> = Vec::new();

    if let Some(prompt) = once {
        history.push(message("user", &prompt));
        let answered = answer(&session, &mut history).await;
        drop(lease);
        models.manager().shutdown().await;
        answered?;
        return Ok(ExitCode::SUCCESS);
    }

    let mut editor = rustyline::DefaultEditor::new()?;
    let history_file = ctx.paths.data_dir.join("run_history.txt");
    let _ = editor.load_history(&history_file);
    eprintln!(
        "{} ({} template). Type /? for help, /bye to leave.",
        entry.id, template_origin
    );
    loop {
        let line = match read_input(&mut editor) {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(e) => return Err(e),
        };
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(trimmed);
        if let Some(cmd) = trimmed.strip_prefix('/') {
            match command(cmd, &mut session.settings, &mut history, &template_origin) {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => eprintln!("{e}"),
            }
            continue;
        }
        history.push(message("user", &line));
        if let Err(e) = answer(&session, &mut history).await {
            eprintln!("error: {e:#}");
            history.pop();
        }
    }
    let _ = std::fs::create_dir_all(&ctx.paths.data_dir);
    let _ = editor.save_history(&history_file);
    drop(lease);
    models.manager().shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// Loads the model through the manager with its load spec (config, stored launch
/// parameters, flags) and one slot: `run` holds one conversation.
async fn load(models: &Models, entry: &catalog::ModelEntry) -> Result<ModelLease> {
    let bar = ProgressBar::new(100).with_style(
        ProgressStyle::with_template("{spinner} loading {msg} {bar:30} {percent}%")
            .expect("valid template"),
    );
    bar.set_message(entry.id.clone());
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut events = models.manager().subscribe();
    let b = bar.clone();
    let progress = tokio::spawn(async move {
        while let Ok(e) = events.recv().await {
            if let manager::Event::Loading { progress, .. } = e {
                b.set_position((progress * 100.0) as u64);
            }
        }
    });
    let lease = models.acquire_with(entry, &one_slot()).await;
    progress.abort();
    bar.finish_and_clear();
    Ok(lease?)
}

/// `run` holds one conversation: one slot.
fn one_slot() -> Map<String, serde_json::Value> {
    let mut m = Map::new();
    m.insert("parallel".into(), json!(1));
    m
}

fn message(role: &str, text: &str) -> ChatMessage {
    ChatMessage::new(role, text)
}

/// One line, or several between `"""` lines. `None` at end of input (Ctrl-D).
fn read_input(editor: &mut rustyline::DefaultEditor) -> Result<Option<String>> {
    use rustyline::error::ReadlineError;
    let mut lines: Vec<String> = Vec::new();
    let mut multi = false;
    loop {
        let prompt = if multi { "... " } else { ">>> " };
        match editor.readline(prompt) {
            Ok(line) => {
                if !multi && line.trim_start().starts_with("\"\"\"") {
                    let rest = line.trim_start()[3..].to_string();
                    if let Some(done) = rest.strip_suffix("\"\"\"") {
                        return Ok(Some(done.to_string()));
                    }
                    multi = true;
                    if !rest.is_empty() {
                        lines.push(rest);
                    }
                    continue;
                }
                if multi {
                    if let Some(last) = line.trim_end().strip_suffix("\"\"\"") {
                        if !last.is_empty() {
                            lines.push(last.to_string());
                        }
                        return Ok(Some(lines.join("\n")));
                    }
                    lines.push(line);
                    continue;
                }
                return Ok(Some(line));
            }
            Err(ReadlineError::Interrupted) => {
                if multi {
                    lines.clear();
                    multi = false;
                }
                eprintln!("Use Ctrl + d or /bye to exit.");
            }
            Err(ReadlineError::Eof) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
}

/// A `/command`. Returns true to leave.
fn command(
    cmd: &str,
    s: &mut Settings,
    history: &mut Vec<ChatMessage>,
    template_origin: &str,
) -> Result<bool> {
    let mut words = cmd.split_whitespace();
    match words.next().unwrap_or("") {
        "bye" | "exit" | "quit" => return Ok(true),
        "clear" => {
            history.clear();
            eprintln!("Cleared session context");
        }
        "set" => {
            let key = words.next().unwrap_or("");
            let rest: Vec<&str> = words.collect();
            let value = rest.join(" ");
            set(s, key, &value)?;
            eprintln!("Set '{key}' to '{value}'");
        }
        "show" => {
            eprintln!("template: {template_origin}");
            eprintln!(
                "temperature {}  top_k {}  top_p {}  seed {:?}  max_tokens {:?}  system {:?}",
                s.sampling.temperature,
                s.sampling.top_k,
                s.sampling.top_p,
                s.sampling.seed,
                s.max_tokens,
                s.system
            );
        }
        "?" | "help" => eprintln!(
            "/set temp|top_k|top_p|min_p|seed|max_tokens|system|timings <value>\n/show  /clear  /bye\n\
             Start and end a message with \"\"\" to write several lines. Ctrl-C stops an answer."
        ),
        other => bail!("unknown command /{other}; /? lists them"),
    }
    Ok(false)
}

fn set(s: &mut Settings, key: &str, value: &str) -> Result<()> {
    let num = |v: &str| {
        v.parse::<f32>()
            .map_err(|_| anyhow::anyhow!("/set {key}: {v:?} is not a number"))
    };
    match key {
        "temp" | "temperature" => s.sampling.temperature = num(value)?,
        "top_k" => {
            s.sampling.top_k = value
                .parse()
                .map_err(|_| anyhow::anyhow!("/set top_k: {value:?} is not an integer"))?
        }
        "top_p" => s.sampling.top_p = num(value)?,
        "min_p" => s.sampling.min_p = num(value)?,
        "seed" => {
            s.sampling.seed = Some(
                value
                    .parse()
                    .map_err(|_| anyhow::anyhow!("/set seed: {value:?} is not an integer"))?,
            )
        }
        "max_tokens" | "num_predict" => {
            s.max_tokens = value
                .parse::<i64>()
                .ok()
                .and_then(|n| u32::try_from(n).ok())
        }
        "system" => s.system = (!value.is_empty()).then(|| value.to_string()),
        "timings" | "verbose" => s.timings = !matches!(value, "off" | "false" | "0"),
        _ => bail!("/set: unknown parameter {key:?}"),
    }
    s.sampling.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

/// The one conversation `run` holds: the model it talks to, how its prompts are rendered,
/// and what `/set` changed.
struct Session<'a> {
    models: &'a Models,
    entry: &'a catalog::ModelEntry,
    template: service::TemplateChoice,
    settings: Settings,
}

/// Generates the assistant's reply to `history` through the service layer (the same road as
/// the server's chat routes: template, stop strings, engine), streaming it to stdout, and
/// appends it.
async fn answer(session: &Session<'_>, history: &mut Vec<ChatMessage>) -> Result<()> {
    let s = &session.settings;
    let mut messages = Vec::with_capacity(history.len() + 1);
    if let Some(system) = &s.system {
        messages.push(message("system", system));
    }
    messages.extend(history.iter().cloned());
    // The prompt is rendered from the messages by the service layer.
    let mut params = GenerateRequest::default();
    params.sampling = s.sampling.clone();
    params.max_tokens = s.max_tokens;
    let chat = ChatInput {
        messages,
        ..Default::default()
    };
    let request = Request {
        input: Input::Chat(chat),
        params,
        response_format: ResponseFormat::Text,
    };
    // The model is already loaded (the session holds a lease); this one is the answer's.
    let lease = session
        .models
        .acquire_with(session.entry, &one_slot())
        .await?;
    let ticket = session.models.admit()?;
    let mut stream = service::generate::start(lease, &session.template, request, ticket).await?;
    let mut out = std::io::stdout();
    let mut reply = String::new();
    let mut interrupted = false;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            ev = stream.next() => match ev {
                // Thoughts go to stderr: stdout keeps the answer alone, as the history does.
                Some(Ok(Output::Reasoning { text })) => eprint!("{text}"),
                Some(Ok(Output::Text { text, .. })) => {
                    out.write_all(text.as_bytes())?;
                    out.flush()?;
                    reply.push_str(&text);
                }
                // No tools are offered, so no calls are parsed.
                // No tools are offered, so no calls are parsed; progress is not asked for.
                Some(Ok(
                    Output::ToolCallStart { .. }
                    | Output::ToolCallArguments { .. }
                    | Output::Progress(_),
                )) => {}
                Some(Ok(Output::Done(done))) => {
                    let t = &done.timings;
                    if s.timings {
                        eprintln!(
                            "\n[prompt {} tokens ({} cached) {:.1} t/s, generation {} tokens {:.1} t/s, {:?}]",
                            t.prompt_n, t.cache_n, t.prompt_per_second,
                            t.predicted_n, t.predicted_per_second, done.finish
                        );
                    }
                    if done.finish == Finish::Length {
                        eprint!("\n[stopped: length limit]");
                    }
                    break;
                }
                Some(Err(e)) => return Err(e.into()),
                None => break,
            },
            _ = &mut ctrl_c, if !interrupted => {
                // Dropping the stream cancels the request; the slot is freed at the next step.
                interrupted = true;
                break;
            }
        }
    }
    drop(stream);
    println!();
    if interrupted {
        eprintln!("[interrupted]");
    }
    history.push(message("assistant", &reply));
    Ok(())
}

/// How a stored session reaches the model `run` loaded: the same steps as [`answer`] (a
/// lease with one slot, a ticket, `generate::start`), for `service::Sessions`.
struct RunRunner {
    models: Arc<Models>,
    entry: catalog::ModelEntry,
    template: service::TemplateChoice,
    sampling: SamplingDefaults,
}

type BoxFuture<'a, T> = service::sessions::send::BoxFuture<'a, T>;

impl service::sessions::Runner for RunRunner {
    /// `run` has one model (located before loading; its `Models` scans no folder), so a
    /// session's other models are refused rather than looked up.
    fn pick<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<String, service::ServiceError>> {
        Box::pin(async move {
            if name != self.entry.id {
                return Err(service::ServiceError::invalid(
                    "model",
                    format!("`run` talks to {} only, not {name}", self.entry.id),
                ));
            }
            Ok(self.entry.id.clone())
        })
    }

    fn sampling<'a>(&'a self, _model: &'a str) -> BoxFuture<'a, SamplingDefaults> {
        Box::pin(async move { self.sampling.clone() })
    }

    fn measure<'a>(
        &'a self,
        _model: &'a str,
        chat: ChatInput,
    ) -> BoxFuture<'a, Result<service::sessions::Measure, service::ServiceError>> {
        Box::pin(async move {
            let lease = self.models.acquire_with(&self.entry, &one_slot()).await?;
            let n_ctx = lease.handle.info().n_ctx_slot;
            let tokens = service::generate::count_chat_tokens(&lease, &self.template, chat).await?;
            Ok(service::sessions::Measure { tokens, n_ctx })
        })
    }

    fn start<'a>(
        &'a self,
        _model: &'a str,
        req: Request,
    ) -> BoxFuture<'a, Result<Box<dyn service::sessions::Outputs>, service::ServiceError>> {
        Box::pin(async move {
            let lease = self.models.acquire_with(&self.entry, &one_slot()).await?;
            let ticket = self.models.admit()?;
            let g = service::generate::start(lease, &self.template, req, ticket).await?;
            Ok(Box::new(RunOutputs(g)) as Box<dyn service::sessions::Outputs>)
        })
    }
}

/// A generation started in process is a session's outputs as it is.
struct RunOutputs(service::Generation);

impl service::sessions::Outputs for RunOutputs {
    fn next(&mut self) -> BoxFuture<'_, Option<Result<Output, service::ServiceError>>> {
        Box::pin(self.0.next())
    }
}

/// `run --session`: the conversation lives in the database's chat sessions.
struct StoredChat {
    sessions: Arc<service::Sessions>,
    runner: Arc<dyn service::sessions::Runner>,
    id: String,
    model: String,
    timings: bool,
}

impl StoredChat {
    async fn open(
        ctx: &Context,
        models: &Arc<Models>,
        entry: &catalog::ModelEntry,
        template: service::TemplateChoice,
        args: &RunArgs,
        which: &str,
    ) -> Result<StoredChat> {
        let sessions = super::sessions::open(ctx)?;
        let id = if which == "new" {
            let s = sessions
                .create(service::sessions::NewSession {
                    model: Some(entry.id.clone()),
                    params: service::sessions::SessionParams {
                        system_prompt: args.system.clone(),
                        seed: args.seed,
                        max_tokens: u32::try_from(args.n_predict).ok(),
                        ..Default::default()
                    },
                    ..Default::default()
                })
                .await?;
            eprintln!("session {}", s.id);
            s.id
        } else {
            let h = sessions
                .history(which, service::sessions::View::Active)
                .await?;
            for m in &h.messages {
                eprintln!("[{}] {}", m.role, m.content.trim_end());
            }
            which.to_string()
        };
        Ok(StoredChat {
            sessions,
            runner: Arc::new(RunRunner {
                models: models.clone(),
                entry: entry.clone(),
                template,
                sampling: SamplingDefaults::from_config(&ctx.config.sampling),
            }),
            id,
            model: entry.id.clone(),
            timings: args.timings,
        })
    }

    async fn chat(&self, ctx: &Context, once: Option<String>) -> Result<ExitCode> {
        if let Some(prompt) = once {
            self.send(prompt).await?;
            return Ok(ExitCode::SUCCESS);
        }
        let mut editor = rustyline::DefaultEditor::new()?;
        let history_file = ctx.paths.data_dir.join("run_history.txt");
        let _ = editor.load_history(&history_file);
        eprintln!("{} (session {}). /bye to leave.", self.model, self.id);
        while let Some(line) = read_input(&mut editor)? {
            let trimmed = line.trim();
            if trimmed.is_empty() {
                continue;
            }
            let _ = editor.add_history_entry(trimmed);
            if matches!(trimmed, "/bye" | "/exit") {
                break;
            }
            if let Err(e) = self.send(line).await {
                eprintln!("error: {e:#}");
            }
        }
        let _ = std::fs::create_dir_all(&ctx.paths.data_dir);
        let _ = editor.save_history(&history_file);
        Ok(ExitCode::SUCCESS)
    }

    /// One question through the session service, its answer streamed to stdout; Ctrl-C
    /// stops it (the text so far is kept, `cancelled`).
    async fn send(&self, text: String) -> Result<()> {
        use service::sessions::SendEvent;
        // Server tools run in `serve` (MCP servers are supervised there): a session that
        // enables them answers here without them.
        let ask = service::sessions::send::Ask {
            models: vec![self.model.clone()],
            server_tools: Some(service::sessions::ServerTools::Switch(false)),
            tool_choice: None,
        };
        let mut sent = self
            .sessions
            .send(self.runner.clone(), &self.id, text, ask)
            .await?;
        let mut out = std::io::stdout();
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        let mut stopped = false;
        loop {
            tokio::select! {
                ev = sent.events.recv() => match ev {
                    Some(SendEvent::Delta { text, .. }) => {
                        out.write_all(text.as_bytes())?;
                        out.flush()?;
                    }
                    Some(SendEvent::Reasoning { text, .. }) => eprint!("{text}"),
                    Some(SendEvent::Done(m)) => {
                        println!();
                        if self.timings
                            && let Some(t) = &m.timings
                        {
                            eprintln!("[{t}]");
                        }
                        match m.finish_reason.as_deref() {
                            Some("length") => eprintln!("[stopped: length limit]"),
                            Some("cancelled") => eprintln!("[interrupted]"),
                            _ => {}
                        }
                        if let Some(l) = m.left_out.filter(|l| !l.is_empty()) {
                            eprintln!("[{} earlier messages left out of the context]", l.len());
                        }
                    }
                    Some(SendEvent::Error { error, .. }) => eprintln!("error: {error}"),
                    Some(SendEvent::ToolCall { call, .. }) => eprintln!("[tool call {}]", call.name),
                    Some(SendEvent::ToolResult { .. } | SendEvent::Started(_)) => {}
                    None => break,
                },
                _ = &mut ctrl_c, if !stopped => {
                    stopped = true;
                    self.sessions.stop(&self.id);
                }
            }
        }
        Ok(())
    }
}
