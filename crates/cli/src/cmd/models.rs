//! `models list | scan | info | alias`.

use crate::args::ModelsCommand;
use crate::context::{Context, find};
use crate::output::{self, bytes, count, or_dash};
use anyhow::{Context as _, Result, bail};
use catalog::{Incomplete, ModelEntry, Root, ScanReport, Source};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub fn run(ctx: &Context, cmd: ModelsCommand) -> Result<ExitCode> {
    match cmd {
        ModelsCommand::List(flag) => list(ctx, flag.json),
        ModelsCommand::Scan { path, json } => scan(&path, json.json),
        ModelsCommand::Info {
            model,
            tensors,
            json,
        } => info(ctx, &model, tensors, json.json),
        ModelsCommand::Alias { model, alias } => set_alias(ctx, &model, alias.as_deref()),
    }
}

/// A catalog entry as `models list --json` prints it: the entry plus the user's settings.
#[derive(Serialize)]
struct Listed<'a> {
    #[serde(flatten)]
    entry: &'a ModelEntry,
    alias: Option<String>,
    favorite: bool,
}

fn list(ctx: &Context, json: bool) -> Result<ExitCode> {
    let report = ctx.discover();
    // Aliases are a nicety here: a broken database must not hide the model list.
    let settings: HashMap<String, store::ModelSettings> =
        match ctx.store().and_then(|s| Ok(s.all_model_settings()?)) {
            Ok(all) => all.into_iter().map(|s| (s.model_id.clone(), s)).collect(),
            Err(e) => {
                eprintln!("warning: {e:#}");
                HashMap::new()
            }
        };
    let listed: Vec<Listed> = report
        .models
        .iter()
        .map(|entry| {
            let s = settings.get(&entry.id);
            Listed {
                entry,
                alias: s.and_then(|s| s.alias.clone()),
                favorite: s.is_some_and(|s| s.favorite),
            }
        })
        .collect();
    if json {
        output::json(&serde_json::json!({ "models": listed, "skipped": report.skipped.len() }))?;
        return Ok(ExitCode::SUCCESS);
    }
    if listed.is_empty() {
        println!("No models found. Looked in:");
        for root in ctx.roots() {
            println!("  {} ({})", root.path.display(), root.source);
        }
        println!("Add a folder with: llama-dashboard config set models.dirs /path/to/models");
    } else {
        let mut t = output::table([
            "ID",
            "ARCHITECTURE",
            "QUANTIZATION",
            "SIZE",
            "CONTEXT",
            "SOURCE",
        ]);
        for l in &listed {
            let m = l.entry;
            let id = match &l.alias {
                Some(a) => format!("{} ({a})", m.id),
                None => m.id.clone(),
            };
            let id = if !m.missing_parts.is_empty() {
                format!("{id} [missing part {}]", join(&m.missing_parts))
            } else if let Some(i) = &m.incomplete {
                format!("{id} [incomplete: {}]", fraction(i))
            } else {
                id
            };
            t.add_row([
                id,
                or_dash(m.architecture.as_deref()),
                or_dash(m.quantization.as_deref()),
                bytes(m.size),
                or_dash(m.context_length),
                m.source.to_string(),
            ]);
        }
        println!("{t}");
    }
    if !report.skipped.is_empty() {
        eprintln!(
            "{} file(s) skipped; `llama-dashboard models scan <folder>` shows why.",
            report.skipped.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn scan(path: &Path, json: bool) -> Result<ExitCode> {
    if !path.is_dir() {
        bail!("{} is not a folder", path.display());
    }
    let report = catalog::scan_root(&Root::new(Source::Folder, path));
    if json {
        output::json(&report)?;
        return Ok(ExitCode::SUCCESS);
    }
    print_scan(&report);
    Ok(ExitCode::SUCCESS)
}

fn print_scan(report: &ScanReport) {
    let mut t = output::table([
        "ID",
        "ARCHITECTURE",
        "QUANTIZATION",
        "SIZE",
        "PARTS",
        "VISION",
        "PATH",
    ]);
    for m in &report.models {
        let mut parts = if m.missing_parts.is_empty() {
            m.split_count.to_string()
        } else {
            format!(
                "{}/{} (missing {})",
                m.parts.len(),
                m.split_count,
                join(&m.missing_parts)
            )
        };
        if let Some(i) = &m.incomplete {
            parts = format!("{parts} (incomplete: {})", fraction(i));
        }
        t.add_row([
            m.id.clone(),
            or_dash(m.architecture.as_deref()),
            or_dash(m.quantization.as_deref()),
            bytes(m.size),
            parts,
            if m.mmproj.is_some() {
                "yes".into()
            } else {
                "-".into()
            },
            m.path.display().to_string(),
        ]);
    }
    println!("{} model(s)", report.models.len());
    if !report.models.is_empty() {
        println!("{t}");
    }
    if !report.skipped.is_empty() {
        println!("\n{} skipped:", report.skipped.len());
        for s in &report.skipped {
            println!("  {}: {}", s.path.display(), s.reason);
        }
    }
}

fn info(ctx: &Context, model: &str, all_tensors: bool, json: bool) -> Result<ExitCode> {
    // A file that is not a usable model still gets its header shown (that is how one finds
    // out why it is not listed).
    let (path, entry) = match find(ctx, model) {
        Ok(e) => (e.path.clone(), Some(e)),
        Err(_) if Path::new(model).is_file() => (PathBuf::from(model), None),
        Err(e) => return Err(e),
    };
    let file = gguf::read_path(&path, &gguf::ReadOptions::default())
        .with_context(|| format!("reading {}", path.display()))?;
    let size = entry.as_ref().map_or(file.file_size, |e| e.size);
    let summary = Summary::of(&file, &path, size, entry.as_ref());
    if json {
        // Serialized straight from the structs (not through serde_json::Value) so the keys
        // keep the file's order.
        #[derive(Serialize)]
        struct Info<'a> {
            summary: &'a Summary,
            gguf: &'a gguf::GgufFile,
        }
        output::json(&Info {
            summary: &summary,
            gguf: &file,
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    summary.print();
    println!("\nMetadata ({} keys)", file.kv.len());
    let mut t = output::table(["KEY", "TYPE", "VALUE"]);
    for (key, value) in &file.kv {
        t.add_row([key.clone(), type_label(value), value.to_string()]);
    }
    println!("{t}");
    if all_tensors {
        println!("\nTensors ({})", file.tensors.len());
        let mut t = output::table(["NAME", "TYPE", "SHAPE", "OFFSET"]);
        for ti in &file.tensors {
            let shape = ti
                .dims
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(" x ");
            t.add_row([
                ti.name.clone(),
                ti.ggml_type.name().to_string(),
                shape,
                ti.offset.to_string(),
            ]);
        }
        println!("{t}");
    } else {
        println!(
            "\nTensors by type ({} tensors; --tensors lists each)",
            file.tensors.len()
        );
        let mut by_type: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for ti in &file.tensors {
            let n = ti
                .dims
                .iter()
                .try_fold(1u64, |a, &d| a.checked_mul(d))
                .unwrap_or(u64::MAX);
            let e = by_type.entry(ti.ggml_type.name().to_string()).or_default();
            e.0 += 1;
            e.1 = e.1.saturating_add(n);
        }
        let mut t = output::table(["TYPE", "TENSORS", "PARAMETERS"]);
        for (ty, (n, params)) in by_type {
            t.add_row([ty, n.to_string(), count(params)]);
        }
        println!("{t}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The headline facts of a model, for `models info`.
#[derive(Serialize)]
struct Summary {
    id: Option<String>,
    path: PathBuf,
    size: u64,
    parts: usize,
    mmproj: Option<PathBuf>,
    /// Set when a file is shorter than its header says (never loaded).
    incomplete: Option<Incomplete>,
    version: u32,
    architecture: Option<String>,
    name: Option<String>,
    file_type: Option<u32>,
    quantization: Option<String>,
    parameters: u64,
    context_length: Option<u64>,
    embedding_length: Option<u64>,
    block_count: Option<u64>,
    vocab_size: Option<u64>,
    chat_template: Option<String>,
    sampling: BTreeMap<String, gguf::Value>,
    tensor_count: usize,
}

impl Summary {
    fn of(file: &gguf::GgufFile, path: &Path, size: u64, entry: Option<&ModelEntry>) -> Self {
        Summary {
            id: entry.map(|e| e.id.clone()),
            path: path.to_path_buf(),
            size,
            parts: entry.map_or(1, |e| e.parts.len()),
            mmproj: entry.and_then(|e| e.mmproj.clone()),
            incomplete: match entry {
                Some(e) => e.incomplete.clone(),
                None => file
                    .expected_file_size()
                    .filter(|_| file.data_truncated())
                    .map(|expected_size| Incomplete {
                        path: path.to_path_buf(),
                        expected_size,
                        actual_size: file.file_size,
                    }),
            },
            version: file.version,
            architecture: file.architecture().map(str::to_string),
            name: file.name().map(str::to_string),
            file_type: file.file_type(),
            quantization: file.quantization(),
            parameters: file.parameter_count(),
            context_length: file.context_length(),
            embedding_length: file.embedding_length(),
            block_count: file.block_count(),
            vocab_size: file.vocab_size(),
            chat_template: file.chat_template().map(str::to_string),
            sampling: file.sampling(),
            tensor_count: file.tensors.len(),
        }
    }

    fn print(&self) {
        let row = |k: &str, v: String| println!("{k:<16}{v}");
        if let Some(id) = &self.id {
            row("Model", id.clone());
        }
        row("File", self.path.display().to_string());
        row(
            "Size",
            format!(
                "{} ({} part{})",
                bytes(self.size),
                self.parts,
                if self.parts == 1 { "" } else { "s" }
            ),
        );
        if let Some(i) = &self.incomplete {
            row("Incomplete", format!("{i}; it will not be loaded"));
        }
        row("GGUF version", self.version.to_string());
        row("Architecture", or_dash(self.architecture.as_deref()));
        row("Name", or_dash(self.name.as_deref()));
        let quant = match (&self.quantization, self.file_type) {
            (Some(q), Some(ft)) => format!("{q} (file type {ft})"),
            (Some(q), None) => q.clone(),
            _ => "-".into(),
        };
        row("Quantization", quant);
        row(
            "Parameters",
            format!("{} ({})", count(self.parameters), self.parameters),
        );
        row("Context length", or_dash(self.context_length));
        row("Embedding size", or_dash(self.embedding_length));
        row("Layers", or_dash(self.block_count));
        row(
            "Vocabulary",
            self.vocab_size
                .map_or("-".into(), |v| format!("{v} tokens")),
        );
        row(
            "Chat template",
            match &self.chat_template {
                Some(t) => format!("yes ({} chars, tokenizer.chat_template)", t.chars().count()),
                None => "none (the file carries no chat template)".into(),
            },
        );
        if !self.sampling.is_empty() {
            let s = self
                .sampling
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ");
            row("Sampling", s);
        }
        if let Some(p) = &self.mmproj {
            row("Vision", format!("projector {}", p.display()));
        }
        row("Tensors", self.tensor_count.to_string());
    }
}

fn type_label(v: &gguf::Value) -> String {
    match v {
        gguf::Value::Array(a) => format!("[{}; {}]", a.elem_type.name(), a.len),
        other => other.value_type().name().to_string(),
    }
}

/// `rm`: deletes each model by the service's rule ([`service::remove`]); models that are not
/// ours are refused unless forced. Every model is tried; the exit code says if one failed.
pub fn remove(ctx: &Context, args: crate::args::RmArgs) -> Result<ExitCode> {
    let store = ctx.store().ok();
    let own = service::remove::OwnPlaces::new(&ctx.config, &ctx.paths, store.as_ref());
    let mut removed = Vec::new();
    let mut failed = false;
    for name in &args.models {
        let outcome = find(ctx, name)
            .and_then(|entry| Ok(service::remove::remove(&entry, &own, args.force_external)?));
        match outcome {
            Ok(r) => {
                if !args.json.json {
                    println!(
                        "deleted {} ({}, {} file(s))",
                        r.model,
                        bytes(r.freed),
                        r.deleted.len()
                    );
                }
                removed.push(r);
            }
            Err(e) => {
                failed = true;
                eprintln!("error: {e:#}");
            }
        }
    }
    if args.json.json {
        output::json(&serde_json::json!({ "removed": removed }))?;
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn set_alias(ctx: &Context, model: &str, alias: Option<&str>) -> Result<ExitCode> {
    let store = ctx.store()?;
    let Ok(m) = service::resolve(&ctx.discover(), Some(&store), model) else {
        bail!("no model named {model:?}; `llama-dashboard models list` shows the ids");
    };
    store.set_alias(&m.id, alias)?;
    match alias {
        Some(a) => println!("{} is now also called {a}", m.id),
        None => println!("alias of {} removed", m.id),
    }
    Ok(ExitCode::SUCCESS)
}

/// `1.2 MB of 3.4 MB`: how much of a cut file is there.
fn fraction(i: &Incomplete) -> String {
    format!("{} of {}", bytes(i.actual_size), bytes(i.expected_size))
}

fn join(nums: &[u32]) -> String {
    nums.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
