//! `mcp list|add|rm|tools`: the stored MCP servers, through `service::Tools` (the same
//! parsing and storage as the server's `/api/mcp/servers`).

use crate::args::{McpAddArgs, McpCommand};
use crate::context::Context;
use crate::output;
use anyhow::{Result, bail};
use serde_json::{Map, Value, json};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

pub fn run(ctx: &Context, cmd: McpCommand) -> Result<ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run_async(ctx, cmd))
}

fn service(ctx: &Context) -> Result<Arc<service::Tools>> {
    let models = Arc::new(service::Models::new(Vec::new(), Some(ctx.store()?), ctx.config.models.clone()));
    Ok(service::Tools::new(models, &ctx.config.tools))
}

/// `command args` or `url` of an entry, for the table.
fn target(entry: &Value) -> String {
    if let Some(url) = entry.get("url").and_then(Value::as_str) {
        return url.to_owned();
    }
    let mut parts = vec![entry.get("command").and_then(Value::as_str).unwrap_or_default().to_owned()];
    parts.extend(entry.get("args").and_then(Value::as_array).into_iter().flatten().filter_map(|a| a.as_str().map(str::to_owned)));
    parts.join(" ")
}

async fn run_async(ctx: &Context, cmd: McpCommand) -> Result<ExitCode> {
    let tools = service(ctx)?;
    match cmd {
        McpCommand::List(flag) => {
            let stored = tools.stored().await?;
            if flag.json {
                let map: Map<String, Value> = stored.into_iter().map(|(n, enabled, mut e)| {
                    if !enabled {
                        e["disabled"] = json!(true);
                    }
                    (n, e)
                }).collect();
                output::json(&json!({"mcpServers": map}))?;
            } else if stored.is_empty() {
                println!("No MCP servers (add one: llama-dashboard mcp add NAME -- COMMAND ARGS...)");
            } else {
                let mut t = output::table(["NAME", "ENABLED", "SERVER"]);
                for (name, enabled, entry) in &stored {
                    t.add_row([name.clone(), if *enabled { "yes" } else { "no" }.into(), target(entry)]);
                }
                println!("{t}");
            }
        }
        McpCommand::Add(args) => add(&tools, args).await?,
        McpCommand::Rm { name } => {
            tools.remove(&name).await?;
            println!("Removed {name}");
        }
        McpCommand::Tools(flag) => {
            let warnings = tools.start().await?;
            for w in warnings {
                eprintln!("warning: {w}");
            }
            tools.settle(Duration::from_secs(30)).await;
            let list = tools.list(false);
            let servers = tools.servers();
            tools.shutdown().await;
            if flag.json {
                output::json(&json!({"tools": list, "servers": servers}))?;
            } else {
                let mut t = output::table(["SERVER", "STATE", "TOOLS", "ERROR"]);
                for s in &servers {
                    t.add_row([
                        s.status.name.clone(),
                        json!(s.status.state).as_str().unwrap_or_default().to_owned(),
                        s.status.tools.to_string(),
                        s.status.error.clone().unwrap_or_default(),
                    ]);
                }
                println!("{t}");
                let mut t = output::table(["TOOL", "DESCRIPTION"]);
                for tool in &list {
                    t.add_row([tool.name.clone(), tool.description.lines().next().unwrap_or_default().to_owned()]);
                }
                println!("{t}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn add(tools: &service::Tools, args: McpAddArgs) -> Result<()> {
    if let Some(source) = args.import {
        let text = if source.trim_start().starts_with('{') { source } else { std::fs::read_to_string(&source)? };
        let done = tools.import(&text, args.replace).await?;
        for e in &done.errors {
            eprintln!("error: {e}");
        }
        println!("Added {}", if done.added.is_empty() { "nothing".into() } else { done.added.join(", ") });
        if done.added.is_empty() && !done.errors.is_empty() {
            bail!("no server could be added");
        }
        return Ok(());
    }
    let name = args.name.expect("clap requires a name without --import");
    let pairs = |items: &[String], sep: char, what: &str| -> Result<Map<String, Value>> {
        items
            .iter()
            .map(|kv| match kv.split_once(sep) {
                Some((k, v)) => Ok((k.trim().to_owned(), json!(v.trim()))),
                None => bail!("{what} {kv:?}: expected NAME{sep}VALUE"),
            })
            .collect()
    };
    let entry = match (args.url, args.command.split_first()) {
        (Some(url), None) => {
            let mut e = json!({"url": url, "headers": pairs(&args.headers, ':', "--header")?});
            if args.sse {
                e["type"] = json!("sse");
            }
            e
        }
        (None, Some((command, rest))) => json!({"command": command, "args": rest, "env": pairs(&args.env, '=', "--env")?}),
        (Some(_), Some(_)) => bail!("give either --url or a command after --, not both"),
        (None, None) => bail!("give the server's command after -- (mcp add NAME -- npx -y some-server), or --url"),
    };
    let view = tools.put(&name, entry, args.replace).await?;
    println!("Added {name} ({})", view.status.transport);
    Ok(())
}
