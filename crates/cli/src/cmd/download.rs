//! `download search`, `download pull` and the short `pull`: the same `service::Downloads`
//! the server's API uses (checks before queueing, the one queue, tasks in the database).
//!
//! A pull shows a progress bar (bytes, speed, ETA) on a terminal. Ctrl-C pauses the task:
//! its partial file is flushed and it stays in the database, paused; the same command run
//! again finds it and resumes it from where it stopped (so does `serve` when
//! `download.resume_on_start` is on).

use crate::args::{DownloadCommand, DownloadSearchArgs, PullArgs};
use crate::context::Context;
use crate::output::{self, bytes, count};
use anyhow::{Result, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use service::Models;
use service::downloads::{
    DownloadState, DownloadStatus, Downloads, PullRequest, SearchRequest, SearchResults, SourceKind,
};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// The config keys a pull's flags set.
pub fn config_flags(args: &PullArgs) -> Vec<(String, String)> {
    if args.insecure {
        vec![("download.insecure".into(), "true".into())]
    } else {
        Vec::new()
    }
}

pub fn run(ctx: &Context, cmd: DownloadCommand) -> Result<ExitCode> {
    match cmd {
        DownloadCommand::Search(args) => block_on(search(ctx, args)),
        DownloadCommand::Pull(args) => pull(ctx, args),
    }
}

pub fn pull(ctx: &Context, args: PullArgs) -> Result<ExitCode> {
    block_on(pull_async(ctx, args))
}

fn block_on<T>(f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(f)
}

/// The service as a command needs it: the catalog (a completed download is scanned into
/// it) and the store (tasks are recorded there).
fn downloads(ctx: &Context) -> Result<(Arc<Models>, Arc<Downloads>)> {
    let models = Arc::new(Models::new(
        ctx.roots(),
        ctx.store().ok(),
        ctx.config.models.clone(),
    ));
    let downloads = Downloads::new(models.clone(), &ctx.config.download, &ctx.paths)?;
    Ok((models, downloads))
}

async fn search(ctx: &Context, args: DownloadSearchArgs) -> Result<ExitCode> {
    let (models, downloads) = downloads(ctx)?;
    let sort = serde_json::from_value(serde_json::json!(args.sort.to_ascii_lowercase()))
        .map_err(|_| anyhow::anyhow!("--sort {}: one of downloads, likes, updated", args.sort))?;
    let found = downloads
        .search(&SearchRequest {
            query: args.query,
            source: args.source.as_deref().map(SourceKind::parse).transpose()?,
            sort,
            limit: args.limit.clamp(1, 100),
            ..Default::default()
        })
        .await?;
    models.manager().shutdown().await;
    if args.json.json {
        output::json(&found)?;
        return Ok(ExitCode::SUCCESS);
    }
    if found.is_empty() {
        eprintln!("no models found");
        return Ok(ExitCode::SUCCESS);
    }
    match &found {
        SearchResults::Huggingface(found) => {
            let mut t = output::table(["MODEL", "DOWNLOADS", "LIKES", "UPDATED"]);
            for m in found {
                t.add_row([
                    m.id.clone(),
                    count(m.downloads),
                    count(m.likes),
                    output::or_dash(m.last_modified.as_deref().map(|d| d.get(..10).unwrap_or(d))),
                ]);
            }
            println!("{t}");
            eprintln!("pull one with: llama-dashboard pull <MODEL>:<QUANT>");
        }
        SearchResults::Ollama(found) => {
            let list = |v: &[String]| output::or_dash(Some(v.join(", ")).filter(|s| !s.is_empty()));
            let mut t = output::table(["MODEL", "SIZES", "CAPABILITIES", "PULLS", "UPDATED"]);
            for m in found {
                t.add_row([
                    m.name.clone(),
                    list(&m.sizes),
                    list(&m.capabilities),
                    output::or_dash(m.pulls.map(count)),
                    output::or_dash(m.updated.as_deref()),
                ]);
            }
            println!("{t}");
            eprintln!("pull one with: llama-dashboard pull <MODEL>:<TAG>");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn pull_async(ctx: &Context, args: PullArgs) -> Result<ExitCode> {
    let (models, downloads) = downloads(ctx)?;
    // One process runs a data folder's downloads: with `serve` running, the pull is
    // refused with what to do instead (start it through the server).
    downloads.claim_queue()?;
    // Unfinished tasks of earlier runs come back paused; asking for the same download
    // again resumes its task.
    downloads.restore(false).await;
    let started = downloads
        .start(&PullRequest {
            name: args.name.clone(),
            file: args.file.clone(),
            source: args.source.as_deref().map(SourceKind::parse).transpose()?,
            revision: args.revision.clone(),
        })
        .await?;
    let id = started.status.id;
    if started.existing && started.status.state == DownloadState::Completed {
        eprintln!("{} is already downloaded", started.status.label);
    } else if started.existing {
        eprintln!(
            "resuming {} from {}",
            started.status.label,
            bytes(started.status.done)
        );
    }
    let bar = progress_bar(&started.status.label);
    let mut changes = downloads.changes();
    // Listening from now on: a Ctrl-C between two looks at the task is not missed.
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let status = loop {
        let s = downloads.status(id)?;
        show(&bar, &s);
        match &s.state {
            DownloadState::Completed => break s,
            DownloadState::Failed { reason } => {
                bar.abandon();
                bail!("{} failed: {reason}", s.label);
            }
            _ => {}
        }
        tokio::select! {
            _ = &mut ctrl_c => {
                let paused = downloads.pause(id).await;
                // A pause during the verification ends with the file in place: pulled.
                let s = downloads.status(id)?;
                if s.state == DownloadState::Completed {
                    break s;
                }
                paused?;
                bar.abandon();
                eprintln!(
                    "paused {} at {}; run the same command again to resume",
                    s.label,
                    bytes(s.done)
                );
                models.manager().shutdown().await;
                return Ok(ExitCode::from(130));
            }
            _ = changes.changed() => {}
            // Figures move between state changes.
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    };
    bar.finish_and_clear();
    for line in &status.log {
        eprintln!("note: {line}");
    }
    // The download is in the catalog (scanned before the task reported completed).
    let catalog = models.catalog();
    let added: Vec<&str> = catalog
        .models
        .iter()
        .filter(|m| m.parts.iter().any(|p| status.files.contains(p)))
        .map(|m| m.id.as_str())
        .collect();
    models.manager().shutdown().await;
    match added.as_slice() {
        [] => println!("pulled {} ({})", status.label, bytes(status.done)),
        ids => println!(
            "pulled {} ({}): model {}",
            status.label,
            bytes(status.done),
            ids.join(", ")
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// Bytes, speed and ETA on stderr, only on a terminal.
fn progress_bar(label: &str) -> ProgressBar {
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {binary_bytes}/{binary_total_bytes} {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(label.to_string());
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar
}

/// The task's own figures (the queue's moving average), not the bar's estimate.
fn show(bar: &ProgressBar, s: &DownloadStatus) {
    if let Some(total) = s.total {
        bar.set_length(total);
    }
    bar.set_position(s.done);
    let msg = match &s.state {
        DownloadState::Downloading if s.speed > 0.0 => format!(
            "{}/s ETA {}",
            bytes(s.speed as u64),
            s.eta_seconds
                .map_or_else(|| "-".to_string(), |e| format!("{e}s"))
        ),
        state => state.name().to_string(),
    };
    bar.set_message(msg);
}
